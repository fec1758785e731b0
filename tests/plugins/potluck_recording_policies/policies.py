# SPDX-License-Identifier: Apache-2.0
"""The test plug-in's policies (see the package docstring)."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from potluck import extensions
from potluck.inference.context import RequestContext
from potluck.inference.policies import Policy, Refusal, StreamTransformer
from potluck.inference.text_stream import TextTransformer
from potluck.redis_client import get_redis

FINISHED_KEY = "potluck:test:finished"


def request_text(body: dict[str, Any] | None) -> str:
    if not isinstance(body, dict):
        return ""
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return str(messages[-1].get("content", ""))
    return str(body.get("prompt", ""))


class Recorder(Policy):
    """Outermost: records every on_finish (never fails the request)."""

    name = "test-recorder"
    order = 10
    fail_closed = False

    async def on_finish(self, ctx: RequestContext) -> None:
        get_redis().rpush(FINISHED_KEY, orjson.dumps({
            "request_id": ctx.request_id, "source": ctx.source, "status": ctx.status,
            "outcome": ctx.outcome, "error_code": ctx.error_code, "model": ctx.model,
            "prompt_tokens": ctx.prompt_tokens, "completion_tokens": ctx.completion_tokens,
            "organization_id": ctx.organization_id}))


class Redactor(TextTransformer):
    hold_back = len("secret") - 1

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, Any] | None = None

    def rewrite(self, text: str) -> str:
        return text.replace("secret", "[redacted]")

    async def on_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        if event.get("choices"):
            self.last = event
        return await super().on_event(event)

    async def on_end(self) -> list[dict[str, Any]]:
        out = await super().on_end()
        if self.last is not None:
            notice = copy.deepcopy(self.last)
            field = "delta" if notice.get("object") == "chat.completion.chunk" else "text"
            notice["choices"] = [{"index": 0, "finish_reason": None,
                                  **({"delta": {"content": " [checked]"}} if field == "delta"
                                     else {"text": " [checked]"})}]
            out.append(notice)
        return out


class Exploding(StreamTransformer):
    async def on_event(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        raise RuntimeError("the guard broke")


class Guard(Policy):
    """Fail-closed: refuses, rewrites, checks answers, redacts streams."""

    name = "test-guard"
    order = 200

    async def on_request(self, ctx: RequestContext) -> None:
        text = request_text(ctx.body)
        if "forbidden" in text:
            raise Refusal("This request asks for something forbidden.", status=403,
                          code="test_forbidden", param="messages")
        if "explode-request" in text:
            raise RuntimeError("the guard broke")
        if "rewrite-me" in text and isinstance(ctx.body, dict):
            ctx.body = orjson.loads(orjson.dumps(ctx.body).replace(b"rewrite-me",
                                                                   b"rewritten"))

    async def on_response(self, ctx: RequestContext, body: dict[str, Any]
                          ) -> dict[str, Any] | None:
        text = request_text(ctx.body)
        if "explode-response" in text:
            raise RuntimeError("the guard broke")
        return {**body, "potluck_checked": True} if "check-me" in text else None

    def stream_transformer(self, ctx: RequestContext) -> StreamTransformer | None:
        text = request_text(ctx.body)
        if "explode-stream" in text:
            return Exploding()
        return Redactor() if "transform" in text else None


def install() -> None:
    extensions.request_policies.register("test-recorder", Recorder(), replace=True)
    extensions.request_policies.register("test-guard", Guard(), replace=True)
