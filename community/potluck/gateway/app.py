# SPDX-License-Identifier: Apache-2.0
"""The /v1 ASGI application: HTTP around the inference core.

It authenticates (API keys, from a short per-worker cache), reads and parses the body,
and hands the request to ``potluck.inference.core``, which resolves the model, runs the
policy pipeline (the limiter and the usage meter are stages of it), picks a replica and
forwards. Background duties (catalogue refresh, extension refreshers such as the
enterprise licence, replay of spooled usage) start with the worker, not with its first
request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from django.conf import settings
from django.db import DatabaseError
from redis.asyncio import Redis

from potluck import extensions, jsonbody
from potluck.gateway import metrics
from potluck.gateway.auth import KeyCache
from potluck.gateway.db import DatabaseThread
from potluck.inference import errors
from potluck.inference.catalog import Catalog, ModelEntry, Snapshot, load_snapshot
from potluck.inference.context import ONLINE, Caller, Outcome, RequestContext
from potluck.inference.core import InferenceCore, StreamAnswer, new_request_id
from potluck.inference.errors import InferenceError
from potluck.inference.limits import Defaults, Limiter, RateLimits
from potluck.inference.metering import UsageMeter
from potluck.inference.sse import StreamCut, TransformerFailed, error_event
from potluck.inference.usage_writer import UsageJournal
from potluck.protocol.endpoints import by_path
from potluck.usage import metrics as usage_metrics

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
LAG_EVERY_ROUNDS = 5
# A request for a model the catalogue does not know reloads it, unless it is fresher than this.
MISS_RELOAD_SECONDS = 0.25
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")
# What Django's SecurityMiddleware and XFrameOptionsMiddleware send on /api, sent here too.
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY")]


class ClientGone(Exception):
    """The client disconnected; the upstream request is cancelled."""


class Gateway:
    def __init__(self) -> None:
        self._started = False
        self._start_lock = asyncio.Lock()
        self._background: list[asyncio.Task[None]] = []

    # -- life cycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Open connections, load the catalogue and start the background duties (called
        at ASGI lifespan start-up, and on the first request where there is no lifespan)."""
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
            self.usage = UsageJournal(self.redis, settings.DATA_DIR / "spool")
            self.catalog = Catalog()
            self.http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60,
                                               enable_cleanup_closed=True),
                timeout=aiohttp.ClientTimeout(total=None,
                                              sock_connect=settings.GATEWAY_CONNECT_TIMEOUT,
                                              sock_read=settings.GATEWAY_READ_TIMEOUT),
                auto_decompress=False, skip_auto_headers=("User-Agent",),
            )
            self.core = InferenceCore(self.http, self.catalog,
                                      [RateLimits(self.limiter), UsageMeter(self.usage)],
                                      reload_on_miss=self._reload_on_miss)
            self._catalog_loaded_at = self._miss_reloaded_at = 0.0
            self._catalog_lock = asyncio.Lock()
            self.headers = list(SECURITY_HEADERS)
            try:
                await self._refresh()
            except Exception:  # the database may be down: the loop keeps trying
                log.exception("first catalog refresh failed")
            self._background = [asyncio.create_task(self._refresh_loop()),
                                asyncio.create_task(self.usage.run()),
                                asyncio.create_task(self.limiter.run())]
            self._started = True

    async def _load_catalog(self) -> Snapshot:
        snapshot = await self.db.run(load_snapshot)
        self.catalog.replace(snapshot)
        self._catalog_loaded_at = time.monotonic()
        return snapshot

    async def _reload_on_miss(self) -> bool:
        """The core asks before answering a model as unknown: reload the catalogue, unless
        a miss reloaded it in the last ``MISS_RELOAD_SECONDS`` (so requests for unknown
        models cost at most a few queries a second; concurrent misses share one load).
        True if the catalogue was loaded after the request asked."""
        asked = time.monotonic()
        async with self._catalog_lock:
            if self._catalog_loaded_at >= asked:  # loaded while we waited: fresh enough
                return True
            if asked - self._miss_reloaded_at < MISS_RELOAD_SECONDS:
                return False
            self._miss_reloaded_at = asked
            try:
                await self._load_catalog()
            except DatabaseError:
                return False
            return True

    async def _refresh(self) -> None:
        async with self._catalog_lock:
            snapshot = await self._load_catalog()
        for state, count in snapshot.replica_states.items():
            metrics.REPLICAS.labels(state).set(count)
        await self.db.run(extensions.run_refreshers)
        metrics.show_features(extensions.features.keys())

    async def _refresh_loop(self) -> None:
        rounds = 0
        failing = False
        while True:
            await asyncio.sleep(settings.GATEWAY_CATALOG_REFRESH_SECONDS)
            rounds += 1
            try:
                await self._refresh()
                if rounds % LAG_EVERY_ROUNDS == 0:  # the lag query counts rows: not each second
                    await self.db.run(usage_metrics.update_consumer_lag)
            except DatabaseError as exc:  # keep serving from the last good snapshot
                if not failing:
                    log.warning("catalog refresh: the database is unreachable (%s); serving "
                                "from the last catalogue until it answers", exc)
                failing = True
                continue
            except Exception:
                log.exception("catalog refresh failed")
                continue
            if failing:
                log.info("catalog refresh: the database answers again")
                failing = False

    async def shutdown(self) -> None:
        if not self._started:
            return
        for task in self._background:
            task.cancel()
        await self.usage.close()
        await self.http.close()
        await self.redis.aclose()
        self.db.shutdown()
        self._started = False

    # -- entry point ------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.start()
        started: list[bool] = []

        async def tracked(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.append(True)
            await send(message)

        request_id = new_request_id()
        try:
            await self._handle(scope, receive, tracked, request_id)
        except Exception:
            # A fault nothing above expected (a bug, or a dependency failing in a new way)
            # still gets OpenAI's shape, never a bare "Internal Server Error".
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if not started:
                error = InferenceError(500, "The server had an error while processing your "
                                       "request; retry shortly.", type="server_error",
                                       code="internal_error")
                await self._respond(send, 500, error.body(),
                                    [_JSON, (b"x-request-id", request_id.encode())])

    async def _handle(self, scope: Scope, receive: Receive, send: Send,
                      request_id: str) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/metrics":
            await self._metrics(scope, send)
            return
        endpoint = by_path(path)
        ctx = (self.core.new_context(endpoint, source=ONLINE, request_id=request_id)
               if endpoint else None)
        try:
            caller = await self._authenticate(scope)
            if ctx is None:
                await self._non_inference(scope, send, caller, request_id)
                return
            ctx.caller = caller
            if method != "POST":
                raise InferenceError(405, f"Use POST for {path}.", code="method_not_allowed")
            await self._inference(scope, receive, send, ctx)
        except InferenceError as error:
            if ctx is not None:
                ctx.status = error.status
                ctx.error_code = error.code
                ctx.outcome = ctx.outcome or (Outcome.REFUSED if error.status < 500
                                              else Outcome.FAILED)
                await self._finish(ctx)
            await self._respond(send, error.status, error.body(),
                                [_JSON, (b"x-request-id", request_id.encode()),
                                 *error.headers])
        except ClientGone:
            if ctx is not None:
                ctx.status = 499
                ctx.outcome = Outcome.CLIENT_GONE
        finally:
            if ctx is not None:
                await self._finish(ctx)

    async def _finish(self, ctx: RequestContext) -> None:
        if ctx.finished:
            return
        await self.core.finish(ctx)
        if ctx.caller is not None:
            metrics.observe(ctx)

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
            raise InferenceError(403, "This API key lacks the 'inference' scope.",
                                 type="permission_error", code="insufficient_scope")
        return caller

    # -- /metrics -----------------------------------------------------------------------
    async def _metrics(self, scope: Scope, send: Send) -> None:
        """Prometheus text, for a scraper that presents ``POTLUCK_METRICS_TOKEN``: the
        metrics name tenants' models, so they are never anonymous."""
        token = settings.METRICS_TOKEN
        header = _header(scope, b"authorization")
        scheme, _, given = header.partition(b" ")
        if not token:
            body = errors.InferenceError(
                403, "Metrics are off: set POTLUCK_METRICS_TOKEN and scrape with it as a "
                "bearer token.", type="permission_error", code="metrics_disabled").body()
            await self._respond(send, 403, body, [_JSON])
            return
        if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(),
                                                                   token.encode()):
            error = errors.unauthorized("Metrics need the scrape token as "
                                        "'Authorization: Bearer ...'.")
            await self._respond(send, 401, error.body(), [_JSON, *error.headers])
            return
        body, content_type = metrics.render()
        await self._respond(send, 200, body, [(b"content-type", content_type.encode())])

    # -- /v1/models and unknown URLs ----------------------------------------------------
    async def _non_inference(self, scope: Scope, send: Send, caller: Caller,
                             request_id: str) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/v1/models" and method == "GET":
            data = [_model_object(e) for e in self.catalog.visible(caller.organization_id)]
            await self._respond(send, 200, orjson.dumps({"object": "list", "data": data}),
                                [_JSON])
            return
        if path.startswith("/v1/models/") and method == "GET":
            name = path.removeprefix("/v1/models/")
            entry = self.catalog.resolve(name, caller.organization_id)
            if entry is None:
                raise errors.model_not_found(name)
            await self._respond(send, 200, orjson.dumps(_model_object(entry)), [_JSON])
            return
        raise InferenceError(404, f"Unknown request URL: {method} {path}.", code="unknown_url")

    # -- inference ------------------------------------------------------------------------
    async def _inference(self, scope: Scope, receive: Receive, send: Send,
                         ctx: RequestContext) -> None:
        raw = await _read_body(scope, receive, settings.GATEWAY_MAX_BODY_BYTES)
        try:
            body = jsonbody.loads(raw)
        except jsonbody.TooDeeplyNested as deep:
            raise errors.bad_request(f"The request body nests more than {deep.max_depth} "
                                     "levels deep.", code="too_deeply_nested") from None
        except jsonbody.InvalidJSON:
            raise errors.bad_request("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise errors.bad_request("The request body must be a JSON object.")
        payload = await self.core.admit(ctx, body)
        if ctx.stream:
            await self._stream(receive, send, ctx, payload)
        else:
            await self._complete(receive, send, ctx, payload)

    async def _complete(self, receive: Receive, send: Send, ctx: RequestContext,
                        payload: bytes) -> None:
        answer = await _unless_disconnected(receive, self.core.complete(ctx, payload))
        overhead_ms = ctx.latency_ms - ctx.upstream_seconds * 1e3
        headers = [(b"content-type", answer.content_type.encode()),
                   (b"x-request-id", ctx.request_id.encode()),
                   (b"x-potluck-overhead-ms", f"{overhead_ms:.3f}".encode()),
                   *ctx.response_headers]
        # Usage is on record before the answer leaves: a worker killed while sending
        # loses no record of an answer its client may have got.
        await self._finish(ctx)
        await self._respond(send, answer.status, answer.body, headers)

    async def _stream(self, receive: Receive, send: Send, ctx: RequestContext,
                      payload: bytes) -> None:
        answer = await _unless_disconnected(receive, self.core.open_stream(ctx, payload))
        try:
            if answer.status != 200:  # an error before the stream: passed on whole
                await self._finish(ctx)
                await self._respond(send, answer.status, answer.first,
                                    [_JSON, (b"x-request-id", ctx.request_id.encode())])
                return
            await send({"type": "http.response.start", "status": 200, "headers": [
                _SSE, (b"cache-control", b"no-cache"),
                (b"x-request-id", ctx.request_id.encode()), *ctx.response_headers,
                *self.headers]})
            await _unless_disconnected(receive, self._pump(send, ctx, answer))
        finally:
            answer.close()

    async def _pump(self, send: Send, ctx: RequestContext, answer: StreamAnswer) -> None:
        """Send the stream, one chunk behind the replica, so that the last chunk (the one
        with ``[DONE]``) goes out only after the request's usage is on record."""
        held = answer.first
        try:
            async for chunk in answer.rest():
                await send({"type": "http.response.body", "body": held, "more_body": True})
                held = chunk
        except (StreamCut, aiohttp.ClientError, TimeoutError, TransformerFailed) as exc:
            await self._end_with_error(send, ctx, held, exc)
            return
        await self._finish(ctx)
        await send({"type": "http.response.body", "body": held, "more_body": False})

    async def _end_with_error(self, send: Send, ctx: RequestContext, held: bytes,
                              exc: Exception) -> None:
        """A stream that fails after it started ends with an OpenAI-shaped error event and
        no ``[DONE]``; it is recorded with its error status and logged."""
        if isinstance(exc, TransformerFailed):
            # What was held back may be what the stage should have filtered: dropped.
            status, code = 500, "policy_error"
            message = f"The answer could not be checked by the '{exc.policy}' policy."
            held = b""
        else:
            timeout = isinstance(exc, TimeoutError)
            status, code = (504, "upstream_timeout") if timeout else (502, "upstream_error")
            message = ("The model stopped answering in time." if timeout else
                       "The replica failed mid-stream; the answer is incomplete.")
        ctx.status, ctx.error_code, ctx.outcome = status, code, Outcome.FAILED
        log.warning("stream %s of %r cut at status %d (%s: %s)", ctx.request_id, ctx.model,
                    status, exc.__class__.__name__, code)
        await self._finish(ctx)
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body",
                        "body": held + error_event(message, code=code), "more_body": False})

    async def _respond(self, send: Send, status: int, body: bytes,
                       headers: list[tuple[bytes, bytes]]) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [*headers, *self.headers,
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


# -- helpers ----------------------------------------------------------------------------
def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return b""


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    declared = _header(scope, b"content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise InferenceError(413, f"The request body exceeds {limit} bytes.",
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
            raise InferenceError(413, f"The request body exceeds {limit} bytes.",
                                 code="request_too_large")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _unless_disconnected(receive: Receive, work: Awaitable[Any]) -> Any:
    """Await ``work`` in this task; if the client disconnects first, cancel it (which
    closes the upstream connection, and vLLM aborts the generation) and raise
    ``ClientGone``. One watcher task per call, no ``asyncio.wait``."""
    current = asyncio.current_task()
    assert current is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        current.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        current.uncancel()
        raise ClientGone() from None
    finally:
        watcher.cancel()


def _model_object(entry: ModelEntry) -> dict[str, Any]:
    item: dict[str, Any] = {"id": entry.name, "object": "model", "created": entry.created,
                            "owned_by": "organization" if entry.organization_id else "potluck"}
    if entry.parent:
        item["parent"] = entry.parent
    if entry.context_length:
        item["max_model_len"] = entry.context_length
    return item
