# SPDX-License-Identifier: Apache-2.0
"""The inference core: the one path every inference request takes, online or in a batch.

    ctx = core.new_context(...)          # before anything is checked
    await core.admit(ctx, body)          # resolve the model, check, run on_request stages
    answer = await core.complete(ctx)    # non-streamed: one whole answer
    stream = await core.open_stream(ctx) # streamed: the first bytes, then the rest
    await core.finish(ctx)               # every stage's on_finish, exactly once

The gateway (``potluck.gateway.app``) speaks HTTP around it; the batch runner
(``potluck.batches.dispatcher``) feeds it batch lines. Neither keeps a copy of what is
here: the catalog, replica choice, retry rules (``upstream``), the served-name rewrite,
the policy pipeline and the usage record (the ``UsageMeter`` stage).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from potluck.inference import errors
from potluck.inference.catalog import Catalog, ModelEntry
from potluck.inference.context import ONLINE, Caller, Outcome, RequestContext
from potluck.inference.errors import InferenceError
from potluck.inference.policies import PipelineSource, Policy, PolicyFailed, Refusal
from potluck.inference.sse import StreamCut, StreamRelay, TransformerFailed, cached_tokens
from potluck.inference.tokens import PromptTokens
from potluck.inference.upstream import (
    Attempt,
    NoReadyReplica,
    RetryRules,
    Upstream,
    UpstreamFailed,
)
from potluck.protocol.endpoints import Endpoint
from potluck.protocol.errors import error_type
from potluck.protocol.requests import InvalidRequest, check_request

MayRetry = Callable[[], Awaitable[bool]]


_PROCESS = uuid.uuid4().hex[:16]  # 64 random bits: this process's own id space
_counter = itertools.count(1)


def new_request_id() -> str:
    """``req_`` and 32 hex digits, unique across processes (a random per-process prefix
    and a counter: cheaper than a uuid4 per request)."""
    return f"req_{_PROCESS}{next(_counter):016x}"


@dataclass
class Answer:
    """A whole answer: the replica's status, the body as the client gets it, its type."""

    status: int
    body: bytes
    content_type: str


class StreamAnswer:
    """A streamed answer under way: ``first`` holds the first bytes to send (non-empty),
    ``rest()`` yields the others, ``close()`` releases the replica. ``status`` is 200, or
    the replica's error status with its whole (renamed) body in ``first``."""

    def __init__(self, status: int, first: bytes, attempt: Attempt | None = None,
                 relay: StreamRelay | None = None, started: float = 0.0,
                 ctx: RequestContext | None = None) -> None:
        self.status = status
        self.first = first
        self._attempt = attempt
        self._relay = relay
        self._started = started
        self._ctx = ctx
        self.ended = attempt is None

    async def rest(self) -> AsyncIterator[bytes]:
        """The remaining bytes, then what the relay adds at the end. Raises ``StreamCut``
        (no ``[DONE]``), ``aiohttp.ClientError``/``TimeoutError`` (the replica failed)
        or ``TransformerFailed`` (a fail-closed stage broke): the caller ends the stream
        with an error event."""
        if self._attempt is None or self._relay is None:
            return
        async for chunk in self._attempt.response.content.iter_any():
            out = await self._relay.feed(chunk)
            if out:
                yield out
        tail = await self._relay.finish()
        self.ended = True
        if tail:
            yield tail

    def close(self) -> None:
        if self._attempt is not None:
            self._attempt.close()
            self._attempt = None
            if self._ctx is not None:
                self._ctx.upstream_seconds = time.perf_counter() - self._started


class InferenceCore:
    """Resolve, check, route, forward and meter, with the stages of ``pipeline``.

    ``catalog`` is refreshed by the owner (the gateway's background loop, the batch
    runner's watcher); ``builtin`` are the owner's own stages (the limiter, the usage
    meter), run with the registered policies in ``order``. ``reload_on_miss``, when
    given, is awaited once before a model is answered as unknown: it reloads the catalog
    if it may be stale and says whether it did (so a model published a moment ago, such
    as a fine-tune that just succeeded, is served at once rather than after the next
    background refresh).
    """

    def __init__(self, http: aiohttp.ClientSession, catalog: Catalog,
                 builtin: list[Policy] | None = None, rules: RetryRules | None = None,
                 reload_on_miss: Callable[[], Awaitable[bool]] | None = None) -> None:
        self.catalog = catalog
        self.reload_on_miss = reload_on_miss
        self.upstream = Upstream(http, catalog, rules)
        self.pipelines = PipelineSource(builtin or [])
        self.tokens = PromptTokens(http, catalog)

    @staticmethod
    def new_context(endpoint: Endpoint | None, *, source: str, request_id: str | None = None,
                    caller: Caller | None = None, started: float | None = None
                    ) -> RequestContext:
        ctx = RequestContext(request_id=request_id or new_request_id(), source=source,
                             endpoint=endpoint, caller=caller)
        if started is not None:
            ctx.started = started
        return ctx

    # -- before the replica -----------------------------------------------------------
    async def admit(self, ctx: RequestContext, body: dict[str, Any]) -> bytes:
        """Resolve ``body['model']`` for the caller's organization, check the request, run
        every ``on_request`` stage; returns the payload to send. Raises ``InferenceError``
        (the request is refused; ``ctx.outcome`` says so)."""
        assert ctx.caller is not None and ctx.endpoint is not None
        ctx.body = body
        if isinstance(body.get("model"), str):
            ctx.model = body["model"]
        try:
            check_request(ctx.endpoint, body)
        except InvalidRequest as invalid:
            raise self._refused(ctx, errors.bad_request(invalid.message, param=invalid.param,
                                                        code=invalid.code)) from None
        entry = self.catalog.resolve(ctx.model, ctx.caller.organization_id)
        if entry is None and self.reload_on_miss is not None and await self.reload_on_miss():
            entry = self.catalog.resolve(ctx.model, ctx.caller.organization_id)
        if entry is None:
            raise self._refused(ctx, self._not_served(ctx))
        ctx.entry = entry
        if ctx.endpoint.capability not in entry.capabilities:
            raise self._refused(ctx, errors.unsupported_endpoint(entry.name, ctx.endpoint,
                                                                 entry.capabilities))
        try:
            _check_max_tokens(body, entry)
        except InferenceError as error:
            raise self._refused(ctx, error) from None
        # A batch line is answered as one JSON body, whatever it asked (OpenAI's Batch API
        # does not stream); online, "stream" is a checked boolean by now.
        ctx.stream = (ctx.source == ONLINE and body.get("stream") is True
                      and ctx.endpoint.streams)
        try:
            await self.pipelines.get().on_request(ctx)
        except Refusal as refusal:
            raise self._refused(ctx, InferenceError(
                refusal.status, refusal.message, type=refusal.type or error_type(refusal.status),
                param=refusal.param, code=refusal.code, headers=refusal.headers)) from None
        except PolicyFailed as failure:
            ctx.outcome = Outcome.FAILED
            raise errors.policy_failed(failure.policy) from None
        return self._payload(ctx, entry)

    def _not_served(self, ctx: RequestContext) -> InferenceError:
        assert ctx.caller is not None
        if self.catalog.registered(ctx.model, ctx.caller.organization_id):
            return errors.model_not_deployed(ctx.model)
        return errors.model_not_found(ctx.model)

    def _payload(self, ctx: RequestContext, entry: ModelEntry) -> bytes:
        body = ctx.body if isinstance(ctx.body, dict) else {}
        if not ctx.stream and body.get("stream") is not None:
            body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        if ctx.stream:
            options = body.get("stream_options")
            ctx.client_wants_usage = isinstance(options, dict) and \
                options.get("include_usage") is True
            if not ctx.client_wants_usage:
                body = {**body, "stream_options": {**(options if isinstance(options, dict)
                                                      else {}), "include_usage": True}}
        if entry.served_name != entry.name:  # an adapter: its replicas know it by its own
            body = {**body, "model": entry.served_name}
        return orjson.dumps(body)

    @staticmethod
    def _refused(ctx: RequestContext, error: InferenceError) -> InferenceError:
        ctx.outcome = Outcome.REFUSED
        ctx.error_code = error.code
        return error

    # -- non-streamed -----------------------------------------------------------------
    async def complete(self, ctx: RequestContext, payload: bytes,
                       may_retry: MayRetry | None = None) -> Answer:
        """The whole answer, after ``on_response`` stages. Raises ``InferenceError``
        (no replica, every attempt failed, a fail-closed stage broke, a stage refused the
        answer), ``NoReadyReplica`` only when ``may_retry`` is given (a batch waits for a
        replica instead of failing), and ``RetryVetoed``."""
        assert ctx.entry is not None
        sent = time.perf_counter()
        try:
            status, body, content_type = await self.upstream.fetch(ctx, payload, may_retry)
        except NoReadyReplica:
            if may_retry is not None:
                raise
            raise self._failed(ctx, errors.no_replica(ctx.entry.name)) from None
        except UpstreamFailed as failure:
            raise self._failed(ctx, errors.upstream_failed(failure.message,
                                                           timeout=failure.timeout)) from None
        finally:
            ctx.upstream_seconds = time.perf_counter() - sent
        body = ctx.entry.public_body(body)
        ctx.status = status
        ctx.outcome = Outcome.SERVED
        if status == 200:
            body = await self._on_response(ctx, body)
        elif status >= 400:  # every error a client gets is in OpenAI's shape
            body, content_type = errors.from_replica(status, body, ctx), "application/json"
            ctx.error_code = orjson.loads(body)["error"]["code"]
        return Answer(status, body, content_type)

    async def _on_response(self, ctx: RequestContext, body: bytes) -> bytes:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body
        if not isinstance(parsed, dict):
            return body
        _read_usage(ctx, parsed)
        pipeline = self.pipelines.get()
        if not pipeline.rewrites_responses:
            return body
        try:
            rewritten = await pipeline.on_response(ctx, parsed)
        except Refusal as refusal:
            raise self._refused_answer(ctx, refusal) from None
        except PolicyFailed as failure:
            raise self._failed(ctx, errors.policy_failed(failure.policy)) from None
        return orjson.dumps(rewritten)

    @staticmethod
    def _refused_answer(ctx: RequestContext, refusal: Refusal) -> InferenceError:
        """A stage refused an answer the replica gave (its tokens were still spent)."""
        ctx.outcome = Outcome.REFUSED
        ctx.error_code = refusal.code
        return InferenceError(refusal.status, refusal.message,
                              type=refusal.type or error_type(refusal.status),
                              param=refusal.param, code=refusal.code, headers=refusal.headers)

    @staticmethod
    def _failed(ctx: RequestContext, error: InferenceError) -> InferenceError:
        ctx.outcome = Outcome.FAILED
        ctx.error_code = error.code
        return error

    # -- streamed ---------------------------------------------------------------------
    async def open_stream(self, ctx: RequestContext, payload: bytes) -> StreamAnswer:
        """Send a streamed request and read until its first bytes for the client exist.
        A replica that fails before then is retried (nothing reached the client).
        Raises ``InferenceError`` like ``complete``."""
        assert ctx.entry is not None
        entry = ctx.entry
        sent = time.perf_counter()
        tried: set[str] = set()
        pipeline = self.pipelines.get()
        while True:
            try:
                attempt = await self.upstream.send(ctx, payload, tried)
            except NoReadyReplica:
                raise self._failed(ctx, errors.no_replica(entry.name)) from None
            except UpstreamFailed as failure:
                raise self._failed(ctx, errors.upstream_failed(
                    failure.message, timeout=failure.timeout)) from None
            response = attempt.response
            if response.status != 200:  # an error before the stream: passed on whole
                try:
                    body = entry.public_body(await response.read())
                except (aiohttp.ClientError, TimeoutError):
                    attempt.close()
                    if self.upstream.retries_left(ctx):
                        continue
                    raise self._failed(ctx, errors.upstream_failed(
                        "The replica failed before answering.")) from None
                attempt.close()
                ctx.status = response.status
                ctx.outcome = Outcome.SERVED
                ctx.upstream_seconds = time.perf_counter() - sent
                if response.status >= 400:
                    body = errors.from_replica(response.status, body, ctx)
                return StreamAnswer(response.status, body)
            try:
                relay = StreamRelay(ctx, entry.public_body, pipeline.stream_transformers(ctx),
                                    served_name=entry.served_name if entry.served_name !=
                                    entry.name else "", public_name=entry.name)
                first = await self._first_bytes(attempt, relay)
            except (PolicyFailed, TransformerFailed) as failure:
                attempt.close()  # nothing reached the client: it gets a 5xx, never the text
                raise self._failed(ctx, errors.policy_failed(failure.policy)) from None
            except (aiohttp.ClientError, TimeoutError, StreamCut) as exc:
                attempt.close()
                if self.upstream.retries_left(ctx):
                    continue
                timeout = isinstance(exc, TimeoutError)
                raise self._failed(ctx, errors.upstream_failed(
                    "The model did not answer in time." if timeout else
                    f"The replica failed before its first token ({exc.__class__.__name__}).",
                    timeout=timeout)) from None
            except BaseException:
                attempt.close()
                raise
            ctx.status = 200
            ctx.outcome = Outcome.SERVED
            answer = StreamAnswer(200, first, attempt, relay, sent, ctx)
            if relay.saw_done:
                answer.close()
                answer.ended = True
            return answer

    @staticmethod
    async def _first_bytes(attempt: Attempt, relay: StreamRelay) -> bytes:
        async for chunk in attempt.response.content.iter_any():
            out = await relay.feed(chunk)
            if out:
                return out
        return await relay.finish()  # raises StreamCut when the stream was empty

    # -- after ------------------------------------------------------------------------
    async def finish(self, ctx: RequestContext) -> None:
        """Every stage's ``on_finish``, exactly once per request."""
        if ctx.finished:
            return
        if not ctx.outcome:
            ctx.outcome = Outcome.SERVED if ctx.status and ctx.status < 400 else Outcome.FAILED
        if ctx.prompt_tokens == 0 and _prompt_was_processed(ctx):
            await self.tokens.settle(ctx)
        await self.pipelines.get().on_finish(ctx)


def _prompt_was_processed(ctx: RequestContext) -> bool:
    """A replica had the whole request but its usage never came: the client went away
    while it worked, it failed mid-answer, or it answered without usage."""
    if ctx.outcome == Outcome.CLIENT_GONE:
        return ctx.attempts > 0
    if ctx.outcome == Outcome.FAILED:
        return ctx.replica_id is not None and ctx.status in (499, 500, 502, 504)
    return ctx.outcome == Outcome.SERVED and ctx.status == 200


def _read_usage(ctx: RequestContext, body: dict[str, Any]) -> None:
    usage = body.get("usage")
    if isinstance(usage, dict):
        ctx.prompt_tokens = _count(usage.get("prompt_tokens"))
        ctx.completion_tokens = _count(usage.get("completion_tokens"))
        ctx.cached_tokens = cached_tokens(usage, ctx.prompt_tokens)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0



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
