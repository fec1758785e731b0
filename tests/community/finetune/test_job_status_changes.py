# SPDX-License-Identifier: Apache-2.0
"""A job's status changes only as ``potluck.finetune.lifecycle.TRANSITIONS`` allows, each
as a compare-and-set: of two changes racing from one state, the second changes nothing
and writes no event."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from potluck.finetune import lifecycle, services
from potluck.finetune.models import TERMINAL_STATUSES, FineTuningJob, JobStatus

pytestmark = pytest.mark.django_db
FINETUNE_DIR = Path(lifecycle.__file__).parent


@pytest.fixture
def queued(org, upload, demo_model) -> FineTuningJob:
    job = services.create_job(org, {"model": "potluck-demo", "training_file": upload(org).id})
    return services.validate_job(job.id)


def messages(job: FineTuningJob) -> list[str]:
    return list(job.events.order_by("created_at").values_list("message", flat=True))


def test_ended_jobs_change_no_more_and_every_state_is_stated():
    assert set(lifecycle.TRANSITIONS) == set(JobStatus.values)
    for status in TERMINAL_STATUSES:
        assert lifecycle.TRANSITIONS[status] == frozenset()
    assert lifecycle.TRANSITIONS[JobStatus.PAUSED] == {JobStatus.QUEUED, JobStatus.CANCELLED}


def test_of_two_changes_from_one_state_only_the_first_happens(queued):
    stale = FineTuningJob.objects.get(pk=queued.pk)  # both callers read "queued"
    assert lifecycle.cancel(queued) is True
    assert lifecycle.start_on(stale, "node-a") is False
    assert lifecycle.pause(stale) is False
    stale.refresh_from_db()
    assert (stale.status, stale.node) == (JobStatus.CANCELLED, "")
    assert messages(stale)[-1] == "Job cancelled"
    assert "Job paused" not in messages(stale)


def test_a_stop_request_is_taken_once_and_only_while_running(queued):
    assert lifecycle.request_cancel(queued) is False  # queued: nothing runs to stop
    assert lifecycle.start_on(queued, "node-a") is True
    assert lifecycle.request_pause(queued) is True
    assert lifecycle.request_pause(queued) is False  # asked already
    assert lifecycle.request_cancel(queued) is True  # a cancel still overrides a pause
    queued.refresh_from_db()
    assert queued.status == JobStatus.RUNNING
    assert (queued.pause_requested, queued.cancel_requested) == (True, True)
    # The trainer paused meanwhile, but the cancel wins: the job does not turn paused.
    assert lifecycle.paused_off_node(queued, node="node-a", event="Job paused") is False
    assert lifecycle.cancelled_while_running(queued) is True
    assert messages(queued).count("Job cancelled") == 1


def test_a_change_the_table_does_not_allow_is_refused_before_any_write(queued):
    lifecycle.cancel(queued)
    with pytest.raises(lifecycle.IllegalTransition, match="from paused to running"):
        lifecycle._move(queued, [JobStatus.PAUSED], JobStatus.RUNNING)
    failed = lifecycle.fail(queued, "late", "too late")  # cancelled has no way out
    assert failed.status == JobStatus.CANCELLED and failed.error is None


def test_no_other_module_of_fine_tuning_writes_a_jobs_status():
    """Status writes (``status=`` in an ``update``/``create`` call, or an assignment to
    ``.status``) appear only in lifecycle.py; reads and filters are everywhere."""
    writers = []
    for path in FINETUNE_DIR.rglob("*.py"):
        if path.name == "lifecycle.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Attribute) and t.attr == "status" for t in node.targets):
                writers.append(f"{path.name}:{node.lineno}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("update", "create", "update_or_create")
                    and any(k.arg == "status" for k in node.keywords)):
                writers.append(f"{path.name}:{node.lineno}")
    assert writers == []
