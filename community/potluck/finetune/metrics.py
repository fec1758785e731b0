# SPDX-License-Identifier: Apache-2.0
"""A job's whole training curve for a chart: every step, or buckets of steps when long.

The trainer reports one ``metrics`` event per optimizer step (``step``, ``total_steps``,
``train_loss``, sometimes ``valid_loss``, ``eta_seconds``…). The event list is an
OpenAI cursor list of at most 100 per page, newest first: fine for a log, not for a
curve of thousands of steps. This reads only the numbers a chart needs, for the whole
run, and keeps the answer small: above ``max_points`` recorded steps, consecutive steps
are averaged in equal buckets (the curve's shape survives; single-step spikes are
smoothed, as any chart that has fewer pixels than steps does).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from potluck.finetune.models import FineTuningEvent, FineTuningJob

DEFAULT_MAX_POINTS = 1000
MAX_POINTS_RANGE = (10, 5000)


@dataclass(frozen=True)
class LossPoint:
    """``step`` is the last step of its bucket; losses are the bucket's means."""

    step: int
    train_loss: float
    valid_loss: float | None = None


@dataclass
class LossCurve:
    points: list[LossPoint] = field(default_factory=list)
    steps_recorded: int = 0
    bucket_steps: int = 1
    latest: dict[str, Any] | None = None  # the last metrics event's data, as reported


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def loss_curve(job: FineTuningJob, max_points: int = DEFAULT_MAX_POINTS) -> LossCurve:
    """The training (and validation) loss of ``job`` from its first step to its last.

    A step reported twice (a run resumed from a checkpoint before it repeats the steps
    after that checkpoint) counts once, with its latest report. Events without a
    numeric ``step`` and ``train_loss`` are skipped.
    """
    rows = (FineTuningEvent.objects.filter(job=job, type="metrics")
            .order_by("created_at", "trainer_seq")
            .values_list("data__step", "data__train_loss", "data__valid_loss"))
    by_step: dict[int, tuple[float, float | None]] = {}
    for step, train, valid in rows.iterator(chunk_size=5000):
        number, loss = _number(step), _number(train)
        if number is None or loss is None:
            continue
        by_step[int(number)] = (loss, _number(valid))
    curve = LossCurve(steps_recorded=len(by_step))
    last = (FineTuningEvent.objects.filter(job=job, type="metrics")
            .order_by("-created_at", "-trainer_seq").values_list("data", flat=True).first())
    curve.latest = last or None
    steps = sorted(by_step)
    curve.bucket_steps = max(1, math.ceil(len(steps) / max_points))
    for start in range(0, len(steps), curve.bucket_steps):
        bucket = steps[start:start + curve.bucket_steps]
        train = [by_step[s][0] for s in bucket]
        valid = [v for s in bucket if (v := by_step[s][1]) is not None]
        curve.points.append(LossPoint(step=bucket[-1], train_loss=sum(train) / len(train),
                                      valid_loss=sum(valid) / len(valid) if valid else None))
    return curve
