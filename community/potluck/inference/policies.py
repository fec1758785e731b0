# SPDX-License-Identifier: Apache-2.0
"""The policy pipeline: stages every inference request passes through, in a declared order.

A ``Policy`` has four hooks, each optional (the base class's no-op is skipped):

- ``on_request(ctx)``: before a replica is asked. May refuse (raise ``Refusal``, which
  the client gets as an OpenAI error with the policy's status and code) or rewrite
  ``ctx.body``.
- ``on_response(ctx, body)``: a non-streamed answer (the parsed JSON object of a 2xx
  answer); return a rewritten object, or None to keep it. May raise ``Refusal``.
- ``stream_transformer(ctx)``: for a streamed answer, a ``StreamTransformer`` that sees
  its events in order and may hold text back, rewrite it, or add events before
  ``[DONE]``; None to leave the stream alone.
- ``on_finish(ctx)``: always called exactly once per request, whatever happened
  (served, refused by authentication, limits or a policy, upstream failure, client gone),
  with the final status and token counts in ``ctx``.

Order: a lower ``order`` is further out. ``on_request`` runs from the outermost stage
inwards; answers come back the other way (``on_response`` and stream transformers from
the innermost stage outwards), like Django middleware. ``on_finish`` runs in ``order``.

Failure: a stage that raises something other than ``Refusal`` either fails closed
(``fail_closed = True``, the default: the client gets an OpenAI-shaped 5xx and never the
unfiltered answer; a stream already under way ends with an error event and no
``[DONE]``) or open (logged, and the request goes on as if the stage were absent).
Errors in ``on_finish`` are logged; they never stop the other stages' ``on_finish``.

Policies are registered in ``potluck.extensions.request_policies`` (e.g. by the
enterprise edition for a licensed feature); each core reads that registry through its
``PipelineSource``, rebuilt only when the registry changes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from potluck import extensions
from potluck.inference.context import RequestContext

log = logging.getLogger(__name__)


class Refusal(Exception):
    """A stage refuses the request; the client gets it as an OpenAI error object.

    ``status`` (e.g. 403, 429), ``code`` (e.g. ``"budget_exceeded"``), ``param`` (the body
    field at fault, if any), ``type`` (OpenAI's error type; derived from the status when
    None) and extra response ``headers`` (e.g. ``Retry-After``).
    """

    def __init__(self, message: str, *, status: int = 403, code: str = "policy_violation",
                 param: str | None = None, type: str | None = None,
                 headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param
        self.type = type
        self.headers = list(headers)


class PolicyFailed(Exception):
    """A fail-closed stage raised; the request must not go on (the client gets a 5xx)."""

    def __init__(self, policy: str, cause: BaseException) -> None:
        super().__init__(f"policy {policy!r} failed ({cause.__class__.__name__})")
        self.policy = policy
        self.cause = cause


class StreamTransformer:
    """Sees one streamed answer's events (parsed ``data:`` JSON objects) in order.

    ``on_event`` returns the events to send now: ``[event]`` to pass it on, a rewritten
    event, several, or ``[]`` to hold it back. ``on_end`` is called once after the last
    upstream event and returns the events to add before ``[DONE]`` (text held back, a
    disclaimer). Keep what is held back bounded: time to first token waits on it.
    """

    async def on_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        return [event]

    async def on_end(self) -> list[dict[str, Any]]:
        return []


class Policy:
    """A stage of the pipeline; subclass and override the hooks it needs.

    ``name``: unique and stable (it keys ``ctx.state`` and logs). ``order``: its place,
    lower is further out (see the module docstring; the built-in limiter is 100 and the
    usage meter 1000).
    """

    name: str = ""
    order: int = 500
    fail_closed: bool = True

    async def on_request(self, ctx: RequestContext) -> None:
        return None

    async def on_response(self, ctx: RequestContext, body: dict[str, Any]
                          ) -> dict[str, Any] | None:
        return None

    def stream_transformer(self, ctx: RequestContext) -> StreamTransformer | None:
        return None

    async def on_finish(self, ctx: RequestContext) -> None:
        return None


def _overrides(policy: Policy, hook: str) -> bool:
    return getattr(type(policy), hook) is not getattr(Policy, hook)


class Pipeline:
    """An ordered, immutable set of stages; each hook runs only the stages that define it."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        ordered = sorted(policies, key=lambda p: (p.order, p.name))
        self.policies: tuple[Policy, ...] = tuple(ordered)
        self._request = tuple(p for p in ordered if _overrides(p, "on_request"))
        self._response = tuple(reversed([p for p in ordered if _overrides(p, "on_response")]))
        self._stream = tuple(reversed([p for p in ordered
                                       if _overrides(p, "stream_transformer")]))
        self._finish = tuple(p for p in ordered if _overrides(p, "on_finish"))

    @property
    def rewrites_responses(self) -> bool:
        return bool(self._response)

    @property
    def transforms_streams(self) -> bool:
        return bool(self._stream)

    async def on_request(self, ctx: RequestContext) -> None:
        """Raises ``Refusal`` (a stage refused) or ``PolicyFailed`` (a fail-closed stage broke)."""
        for policy in self._request:
            try:
                await policy.on_request(ctx)
            except Refusal:
                raise
            except Exception as exc:
                _failed(policy, "on_request", exc)

    async def on_response(self, ctx: RequestContext, body: dict[str, Any]) -> dict[str, Any]:
        for policy in self._response:
            try:
                rewritten = await policy.on_response(ctx, body)
            except Refusal:
                raise
            except Exception as exc:
                _failed(policy, "on_response", exc)
                continue
            if rewritten is not None:
                body = rewritten
        return body

    def stream_transformers(self, ctx: RequestContext) -> list[tuple[Policy, StreamTransformer]]:
        """The transformers for one stream, innermost first (the order events pass them)."""
        found = []
        for policy in self._stream:
            try:
                transformer = policy.stream_transformer(ctx)
            except Exception as exc:
                _failed(policy, "stream_transformer", exc)
                continue
            if transformer is not None:
                found.append((policy, transformer))
        return found

    async def on_finish(self, ctx: RequestContext) -> None:
        """Every stage's ``on_finish``, once per request (a second call does nothing)."""
        if ctx.finished:
            return
        ctx.finished = True
        for policy in self._finish:
            try:
                await policy.on_finish(ctx)
            except Exception:
                log.exception("policy %r: on_finish failed for %s", policy.name,
                              ctx.request_id)


def _failed(policy: Policy, hook: str, exc: Exception) -> None:
    """A stage raised: fail closed (raise ``PolicyFailed``) or open (log and go on)."""
    if policy.fail_closed:
        log.error("policy %r failed closed in %s (%s)", policy.name, hook,
                  exc.__class__.__name__, exc_info=exc)
        raise PolicyFailed(policy.name, exc) from exc
    log.warning("policy %r failed open in %s (%s)", policy.name, hook,
                exc.__class__.__name__, exc_info=exc)


class PipelineSource:
    """The pipeline a core runs: its own built-in stages plus the registered policies
    (``extensions.request_policies``), rebuilt only when that registry has changed."""

    def __init__(self, builtin: Sequence[Policy] = ()) -> None:
        self.builtin = tuple(builtin)
        self._version = -1
        self._pipeline = Pipeline(self.builtin)

    def get(self) -> Pipeline:
        version = extensions.request_policies.version
        if version != self._version:
            self._pipeline = Pipeline([*self.builtin, *extensions.request_policies])
            self._version = version
        return self._pipeline
