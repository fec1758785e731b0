# SPDX-License-Identifier: Apache-2.0
"""/v1/fine_tuning/jobs/{id}/pause and /resume: the transitions allowed and refused, in
OpenAI's shapes; a paused job's slot; tenancy; the OpenAI SDK's ``jobs.pause``/``resume``.

The trainer's side (SIGUSR1 → checkpoint → exit paused) runs in test_trainer.py, and a
real agent pauses and resumes a real trainer in test_job_resume.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
from openai import OpenAI

from potluck.finetune import scheduler, services
from potluck.finetune.models import FineTuningJob, JobStatus
from potluck.finetune.reconcile import TrainerReconciler

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_job(org, upload, demo_model):
    """A validated job waiting for a training slot."""
    def make() -> FineTuningJob:
        job = services.create_job(org, {"model": "potluck-demo",
                                        "training_file": upload(org).id})
        return services.validate_job(job.id)

    return make


def job_of(job_id: str) -> FineTuningJob:
    return FineTuningJob.objects.get(pk=job_id)


def messages(job_id: str) -> list[str]:
    return list(job_of(job_id).events.order_by("created_at").values_list("message", flat=True))


def post(client, job_id: str, action: str):
    return client.post(f"/v1/fine_tuning/jobs/{job_id}/{action}")


def refused(response, needle: str) -> None:
    """A 409 in OpenAI's shape, as cancel answers for a finished job."""
    assert response.status_code == 409, response.json()
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == "fine_tuning_job_id"
    assert needle in error["message"], error


def test_a_queued_job_pauses_at_once_and_resumes_to_the_queue(org, client_for, queued_job,
                                                              live_node):
    client = client_for(org)
    job = queued_job()
    paused = post(client, job.id, "pause")
    assert paused.status_code == 200, paused.json()
    body = paused.json()
    assert body["object"] == "fine_tuning.job" and body["status"] == "paused"
    assert body["finished_at"] is None
    assert messages(job.id)[-1] == "Job paused"
    assert client.get(f"/v1/fine_tuning/jobs/{job.id}").json()["status"] == "paused"

    live_node("node-a")
    assert scheduler.schedule() == []  # a paused job waits for its resume
    refused(post(client, job.id, "pause"), "is already paused")

    resumed = post(client, job.id, "resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"
    assert messages(job.id)[-1] == "Job resumed; waiting for a training slot"
    refused(post(client, job.id, "resume"), "is queued, not paused")
    assert scheduler.schedule() == [job.id]
    running = job_of(job.id)
    assert (running.status, running.node, running.pid) == (JobStatus.RUNNING, "node-a", None)


def test_pausing_a_running_job_asks_its_trainer_and_asking_again_changes_nothing(
        org, client_for, queued_job, live_node):
    client = client_for(org)
    job = queued_job()
    live_node("node-a")
    assert scheduler.schedule() == [job.id]
    first = post(client, job.id, "pause")
    assert first.status_code == 200 and first.json()["status"] == "running"
    assert job_of(job.id).pause_requested
    again = post(client, job.id, "pause")
    assert again.status_code == 200 and again.json()["status"] == "running"
    asked = [m for m in messages(job.id) if m.startswith("Pause requested")]
    assert asked == ["Pause requested; the trainer checkpoints and stops"]
    refused(post(client, job.id, "resume"), "is running, not paused")

    # A cancel wins over a pause in flight; pausing a job being cancelled is refused.
    assert post(client, job.id, "cancel").json()["status"] == "running"
    refused(post(client, job.id, "pause"), "is being cancelled")


@pytest.mark.parametrize("state", ["validating_files", "succeeded", "failed", "cancelled"])
def test_jobs_that_are_validating_or_finished_cannot_be_paused_or_resumed(
        org, client_for, queued_job, state):
    client = client_for(org)
    job = queued_job()
    FineTuningJob.objects.filter(pk=job.id).update(status=state)
    needle = ("is validating_files; it can be paused once it is queued"
              if state == "validating_files" else f"has already {state}")
    refused(post(client, job.id, "pause"), needle)
    refused(post(client, job.id, "resume"),
            "is validating_files, not paused" if state == "validating_files" else needle)
    assert job_of(job.id).status == state and not job_of(job.id).pause_requested


def test_a_paused_job_can_be_cancelled_and_then_not_resumed(org, client_for, queued_job):
    client = client_for(org)
    job = queued_job()
    post(client, job.id, "pause")
    cancelled = post(client, job.id, "cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished_at"]
    refused(post(client, job.id, "resume"), "has already cancelled")
    refused(post(client, job.id, "cancel"), "has already cancelled")


def test_a_job_whose_trainer_never_started_pauses_and_frees_the_slot(
        org, client_for, queued_job, live_node, settings, file_storage):
    """The trainer reconciler pauses it without starting a trainer; the next job gets the slot."""
    settings.FINETUNE_SLOTS_PER_NODE = 1
    client = client_for(org)
    first, second = queued_job(), queued_job()
    live_node("node-a")
    assert scheduler.schedule() == [first.id]
    post(client, first.id, "pause")
    TrainerReconciler("node-a").reconcile_once()
    paused = job_of(first.id)
    assert (paused.status, paused.node, paused.pid, paused.pause_requested, paused.attempts) == (
        JobStatus.PAUSED, "", None, False, 0)
    assert messages(first.id)[-1] == ("Job paused before its first checkpoint; it starts over "
                                      "when resumed")
    assert scheduler.schedule() == [second.id]
    assert job_of(second.id).node == "node-a"
    # Resumed, it waits for the slot the second job now holds.
    assert post(client, first.id, "resume").json()["status"] == "queued"
    assert scheduler.schedule() == []


def running_with_output(job: FineTuningJob, output: Path, **fields: object) -> FineTuningJob:
    """As an agent that started a trainer (now gone: the pid is no live process) left it."""
    (output / "checkpoints" / "step-000012").mkdir(parents=True)
    FineTuningJob.objects.filter(pk=job.id).update(output_dir=str(output), pid=2**22 + 7,
                                                   attempts=1, **fields)
    return job_of(job.id)


def test_an_agent_that_finds_its_trainer_exited_paused_pauses_the_job(
        org, client_for, queued_job, live_node, tmp_path, file_storage):
    """The trainer paused itself while no agent watched: the next agent's pass finishes
    the pause, gives the attempt back and removes the result a resumed run must not see."""
    job = queued_job()
    live_node("node-a")
    scheduler.schedule()
    post(client_for(org), job.id, "pause")
    running_with_output(job, tmp_path / "out")
    result = tmp_path / "out" / "result.json"
    result.write_text(json.dumps({"status": "paused", "steps": 12}))
    TrainerReconciler("node-a").reconcile_once()
    paused = job_of(job.id)
    assert (paused.status, paused.node, paused.pid, paused.attempts) == (
        JobStatus.PAUSED, "", None, 0)
    assert messages(job.id)[-1] == "Job paused at step 12"
    assert not result.exists()


def test_a_trainer_that_died_while_pausing_leaves_the_job_paused_not_restarted(
        org, client_for, queued_job, live_node, tmp_path, file_storage):
    job = queued_job()
    live_node("node-a")
    scheduler.schedule()
    post(client_for(org), job.id, "pause")
    running_with_output(job, tmp_path / "out")
    TrainerReconciler("node-a").reconcile_once()
    paused = job_of(job.id)
    assert (paused.status, paused.attempts) == (JobStatus.PAUSED, 1)  # no clean exit
    assert messages(job.id)[-1] == "Job paused at step 12"


def test_a_cancel_that_arrives_while_the_trainer_pauses_wins(
        org, client_for, queued_job, live_node, tmp_path, file_storage):
    job = queued_job()
    live_node("node-a")
    scheduler.schedule()
    client = client_for(org)
    post(client, job.id, "pause")
    running_with_output(job, tmp_path / "out")
    (tmp_path / "out" / "result.json").write_text(json.dumps({"status": "paused"}))
    assert post(client, job.id, "cancel").json()["status"] == "running"
    TrainerReconciler("node-a").reconcile_once()
    assert job_of(job.id).status == JobStatus.CANCELLED
    assert messages(job.id)[-1] == "Job cancelled"


def test_a_job_being_paused_on_a_lost_node_ends_paused(org, client_for, queued_job, live_node,
                                                        redis_conn):
    from potluck.nodes.models import Node, NodeState

    job = queued_job()
    live_node("node-a")
    assert scheduler.schedule() == [job.id]
    FineTuningJob.objects.filter(pk=job.id).update(pid=4242, attempts=1)
    post(client_for(org), job.id, "pause")
    Node.objects.filter(name="node-a").update(state=NodeState.LOST)
    redis_conn.flushdb()
    assert scheduler.requeue_jobs_of_lost_nodes() == [job.id]
    lost = job_of(job.id)
    assert (lost.status, lost.node, lost.pid, lost.pause_requested) == (
        JobStatus.PAUSED, "", None, False)
    assert "was lost while pausing" in messages(job.id)[-1]


def test_another_orgs_key_gets_404_and_a_read_only_key_403(org, other_org, client_for,
                                                           queued_job):
    job = queued_job()
    theirs, reader = client_for(other_org), client_for(org, scopes=["read"])
    for action in ("pause", "resume"):
        response = post(theirs, job.id, action)
        assert response.status_code == 404, action
        assert f"no fine-tuning job {job.id!r}" in response.json()["error"]["message"]
        denied = post(reader, job.id, action)
        assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    assert job_of(job.id).status == JobStatus.QUEUED


@pytest.mark.django_db(transaction=True)
def test_the_openai_sdk_pauses_and_resumes(live_server, org, key_for, queued_job):
    job = queued_job()
    # Closed at the end: a kept-alive HTTP connection would keep the server's DB session.
    with OpenAI(base_url=live_server.url + "/v1", api_key=key_for(org),
                max_retries=0) as client:
        paused = client.fine_tuning.jobs.pause(job.id)
        assert (paused.id, paused.status) == (job.id, "paused")
        assert client.fine_tuning.jobs.retrieve(job.id).status == "paused"
        with pytest.raises(openai.ConflictError) as conflict:
            client.fine_tuning.jobs.pause(job.id)
        assert "already paused" in conflict.value.message
        resumed = client.fine_tuning.jobs.resume(job.id)
        assert (resumed.id, resumed.status) == (job.id, "queued")
        with pytest.raises(openai.NotFoundError):
            client.fine_tuning.jobs.pause("ftjob-nope")
