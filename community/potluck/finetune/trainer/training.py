# SPDX-License-Identifier: Apache-2.0
"""The training loop: one optimizer step per batch, one metrics event per step.

Per step it does what a plain PyTorch loop does (forward, backward, clip, step) plus one
event line; evaluation and checkpoints come at the steps the spec asks for, and a pause
request checkpoints the step just finished before the run stops.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from potluck.finetune.trainer.batches import Batch, Schedule, collate
from potluck.finetune.trainer.cancellation import CancellationFlag
from potluck.finetune.trainer.events import EventLog
from potluck.finetune.trainer.failures import DIVERGED, TrainingFailed
from potluck.finetune.trainer.spec import TrainingSpec
from potluck.finetune.trainer.tokenization import IGNORE_INDEX, Example

if TYPE_CHECKING:
    import torch

GRAD_CLIP = 1.0


@dataclass
class Progress:
    """Where the run is; a checkpoint saves it and a resumed run starts from it."""

    step: int = 0  # completed steps
    trained_tokens: int = 0
    train_loss: float | None = None
    valid_loss: float | None = None  # of the latest evaluation


@dataclass(frozen=True)
class LoopParts:
    model: torch.nn.Module
    parameters: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: Any
    pad_id: int
    examples: list[Example]
    valid_batches: list[Batch]


def build_optimizer(parameters: list[torch.nn.Parameter], spec: TrainingSpec,
                    total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW with a linear warm-up over ``warmup_ratio`` of the steps, then linear decay."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    optimizer = torch.optim.AdamW(parameters, lr=spec.learning_rate, weight_decay=0.0)
    warmup = round(spec.warmup_ratio * total_steps)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total_steps)


def evaluate(model: torch.nn.Module, batches: list[Batch],
             flag: CancellationFlag) -> float | None:
    """The mean loss per trained token over the validation set; None when a cancellation
    request interrupts it (the step it follows is complete all the same)."""
    import torch

    total, count = 0.0, 0
    model.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                if flag.requested:
                    return None
                n = int((batch.labels[:, 1:] != IGNORE_INDEX).sum())
                loss = model(input_ids=batch.input_ids, labels=batch.labels).loss
                total += float(loss) * n
                count += n
    finally:
        model.train()
    value = total / max(count, 1)
    if not math.isfinite(value):
        raise TrainingFailed(DIVERGED, f"the validation loss became {value}; try a lower "
                                       "learning rate")
    return value


def run_loop(spec: TrainingSpec, schedule: Schedule, parts: LoopParts, progress: Progress,
             events: EventLog, flag: CancellationFlag,
             checkpoint: Callable[[Progress], None]) -> None:
    """Train from ``progress.step + 1`` to the last step; ``progress`` follows along."""
    import torch

    model, optimizer, scheduler = parts.model, parts.optimizer, parts.scheduler
    total = schedule.total_steps
    first = progress.step + 1
    session_tokens = 0
    model.train()
    started = time.perf_counter()
    for step in range(first, total + 1):
        batch = collate([parts.examples[i] for i in schedule.indices(step)], parts.pad_id)
        learning_rate = optimizer.param_groups[0]["lr"]
        loss = model(input_ids=batch.input_ids, labels=batch.labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parts.parameters, GRAD_CLIP)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        train_loss = loss.item()
        if not math.isfinite(train_loss):
            raise TrainingFailed(DIVERGED, f"the training loss became {train_loss} at step "
                                 f"{step}; try a lower learning rate")
        session_tokens += batch.tokens
        progress.step, progress.train_loss = step, train_loss
        progress.trained_tokens += batch.tokens
        evaluated = False
        if _due(step, spec.eval_every_steps, schedule) and parts.valid_batches:
            valid_loss = evaluate(model, parts.valid_batches, flag)
            if valid_loss is not None:
                progress.valid_loss, evaluated = valid_loss, True
        elapsed = time.perf_counter() - started
        data = {"step": step, "total_steps": total, "epoch": schedule.epoch_of(step),
                "train_loss": train_loss, "learning_rate": learning_rate,
                "tokens_per_second": session_tokens / elapsed if elapsed > 0 else 0.0,
                "trained_tokens": progress.trained_tokens, "elapsed_seconds": elapsed,
                "eta_seconds": elapsed / (step - first + 1) * (total - step)}
        message = f"Step {step}/{total}: training loss={train_loss:.4f}"
        if evaluated:
            data["valid_loss"] = progress.valid_loss
            message += f", validation loss={progress.valid_loss:.4f}"
        events.emit("metrics", message, data)
        saved = _checkpoint_due(step, spec.checkpoint_every_steps, schedule)
        if saved:
            checkpoint(progress if evaluated else _without_valid(progress))
        if flag.requested:
            if flag.pausing and not flag.cancelling and not saved:
                checkpoint(progress if evaluated else _without_valid(progress))
            flag.check()


def _due(step: int, every: int, schedule: Schedule) -> bool:
    if every > 0:
        return step % every == 0 or step == schedule.total_steps
    return schedule.ends_epoch(step)


def _checkpoint_due(step: int, every: int, schedule: Schedule) -> bool:
    return step % every == 0 if every > 0 else schedule.ends_epoch(step)


def _without_valid(progress: Progress) -> Progress:
    return Progress(progress.step, progress.trained_tokens, progress.train_loss, None)
