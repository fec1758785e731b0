# SPDX-License-Identifier: Apache-2.0
"""The /v1 ASGI application: authenticate, limit, route, forward, meter."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from django.conf import settings
from redis.asyncio import Redis

from potluck import extensions
from potluck.gateway import errors, metrics
from potluck.gateway.auth import Caller, KeyCache
from potluck.gateway.catalog import Catalog, ModelEntry, ReplicaEntry, load_snapshot
from potluck.gateway.db import DatabaseThread
from potluck.gateway.errors import GatewayError
from potluck.gateway.limits import Defaults, Limiter, Verdict
from potluck.gateway.sse import StreamMeter
from potluck.gateway.usage_writer import UsageWriter
from potluck.usage.stream import UsageEvent

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

ENDPOINTS = {
    "/v1/chat/completions": "chat.completions",
    "/v1/completions": "completions",
    "/v1/embeddings": "embeddings",
}
_RETRYABLE_STATUS = {502, 503}
_JSON = (b"content-type", b"application/json")


class ClientGone(Exception):
    """The client disconnected; the upstream request is cancelled."""


@dataclass
class Exchange:
    """One /v1 request as it goes through the gateway."""

    request_id: str
    endpoint: str
    started: float
    caller: Caller | None = None
    model: str = ""
    status: int = 0
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft: float | None = None
    upstream_seconds: float = 0.0
    replica: ReplicaEntry | None = None
    verdict: Verdict | None = None
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class Gateway:
    def __init__(self) -> None:
        self._started = False
        self._start_lock = asyncio.Lock()
        self._background: list[asyncio.Task[None]] = []

    # -- life cycle -------------------------------------------------------------------
    async def _ensure_started(self) -> None:
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            self.db = DatabaseThread()
            self.keys = KeyCache(self.db, ttl=settings.GATEWAY_KEY_CACHE_SECONDS)
            self.redis = Redis.from_url(settings.REDIS_URL, socket_timeout=5,
                                        socket_connect_timeout=2)
            self.limiter = Limiter(self.redis, Defaults(
                settings.GATEWAY_DEFAULT_KEY_RPM, settings.GATEWAY_DEFAULT_KEY_TPM,
                settings.GATEWAY_DEFAULT_ORG_RPM, settings.GATEWAY_DEFAULT_ORG_TPM))
            self.usage = UsageWriter(self.redis, settings.DATA_DIR / "spool")
            self.catalog = Catalog()
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60,
                                               enable_cleanup_closed=True),
                timeout=aiohttp.ClientTimeout(total=None,
                                              sock_connect=settings.GATEWAY_CONNECT_TIMEOUT,
                                              sock_read=settings.GATEWAY_READ_TIMEOUT),
                auto_decompress=False, skip_auto_headers=("User-Agent",),
            )
            await self._refresh_catalog()
            self._background = [asyncio.create_task(self._refresh_loop()),
                                asyncio.create_task(self._replay_loop())]
            self._started = True

    async def _refresh_catalog(self) -> None:
        snapshot = await self.db.run(load_snapshot)
        self.catalog.replace(snapshot)
        for state, count in snapshot.replica_states.items():
            metrics.REPLICAS.labels(state).set(count)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(settings.GATEWAY_CATALOG_REFRESH_SECONDS)
            try:
                await self._refresh_catalog()
            except Exception:  # keep serving from the last good snapshot
                log.exception("catalog refresh failed")

    async def _replay_loop(self) -> None:
        while True:
            try:
                moved = await self.usage.replay()
                if moved:
                    log.info("replayed %d spooled usage records", moved)
            except Exception:
                log.exception("usage spool replay failed")
            await asyncio.sleep(5)

    async def shutdown(self) -> None:
        if not self._started:
            return
        for task in self._background:
            task.cancel()
        await self.http.close()
        await self.redis.aclose()
        self.db.shutdown()
        self._started = False

    # -- entry point ------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._ensure_started()
        path, method = scope["path"], scope["method"]
        exchange = Exchange(request_id="req_" + uuid.uuid4().hex, endpoint=ENDPOINTS.get(
            path, ""), started=time.perf_counter())
        try:
            if path == "/metrics" and method == "GET":
                body, content_type = metrics.render()
                await _respond(send, 200, body, [(b"content-type", content_type.encode())])
                return
            exchange.caller = await self._authenticate(scope)
            if path == "/v1/models" and method == "GET":
                await self._list_models(send, exchange.caller)
                return
            if path.startswith("/v1/models/") and method == "GET":
                await self._get_model(send, exchange.caller, path.removeprefix("/v1/models/"))
                return
            if not exchange.endpoint:
                raise GatewayError(404, f"Unknown request URL: {method} {path}.",
                                   code="unknown_url")
            if method != "POST":
                raise GatewayError(405, f"Use POST for {path}.", code="method_not_allowed")
            await self._inference(scope, receive, send, exchange)
        except GatewayError as error:
            exchange.status = error.status
            await _respond(send, error.status, error.body(),
                           [_JSON, (b"x-request-id", exchange.request_id.encode()),
                            *error.headers])
        except ClientGone:
            exchange.status = 499
        finally:
            if exchange.endpoint and exchange.caller is not None:
                await self._meter(exchange)

    async def _authenticate(self, scope: Scope) -> Caller:
        header = _header(scope, b"authorization")
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            raise errors.unauthorized("You didn't provide an API key. Send it as "
                                      "'Authorization: Bearer pot_...'.")
        caller = await self.keys.authenticate(token.strip().decode("latin-1"))
        if caller is None:
            raise errors.unauthorized("Incorrect, expired or revoked API key.")
        if "inference" not in caller.scopes:
            raise GatewayError(403, "This API key lacks the 'inference' scope.",
                               type="permission_error", code="insufficient_scope")
        return caller

    # -- /v1/models ---------------------------------------------------------------------
    async def _list_models(self, send: Send, caller: Caller) -> None:
        data = [_model_object(e) for e in self.catalog.visible(caller.organization_id)]
        await _respond(send, 200, orjson.dumps({"object": "list", "data": data}), [_JSON])

    async def _get_model(self, send: Send, caller: Caller, name: str) -> None:
        entry = self.catalog.resolve(name, caller.organization_id)
        if entry is None:
            raise errors.model_not_found(name)
        await _respond(send, 200, orjson.dumps(_model_object(entry)), [_JSON])

    # -- inference ------------------------------------------------------------------------
    async def _inference(self, scope: Scope, receive: Receive, send: Send,
                         exchange: Exchange) -> None:
        assert exchange.caller is not None
        raw = await _read_body(scope, receive, settings.GATEWAY_MAX_BODY_BYTES)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise errors.bad_request("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise errors.bad_request("The request body must be a JSON object.")
        model_name = body.get("model")
        if not isinstance(model_name, str) or not model_name:
            raise errors.bad_request("You must provide a model parameter.", param="model")
        exchange.model = model_name
        entry = self.catalog.resolve(model_name, exchange.caller.organization_id)
        if entry is None:
            raise errors.model_not_found(model_name)
        _check_max_tokens(body, entry)
        exchange.verdict = await self.limiter.check(exchange.caller)
        if not exchange.verdict.allowed:
            raise errors.rate_limited(exchange.verdict.reason, exchange.verdict.retry_after)
        rewritten = False
        if len(extensions.request_policies):
            body = self._apply_policies(exchange, body)
            rewritten = True
        exchange.stream = bool(body.get("stream")) and exchange.endpoint != "embeddings"
        client_wants_usage = False
        if exchange.stream:
            options = body.get("stream_options")
            client_wants_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            if not client_wants_usage:
                body["stream_options"] = {**(options or {}), "include_usage": True}
                rewritten = True
        if entry.served_name != model_name:  # an adapter: its replicas know it by its own
            body["model"] = entry.served_name
            rewritten = True
        payload = orjson.dumps(body) if rewritten else raw
        path = scope["path"]
        if exchange.stream:
            await self._forward_stream(receive, send, exchange, entry, path, payload,
                                       client_wants_usage)
        else:
            await self._forward(receive, send, exchange, entry, path, payload)

    def _apply_policies(self, exchange: Exchange, body: dict[str, Any]) -> dict[str, Any]:
        assert exchange.caller is not None
        call = extensions.GatewayCall(exchange.caller.organization_id, exchange.caller.key_id,
                                      exchange.model, exchange.endpoint, body)
        try:
            return extensions.run_before_policies(call)
        except extensions.PolicyRejection as rejection:
            raise GatewayError(rejection.status, str(rejection), code=rejection.code) from None

    async def _open_upstream(self, exchange: Exchange, entry: ModelEntry, path: str,
                             payload: bytes, tried: set[str] | None = None
                             ) -> aiohttp.ClientResponse:
        """POST to the least-busy READY replica; on failure before any byte went to the
        client, try another replica (``tried`` collects those already used)."""
        tried = set() if tried is None else tried
        last_error: GatewayError | None = None
        for _ in range(settings.GATEWAY_MAX_ATTEMPTS):
            replica = self.catalog.pick(entry, tried)
            if replica is None:
                break
            tried.add(replica.id)
            replica.in_flight += 1
            try:
                response = await self.http.post(
                    replica.url + path, data=payload,
                    headers={"content-type": "application/json",
                             "x-request-id": exchange.request_id})
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                replica.in_flight -= 1
                last_error = errors.upstream_failed(
                    f"Replica unreachable ({exc.__class__.__name__}).")
                continue
            except TimeoutError:
                replica.in_flight -= 1
                raise errors.upstream_failed("The model did not answer in time.",
                                             timeout=True) from None
            except BaseException:  # cancelled: the client went away
                replica.in_flight -= 1
                raise
            if response.status in _RETRYABLE_STATUS:
                replica.in_flight -= 1
                response.release()
                last_error = errors.upstream_failed(f"Replica answered {response.status}.")
                continue
            exchange.replica = replica
            return response
        if last_error is not None:
            raise last_error
        raise errors.no_replica(entry.name)

    def _done_with_replica(self, exchange: Exchange) -> None:
        if exchange.replica is not None:
            exchange.replica.in_flight -= 1

    async def _forward(self, receive: Receive, send: Send, exchange: Exchange,
                       entry: ModelEntry, path: str, payload: bytes) -> None:
        async def call() -> tuple[int, bytes, str]:
            sent = time.perf_counter()
            tried: set[str] = set()
            while True:
                response = await self._open_upstream(exchange, entry, path, payload, tried)
                try:
                    body = await response.read()
                except aiohttp.ClientError:
                    # The replica died mid-answer; nothing reached the client yet, so
                    # another replica may answer instead (generation has no side effects).
                    if len(tried) >= settings.GATEWAY_MAX_ATTEMPTS:
                        raise
                    continue
                finally:
                    response.release()
                    self._done_with_replica(exchange)
                exchange.upstream_seconds = time.perf_counter() - sent
                return response.status, body, response.headers.get("content-type",
                                                                    "application/json")

        try:
            status, body, content_type = await _unless_disconnected(receive, call())
        except TimeoutError:
            raise errors.upstream_failed("The model did not answer in time.",
                                         timeout=True) from None
        except aiohttp.ClientError as exc:
            raise errors.upstream_failed(f"The replica failed mid-answer "
                                         f"({exc.__class__.__name__}).") from None
        exchange.status = status
        body = entry.public_body(body)
        if status == 200:
            _read_usage(exchange, body)
            if len(extensions.request_policies):
                body = self._after_policies(exchange, body)
        overhead_ms = (time.perf_counter() - exchange.started - exchange.upstream_seconds) * 1e3
        await _respond(send, status, body, [
            (b"content-type", content_type.encode()),
            (b"x-request-id", exchange.request_id.encode()),
            (b"x-potluck-overhead-ms", f"{overhead_ms:.3f}".encode()),
        ])

    def _after_policies(self, exchange: Exchange, body: bytes) -> bytes:
        assert exchange.caller is not None
        call = extensions.GatewayCall(exchange.caller.organization_id, exchange.caller.key_id,
                                      exchange.model, exchange.endpoint, {})
        return orjson.dumps(extensions.run_after_policies(call, orjson.loads(body)))

    async def _forward_stream(self, receive: Receive, send: Send, exchange: Exchange,
                              entry: ModelEntry, path: str, payload: bytes,
                              client_wants_usage: bool) -> None:
        sent = time.perf_counter()
        response = await _unless_disconnected(
            receive, self._open_upstream(exchange, entry, path, payload))
        meter = StreamMeter(client_wants_usage, entry.public_body)
        started = False
        try:
            if response.status != 200:  # an error before the stream: pass it through whole
                body = entry.public_body(await response.read())
                exchange.status = response.status
                await _respond(send, response.status, body,
                               [_JSON, (b"x-request-id", exchange.request_id.encode())])
                return

            async def pump() -> None:
                nonlocal started
                async for chunk in response.content.iter_any():
                    out = meter.feed(chunk)
                    if not out:
                        continue
                    if not started:
                        await send({"type": "http.response.start", "status": 200, "headers": [
                            (b"content-type", b"text/event-stream; charset=utf-8"),
                            (b"cache-control", b"no-cache"),
                            (b"x-request-id", exchange.request_id.encode())]})
                        started = True
                    await send({"type": "http.response.body", "body": out, "more_body": True})

            await _unless_disconnected(receive, pump())
            rest = meter.flush()
            if not started:
                await send({"type": "http.response.start", "status": 200,
                            "headers": [(b"content-type", b"text/event-stream; charset=utf-8")]})
            await send({"type": "http.response.body", "body": rest, "more_body": False})
            exchange.status = 200
        except ClientGone:
            exchange.status = 499
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            exchange.status = 502
            if not started:
                raise errors.upstream_failed(f"The replica failed ({exc.__class__.__name__})."
                                             ) from None
            # Headers are gone already: end the stream; the client sees it cut short.
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            response.release()
            self._done_with_replica(exchange)
            exchange.upstream_seconds = time.perf_counter() - sent
            exchange.prompt_tokens = meter.prompt_tokens
            exchange.completion_tokens = (meter.completion_tokens if meter.saw_usage
                                          else meter.content_events)
            if meter.first_content_at is not None:
                exchange.ttft = meter.first_content_at - exchange.started

    # -- metering ---------------------------------------------------------------------
    async def _meter(self, exchange: Exchange) -> None:
        assert exchange.caller is not None
        elapsed = time.perf_counter() - exchange.started
        status = exchange.status or 500
        model = exchange.model or "-"
        metrics.REQUESTS.labels(model, exchange.endpoint, str(status)).inc()
        metrics.LATENCY.labels(model, exchange.endpoint).observe(elapsed)
        if exchange.upstream_seconds and not exchange.stream:
            metrics.OVERHEAD.observe(max(0.0, elapsed - exchange.upstream_seconds))
        if exchange.prompt_tokens or exchange.completion_tokens:
            metrics.TOKENS.labels(model, "prompt").inc(exchange.prompt_tokens)
            metrics.TOKENS.labels(model, "completion").inc(exchange.completion_tokens)
        event = UsageEvent(
            request_id=exchange.request_id, organization_id=exchange.caller.organization_id,
            api_key_id=exchange.caller.key_id, model=model, endpoint=exchange.endpoint,
            status=status, stream=exchange.stream, prompt_tokens=exchange.prompt_tokens,
            completion_tokens=exchange.completion_tokens, latency_ms=elapsed * 1e3,
            ttft_ms=exchange.ttft * 1e3 if exchange.ttft is not None else None,
            replica_id=exchange.replica.id if exchange.replica else None,
            created_at=time.time(),
        )
        token_keys = exchange.verdict.token_keys if exchange.verdict else ()
        await self.usage.record(event, token_keys)


# -- helpers ----------------------------------------------------------------------------
def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return b""


async def _respond(send: Send, status: int, body: bytes,
                   headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise GatewayError(413, f"The request body exceeds {limit} bytes.",
                           code="request_too_large")
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise GatewayError(413, f"The request body exceeds {limit} bytes.",
                               code="request_too_large")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _unless_disconnected(receive: Receive, work: Awaitable[Any]) -> Any:
    """Run ``work``; if the client disconnects first, cancel it (which closes the
    upstream connection, and vLLM aborts the generation)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        watcher.cancel()
        raise
    if task in done:
        watcher.cancel()
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise ClientGone()


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _check_max_tokens(body: dict[str, Any], entry: ModelEntry) -> None:
    for param in ("max_tokens", "max_completion_tokens"):
        value = body.get(param)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise errors.bad_request(f"{param} must be a positive integer.", param=param)
        if entry.context_length and value > entry.context_length:
            raise errors.bad_request(
                f"{param} is {value}, but the model's context length is "
                f"{entry.context_length} tokens.", param=param, code="context_length_exceeded")


def _read_usage(exchange: Exchange, body: bytes) -> None:
    try:
        usage = orjson.loads(body).get("usage") or {}
    except (orjson.JSONDecodeError, AttributeError):
        return
    exchange.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    exchange.completion_tokens = int(usage.get("completion_tokens") or 0)


def _model_object(entry: ModelEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"id": entry.name, "object": "model", "created": entry.created,
                            "owned_by": "organization" if entry.organization_id else "potluck"}
    if entry.parent:
        item["parent"] = entry.parent
    if entry.context_length:
        item["max_model_len"] = entry.context_length
    return item
