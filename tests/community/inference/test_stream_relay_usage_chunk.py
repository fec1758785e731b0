# SPDX-License-Identifier: Apache-2.0
"""The usage chunk through a stream with transformers, as OpenAI sends it: the last event
before ``[DONE]`` (after text a transformer adds at the end), naming the model the client
asked for (an alias's replicas answer with their own name); removed when the client did
not ask for it. Same on the byte path (no transformer)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from potluck.inference.context import ONLINE, RequestContext
from potluck.inference.policies import Policy, StreamTransformer
from potluck.inference.sse import StreamRelay


class HoldAll(StreamTransformer):
    """Holds every event until the end, then adds a line (a worst case the contract allows)."""

    def __init__(self) -> None:
        self.held: list[dict[str, Any]] = []

    async def on_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        self.held.append(event)
        return []

    async def on_end(self) -> list[dict[str, Any]]:
        note = {"id": "c", "object": "chat.completion.chunk", "model": "alias",
                "choices": [{"index": 0, "delta": {"content": " (checked)"},
                             "finish_reason": None}]}
        return [*self.held, note]


class Holder(Policy):
    name = "hold-all"


def upstream_bytes() -> bytes:
    events = [{"id": "c", "object": "chat.completion.chunk", "model": "served",
               "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]},
              {"id": "c", "object": "chat.completion.chunk", "model": "served",
               "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1,
                                        "total_tokens": 6}}]
    return b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + \
        b"data: [DONE]\n\n"


def relay(*, wants_usage: bool, transformers: bool) -> tuple[list[Any], RequestContext]:
    ctx = RequestContext(request_id="req_1", source=ONLINE, endpoint=None, body={})
    ctx.client_wants_usage = wants_usage

    def rename(raw: bytes) -> bytes:
        return raw.replace(b'"model":"served"', b'"model":"alias"')

    relay = StreamRelay(ctx, rename, [(Holder(), HoldAll())] if transformers else [],
                        served_name="served", public_name="alias")

    async def go() -> bytes:
        return await relay.feed(upstream_bytes()) + await relay.finish()

    sent = asyncio.run(go())
    events = [e.removeprefix(b"data: ") for e in sent.split(b"\n\n") if e]
    return [e.decode() if e == b"[DONE]" else orjson.loads(e) for e in events], ctx


def test_the_usage_chunk_is_last_and_names_the_alias():
    for transformers in (True, False):
        events, ctx = relay(wants_usage=True, transformers=transformers)
        assert events[-1] == "[DONE]"
        usage = events[-2]
        assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 6, transformers
        assert all(e["model"] == "alias" for e in events[:-1]), (transformers, events)
        assert (ctx.prompt_tokens, ctx.completion_tokens) == (5, 1)
    events, _ = relay(wants_usage=True, transformers=True)
    assert [e["choices"][0]["delta"]["content"] for e in events[:-2]] == ["hi", " (checked)"]


def test_the_usage_chunk_is_removed_when_not_asked_for():
    for transformers in (True, False):
        events, ctx = relay(wants_usage=False, transformers=transformers)
        assert events[-1] == "[DONE]"
        assert all(e.get("choices") for e in events[:-1]), (transformers, events)
        assert (ctx.prompt_tokens, ctx.completion_tokens) == (5, 1)
