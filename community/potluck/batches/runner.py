# SPDX-License-Identifier: Apache-2.0
"""Runs one batch to its end, under a lease: validate, send the lines, write the files.

``run_batch`` is what the Celery task calls. It is safe to call any number of times, from
any worker: only the holder of the lease works on a batch, and a new run continues
where the last one stopped (lines with a result are never sent again).
"""

from __future__ import annotations

import contextlib
import logging
import time

from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone

from potluck.batches import conf, lease, lifecycle
from potluck.batches import input as batch_input
from potluck.batches.dispatcher import Dispatcher, Stop
from potluck.batches.models import TERMINAL, Batch, BatchStatus
from potluck.errors import NotFound
from potluck.files import selectors as file_selectors

log = logging.getLogger(__name__)

# A run that keeps finding lines without results after its dispatcher said it was done
# gives up after this many passes (and the periodic resume tries again later).
MAX_PASSES = 3


def run_batch(batch_id: str) -> str:
    """Work on the batch until it ends or this runner must stop; returns what happened."""
    token = lease.new_token()
    claimed_at = time.monotonic()
    batch = lease.claim(batch_id, token)
    if batch is None:
        return "not claimed"  # finished, or a live runner has it
    keeper = lease.LeaseKeeper(batch, token, claimed_at)
    keeper.start()
    ended, failure = "", ""
    try:
        ended = _drive(batch, token, keeper)
        if ended == Stop.ERROR:
            failure = "its results could not be recorded"
    except lease.LeaseLost:
        log.warning("batch %s: lease lost; another runner continues", batch_id)
        return Stop.LEASE_LOST
    except Exception as error:  # a bug or an outage: counted, then resumed or failed
        log.exception("batch %s: the run failed", batch_id)
        failure = error.__class__.__name__
    finally:
        keeper.stop()
        lease.release(batch_id, token)
        close_old_connections()
    if failure:
        return _failed_run(batch, token, failure)
    Batch.objects.filter(pk=batch_id, failed_runs__gt=0).update(failed_runs=0)
    return ended


def _failed_run(batch: Batch, token: str, why: str) -> str:
    """Count a run that ended in an unexpected error; at the limit, fail the batch (its
    recorded results go to its files). Called once the run has released its lease: the
    batch is claimed again to end it, unless another runner has it by now."""
    with contextlib.suppress(Exception):  # the database may be what failed
        Batch.objects.filter(pk=batch.pk).update(failed_runs=F("failed_runs") + 1)
        failed = Batch.objects.filter(pk=batch.pk).values_list("failed_runs", flat=True).get()
        limit = conf.max_failed_runs()
        if failed < limit:
            log.warning("batch %s: failed run %d of %d; the periodic pass resumes it",
                        batch.pk, failed, limit)
            return "error"
        claimed = lease.claim(batch.pk, token)
        if claimed is not None:
            try:
                lifecycle.finish(claimed, token, BatchStatus.FAILED, errors=[{
                    "code": "batch_run_failed", "param": None, "line": None,
                    "message": f"The batch could not be run: {failed} runs in a row failed "
                               f"({why}). Lines that finished keep their results."}])
            finally:
                lease.release(batch.pk, token)
            log.error("batch %s failed after %d failed runs", batch.pk, failed)
            return BatchStatus.FAILED
    return "error"


def _drive(batch: Batch, token: str, keeper: lease.LeaseKeeper) -> str:
    passes = 0
    while True:
        batch.refresh_from_db()
        status = batch.status
        if status in TERMINAL:
            return status  # ending it released the lease
        if batch.lease_owner != token or keeper.lost:
            raise lease.LeaseLost(batch.pk)
        expired = timezone.now() >= batch.expires_at
        if status in (BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS) and expired:
            lifecycle.mark_expired_lines(batch)
            lifecycle.finish(batch, token, BatchStatus.EXPIRED)
        elif status == BatchStatus.VALIDATING:
            _validate(batch, token)
        elif status == BatchStatus.IN_PROGRESS:
            passes += 1
            stopped = _send_lines(batch, token, keeper)
            if stopped in (Stop.LEASE_LOST, Stop.ERROR, Stop.SHUTDOWN):
                return stopped
            if stopped is None:
                try:
                    lifecycle.begin_finalizing(batch, token)
                except lifecycle.Incomplete:
                    if passes >= MAX_PASSES:
                        log.error("batch %s: lines still without results after %d passes",
                                  batch.pk, passes)
                        return "incomplete"
        elif status == BatchStatus.FINALIZING:
            lifecycle.finish(batch, token, BatchStatus.COMPLETED)
        elif status == BatchStatus.CANCELLING:
            lifecycle.finish(batch, token, BatchStatus.CANCELLED)


def _validate(batch: Batch, token: str) -> None:
    try:
        stored = file_selectors.get_file(batch.organization, batch.input_file_id)
        check = batch_input.check_input(stored, batch.endpoint)
    except (NotFound, FileNotFoundError):  # the row, or its bytes, are gone
        lifecycle.fail(batch, token, [_file_gone(batch)])
        return
    lifecycle.start(batch, token, check)


def _send_lines(batch: Batch, token: str, keeper: lease.LeaseKeeper) -> str | None:
    try:
        stored = file_selectors.get_file(batch.organization, batch.input_file_id)
    except NotFound:
        lifecycle.fail(batch, token, [_file_gone(batch)])
        return "failed"
    dispatcher = Dispatcher(batch, stored, keeper)
    try:
        stopped = dispatcher.run()
    except FileNotFoundError:  # its bytes went missing: what ran keeps its results
        lifecycle.finish(batch, token, BatchStatus.FAILED, errors=[_file_gone(batch)])
        return "failed"
    log.info("batch %s: %d requests sent this run (%s)", batch.pk, dispatcher.sent,
             stopped or "all lines done")
    return stopped


def _file_gone(batch: Batch) -> dict[str, object]:
    return {"code": "file_not_found", "param": "input_file_id", "line": None,
            "message": f"The input file {batch.input_file_id} no longer exists."}
