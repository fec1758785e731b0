# SPDX-License-Identifier: LicenseRef-Potluck-Enterprise
"""The pricing consumer: every committed usage record becomes priced lines, exactly once.

``PricingConsumer`` is a durable usage consumer (``potluck.usage.consumers``): its
``consume`` runs inside the transaction that advances its cursor, so the lines, the spend
counters, the Stripe outbox rows and the budget alerts it writes commit exactly once per
record, and a process killed mid-batch commits none of them. Fine-tuning jobs are priced
by ``price_fine_tunes`` (a periodic task) through the same ``write_lines``, once per job
(``usage_id`` ``ftjob:<id>``; the unique (usage id, kind) backs both).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from potluck.extensions import CommittedUsageRecord
from potluck_enterprise.billing import budgets, money, outbox, payers, spend
from potluck_enterprise.billing.models import PricedLine
from potluck_enterprise.billing.pricebook import BOOK, LineDraft, line_id, price_usage

log = logging.getLogger(__name__)

CONSUMER_NAME = "billing.pricing"


@dataclass(frozen=True)
class Usage:
    """What is priced: one usage record or one fine-tuning job."""

    usage_id: str
    organization_id: str
    api_key_id: str | None
    model: str
    at: datetime
    drafts: list[LineDraft]


def write_lines(usages: Sequence[Usage]) -> list[PricedLine]:
    """Write the lines of ``usages`` (in order) with everything that follows from them, in
    the caller's transaction: spend counters, prepaid payers (``payers``: credits), Stripe
    outbox rows for what the payers left, budget alerts; pending spend is removed from
    Redis once the transaction commits. Returns the lines."""
    code = money.currency()
    lines: list[PricedLine] = []
    amounts: dict[spend.ScopeKey, Decimal] = {}
    pending: list[tuple[spend.ScopeKey, str]] = []
    with money.exact():
        for usage in usages:
            keys = spend.scope_keys(usage.organization_id, usage.api_key_id, usage.at)
            pending += [(k, usage.usage_id) for k in keys]
            for d in usage.drafts:
                lines.append(PricedLine(
                    id=line_id(usage.usage_id, d.kind), usage_id=usage.usage_id,
                    organization_id=usage.organization_id, api_key_id=usage.api_key_id,
                    model=usage.model, priced_model=d.priced_model, kind=d.kind,
                    quantity=d.quantity, unit=d.unit, unit_price=d.unit_price,
                    list_unit_price=d.list_unit_price, multiplier=d.multiplier,
                    discount=d.discount, amount=d.amount, list_amount=d.list_amount,
                    currency=code, price_version_id=d.version_id, window=d.window,
                    override_id=d.override_id, usage_at=usage.at))
                for k in keys:
                    amounts[k] = amounts.get(k, Decimal(0)) + d.amount
    PricedLine.objects.bulk_create(lines)
    spend.add_to_counters(amounts)
    # Prepaid payers (contribution credits) first; only what they left goes to Stripe.
    outbox.enqueue(lines, due=payers.settle(lines) if len(payers.PAYERS) else None)
    budgets.check_limits(amounts.keys())
    if pending:
        transaction.on_commit(lambda: _forget_pending(pending))
    return lines


def _forget_pending(items: list[tuple[spend.ScopeKey, str]]) -> None:
    try:
        spend.remove_pending(items)
    except Exception as exc:  # Redis away: the minute sweep removes them later
        log.warning("billing: could not remove pending spend (%s); the sweep will",
                    exc.__class__.__name__)


def price_records(records: Sequence[CommittedUsageRecord]) -> list[PricedLine]:
    """Price committed usage records (see the module docstring)."""
    book = BOOK.refresh()
    usages = []
    for r in records:
        org = str(r.organization_id)
        drafts = price_usage(book, org, r.model, r.created_at,
                             prompt_tokens=r.prompt_tokens, cached_tokens=r.cached_tokens,
                             completion_tokens=r.completion_tokens,
                             requests=1 if r.status < 400 else 0)
        usages.append(Usage(r.request_id, org, str(r.api_key_id) if r.api_key_id else None,
                            r.model, r.created_at, drafts))
    return write_lines(usages)


class PricingConsumer:
    """The usage consumer ``billing.pricing`` (registered while the licence grants
    ``billing``). It starts at the beginning of the usage log: records made before a price
    version was in force make no lines."""

    name = CONSUMER_NAME
    batch_size = 500

    def consume(self, records: Sequence[CommittedUsageRecord]) -> None:
        price_records(records)


def price_fine_tunes(limit: int = 100) -> int:
    """Price succeeded fine-tuning jobs not priced yet (trained tokens x the base model's
    fine-tuning price in force when the job finished); returns how many were priced."""
    from potluck.finetune.models import FineTuningJob, JobStatus

    book = BOOK.refresh()
    with transaction.atomic():
        priced = PricedLine.objects.filter(usage_id__startswith="ftjob:").values("usage_id")
        jobs = list(FineTuningJob.objects.select_for_update(skip_locked=True)
                    .filter(status=JobStatus.SUCCEEDED, trained_tokens__gt=0,
                            finished_at__isnull=False)
                    .exclude(id__in=[u["usage_id"][len("ftjob:"):] for u in priced])
                    .order_by("finished_at")[:limit])
        usages = []
        for job in jobs:
            org = str(job.organization_id)
            drafts = price_usage(book, org, job.model_name, job.finished_at,
                                 training_tokens=int(job.trained_tokens or 0))
            key = str(job.created_by_key_id) if job.created_by_key_id else None
            usages.append(Usage(f"ftjob:{job.id}", org, key, job.model_name,
                                job.finished_at, drafts))
        write_lines([u for u in usages if u.drafts])
    return len([u for u in usages if u.drafts])
