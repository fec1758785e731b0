# SPDX-License-Identifier: Apache-2.0
"""Every status change of a fine-tuning job, and the stop requests a running job takes.

The states are OpenAI's (``validating_files → queued → running → succeeded | failed |
cancelled``) plus Potluck's ``paused``. ``TRANSITIONS`` states once which changes exist;
each function here is one of them, written as a compare-and-set on the states it starts
from (``UPDATE … WHERE status IN (…)``). The API, the scheduler and the node agents
call these and never write ``status`` themselves, so none of them overwrites another's
decision: whoever comes second changes no row, gets ``False``, and looks again.

Each change that happens also writes its job event, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from potluck.finetune.events import add_event
from potluck.finetune.models import ACTIVE_STATUSES, FineTuningJob, JobStatus

if TYPE_CHECKING:
    from potluck.registry.models import RegisteredModel

S = JobStatus
# From → the states it may change to. A paused job holds no training slot; only resume
# (back to queued) or cancel move it.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.VALIDATING_FILES: frozenset({S.QUEUED, S.FAILED, S.CANCELLED}),
    S.QUEUED: frozenset({S.RUNNING, S.PAUSED, S.FAILED, S.CANCELLED}),
    S.RUNNING: frozenset({S.SUCCEEDED, S.FAILED, S.CANCELLED, S.PAUSED, S.QUEUED}),
    S.PAUSED: frozenset({S.QUEUED, S.CANCELLED}),
    S.SUCCEEDED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


class IllegalTransition(ValueError):
    """A caller asked for a change that ``TRANSITIONS`` does not allow (a bug, not input)."""


def _move(job: FineTuningJob, sources: Iterable[str], target: str, *, where: Q | None = None,
          event: str | None = None, level: str = "info", data: dict[str, Any] | None = None,
          **changes: Any) -> bool:
    """Compare-and-set ``job`` from any of ``sources`` to ``target`` with ``changes``;
    True when this call made the change (and wrote ``event``)."""
    sources = tuple(sources)
    for source in sources:
        if target not in TRANSITIONS[source]:
            raise IllegalTransition(f"a fine-tuning job cannot go from {source} to {target}")
    rows = FineTuningJob.objects.filter(pk=job.pk, status__in=sources)
    if where is not None:
        rows = rows.filter(where)
    with transaction.atomic():
        moved = bool(rows.update(status=target, updated_at=timezone.now(), **changes))
        if moved and event:
            add_event(job, event, level=level, data=data)
    return moved


# -- validating_files -----------------------------------------------------------------

def validated(job: FineTuningJob, *, training_examples: int,
              hyperparameters: dict[str, Any]) -> bool:
    """validating_files → queued, with the resolved hyperparameters."""
    h = hyperparameters
    with transaction.atomic():
        moved = _move(job, [S.VALIDATING_FILES], S.QUEUED, training_examples=training_examples,
                      hyperparameters=h,
                      event=f"Files validated: {training_examples} training examples. "
                            f"Training {h['n_epochs']} epochs, batch size {h['batch_size']}, "
                            f"learning rate {h['learning_rate']:g}", data=dict(h))
        if moved:
            add_event(job, "Job enqueued")
    return moved


# -- queued ---------------------------------------------------------------------------

def start_on(job: FineTuningJob, node: str) -> bool:
    """queued → running on ``node`` (whose agent then starts the trainer)."""
    return _move(job, [S.QUEUED], S.RUNNING, node=node, pid=None,
                 started_at=job.started_at or timezone.now(),
                 event=f"Fine-tuning job started on node {node}")


def pause(job: FineTuningJob) -> bool:
    """queued → paused at once (nothing runs yet)."""
    return _move(job, [S.QUEUED], S.PAUSED, estimated_finish=None, event="Job paused")


# -- paused ---------------------------------------------------------------------------

def resume(job: FineTuningJob) -> bool:
    """paused → queued; it continues from its last checkpoint (or from the start)."""
    return _move(job, [S.PAUSED], S.QUEUED, pause_requested=False,
                 event="Job resumed; waiting for a training slot")


# -- running --------------------------------------------------------------------------

def request_cancel(job: FineTuningJob) -> bool:
    """A running job is asked to stop (its agent sends SIGTERM; ``cancelled`` follows)."""
    return _request(job, Q(cancel_requested=False), "Cancellation requested; stopping the "
                    "trainer", cancel_requested=True)


def request_pause(job: FineTuningJob) -> bool:
    """A running job is asked to checkpoint and stop (SIGUSR1; ``paused`` follows)."""
    return _request(job, Q(cancel_requested=False, pause_requested=False),
                    "Pause requested; the trainer checkpoints and stops",
                    pause_requested=True)


def _request(job: FineTuningJob, unset: Q, event: str, **flag: bool) -> bool:
    """Set a stop request on a running job, once; the status stays ``running``."""
    with transaction.atomic():
        moved = bool(FineTuningJob.objects.filter(unset, pk=job.pk, status=S.RUNNING)
                     .update(updated_at=timezone.now(), **flag))
        if moved:
            add_event(job, event)
    return moved


def succeeded(job: FineTuningJob, *, fine_tuned_model: str, result_model: RegisteredModel,
              result_files: list[str], trained_tokens: int | None) -> bool:
    """running → succeeded, with what it produced."""
    changes: dict[str, Any] = {"fine_tuned_model": fine_tuned_model,
                               "result_model": result_model, "result_files": result_files}
    if trained_tokens is not None:
        changes["trained_tokens"] = trained_tokens
    with transaction.atomic():
        moved = _move(job, [S.RUNNING], S.SUCCEEDED, finished_at=timezone.now(),
                      estimated_finish=None,
                      event=f"New fine-tuned model created: {fine_tuned_model}", **changes)
        if moved:
            add_event(job, "The job has successfully completed")
    return moved


def paused_off_node(job: FineTuningJob, *, event: str, level: str = "info",
                    node: str | None = None, refund_attempt: bool = False,
                    data: dict[str, Any] | None = None) -> bool:
    """running → paused, off its node (its training slot is free); a cancel asked meanwhile
    wins (nothing changes). ``node``: only while it still runs there. ``refund_attempt``:
    the trainer paused itself, so that run used no attempt."""
    where = Q(cancel_requested=False) & (Q(node=node) if node is not None else Q())
    changes: dict[str, Any] = {}
    if refund_attempt:
        changes["attempts"] = Greatest(F("attempts") - 1, 0)
    return _move(job, [S.RUNNING], S.PAUSED, where=where, pause_requested=False, node="",
                 pid=None, estimated_finish=None, event=event, level=level, data=data,
                 **changes)


def requeued(job: FineTuningJob, *, event: str) -> bool:
    """running → queued, off its node (lost): it resumes elsewhere from its checkpoint."""
    return _move(job, [S.RUNNING], S.QUEUED, node="", pid=None, event=event, level="warn")


def cancelled_while_running(job: FineTuningJob, *, event: str = "Job cancelled") -> bool:
    """running → cancelled: its trainer stopped (or its node was lost) after a cancel."""
    return _move(job, [S.RUNNING], S.CANCELLED, finished_at=timezone.now(),
                 estimated_finish=None, event=event)


# -- any state that has not ended -----------------------------------------------------

def cancel(job: FineTuningJob) -> bool:
    """validating_files, queued or paused → cancelled at once (no trainer runs)."""
    return _move(job, [S.VALIDATING_FILES, S.QUEUED, S.PAUSED], S.CANCELLED,
                 finished_at=timezone.now(), event="Job cancelled")


def fail(job: FineTuningJob, code: str, message: str, *, param: str | None = None
         ) -> FineTuningJob:
    """validating_files, queued or running → failed, with OpenAI's error object and a
    closing event; returns the job as it now is (failed, or whatever won the race)."""
    _move(job, ACTIVE_STATUSES, S.FAILED,
          error={"code": code, "message": message, "param": param},
          finished_at=timezone.now(), estimated_finish=None,
          event=f"Job failed: {message}", level="error")
    job.refresh_from_db()
    return job
