# SPDX-License-Identifier: Apache-2.0
"""A trainer killed, cancelled (SIGTERM) or paused (SIGUSR1) stops where it says, and a
run resumed from its checkpoint ends exactly like the uninterrupted one."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from trainer_runs import (
    command,
    events_of,
    finished_like_the_uninterrupted_run,
    losses_by_step,
    make_spec,
    ran,
    result_of,
    run_trainer,
    signalled,
)
from waiting import wait_for

from potluck.finetune.trainer.checkpoints import latest_checkpoint

# Real training runs or model builds: once per CI run, in its community-only phase.
pytestmark = pytest.mark.slow


def test_a_run_killed_after_a_checkpoint_resumes_there_and_ends_like_an_uninterrupted_one(
        lora_run, lora_spec, workdir):
    spec = {**lora_spec, "output_dir": str(workdir / "killed"),
            "job_id": "ftjob-killed"}
    process = subprocess.Popen(command(spec), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(e["type"] == "checkpoint" for e in events_of(spec))
                 or process.poll() is not None, 300, "a first checkpoint", interval=0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL  # killed mid-run, not finished
    before = events_of(spec)
    assert not (Path(spec["output_dir"]) / "result.json").exists()
    checkpoint = latest_checkpoint(spec["output_dir"])
    assert checkpoint is not None
    step = int(checkpoint.name.removeprefix("step-"))
    assert step % 20 == 0 and step < 100

    resumed = run_trainer({**spec, "resume_from": str(checkpoint)})
    assert resumed.returncode == 0, ran(resumed, 0)
    after = events_of(spec)[len(before):]
    assert [e["seq"] for e in after] == list(range(before[-1]["seq"] + 1,
                                                   before[-1]["seq"] + 1 + len(after)))
    notes = [e["message"] for e in after if e["type"] == "message"]
    assert f"Resumed from checkpoint at step {step}" in notes
    finished_like_the_uninterrupted_run(spec, after, step, lora_run)


def test_sigterm_cancels_after_the_current_step_and_a_second_trainer_is_refused(
        workdir, demo_model_dir):
    spec = make_spec(workdir, demo_model_dir, "cancelled", n_epochs=1000,
                     checkpoint_every_steps=0)
    process = subprocess.Popen(command(spec), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(e["type"] == "metrics" for e in events_of(spec))
                 or process.poll() is not None, 300, "a first step")
        # A second trainer started by mistake on the same output dir leaves it alone.
        second = run_trainer(spec)
        assert second.returncode == 2, ran(second, 2)
        assert "another trainer is running" in second.stderr
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 3, ran(process, 3)
    events = events_of(spec)
    result = result_of(spec)
    assert events[-1]["type"] == "result" and events[-1]["data"] == result
    assert result["status"] == "cancelled" and result["output_path"] is None
    last_step = [e["data"]["step"] for e in events if e["type"] == "metrics"][-1]
    assert 1 <= result["steps"] == last_step < 4000
    assert not (Path(spec["output_dir"]) / "final").exists()


def test_sigterm_during_start_up_cancels_before_any_step(workdir, demo_model_dir):
    spec = make_spec(workdir, demo_model_dir, "cancelled-early")
    events_file = Path(spec["output_dir"]) / "events.jsonl"
    # The file exists once the run has its signal handler, before torch is imported.
    process = signalled(spec, signal.SIGTERM, events_file.exists, "the events file")
    assert process.returncode == 3, ran(process, 3)
    result = result_of(spec)
    assert result["status"] == "cancelled" and result["steps"] == 0
    assert not [e for e in events_of(spec) if e["type"] == "metrics"]


def test_sigusr1_pauses_with_a_checkpoint_of_the_finished_step_that_resumes_exactly(
        lora_run, lora_spec, workdir):
    spec = {**lora_spec, "output_dir": str(workdir / "paused"), "job_id": "ftjob-paused"}
    process = signalled(spec, signal.SIGUSR1,
                        lambda: len(losses_by_step(events_of(spec))) >= 3, "three steps")
    assert process.returncode == 4, ran(process, 4)
    before = events_of(spec)
    result = result_of(spec)
    assert before[-1]["type"] == "result" and before[-1]["data"] == result
    assert result["status"] == "paused" and result["output_path"] is None
    step = max(losses_by_step(before))
    # Paused between regular checkpoints (every 20 steps): the pause wrote its own.
    assert 3 <= result["steps"] == step < 20
    saved = [e["data"] for e in before if e["type"] == "checkpoint"]
    assert [c["step"] for c in saved] == [step]
    checkpoint = latest_checkpoint(spec["output_dir"])
    assert checkpoint is not None and checkpoint.name == f"step-{step:06d}"
    assert not (Path(spec["output_dir"]) / "final").exists()

    resumed = run_trainer({**spec, "resume_from": str(checkpoint)})
    assert resumed.returncode == 0, ran(resumed, 0)
    after = events_of(spec)[len(before):]
    assert f"Resumed from checkpoint at step {step}" in [e["message"] for e in after]
    finished_like_the_uninterrupted_run(spec, after, step, lora_run)


def test_sigusr1_during_start_up_pauses_before_any_step_without_a_checkpoint(
        workdir, demo_model_dir):
    spec = make_spec(workdir, demo_model_dir, "paused-early")
    events_file = Path(spec["output_dir"]) / "events.jsonl"
    process = signalled(spec, signal.SIGUSR1, events_file.exists, "the events file")
    assert process.returncode == 4, ran(process, 4)
    result = result_of(spec)
    assert result["status"] == "paused" and result["steps"] == 0
    assert not [e for e in events_of(spec) if e["type"] in ("metrics", "checkpoint")]
    assert latest_checkpoint(spec["output_dir"]) is None
