# SPDX-License-Identifier: Apache-2.0
"""The usage meter: the pipeline stage that turns every finished request into one usage
record (appended to the usage stream; the roll-up writes it to Postgres exactly once).

It runs last (``order`` 1000): by ``on_finish`` the context holds the final status and
the tokens the replica reported. A request refused before its organization is known
(a bad API key), and a batch line put back for a later run, leave no record.
"""

from __future__ import annotations

from typing import Protocol

from potluck.inference.context import Outcome, RequestContext
from potluck.inference.policies import Policy
from potluck.usage.stream import MAX_MODEL, UsageEvent


class UsageRecorder(Protocol):
    """Where usage events go (``potluck.inference.usage_writer.UsageJournal``)."""

    async def record(self, event: UsageEvent) -> None: ...


def usage_event(ctx: RequestContext) -> UsageEvent | None:
    """The usage event of a finished request, or None when it leaves no record."""
    if ctx.caller is None or ctx.endpoint is None or ctx.outcome == Outcome.DEFERRED:
        return None
    model = ctx.model if 0 < len(ctx.model) <= MAX_MODEL and "\x00" not in ctx.model else "-"
    return UsageEvent(
        request_id=ctx.request_id, organization_id=ctx.caller.organization_id,
        api_key_id=ctx.caller.api_key_id, model=model, endpoint=ctx.endpoint.name,
        status=ctx.status or 500, stream=ctx.stream, prompt_tokens=ctx.prompt_tokens,
        completion_tokens=ctx.completion_tokens, latency_ms=ctx.latency_ms,
        ttft_ms=ctx.ttft_ms, replica_id=ctx.replica_id, created_at=ctx.created_at,
        cached_tokens=ctx.cached_tokens)


class UsageMeter(Policy):
    """Records one usage event per finished request (see the module docstring)."""

    name = "usage-meter"
    order = 1000

    def __init__(self, recorder: UsageRecorder) -> None:
        self.recorder = recorder

    async def on_finish(self, ctx: RequestContext) -> None:
        event = usage_event(ctx)
        if event is not None:
            await self.recorder.record(event)
