# SPDX-License-Identifier: Apache-2.0
"""A real node agent runs a real trainer: adoption after an agent kill, resume from the
last checkpoint after the trainer dies too, cancel of a running job, pause and resume.

No vLLM here (nothing is deployed): the finished adapter is registered, and loading it
into replicas is covered by the end-to-end test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ft_data import chat_lines
from live_agent import kill_group
from waiting import wait_for

from potluck.finetune import services
from potluck.finetune.models import FineTuningCheckpoint, FineTuningJob, JobStatus
from potluck.finetune.reconcile import find_trainer
from potluck.registry.models import RegisteredModel

pytestmark = pytest.mark.slow
NODE = "trainer-node"


def potluck(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "potluck", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def job_of(job_id: str) -> FineTuningJob:
    return FineTuningJob.objects.get(pk=job_id)


def messages(job_id: str) -> list[str]:
    return list(FineTuningJob.objects.get(pk=job_id).events.order_by("created_at")
                .values_list("message", flat=True))


@pytest.fixture
def agent_env(live_env, file_storage):
    assert str(file_storage) == live_env["POTLUCK_DATA_DIR"]  # one data dir for both
    return {"POTLUCK_FINETUNE_CHECKPOINT_EVERY": "10"}


def test_a_job_survives_agent_kills_and_resumes_from_its_checkpoint(
        org, upload, demo_model, start_agent, agent_env):
    training = upload(org, chat_lines(64))
    job = services.create_job(org, {"model": "potluck-demo", "training_file": training.id,
                                    "hyperparameters": {"n_epochs": 6, "batch_size": 2},
                                    "suffix": "owl", "seed": 3})
    agent = start_agent(NODE, **agent_env)
    # validate → queued → scheduled: all through the real broker and the agent.
    wait_for(lambda: job_of(job.id).status == JobStatus.RUNNING and job_of(job.id).pid,
             90, "the job to run")
    first_pid = job_of(job.id).pid

    # The agent dies hard; the trainer lives in its own session and is adopted.
    wait_for(lambda: FineTuningCheckpoint.objects.filter(job_id=job.id).exists(), 120,
             "a first checkpoint")
    agent.kill()
    assert find_trainer(job.id).pid == first_pid
    agent = start_agent(NODE, **agent_env)
    wait_for(lambda: "adopted the trainer of " + job.id in agent.output(), 60, "adoption")

    # Now the trainer dies with it: the next agent resumes from the last checkpoint.
    before = FineTuningCheckpoint.objects.filter(job_id=job.id).count()
    wait_for(lambda: FineTuningCheckpoint.objects.filter(job_id=job.id).count() > before,
             120, "another checkpoint")
    agent.kill()
    kill_group(first_pid)
    wait_for(lambda: find_trainer(job.id) is None, 30, "the trainer to die")
    last = FineTuningCheckpoint.objects.filter(job_id=job.id).order_by("-step_number").first()
    agent = start_agent(NODE, **agent_env)
    wait_for(lambda: job_of(job.id).status in (JobStatus.SUCCEEDED, JobStatus.FAILED), 300,
             "the job to finish")

    done = job_of(job.id)
    assert done.status == JobStatus.SUCCEEDED, (done.error, messages(job.id)[-5:])
    assert done.attempts == 2 and done.pid != first_pid
    said = messages(job.id)
    resumed = [m for m in said if "stopped unexpectedly" in m]
    assert len(resumed) == 1 and "checkpoint" in resumed[0], said
    # The trainer picked up from the last checkpoint the reconciler had recorded (or a
    # later one written just before the kill), not from the start.
    picked = [int(m.rsplit("step ", 1)[1].split()[0].rstrip(".")) for m in said
              if m.startswith("Resumed from checkpoint at step")]
    assert len(picked) == 1 and picked[0] >= last.step_number, said
    steps = list(done.events.filter(type="metrics").order_by("created_at")
                 .values_list("data__step", flat=True))
    assert steps[-1] == done.events.filter(type="metrics").order_by(
        "-created_at").first().data["total_steps"]
    assert done.fine_tuned_model == f"ft:potluck-demo:{org.slug}:owl:{job.id[6:]}"
    adapter = RegisteredModel.objects.get(name=done.fine_tuned_model)
    assert adapter.organization_id == org.id and adapter.base_id == demo_model.id
    assert done.trained_tokens and done.result_files
    assert agent.stop() == 0


def test_cancelling_a_running_job_from_the_cli_stops_its_trainer(
        org, upload, demo_model, start_agent, agent_env, live_env):
    training = upload(org, chat_lines(64))
    job = services.create_job(org, {"model": "potluck-demo", "training_file": training.id,
                                    "hyperparameters": {"n_epochs": 50, "batch_size": 1}})
    start_agent(NODE, **agent_env)
    wait_for(lambda: job_of(job.id).events.filter(type="metrics").exists(), 120,
             "training to report progress")
    pid = job_of(job.id).pid
    listed = potluck(live_env, "fine-tunes", "list", "--org", org.slug)
    assert listed.returncode == 0 and job.id in listed.stdout and "running" in listed.stdout
    watcher = subprocess.Popen([sys.executable, "-m", "potluck", "fine-tunes", "watch", job.id,
                                "--org", org.slug], env=live_env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    asked = time.monotonic()
    cancelled = potluck(live_env, "fine-tunes", "cancel", job.id, "--org", org.slug)
    assert cancelled.returncode == 0 and cancelled.stdout.strip() == f"{job.id} cancelling"
    wait_for(lambda: job_of(job.id).status == JobStatus.CANCELLED, 60, "cancellation")
    took = time.monotonic() - asked
    out, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 0 and out.strip().endswith(f"{job.id} cancelled")
    again = potluck(live_env, "fine-tunes", "cancel", job.id, "--org", org.slug)
    assert again.returncode == 1 and again.stderr.startswith("error: ")
    assert find_trainer(job.id) is None
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive
    assert messages(job.id)[-1] == "Job cancelled"
    assert not RegisteredModel.objects.filter(name__startswith="ft:").exists()
    print(f"cancel took {took:.1f}s")


def test_a_paused_job_frees_its_slot_and_resumes_from_its_pause_checkpoint(
        org, upload, demo_model, start_agent, agent_env, live_env):
    training = upload(org, chat_lines(64))
    job = services.create_job(org, {"model": "potluck-demo", "training_file": training.id,
                                    "hyperparameters": {"n_epochs": 2, "batch_size": 2},
                                    "seed": 5})
    # An early first checkpoint and short passes: the pause reaches the trainer well before
    # its last step, however fast this machine trains.
    start_agent(NODE, **{**agent_env, "POTLUCK_FINETUNE_CHECKPOINT_EVERY": "3",
                         "POTLUCK_FINETUNE_RECONCILE_SECONDS": "0.2"})
    wait_for(lambda: job_of(job.id).status == JobStatus.RUNNING and job_of(job.id).pid,
             90, "the job to run")
    pid = job_of(job.id).pid
    events = Path(job_of(job.id).output_dir) / "events.jsonl"

    def checkpointed() -> bool:
        lines = events.read_text().splitlines() if events.exists() else []
        return any(json.loads(line)["type"] == "checkpoint" for line in lines[:-1])

    wait_for(checkpointed, 120, "a first checkpoint", interval=0.02)
    asked = time.monotonic()
    assert services.pause_job(org, job.id).status == JobStatus.RUNNING  # the trainer is asked
    wait_for(lambda: job_of(job.id).status != JobStatus.RUNNING, 60, "the pause")
    took = time.monotonic() - asked

    paused = job_of(job.id)
    assert paused.status == JobStatus.PAUSED, messages(job.id)[-5:]
    # Off the node, its slot free, and the pause cost no attempt.
    assert (paused.node, paused.pid, paused.pause_requested, paused.attempts) == (
        "", None, False, 0)
    assert not FineTuningJob.objects.filter(node=NODE, status=JobStatus.RUNNING).exists()
    assert find_trainer(job.id) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    said = [m for m in messages(job.id) if m.startswith("Job paused at step ")]
    assert len(said) == 1, messages(job.id)[-5:]
    step = int(said[0].rsplit(" ", 1)[1])
    total = paused.events.filter(type="metrics").first().data["total_steps"]
    assert 3 <= step < total == 64  # 64 examples in batches of 2, for 2 epochs
    last = FineTuningCheckpoint.objects.filter(job_id=job.id).order_by("-step_number").first()
    assert last.step_number == step and Path(last.path).name == f"step-{step:06d}"

    again = potluck(live_env, "fine-tunes", "pause", job.id, "--org", org.slug)
    assert again.returncode == 1 and "is already paused" in again.stderr
    resumed = potluck(live_env, "fine-tunes", "resume", job.id, "--org", org.slug)
    assert resumed.returncode == 0 and resumed.stdout.strip() == f"{job.id} queued"
    wait_for(lambda: job_of(job.id).status in (JobStatus.SUCCEEDED, JobStatus.FAILED), 120,
             "the job to finish")

    done = job_of(job.id)
    assert done.status == JobStatus.SUCCEEDED, (done.error, messages(job.id)[-5:])
    assert done.attempts == 1 and done.fine_tuned_model
    assert f"Resumed from checkpoint at step {step}" in messages(job.id)
    # Every planned step trained once: up to the pause, then from the step after it.
    steps = list(done.events.filter(type="metrics").order_by("trainer_seq")
                 .values_list("data__step", flat=True))
    assert steps == list(range(1, total + 1))
    print(f"paused at step {step} of {total}, {took:.1f}s after asking")
