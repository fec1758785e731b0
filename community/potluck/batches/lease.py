# SPDX-License-Identifier: Apache-2.0
"""The runner's lease on a batch: one runner at a time, and a dead one is noticed.

A runner claims a batch by writing its token and a near expiry; it renews the expiry
every few seconds while it works. A lapsed lease means the runner died (its worker was
killed): ``resume_stalled_batches`` then dispatches the batch again, and the next
runner continues where the dead one stopped. An empty owner with a future expiry is a
*reservation*: a run task is on its way, and any runner may claim it at once.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from potluck.batches import conf
from potluck.batches.models import UNFINISHED, Batch


def new_token() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def _until() -> datetime:
    return timezone.now() + timedelta(seconds=conf.lease_seconds())


def free_q(now: datetime) -> Q:
    """Batches no live runner holds: reserved for a runner, lapsed, or never leased."""
    return Q(lease_owner="") | Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)


def lapsed_q(now: datetime) -> Q:
    """Batches whose runner (or awaited runner) is overdue."""
    return Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)


def claim(batch_id: str, token: str) -> Batch | None:
    """The batch, now leased to ``token``; None if a live runner holds it or it is done."""
    claimed = (Batch.objects.filter(pk=batch_id, status__in=UNFINISHED)
               .filter(free_q(timezone.now()))
               .update(lease_owner=token, lease_expires_at=_until()))
    if not claimed:
        return None
    return Batch.objects.select_related("organization").get(pk=batch_id)


def reserve(batch_id: str) -> bool:
    """Mark a batch as awaiting a runner, so the periodic pass does not send it again
    until the reservation lapses. False if a live runner holds it or it is done."""
    now = timezone.now()
    return bool(Batch.objects.filter(pk=batch_id, status__in=UNFINISHED)
                .filter(lapsed_q(now)).update(lease_owner="", lease_expires_at=_until()))


def renew(batch_id: str, token: str) -> tuple[str, datetime] | None:
    """Extend the lease; the batch's (status, expires_at), or None if the lease was lost."""
    if not Batch.objects.filter(pk=batch_id, lease_owner=token).update(
            lease_expires_at=_until()):
        return None
    return Batch.objects.filter(pk=batch_id).values_list("status", "expires_at").get()


def release(batch_id: str, token: str) -> None:
    Batch.objects.filter(pk=batch_id, lease_owner=token).update(lease_owner="",
                                                                lease_expires_at=None)


class LeaseLost(Exception):
    """Another runner took the batch over (this one was taken for dead)."""
