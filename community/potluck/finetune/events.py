# SPDX-License-Identifier: Apache-2.0
"""Job events written by Potluck itself (the trainer's own arrive through
``potluck.finetune.trainer_events``)."""

from __future__ import annotations

from typing import Any

from potluck.finetune.models import FineTuningEvent, FineTuningJob


def add_event(job: FineTuningJob, message: str, *, level: str = "info",
              data: dict[str, Any] | None = None) -> FineTuningEvent:
    return FineTuningEvent.objects.create(job=job, message=message, level=level,
                                          type="message", data=data)
