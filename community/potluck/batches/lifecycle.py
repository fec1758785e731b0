# SPDX-License-Identifier: Apache-2.0
"""Every status change of a batch, in OpenAI's states: ``validating → in_progress →
finalizing → completed | failed | expired``, and ``cancelling → cancelled``.

``TRANSITIONS`` states once which changes exist; each function here is one of them,
written as a compare-and-set on the states it starts from. A runner's changes are also
conditional on its lease, so a runner that was taken for dead and comes back can never
overwrite what its successor did. How a batch ends: its output and error files are
written inside the transaction that ends it: if the batch cannot end (the lease is gone,
or it was cancelled meanwhile), their rows roll back with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import orjson
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from potluck.batches import input as batch_input
from potluck.batches import lease, results
from potluck.batches.lease import LeaseLost
from potluck.batches.models import Batch, BatchResult, BatchStatus
from potluck.errors import NotFound
from potluck.files import selectors as file_selectors
from potluck.files import services as files
from potluck.files.models import Purpose, StoredFile

log = logging.getLogger(__name__)

FILE_CHUNK_BYTES = 256 * 1024
# The field that records when a batch reached each terminal status.
_STAMP = {BatchStatus.COMPLETED: "completed_at", BatchStatus.CANCELLED: "cancelled_at",
          BatchStatus.EXPIRED: "expired_at", BatchStatus.FAILED: "failed_at"}
S = BatchStatus
# From → the statuses it may change to (OpenAI's Batch API states).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.VALIDATING: frozenset({S.IN_PROGRESS, S.FAILED, S.EXPIRED, S.CANCELLING, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.FINALIZING, S.FAILED, S.EXPIRED, S.CANCELLING}),
    S.FINALIZING: frozenset({S.COMPLETED, S.FAILED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.FAILED}),
    S.COMPLETED: frozenset(), S.FAILED: frozenset(), S.EXPIRED: frozenset(),
    S.CANCELLED: frozenset(),
}


def _from(target: str) -> tuple[str, ...]:
    """The statuses from which a batch may change to ``target``."""
    return tuple(source for source, targets in TRANSITIONS.items() if target in targets)


EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."


class Incomplete(Exception):
    """Lines are missing results; the batch is not finalized (a later run fills them)."""


def _owned(batch: Batch, token: str) -> Q:
    return Q(pk=batch.pk, lease_owner=token)


def cancel_unclaimed(batch: Batch, now: datetime) -> bool:
    """validating → cancelled at once, for a batch no runner has picked up (its lease is
    free): nothing ran, so there are no files to write."""
    return bool(Batch.objects.filter(pk=batch.pk, status__in=_from(S.CANCELLED))
                .filter(status=S.VALIDATING).filter(lease.free_q(now))
                .update(status=S.CANCELLED, cancelling_at=now, cancelled_at=now,
                        lease_owner="", lease_expires_at=None))


def request_cancel(batch: Batch, now: datetime) -> bool:
    """validating or in_progress → cancelling: its runner stops taking lines, lets those
    in flight finish, and ends it cancelled (``finish``)."""
    return bool(Batch.objects.filter(pk=batch.pk, status__in=_from(S.CANCELLING))
                .update(status=S.CANCELLING, cancelling_at=now))


def start(batch: Batch, token: str, check: batch_input.InputCheck) -> bool:
    """validating → in_progress, with the request total; or failed, naming the lines."""
    now = timezone.now()
    if check.errors:
        return fail(batch, token, check.errors)
    model = next(iter(check.models)) if len(check.models) == 1 else ""
    return bool(Batch.objects.filter(_owned(batch, token), status__in=_from(S.IN_PROGRESS))
                .update(status=BatchStatus.IN_PROGRESS, in_progress_at=now,
                        request_total=check.total, model=model[:200]))


def fail(batch: Batch, token: str, errors: list[dict]) -> bool:
    now = timezone.now()
    return bool(Batch.objects.filter(_owned(batch, token),
                                     status__in=_from(S.FAILED))
                .update(status=BatchStatus.FAILED, failed_at=now, errors=errors,
                        lease_owner="", lease_expires_at=None))


def begin_finalizing(batch: Batch, token: str) -> bool:
    """in_progress → finalizing, once every line has its result."""
    results.refresh_counts(batch.pk)
    if BatchResult.objects.filter(batch=batch).count() < batch.request_total:
        raise Incomplete(batch.pk)
    return bool(Batch.objects.filter(_owned(batch, token), status__in=_from(S.FINALIZING))
                .update(status=BatchStatus.FINALIZING, finalizing_at=timezone.now()))


def mark_expired_lines(batch: Batch) -> int:
    """Give every line without a result a ``batch_expired`` error; returns how many."""
    done = results.recorded_lines(batch.pk)
    marked = 0
    pending: list[results.Outcome] = []
    try:
        stored = file_selectors.get_file(batch.organization, batch.input_file_id)
        for line in batch_input.read_lines(stored):
            if line.number in done:
                continue
            pending.append(results.Outcome(
                line=line.number, custom_id=line.custom_id, model=line.model,
                error_code="batch_expired", error_message=EXPIRED_MESSAGE))
            if len(pending) >= 1000:
                results.record(batch.pk, pending)
                marked += len(pending)
                pending = []
    except (NotFound, KeyError, TypeError, ValueError):  # gone, or never a valid input
        log.warning("batch %s: could not read its input to expire its lines", batch.pk)
    results.record(batch.pk, pending)
    return marked + len(pending)


def finish(batch: Batch, token: str, status: BatchStatus,
           errors: list[dict] | None = None) -> bool:
    """Write the output and error files and end the batch in ``status`` (with batch-level
    ``errors`` for a batch that fails after some lines ran: their results are kept).

    False if the batch is no longer this runner's, or no longer in a status that may
    end this way (e.g. cancelled meanwhile: the caller looks again).
    """
    results.refresh_counts(batch.pk)
    batch.refresh_from_db()
    if batch.lease_owner != token:
        raise LeaseLost(batch.pk)
    if status == BatchStatus.COMPLETED:
        recorded = BatchResult.objects.filter(batch=batch).count()
        if recorded < batch.request_total:
            raise Incomplete(batch.pk)
    now = timezone.now()
    with transaction.atomic():
        output = _write(batch, results.SUCCEEDED, "output", batch.request_completed)
        error_file = _write(batch, results.FAILED, "error", batch.request_failed)
        ended = Batch.objects.filter(_owned(batch, token), status__in=_from(status)).update(
            status=status, **{_STAMP[status]: now},
            output_file_id=output.id if output else None,
            error_file_id=error_file.id if error_file else None,
            lease_owner="", lease_expires_at=None,
            **({"errors": errors} if errors is not None else {}))
        if not ended:
            transaction.set_rollback(True)
            return False
    log.info("batch %s %s: %s succeeded, %s failed", batch.pk, status,
             batch.request_completed, batch.request_failed)
    return True


def _write(batch: Batch, which: Q, kind: str, count: int) -> StoredFile | None:
    if not count:
        return None
    stored = files.write_file(batch.organization, purpose=Purpose.BATCH_OUTPUT,
                              filename=f"{batch.pk}_{kind}.jsonl",
                              chunks=_file_lines(batch, which), line_count=count)
    if batch.output_expires_after:
        StoredFile.objects.for_org(batch.organization).filter(pk=stored.pk).update(
            expires_at=stored.created_at + timedelta(seconds=batch.output_expires_after))
    return stored


def _file_lines(batch: Batch, which: Q) -> Iterator[bytes]:
    """The results, in input order, as JSONL in chunks of about 256 KiB."""
    rows = BatchResult.objects.filter(which, batch=batch).order_by("line")
    buffer = bytearray()
    for row in rows.iterator(chunk_size=500):
        buffer += orjson.dumps(results.output_line(row))
        buffer += b"\n"
        if len(buffer) >= FILE_CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)
