# SPDX-License-Identifier: Apache-2.0
"""Relay an upstream SSE stream to the client event by event, metering it on the way.

The core asks vLLM for a final usage chunk (``stream_options.include_usage``) so every
stream can be metered; if the client did not ask for it, that chunk is removed before
it reaches the client. A stream is complete only when the replica sent ``[DONE]``; one
that ends without it was cut (``StreamCut``).

Two paths: with no stream transformer registered, events pass through as bytes (only
the few that carry usage are parsed); with transformers, each ``data:`` event is parsed
once, handed to the transformers in order, and serialized again. On both, every event
names the model the client asked for, and the usage chunk (when the client asked for it)
is the last event before ``[DONE]``, after whatever the transformers add at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from potluck.inference.context import RequestContext
from potluck.inference.policies import Policy, StreamTransformer

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"


class StreamCut(Exception):
    """The upstream stream ended without ``[DONE]``: the answer is incomplete."""


class TransformerFailed(Exception):
    """A fail-closed stream transformer raised; the stream must stop here."""

    def __init__(self, policy: str, cause: BaseException) -> None:
        super().__init__(f"stream transformer of {policy!r} failed "
                         f"({cause.__class__.__name__})")
        self.policy = policy


def _same(raw: bytes) -> bytes:
    return raw


def error_event(message: str, *, code: str, type: str = "server_error") -> bytes:
    """An OpenAI-shaped error as an SSE event: what a client gets when a stream fails
    after it started (OpenAI's SDKs raise ``APIError`` on an event with ``error``)."""
    return b"data: " + orjson.dumps({"error": {"message": message, "type": type,
                                               "param": None, "code": code}}) + b"\n\n"


class StreamRelay:
    """One stream's relay. ``feed`` each upstream chunk and send what it returns; at the
    upstream's end, ``finish`` returns the rest (it raises ``StreamCut`` when no
    ``[DONE]`` came). Token counts and the first-token time go to ``ctx``."""

    def __init__(self, ctx: RequestContext, rename: Callable[[bytes], bytes] = _same,
                 transformers: Sequence[tuple[Policy, StreamTransformer]] = (),
                 served_name: str = "", public_name: str = "") -> None:
        self.ctx = ctx
        self.rename = rename
        self.transformers = list(transformers)
        self.served_name = served_name
        self.public_name = public_name
        self.buffer = b""
        self.saw_usage = False
        self.saw_done = False
        self.content_events = 0
        self.usage_payload: dict[str, Any] | None = None  # the usage chunk, sent last

    # -- both paths -----------------------------------------------------------------
    async def feed(self, chunk: bytes) -> bytes:
        """Complete events to send now; a partial event waits for the next chunk."""
        self.buffer += chunk
        if b"\n\n" not in self.buffer:
            return b""
        complete, _, self.buffer = self.buffer.rpartition(b"\n\n")
        events = complete.split(b"\n\n")
        if self.transformers:
            return await self._transform(events)
        out = [event for event in events if self._keep_raw(event)]
        if not out:
            return b""
        self._mark_sent(out)
        return self.rename(b"\n\n".join(out) + b"\n\n")

    async def finish(self) -> bytes:
        """What is left to send once the upstream stream ended; raises ``StreamCut`` if
        it ended without ``[DONE]`` (nothing of the rest is sent then)."""
        rest, self.buffer = self.buffer, b""
        if rest.strip():
            tail = await self.feed(rest + b"\n\n")
        else:
            tail = b""
        if not self.saw_done:
            raise StreamCut()
        return tail

    def _mark_sent(self, events: list[bytes]) -> None:
        if self.ctx.first_token_at is None and any(b'"choices":[]' not in e and
                                                    not e.endswith(b"[DONE]") for e in events):
            self.ctx.first_token_at = time.perf_counter()

    # -- the byte path ----------------------------------------------------------------
    def _keep_raw(self, event: bytes) -> bool:
        data = event.removeprefix(b"data: ").removeprefix(b"data:")
        if data is event:
            return True  # a comment or another field: pass it on
        if data.strip() == b"[DONE]":
            self.saw_done = True
            return True
        if b'"usage"' not in data or b'"usage":null' in data:
            self._count_content(data)
            return True
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if self._read_usage(payload) and not payload.get("choices"):
            return self.ctx.client_wants_usage
        self._count_content(data)
        return True

    def _count_content(self, data: bytes) -> None:
        if b'"choices":[]' not in data:
            self._counted()

    def _counted(self) -> None:
        """One content event relayed: until the usage chunk comes (a stream cut short never
        brings it), the completion tokens are the events relayed, one token each."""
        self.content_events += 1
        if not self.saw_usage:
            self.ctx.completion_tokens = self.content_events

    def _read_usage(self, payload: Any) -> bool:
        usage = payload.get("usage") if isinstance(payload, dict) else None
        if not isinstance(usage, dict):
            return False
        self.saw_usage = True
        self.ctx.prompt_tokens = _count(usage.get("prompt_tokens"))
        self.ctx.completion_tokens = _count(usage.get("completion_tokens"))
        self.ctx.cached_tokens = cached_tokens(usage, self.ctx.prompt_tokens)
        return True

    # -- the transformer path ---------------------------------------------------------
    async def _transform(self, events: list[bytes]) -> bytes:
        out: list[bytes] = []
        for event in events:
            data = event.removeprefix(b"data: ").removeprefix(b"data:")
            if data is event:
                out.append(event + b"\n\n")
                continue
            if data.strip() == b"[DONE]":
                self.saw_done = True
                for tail in await self._end_transformers():
                    out.append(self._serialize(tail))
                if self.usage_payload is not None:  # OpenAI's: the last chunk before [DONE]
                    out.append(self._serialize(self.usage_payload))
                    self.usage_payload = None
                out.append(DONE)
                continue
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError:
                out.append(event + b"\n\n")
                continue
            if not isinstance(payload, dict):
                out.append(event + b"\n\n")
                continue
            # Every event the client gets names the model it asked for (an alias's
            # replicas know it by their own name), the usage chunk included.
            if self.served_name and payload.get("model") == self.served_name:
                payload["model"] = self.public_name
            if self._read_usage(payload) and not payload.get("choices"):
                if self.ctx.client_wants_usage:  # held: the transformers may still add text
                    self.usage_payload = payload
                continue
            if payload.get("choices"):
                self._counted()
            for emitted in await self._through(payload, 0):
                out.append(self._serialize(emitted))
        return b"".join(out)

    async def _through(self, event: dict[str, Any], start: int) -> list[dict[str, Any]]:
        """``event`` through transformers ``start``.. in order."""
        pending = [event]
        for index in range(start, len(self.transformers)):
            policy, transformer = self.transformers[index]
            passed: list[dict[str, Any]] = []
            for item in pending:
                try:
                    passed.extend(await transformer.on_event(item))
                except Exception as exc:
                    passed.extend(self._transformer_failed(index, policy, exc, [item]))
            pending = passed
        return pending

    async def _end_transformers(self) -> list[dict[str, Any]]:
        """Each transformer's ``on_end``, its events passed through those after it."""
        out: list[dict[str, Any]] = []
        for index in range(len(self.transformers)):
            policy, transformer = self.transformers[index]
            try:
                tail = await transformer.on_end()
            except Exception as exc:
                tail = self._transformer_failed(index, policy, exc, [])
            for event in tail:
                out.extend(await self._through(event, index + 1))
        return out

    def _transformer_failed(self, index: int, policy: Policy, exc: Exception,
                            passthrough: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if policy.fail_closed:
            raise TransformerFailed(policy.name, exc) from exc
        log.warning(
            "stream transformer of %r failed open (%s); it is bypassed for the rest of %s",
            policy.name, exc.__class__.__name__, self.ctx.request_id, exc_info=exc)
        self.transformers[index] = (policy, StreamTransformer())  # pass-through from now on
        return passthrough

    def _serialize(self, payload: dict[str, Any]) -> bytes:
        if self.ctx.first_token_at is None and payload.get("choices"):
            self.ctx.first_token_at = time.perf_counter()
        return b"data: " + orjson.dumps(payload) + b"\n\n"


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def cached_tokens(usage: dict[str, Any], prompt_tokens: int) -> int:
    """OpenAI's ``usage.prompt_tokens_details.cached_tokens`` (vLLM reports it with
    ``--enable-prompt-tokens-details``), never more than the prompt tokens; else 0."""
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, dict):
        return 0
    return min(_count(details.get("cached_tokens")), prompt_tokens)
