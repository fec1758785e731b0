# SPDX-License-Identifier: Apache-2.0
"""Three policies that change nothing, so the bench measures the pipeline's own cost.

- ``NoopRequest``: an ``on_request`` that looks at the request and keeps it.
- ``NoopResponse``: an ``on_response`` that looks at a non-streamed answer and keeps it.
- ``NoopStream``: a stream transformer: every SSE event passes through as it came, and
  nothing is added before ``[DONE]`` (it makes the core parse and re-serialize each
  event, which is what a real transformer costs).
"""

from __future__ import annotations

from typing import Any

from potluck.inference.context import RequestContext
from potluck.inference.policies import Policy, StreamTransformer


class NoopRequest(Policy):
    name = "bench-noop-request"
    order = 300

    async def on_request(self, ctx: RequestContext) -> None:
        return None


class NoopResponse(Policy):
    name = "bench-noop-response"
    order = 310

    async def on_response(self, ctx: RequestContext, body: dict[str, Any]
                          ) -> dict[str, Any] | None:
        return None


class PassThrough(StreamTransformer):
    """Events in, the same events out, in order (no hold-back, nothing added)."""


class NoopStream(Policy):
    name = "bench-noop-stream"
    order = 320

    def stream_transformer(self, ctx: RequestContext) -> StreamTransformer | None:
        return PassThrough()


def all_policies() -> list[tuple[str, Policy]]:
    return [(p.name, p) for p in (NoopRequest(), NoopResponse(), NoopStream())]
