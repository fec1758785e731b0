# SPDX-License-Identifier: Apache-2.0
"""The pipeline's own rules, in-process: order, what runs for each hook, failing closed
or open, on_finish once even when a stage breaks."""

from __future__ import annotations

import asyncio

import pytest

from potluck import extensions
from potluck.inference.context import ONLINE, RequestContext
from potluck.inference.policies import Pipeline, PipelineSource, Policy, PolicyFailed, Refusal


class Stage(Policy):
    def __init__(self, name: str, order: int, calls: list[str], *, fail_closed: bool = True,
                 breaks: str = "") -> None:
        self.name, self.order, self.calls = name, order, calls
        self.fail_closed, self.breaks = fail_closed, breaks

    async def on_request(self, ctx: RequestContext) -> None:
        self.calls.append(f"{self.name}.request")
        if self.breaks == "request":
            raise RuntimeError("broken")
        ctx.body = {**(ctx.body or {}), "seen": [*(ctx.body or {}).get("seen", []), self.name]}

    async def on_response(self, ctx: RequestContext, body: dict) -> dict:
        self.calls.append(f"{self.name}.response")
        if self.breaks == "response":
            raise RuntimeError("broken")
        return {**body, "by": [*body.get("by", []), self.name]}

    async def on_finish(self, ctx: RequestContext) -> None:
        self.calls.append(f"{self.name}.finish")
        if self.breaks == "finish":
            raise RuntimeError("broken")


def context() -> RequestContext:
    return RequestContext(request_id="req_1", source=ONLINE, endpoint=None, body={})


def run(coro):
    return asyncio.run(coro)


def test_requests_go_in_by_order_and_answers_come_back_out():
    calls: list[str] = []
    pipeline = Pipeline([Stage("inner", 300, calls), Stage("outer", 10, calls),
                         Stage("middle", 100, calls)])
    ctx = context()
    run(pipeline.on_request(ctx))
    assert ctx.body["seen"] == ["outer", "middle", "inner"]
    assert run(pipeline.on_response(ctx, {}))["by"] == ["inner", "middle", "outer"]
    run(pipeline.on_finish(ctx))
    run(pipeline.on_finish(ctx))  # a second call does nothing
    assert [c for c in calls if c.endswith("finish")] == [
        "outer.finish", "middle.finish", "inner.finish"]


def test_a_stage_without_a_hook_is_not_called_for_it():
    class OnlyFinish(Policy):
        name = "only-finish"

        async def on_finish(self, ctx: RequestContext) -> None:
            pass

    pipeline = Pipeline([OnlyFinish()])
    assert not pipeline.rewrites_responses and not pipeline.transforms_streams
    assert pipeline._request == () and len(pipeline._finish) == 1


def test_fail_closed_stops_the_request_and_fail_open_goes_on():
    calls: list[str] = []
    closed = Pipeline([Stage("guard", 10, calls, breaks="request"), Stage("next", 20, calls)])
    with pytest.raises(PolicyFailed) as failed:
        run(closed.on_request(context()))
    assert failed.value.policy == "guard" and "next.request" not in calls

    calls.clear()
    opened = Pipeline([Stage("lenient", 10, calls, fail_closed=False, breaks="request"),
                       Stage("next", 20, calls)])
    ctx = context()
    run(opened.on_request(ctx))
    assert calls == ["lenient.request", "next.request"] and ctx.body["seen"] == ["next"]


def test_a_refusal_is_not_a_failure_even_when_failing_open():
    class Refuser(Policy):
        name, fail_closed = "refuser", False

        async def on_request(self, ctx: RequestContext) -> None:
            raise Refusal("no", status=429, code="budget_exceeded")

    with pytest.raises(Refusal) as refused:
        run(Pipeline([Refuser()]).on_request(context()))
    assert (refused.value.status, refused.value.code) == (429, "budget_exceeded")


def test_every_on_finish_runs_even_when_one_breaks():
    calls: list[str] = []
    pipeline = Pipeline([Stage("a", 10, calls, breaks="finish"), Stage("b", 20, calls)])
    ctx = context()
    run(pipeline.on_finish(ctx))
    assert calls == ["a.finish", "b.finish"] and ctx.finished


def test_the_source_rebuilds_only_when_the_registry_changes():
    calls: list[str] = []
    builtin = Stage("builtin", 1000, calls)
    source = PipelineSource([builtin])
    first = source.get()
    assert source.get() is first
    extensions.request_policies.register("extra", Stage("extra", 10, calls))
    try:
        second = source.get()
        assert second is not first and [p.name for p in second.policies] == ["extra",
                                                                             "builtin"]
    finally:
        extensions.request_policies.unregister("extra")
    assert [p.name for p in source.get().policies] == ["builtin"]
