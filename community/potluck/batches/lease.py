# SPDX-License-Identifier: Apache-2.0
"""The runner's lease on a batch: one runner at a time, and a dead one is noticed.

A runner claims a batch by writing its token and a near expiry; a ``LeaseKeeper``
thread renews the expiry every few seconds for as long as the run lasts. A lapsed lease
means the runner died (its worker was killed): ``resume_stalled_batches`` then
dispatches the batch again, and the next runner continues where the dead one stopped.
An empty owner with a future expiry is a *reservation*: a run task is on its way, and
any runner may claim it at once.

A runner that is alive but cannot renew (its database stalls) must not race the runner
that takes over once its lease lapses: ``LeaseKeeper.usable`` turns false a third of
the lease before the lapse, and the runner takes no new line until a renewal succeeds.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from potluck.batches import conf
from potluck.batches.models import UNFINISHED, Batch

log = logging.getLogger(__name__)


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


class LeaseKeeper(threading.Thread):
    """Renews one runner's lease every heartbeat, on a thread and a database connection
    of its own, so no other work (a slow progress query, a long file write) delays it.

    What the runner reads (all set by this thread): ``lost``, and the batch's ``status``
    and ``expires_at`` as of the last renewal. ``usable()`` says whether the lease is
    surely still held: false from a third of the lease before it could lapse, until a
    renewal succeeds. ``on_change`` is called (on this thread) after every renewal.
    """

    def __init__(self, batch: Batch, token: str, claimed_at: float,
                 on_change: Callable[[], None] | None = None) -> None:
        super().__init__(name=f"{batch.pk}-lease", daemon=True)
        self.batch_id = batch.pk
        self.token = token
        self.on_change = on_change
        self.interval = conf.heartbeat_seconds()
        self.lease_seconds = conf.lease_seconds()
        self.lost = False
        self.status: str = batch.status
        self.expires_at: datetime = batch.expires_at
        # ``claimed_at``: time.monotonic() just before the claim wrote the expiry.
        self._held_until = claimed_at + self.lease_seconds
        self._stopping = threading.Event()

    def usable(self) -> bool:
        return not self.lost and time.monotonic() < self._held_until - self.lease_seconds / 3

    def run(self) -> None:
        try:
            while not self._stopping.wait(self.interval) and not self.lost:
                self.renew_once()
        finally:
            connection.close()

    def renew_once(self) -> None:
        asked = time.monotonic()
        try:
            state = renew(self.batch_id, self.token)
        except Exception:  # a database blip: the lease has time to spare, try again
            log.warning("batch %s: lease renewal failed", self.batch_id, exc_info=True)
            connection.close()
            return
        took = time.monotonic() - asked
        if took > self.lease_seconds / 3:
            log.warning("batch %s: renewing the lease took %.1f s (lease %.0f s)",
                        self.batch_id, took, self.lease_seconds)
        if state is None:
            self.lost = True
        else:
            self.status, self.expires_at = state
            # The new expiry was computed after ``asked``: counting from it is safe.
            self._held_until = asked + self.lease_seconds
        callback = self.on_change  # stop() may clear it meanwhile
        if callback is not None:
            callback()

    def stop(self) -> None:
        """Stop renewing (the caller then releases or has ended the lease). A renewal
        stuck in the database is not waited for longer than the lease: it can no longer
        take the lease from anyone, since it renews only for this token."""
        self._stopping.set()
        self.on_change = None
        if self.is_alive() and threading.current_thread() is not self:
            self.join(self.lease_seconds)
