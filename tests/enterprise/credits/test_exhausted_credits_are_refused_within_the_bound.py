# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The ``credits`` policy stage refuses an organization whose credits are exhausted and
that has no other way to pay, in OpenAI's shape (429, ``insufficient_credits``), and the
wallet goes below zero by no more than the stated bound: with one process and every
request giving max_tokens, the prompt cost of the requests in flight. Usage really goes
through the usage log, billing's pricing and the credit payer between waves, as in a
running installation; an organization linked to Stripe is never refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from potluck.accounts import services as accounts
from potluck.inference.context import Caller, Outcome, RequestContext
from potluck.inference.policies import Refusal
from potluck.protocol.endpoints import CHAT
from potluck.usage import services as usage
from potluck.usage.stream import UsageEvent
from potluck_enterprise.billing import pricebook, stripe_link
from potluck_enterprise.credits import ledger, services
from potluck_enterprise.credits.policy import CreditPolicy, CreditState

# 1 credit = 0.001 USD: input 1 credit/token, output 2 credits/token, 1 credit a request.
BOOK = {"effective_from": "2020-01-01T00:00:00Z", "currency": "USD",
        "models": {"m": {"input": "1000", "output": "2000", "request_fee": "0.001"}}}
PROMPT, COMPLETION, MAX_TOKENS, IN_FLIGHT = 7, 3, 5, 8
PROMPT_COST = PROMPT * 1 + 1  # what admission cannot reserve: input and the request fee
START = 100


def price_all() -> None:
    from potluck.usage.consumers import Outcome as Fed
    from potluck.usage.consumers import feed
    from potluck_enterprise.billing.pricing import PricingConsumer

    while feed(PricingConsumer()).outcome == Fed.CONSUMED:
        pass


async def request(policy: CreditPolicy, org, served: list[UsageEvent]) -> Refusal | None:
    ctx = RequestContext(request_id="req_" + uuid.uuid4().hex, source="online",
                         endpoint=CHAT, caller=Caller(str(org.pk), None),
                         model="m", body={"model": "m", "max_tokens": MAX_TOKENS})
    try:
        await policy.on_request(ctx)
    except Refusal as refusal:
        return refusal
    await asyncio.sleep(0.01)  # the replica works; the others are in flight meanwhile
    ctx.prompt_tokens, ctx.completion_tokens, ctx.status = PROMPT, COMPLETION, 200
    ctx.outcome = Outcome.SERVED
    await policy.on_finish(ctx)
    served.append(UsageEvent(
        request_id=ctx.request_id, organization_id=str(org.pk), api_key_id=None, model="m",
        endpoint="chat.completions", status=200, stream=False, prompt_tokens=PROMPT,
        completion_tokens=COMPLETION, latency_ms=10.0, ttft_ms=None, replica_id=None,
        created_at=datetime.now(UTC).timestamp()))
    return None


def test_exhausted_credits_are_refused_and_the_overshoot_stays_within_the_bound(
        transactional_db, credits_on):
    credits_on()
    pricebook.create_version(BOOK)
    org = accounts.create_organization("Contributor Org")
    services.give_organization(org, START, reference="start")
    state = CreditState()
    policy = CreditPolicy(state)
    refusals: list[Refusal] = []
    for _wave in range(20):
        state.refresh()
        served: list[UsageEvent] = []

        async def wave(served: list[UsageEvent]) -> list[Refusal | None]:
            return await asyncio.gather(*(request(policy, org, served)
                                          for _ in range(IN_FLIGHT)))

        refusals += [r for r in asyncio.run(wave(served)) if r is not None]
        usage.record_events(served)
        price_all()
        if not served:
            break
    assert refusals, "never refused"
    refusal = refusals[-1]
    assert (refusal.status, refusal.code, refusal.type) == (429, "insufficient_credits",
                                                            "insufficient_quota")
    balance = ledger.balance(ledger.org_wallet(org.pk))
    assert balance <= 0
    assert -balance <= IN_FLIGHT * PROMPT_COST, (balance, IN_FLIGHT * PROMPT_COST)
    # Once refused it stays refused; nothing more is spent.
    state.refresh()
    with pytest.raises(Refusal):
        asyncio.run(policy.on_request(RequestContext(
            request_id="req_x", source="online", endpoint=None,
            caller=Caller(str(org.pk), None), model="m", body={"model": "m"})))
    # A max_tokens that alone costs more than is left is refused up front, naming it.
    services.give_organization(org, 50 - balance, reference="topup")
    state.refresh()
    with pytest.raises(Refusal) as big:
        asyncio.run(policy.on_request(RequestContext(
            request_id="req_y", source="online", endpoint=None,
            caller=Caller(str(org.pk), None), model="m",
            body={"model": "m", "max_tokens": 1000})))
    assert big.value.param == "max_tokens"


def test_orgs_with_another_way_to_pay_or_no_wallet_pass(transactional_db, credits_on):
    credits_on()
    pricebook.create_version(BOOK)
    linked = accounts.create_organization("Linked")
    stripe_link.link(linked)
    services.give_organization(linked, 1, reference="l")
    plain = accounts.create_organization("Plain")
    state = CreditState()
    policy = CreditPolicy(state)
    state.refresh()
    for org in (linked, plain):
        ctx = RequestContext(request_id="req_" + uuid.uuid4().hex, source="online",
                             endpoint=None, caller=Caller(str(org.pk), None), model="m",
                             body={"model": "m", "max_tokens": 10_000})
        asyncio.run(policy.on_request(ctx))  # not refused
