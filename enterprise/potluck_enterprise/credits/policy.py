# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Credit balances in the gateway: the ``credits`` stage of the policy pipeline.

It concerns only organizations that spend credits and have **no other way to pay**
(a wallet, and no billing account linked to Stripe): the gateway refuses their new
requests once their credits are exhausted, with OpenAI's shape: 429,
``type: "insufficient_quota"``, ``code: "insufficient_credits"``. Every other
organization passes untouched.

**No I/O on the request path.** Each process keeps a view (``CreditView``) of those
organizations' wallet balances, rebuilt about once a second by the refresher
``credits``. A request is admitted while

    balance - (this process's finished requests not yet debited)
            - (this process's requests in flight: max_tokens x the output list price)  > 0

and, when it gives ``max_tokens`` (or ``max_completion_tokens``), only if that reserve
alone fits in what is left. Finished requests are estimated at list price
(``billing.pricebook``) and forgotten once their usage is priced (the refresher reads
which of them have priced lines before it reads balances, so none is counted zero
times).

**Overshoot bound** (how far below zero the wallet can go; the payer debits it all,
see ``spending``). With N processes serving an organization:

    overshoot <= (prompt cost of this process's requests in flight when the balance ran
                  out) + (output cost of those that gave no max_tokens)
                 + (what the other N - 1 processes' requests cost that finished within
                    one pricing delay before their refresh saw the balance: the usage
                    roll-up and pricing run every 2 s, so about 5 s of their spend)

With one process and every request giving ``max_tokens``, the bound is the prompt
cost (input tokens and request fee, at list price) of the requests in flight: each
admitted request reserved its whole output. Tested in
tests/enterprise/credits/test_exhausted_credits_are_refused_within_the_bound.py.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from potluck.inference.context import Outcome, RequestContext
from potluck.inference.policies import Policy, Refusal
from potluck_enterprise.billing.models import BillingAccount, PricedLine
from potluck_enterprise.billing.pricebook import BOOK, PriceBook, price_usage
from potluck_enterprise.credits import units
from potluck_enterprise.credits.models import LedgerAccount

log = logging.getLogger(__name__)

POLICY_NAME = "credits"
ORDER = 210  # after billing's budgets (200)
NANO = 10**9  # the view counts credits in billionths
LOCAL_MAX_AGE_SECONDS = 600


@dataclass
class CreditView:
    """What one refresh knew: balances (billionths of a credit) of the organizations
    that spend credits and have no other way to pay."""

    balance: dict[str, int] = field(default_factory=dict)
    book: PriceBook | None = None


class CreditState:
    """This process's view, its finished-not-debited requests and its reservations."""

    def __init__(self) -> None:
        self.view = CreditView()
        self._lock = threading.Lock()
        # request id -> (org, nano, when): finished, not yet seen priced
        self.local: dict[str, tuple[str, int, float]] = {}
        self.reserved: dict[str, int] = {}  # org -> nano in flight

    def refresh(self) -> None:
        with self._lock:
            ids = list(self.local)
        priced = set(PricedLine.objects.filter(usage_id__in=ids).values_list(
            "usage_id", flat=True).distinct()) if ids else set()
        linked = {str(o) for o in BillingAccount.objects.values_list("organization_id",
                                                                     flat=True)}
        balances = {str(org): bal * NANO for org, bal in LedgerAccount.objects.filter(
            organization__isnull=False).values_list("organization_id", "balance")
            if str(org) not in linked}
        view = CreditView(balance=balances, book=BOOK.refresh())
        with self._lock:
            for request_id in priced:
                self.local.pop(request_id, None)
            # A record never priced (lost with its organization) is not held forever.
            cutoff = time.time() - LOCAL_MAX_AGE_SECONDS
            for request_id in [r for r, (_, _, at) in self.local.items() if at < cutoff]:
                self.local.pop(request_id, None)
            self.view = view

    def available(self, org: str) -> int | None:
        held = self.view.balance.get(org)
        if held is None:
            return None
        spent = sum(n for o, n, _ in list(self.local.values()) if o == org)
        return held - spent - self.reserved.get(org, 0)

    def reserve(self, org: str, nano: int) -> None:
        if nano > 0:
            with self._lock:
                self.reserved[org] = self.reserved.get(org, 0) + nano

    def release(self, org: str, nano: int) -> None:
        if nano > 0:
            with self._lock:
                left = self.reserved.get(org, 0) - nano
                if left > 0:
                    self.reserved[org] = left
                else:
                    self.reserved.pop(org, None)

    def record(self, request_id: str, org: str, nano: int) -> None:
        if nano > 0:
            with self._lock:
                self.local[request_id] = (org, nano, time.time())


STATE = CreditState()


def cost_nano(book: PriceBook | None, ctx: RequestContext, *, prompt: int, cached: int,
              completion: int, requests: int) -> int:
    """Usage at list price, in billionths of a credit (rounded up)."""
    if book is None or ctx.caller is None:
        return 0
    moment = datetime.fromtimestamp(ctx.created_at, tz=UTC)
    drafts = price_usage(book, ctx.caller.organization_id, ctx.model, moment,
                         prompt_tokens=prompt, cached_tokens=cached,
                         completion_tokens=completion, requests=requests)
    total = units.credits_for(sum((d.list_amount for d in drafts), Decimal(0)))
    return -int(-(total * NANO) // 1)


def _max_output(ctx: RequestContext) -> tuple[str, int]:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    for param in ("max_completion_tokens", "max_tokens"):
        value = body.get(param)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return param, value
    return "max_tokens", 0


def _refusal(message: str, param: str | None = None) -> Refusal:
    return Refusal(message, status=429, code="insufficient_credits",
                   type="insufficient_quota", param=param)


class CreditPolicy(Policy):
    """The stage (see the module docstring)."""

    name = POLICY_NAME
    order = ORDER

    def __init__(self, state: CreditState | None = None) -> None:
        self.state = state or STATE

    async def on_request(self, ctx: RequestContext) -> None:
        org = ctx.organization_id
        if org is None:
            return
        left = self.state.available(org)
        if left is None:
            return
        if left <= 0:
            raise _refusal("Your organization's credits are exhausted and it has no other "
                           "way to pay. Earn credits by contributing merged patches, or "
                           "ask an operator to link the organization to billing.")
        param, max_output = _max_output(ctx)
        reserve = cost_nano(self.state.view.book, ctx, prompt=0, cached=0,
                            completion=max_output, requests=0) if max_output else 0
        if reserve > left:
            raise _refusal(f"Your organization has {left / NANO:.3f} credits left, less than "
                           f"{param} alone could cost ({reserve / NANO:.3f}).", param=param)
        self.state.reserve(org, reserve)
        ctx.state[POLICY_NAME] = (org, reserve)

    async def on_finish(self, ctx: RequestContext) -> None:
        held = ctx.state.get(POLICY_NAME)
        if held is None:
            return
        org, reserve = held
        if ctx.caller is not None and ctx.outcome != Outcome.DEFERRED and (
                ctx.prompt_tokens or ctx.completion_tokens):
            nano = cost_nano(self.state.view.book, ctx, prompt=ctx.prompt_tokens,
                             cached=ctx.cached_tokens, completion=ctx.completion_tokens,
                             requests=1 if 0 < (ctx.status or 500) < 400 else 0)
            self.state.record(ctx.request_id, org, nano)
        self.state.release(org, reserve)


def refresh() -> None:
    """The refresher: reload balances, forget requests already priced. Never raises."""
    try:
        STATE.refresh()
    except Exception:
        log.exception("credits: refresh failed; the last view stays")
