# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""Budgets in the gateway: the ``billing-budgets`` stage of the policy pipeline.

**The check costs no I/O.** ``on_request`` compares in memory: each process keeps a view
(``BudgetView``) of every budget and its balance, rebuilt about once a second by the
refresher ``billing-budgets`` (which gateway workers and batch runs call every second on
their database thread). The refresher first pushes the spend this process estimated for
its finished requests to Redis (``spend.add_pending``), then reads pending spend (Redis)
and the ledger's counters (PostgreSQL). So a balance is at most about two seconds
behind the requests other processes finished, and never behind this process's own.

**Balance** of a budget = ledger + pending + this process's not-yet-pushed spend + what
this process's requests in flight have reserved (``max_tokens`` x the output price).

**Refusals** (OpenAI's shape, 429, ``code: "budget_exceeded"``, naming the budget and its
reset, ``Retry-After`` until then): when a hard limit's balance has reached it, or when
``max_tokens`` (or ``max_completion_tokens``) alone would cost more than what is left.
An organization whose payment grace ran out is refused with ``insufficient_quota``.

**Overshoot bound** (how far spend can pass a hard limit H). Requests admitted while the
balance was under H can finish after it passes it. With N processes serving a budget:

    spend <= H + (prompt cost of the requests in flight when H is reached)
              + (output cost of requests in flight that gave no max_tokens)
              + (what the other N - 1 processes' requests finished in the last ~2 s
                 cost: one refresh + one push behind)

With one process and every request giving ``max_tokens``, the bound is the prompt cost of
the requests in flight: each admitted request reserved its maximum output. Tested in
tests/enterprise/billing/test_budgets_in_the_gateway.py.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from django.utils import timezone

from potluck.inference.context import Outcome, RequestContext
from potluck.inference.policies import Policy, Refusal
from potluck_enterprise.billing import money, spend
from potluck_enterprise.billing.models import BillingAccount, Budget, Period
from potluck_enterprise.billing.payments import BLOCKED, payment_state
from potluck_enterprise.billing.pricebook import BOOK, PriceBook, price_usage

log = logging.getLogger(__name__)

POLICY_NAME = "billing-budgets"
ORDER = 200  # inside the rate limiter (100): a request refused for its rate costs nothing


@dataclass(frozen=True)
class HardLimit:
    budget_id: str
    description: str
    key: spend.ScopeKey
    limit_nano: int
    resets_at: datetime


@dataclass
class BudgetView:
    """What one refresh knew: hard limits per organization and per key, the balance
    (ledger + pending, in billionths) of each scope-period, blocked organizations."""

    by_org: dict[str, list[HardLimit]] = field(default_factory=dict)
    by_key: dict[str, list[HardLimit]] = field(default_factory=dict)
    tracked: set[str] = field(default_factory=set)  # org and key ids with any budget
    balance: dict[spend.ScopeKey, int] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)
    book: PriceBook | None = None
    day: object = None
    month: object = None


class BudgetState:
    """This process's view and its local spend (see the module docstring)."""

    def __init__(self) -> None:
        self.view = BudgetView()
        self._lock = threading.Lock()
        self.local: dict[spend.ScopeKey, int] = {}  # finished, not pushed yet
        self.reserved: dict[spend.ScopeKey, int] = {}  # in flight
        self.unpushed: list[spend.PendingEntry] = []
        self.redis_ok = True

    # -- the refresher (database thread) ----------------------------------------------
    def refresh(self) -> None:
        now = timezone.now()
        with self._lock:
            batch, self.unpushed = self.unpushed, []
        pushed: list[spend.PendingEntry] = []
        try:
            spend.add_pending(batch)
            pushed = batch
            self._redis_back()
        except Exception as exc:
            self._redis_lost(exc)
            with self._lock:
                self.unpushed = batch + self.unpushed
        view = self._load(now)
        with self._lock:
            for entry in pushed:
                left = self.local.get(entry.key, 0) - entry.nano
                if left > 0:
                    self.local[entry.key] = left
                else:
                    self.local.pop(entry.key, None)
            self.view = view

    def _redis_lost(self, exc: BaseException) -> None:
        if self.redis_ok:
            log.warning("billing budgets: Redis unreachable (%s); balances count this "
                        "process's spend and the ledger only", exc.__class__.__name__)
        self.redis_ok = False

    def _redis_back(self) -> None:
        if not self.redis_ok:
            log.info("billing budgets: Redis answers again")
        self.redis_ok = True

    def _load(self, now: datetime) -> BudgetView:
        view = BudgetView(book=BOOK.refresh())
        day, month = (spend.period_start(Period.DAY, now), spend.period_start(Period.MONTH, now))
        view.day, view.month = day, month
        keys = []
        for b in Budget.objects.select_related("organization", "api_key"):
            org = str(b.organization_id)
            view.tracked.add(str(b.api_key_id) if b.api_key_id else org)
            if b.hard_limit is None:
                continue
            start = day if b.period == Period.DAY else month
            key = spend.ScopeKey(b.scope, org, str(b.api_key_id) if b.api_key_id else None,
                                 b.period, start)
            from potluck_enterprise.billing.budgets import describe

            limit = HardLimit(str(b.pk), describe(b), key, money.to_nano_ceiling(b.hard_limit),
                              spend.period_end(b.period, start))
            (view.by_key.setdefault(key.api_key_id, []) if b.api_key_id else
             view.by_org.setdefault(org, [])).append(limit)
            keys.append(key)
        pending: dict[spend.ScopeKey, int] = {}
        if keys and self.redis_ok:
            try:
                pending = spend.pending_nano(keys)  # pending first, then the ledger
            except Exception as exc:
                self._redis_lost(exc)
        ledger = spend.ledger(keys)
        view.balance = {k: money.to_nano_ceiling(ledger[k]) + pending.get(k, 0) for k in keys}
        for account in BillingAccount.objects.filter(payment_failed_at__isnull=False):
            state = payment_state(account, now)
            if state.state == BLOCKED:
                view.blocked[str(account.organization_id)] = state.message
        return view

    # -- the request path (event loop) -------------------------------------------------
    def limits_for(self, ctx: RequestContext) -> list[HardLimit]:
        view = self.view
        org, key = ctx.organization_id or "", ctx.api_key_id
        found = list(view.by_org.get(org, ()))
        if key:
            found += view.by_key.get(key, ())
        return found

    def spent(self, key: spend.ScopeKey) -> int:
        return (self.view.balance.get(key, 0) + self.local.get(key, 0)
                + self.reserved.get(key, 0))

    def reserve(self, keys: list[spend.ScopeKey], nano: int) -> None:
        if nano <= 0:
            return
        with self._lock:
            for k in keys:
                self.reserved[k] = self.reserved.get(k, 0) + nano

    def release(self, keys: list[spend.ScopeKey], nano: int) -> None:
        if nano <= 0:
            return
        with self._lock:
            for k in keys:
                left = self.reserved.get(k, 0) - nano
                if left > 0:
                    self.reserved[k] = left
                else:
                    self.reserved.pop(k, None)

    def record(self, ctx: RequestContext, nano: int) -> None:
        """Count a finished request's estimated cost here and, at the next refresh, in
        Redis (for each of its scope-periods that has a budget)."""
        view = self.view
        org, key = ctx.organization_id or "", ctx.api_key_id
        if nano <= 0 or not (org in view.tracked or (key and key in view.tracked)):
            return
        moment = datetime.fromtimestamp(ctx.created_at, tz=UTC)
        entries = [spend.PendingEntry(k, ctx.request_id, nano, ctx.created_at)
                   for k in spend.scope_keys(org, key, moment)]
        with self._lock:
            for e in entries:
                self.local[e.key] = self.local.get(e.key, 0) + nano
            self.unpushed += entries


STATE = BudgetState()


def _max_output(ctx: RequestContext) -> int:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    for param in ("max_completion_tokens", "max_tokens"):
        value = body.get(param)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return 0


def _param(ctx: RequestContext) -> str:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    return "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"


def estimate_nano(book: PriceBook | None, ctx: RequestContext, *, prompt: int, cached: int,
                  completion: int, requests: int) -> int:
    """The cost of this usage as pricing will compute it, in billionths (rounded up)."""
    if book is None or ctx.caller is None:
        return 0
    moment = datetime.fromtimestamp(ctx.created_at, tz=UTC)
    drafts = price_usage(book, ctx.caller.organization_id, ctx.model, moment,
                         prompt_tokens=prompt, cached_tokens=cached,
                         completion_tokens=completion, requests=requests)
    return money.to_nano_ceiling(sum((d.amount for d in drafts), Decimal(0)))


class BudgetPolicy(Policy):
    """The stage (see the module docstring)."""

    name = POLICY_NAME
    order = ORDER

    def __init__(self, state: BudgetState | None = None) -> None:
        self.state = state or STATE

    async def on_request(self, ctx: RequestContext) -> None:
        state = self.state
        org = ctx.organization_id
        if org is None:
            return
        blocked = state.view.blocked.get(org)
        if blocked is not None:
            raise Refusal(blocked, status=429, code="insufficient_quota",
                          type="insufficient_quota")
        limits = state.limits_for(ctx)
        if not limits:
            return
        max_output = _max_output(ctx)
        reserve = estimate_nano(state.view.book, ctx, prompt=0, cached=0,
                                completion=max_output, requests=0) if max_output else 0
        for limit in limits:
            left = limit.limit_nano - state.spent(limit.key)
            if left <= 0:
                raise _exceeded(limit, "has been reached")
            if reserve > left:
                raise _exceeded(limit, f"has {money.display(money.from_nano(left))} "
                                f"{money.currency()} left, less than {_param(ctx)} alone "
                                f"could cost ({money.display(money.from_nano(reserve))})",
                                param=_param(ctx))
        keys = [limit.key for limit in limits]
        state.reserve(keys, reserve)
        ctx.state[POLICY_NAME] = (keys, reserve)

    async def on_finish(self, ctx: RequestContext) -> None:
        held = ctx.state.get(POLICY_NAME)
        if held is not None:
            self.state.release(*held)
        if ctx.caller is None or ctx.outcome == Outcome.DEFERRED or not (
                ctx.prompt_tokens or ctx.completion_tokens or ctx.status):
            return
        view = self.state.view
        org, key = ctx.organization_id or "", ctx.api_key_id
        if not (org in view.tracked or (key and key in view.tracked)):
            return
        nano = estimate_nano(view.book, ctx, prompt=ctx.prompt_tokens,
                             cached=ctx.cached_tokens, completion=ctx.completion_tokens,
                             requests=1 if 0 < (ctx.status or 500) < 400 else 0)
        self.state.record(ctx, nano)


def _exceeded(limit: HardLimit, what: str, param: str | None = None) -> Refusal:
    seconds = max(1, int((limit.resets_at - timezone.now()).total_seconds()))
    return Refusal(
        f"Budget exceeded: {limit.description} {what}. It resets at "
        f"{limit.resets_at.isoformat()}.", status=429, code="budget_exceeded",
        type="insufficient_quota", param=param,
        headers=[(b"retry-after", str(seconds).encode()),
                 (b"x-potluck-budget-id", limit.budget_id.encode()),
                 (b"x-potluck-budget-resets-at", limit.resets_at.isoformat().encode())])


def refresh() -> None:
    """The refresher: push this process's spend, reload the view. Never raises."""
    try:
        STATE.refresh()
    except Exception:
        log.exception("billing budgets: refresh failed; the last view stays")

