# SPDX-License-Identifier: Apache-2.0
"""What the Batch API does: create, read, cancel; and the periodic passes that keep
batches moving when a worker dies (``resume_stalled_batches``) or time runs out
(``expire_batches``).

Requests refused up front (a file that is not the org's, or not a batch file; a bad
endpoint, window or metadata) are a 400 at create and leave no batch. Problems inside
the file are found by the run, which fails the batch naming the lines.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from potluck.accounts.models import ApiKey, Organization, User
from potluck.batches import conf, lease, lifecycle, selectors
from potluck.batches.models import UNFINISHED, Batch, BatchStatus
from potluck.errors import Conflict, NotFound
from potluck.files import selectors as file_selectors
from potluck.files.models import FileStatus, Purpose, StoredFile
from potluck.openai_api.validation import clean_metadata, invalid
from potluck.protocol import endpoints

log = logging.getLogger(__name__)

RUN_TASK = "potluck.batches.run"
# Consumed by every node agent started with --control (see potluck.agent.worker).
JOBS_QUEUE = "potluck.jobs"
CREATE_KEYS = frozenset({"input_file_id", "endpoint", "completion_window", "metadata",
                         "output_expires_after"})
# OpenAI's bounds for output_expires_after.seconds: one hour to thirty days.
MIN_OUTPUT_EXPIRY, MAX_OUTPUT_EXPIRY = 3600, 30 * 24 * 3600


# -- create ---------------------------------------------------------------------------
def create_batch(organization: Organization, body: dict[str, Any], *,
                 api_key: ApiKey | None = None, user: User | None = None) -> Batch:
    unknown = sorted(set(body) - CREATE_KEYS)
    if unknown:
        raise invalid(f"Unknown parameter: '{unknown[0]}'.", unknown[0], "unknown_parameter")
    for required in ("input_file_id", "endpoint", "completion_window"):
        if body.get(required) in (None, ""):
            raise invalid(f"Missing required parameter: '{required}'.", required,
                           "missing_required_parameter")
    endpoint = body["endpoint"]
    if not isinstance(endpoint, str) or endpoint not in endpoints.BY_PATH:
        allowed = ", ".join(f"'{e}'" for e in endpoints.PATHS)
        raise invalid(f"Invalid 'endpoint': {endpoint!r}. Supported endpoints: {allowed}.",
                       "endpoint", "invalid_value")
    if body["completion_window"] != conf.COMPLETION_WINDOW:
        raise invalid(f"Invalid 'completion_window': {body['completion_window']!r}. Only "
                       f"'{conf.COMPLETION_WINDOW}' is supported.", "completion_window",
                       "invalid_value")
    metadata = clean_metadata(body.get("metadata"))
    output_expiry = _output_expiry(body.get("output_expires_after"))
    stored = _input_file(organization, body["input_file_id"])
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.objects.create(
            organization=organization, api_key_id=api_key.pk if api_key else None,
            created_by=user, input_file_id=stored.pk, endpoint=endpoint,
            completion_window=conf.COMPLETION_WINDOW, metadata=metadata,
            output_expires_after=output_expiry, created_at=now,
            expires_at=now + timedelta(seconds=conf.COMPLETION_WINDOW_SECONDS),
            lease_owner="", lease_expires_at=now + timedelta(seconds=conf.lease_seconds()))
        send_run(batch.pk)
    log.info("batch %s created from %s for %s", batch.pk, stored.pk, endpoint)
    return batch


def _input_file(organization: Organization, file_id: Any) -> StoredFile:
    if not isinstance(file_id, str):
        raise invalid("Invalid 'input_file_id': must be the id of an uploaded file.",
                       "input_file_id", "invalid_type")
    try:
        stored = file_selectors.get_file(organization, file_id)
    except NotFound:
        # Unknown and another org's file read the same: nothing tells them apart.
        raise invalid(f"Invalid 'input_file_id': no file {file_id!r} in this organization.",
                       "input_file_id", "file_not_found") from None
    if stored.purpose != Purpose.BATCH:
        raise invalid(f"Invalid 'input_file_id': file {file_id} has purpose "
                       f"'{stored.purpose}'; a batch reads a file uploaded with purpose "
                       "'batch'.", "input_file_id", "invalid_file_purpose")
    if stored.status == FileStatus.ERROR:
        raise invalid(f"Invalid 'input_file_id': file {file_id} is not a valid batch input "
                       f"({stored.status_details or 'validation failed'}).", "input_file_id",
                       "invalid_file")
    return stored


def _output_expiry(raw: Any) -> int | None:
    if raw is None:
        return None
    seconds = raw.get("seconds") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or raw.get("anchor") != "created_at" \
            or isinstance(seconds, bool) or not isinstance(seconds, int) \
            or not MIN_OUTPUT_EXPIRY <= seconds <= MAX_OUTPUT_EXPIRY:
        raise invalid("Invalid 'output_expires_after': expected {\"anchor\": \"created_at\", "
                       f"\"seconds\": {MIN_OUTPUT_EXPIRY}..{MAX_OUTPUT_EXPIRY}}}.",
                       "output_expires_after", "invalid_value")
    return seconds


# -- read -----------------------------------------------------------------------------
# -- cancel ---------------------------------------------------------------------------
def cancel_batch(organization: Organization, batch_id: str) -> Batch:
    """validating/in_progress → cancelling; its runner stops taking lines, lets those in
    flight finish, writes the partial files and ends it cancelled. A batch no runner has
    picked up yet is cancelled at once."""
    batch = selectors.get_batch(organization, batch_id)
    now = timezone.now()
    moved = 0
    with transaction.atomic():
        unclaimed = lifecycle.cancel_unclaimed(batch, now)
        if not unclaimed:
            moved = lifecycle.request_cancel(batch, now)
            if moved:
                send_run(batch.pk)  # no-op if its runner is alive; else finishes the cancel
    batch.refresh_from_db()
    if not unclaimed and not moved and batch.status not in (BatchStatus.CANCELLING,
                                                            BatchStatus.CANCELLED):
        raise Conflict(f"Cannot cancel batch {batch.pk}: it is {batch.status}.",
                       field="batch_id")
    return batch


# -- running --------------------------------------------------------------------------
def send_run(batch_id: str) -> None:
    """Ask a worker on the jobs queue to run the batch (once the transaction commits)."""
    from potluck.celery_app import app

    def send() -> None:
        try:
            # Expires: a message that waited this long is stale; the periodic pass has
            # sent a fresh one meanwhile (or will).
            app.send_task(RUN_TASK, args=(batch_id,), queue=JOBS_QUEUE,
                          expires=max(60.0, 4 * conf.lease_seconds()))
        except Exception:  # the broker is down: resume_stalled_batches sends it later
            log.warning("could not send batch %s to a worker", batch_id, exc_info=True)

    transaction.on_commit(send)


def resume_stalled_batches() -> list[str]:
    """Periodic: dispatch again every unfinished batch whose runner's lease lapsed (its
    worker died, or its run message was lost). Returns their ids."""
    now = timezone.now()
    stalled = list(Batch.objects.filter(status__in=UNFINISHED).filter(lease.lapsed_q(now))
                   .order_by("created_at").values_list("pk", flat=True))
    resumed = []
    for batch_id in stalled:
        if lease.reserve(batch_id):
            send_run(batch_id)
            resumed.append(batch_id)
    if resumed:
        log.info("resuming %d stalled batch(es): %s", len(resumed), ", ".join(resumed))
    return resumed


def expire_batches() -> list[str]:
    """Periodic: end every batch past its completion window that no live runner holds
    (a running one expires itself): its unfinished lines get ``batch_expired`` errors,
    its files are written, and it is expired. Returns their ids."""
    now = timezone.now()
    due = list(Batch.objects.filter(status__in=(BatchStatus.VALIDATING,
                                                BatchStatus.IN_PROGRESS),
                                    expires_at__lte=now)
               .filter(lease.free_q(now)).values_list("pk", flat=True))
    expired = []
    for batch_id in due:
        token = lease.new_token()
        batch = lease.claim(batch_id, token)
        if batch is None:
            continue
        try:
            lifecycle.mark_expired_lines(batch)
            if lifecycle.finish(batch, token, BatchStatus.EXPIRED):
                expired.append(batch_id)
        except lease.LeaseLost:
            continue
        finally:
            lease.release(batch_id, token)
    if expired:
        log.info("expired %d batch(es): %s", len(expired), ", ".join(expired))
    return expired

