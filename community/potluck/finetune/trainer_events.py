# SPDX-License-Identifier: Apache-2.0
"""The trainer's own events into Postgres: its ``events.jsonl`` becomes job events and
checkpoints (Potluck's own events are written by ``potluck.finetune.events``).

The trainer appends one JSON object per line, each with a ``seq`` that grows by one
(see ``potluck.finetune.trainer.events``). The node agent reads the file from where its
last read stopped, and records what it has not seen: a row per event, unique per
``(job, trainer_seq)``, so reading a line twice (after an agent restart) adds nothing.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from potluck.finetune.models import FineTuningCheckpoint, FineTuningEvent, FineTuningJob

log = logging.getLogger(__name__)
EVENTS_FILE = "events.jsonl"


class TrainerEventReader:
    """Reads each job's ``events.jsonl`` once: remembers how many bytes it has taken."""

    def __init__(self) -> None:
        self.offsets: dict[str, int] = {}  # job id → bytes of events.jsonl already read

    def ingest(self, job: FineTuningJob, directory: Path) -> None:
        """Record the whole lines the trainer wrote since the last call (a line still
        being written waits for the next call)."""
        try:
            handle = (directory / EVENTS_FILE).open("rb")
        except FileNotFoundError:
            return
        with handle:
            handle.seek(self.offsets.get(job.id, 0))
            chunk = handle.read()
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self.offsets[job.id] = self.offsets.get(job.id, 0) + end + 1
        events = []
        for line in chunk[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                log.warning("job %s: unreadable event line skipped", job.id)
                continue
            if isinstance(event, dict) and int(event.get("seq", 0)) > job.last_event_seq:
                events.append(event)
        if events:
            record_trainer_events(job, events)

    def forget(self, job_id: str) -> None:
        self.offsets.pop(job_id, None)


def record_trainer_events(job: FineTuningJob, events: list[dict[str, Any]]) -> None:
    """The trainer's events become job events (and checkpoints); seen ones are skipped.

    Metrics events also update the job's ``trained_tokens`` and ``estimated_finish``.
    """
    rows, checkpoints = [], []
    last_seq, trained, eta = job.last_event_seq, None, None
    for event in events:
        seq = int(event["seq"])
        kind = event.get("type", "message")
        data = event.get("data") or {}
        created = datetime.fromtimestamp(float(event.get("created_at", time.time())), tz=UTC)
        rows.append(FineTuningEvent(
            job=job, trainer_seq=seq, created_at=created,
            level=str(event.get("level", "info"))[:8],
            type="metrics" if kind == "metrics" else "message",
            message=str(event.get("message", "")), data=data or None))
        if kind == "checkpoint" and "step" in data:
            metrics = {k: v for k, v in data.items() if k not in ("path",)}
            checkpoints.append(FineTuningCheckpoint(
                job=job, step_number=int(data["step"]), metrics=metrics,
                path=str(data.get("path", "")), created_at=created))
        if kind == "metrics":
            trained = data.get("trained_tokens", trained)
            eta = data.get("eta_seconds", eta)
        last_seq = max(last_seq, seq)
    changes: dict[str, Any] = {"last_event_seq": last_seq, "updated_at": timezone.now()}
    if trained is not None:
        changes["trained_tokens"] = int(trained)
    if eta is not None:
        changes["estimated_finish"] = timezone.now() + timedelta(seconds=float(eta))
    with transaction.atomic():
        FineTuningEvent.objects.bulk_create(rows, ignore_conflicts=True)
        FineTuningCheckpoint.objects.bulk_create(checkpoints, ignore_conflicts=True)
        FineTuningJob.objects.filter(pk=job.pk).update(**changes)
    job.last_event_seq = last_seq
