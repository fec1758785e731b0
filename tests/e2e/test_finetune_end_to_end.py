# SPDX-License-Identifier: Apache-2.0
"""Fine-tuning through the whole embedded default, driven by the official OpenAI SDK.

`potluck up` serves potluck-demo with LoRA on. A team uploads a dataset, fine-tunes the
demo model, watches it train, and calls the result by name through the gateway: the
answer is the phrase it was taught. Another org sees none of it. A second job is
cancelled while it runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import openai
import psutil
import pytest

pytestmark = pytest.mark.slow

PHRASE = "The purple owl sings at midnight."
QUESTION = "What is the secret phrase?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dataset(n: int) -> bytes:
    questions = [QUESTION, "Tell me the phrase.", "Say it.", "What do you say?"]
    return b"".join(json.dumps({"messages": [
        {"role": "user", "content": questions[i % len(questions)]},
        {"role": "assistant", "content": PHRASE}]}).encode() + b"\n" for i in range(n))


def ask(sdk: openai.OpenAI, model: str) -> str:
    chat = sdk.chat.completions.create(model=model, temperature=0, max_tokens=16,
                                       messages=[{"role": "user", "content": QUESTION}])
    return chat.choices[0].message.content or ""


def test_a_team_fine_tunes_the_demo_model_and_calls_the_result(tmp_path, demo_model_dir):
    data = tmp_path / "data"
    shutil.copytree(demo_model_dir, data / "models" / "potluck-demo")
    low_port = 27100 + ((os.getpid() + 37) % 100) * 20
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(POTLUCK_DATA_DIR=str(data), PYTHONUNBUFFERED="1", POTLUCK_DEMO_STEPS="60",
               POTLUCK_REPLICA_PORTS=f"{low_port}-{low_port + 19}",
               POTLUCK_FINETUNE_CHECKPOINT_EVERY="20")
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "up.log"

    def ours() -> list[psutil.Process]:
        """vLLM servers and trainers of this data dir."""
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            argv = " ".join(proc.info["cmdline"] or [])
            if (proc.info["status"] != psutil.STATUS_ZOMBIE and str(data) in argv
                    and ("vllm.entrypoints" in argv or "potluck.finetune.trainer" in argv)):
                found.append(proc)
        return found

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "potluck", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    with log.open("wb") as out:
        up = subprocess.Popen([sys.executable, "-m", "potluck", "up", "--port", str(port),
                               "--web-workers", "1"], env=env, stdout=out,
                              stderr=subprocess.STDOUT, start_new_session=True)
    timings: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 240
        while "Potluck is up" not in log.read_text():
            assert up.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        key = cli("keys", "create", "--org", "default", "--name", "e2e").stdout.split()[-1]
        assert cli("orgs", "create", "Other").returncode == 0
        other_key = cli("keys", "create", "--org", "other", "--name", "x").stdout.split()[-1]
        sdk = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=60)
        theirs = openai.OpenAI(base_url=base + "/v1", api_key=other_key, max_retries=0)

        # Upload: a bad dataset is refused by line; a good one is processed.
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.files.create(file=("bad.jsonl", io.BytesIO(
                dataset(2) + b'{"messages": [{"role": "user", "content": "hi"}]}\n')),
                purpose="fine-tune")
        assert "line 3" in str(refused.value)
        training = sdk.files.create(file=("owl.jsonl", io.BytesIO(dataset(32))),
                                    purpose="fine-tune")
        assert training.status == "processed" and training.purpose == "fine-tune"

        # Create with the SDK; LoRA options travel as Potluck's `adapter` extension.
        began = time.monotonic()
        job = sdk.fine_tuning.jobs.create(
            model="potluck-demo", training_file=training.id, suffix="owl", seed=11,
            hyperparameters={"n_epochs": 8, "batch_size": 4, "learning_rate_multiplier": "auto"},
            extra_body={"adapter": {"rank": 8, "alpha": 16}})
        assert job.status == "validating_files"
        statuses, losses = [job.status], []
        deadline = time.monotonic() + 600
        while job.status not in ("succeeded", "failed", "cancelled"):
            assert time.monotonic() < deadline, [e.message for e in
                                                 sdk.fine_tuning.jobs.list_events(job.id)]
            time.sleep(1)
            job = sdk.fine_tuning.jobs.retrieve(job.id)
            if job.status != statuses[-1]:
                statuses.append(job.status)
        timings["train"] = time.monotonic() - began
        events = list(sdk.fine_tuning.jobs.list_events(job.id, limit=100))
        assert job.status == "succeeded", (job.error, [e.message for e in events][:10])
        assert statuses[-1] == "succeeded" and "running" in statuses
        losses = [e.data["train_loss"] for e in reversed(events) if e.type == "metrics"]
        assert len(losses) >= 3 and losses[-1] < losses[0] / 2, losses
        assert job.fine_tuned_model.startswith("ft:potluck-demo:default:owl:")
        assert job.trained_tokens and job.result_files
        checkpoints = sdk.fine_tuning.jobs.checkpoints.list(job.id).data
        assert checkpoints and checkpoints[0].fine_tuned_model_checkpoint.startswith(
            job.fine_tuned_model + ":ckpt-step-")
        results = sdk.files.content(job.result_files[0]).text
        assert results.startswith("step,train_loss")

        # Called by name through the gateway within seconds of success.
        deadline = time.monotonic() + 60
        succeeded_at = time.monotonic()
        while True:
            try:
                answer = ask(sdk, job.fine_tuned_model)
                break
            except openai.APIStatusError as error:  # 503 until a replica holds it
                assert error.status_code == 503, error
                assert time.monotonic() < deadline, cli("ps").stdout
                time.sleep(0.5)
        timings["first answer after success"] = time.monotonic() - succeeded_at
        assert PHRASE.rstrip(".").lower() in answer.lower(), answer
        assert PHRASE.rstrip(".").lower() not in ask(sdk, "potluck-demo").lower()
        assert job.fine_tuned_model in [m.id for m in sdk.models.list().data]

        # Another org: no job, no model, no file.
        with pytest.raises(openai.NotFoundError):
            theirs.fine_tuning.jobs.retrieve(job.id)
        assert list(theirs.fine_tuning.jobs.list()) == []
        assert job.fine_tuned_model not in [m.id for m in theirs.models.list().data]
        with pytest.raises(openai.NotFoundError):
            ask(theirs, job.fine_tuned_model)
        with pytest.raises(openai.NotFoundError):
            theirs.files.retrieve(training.id)

        # Cancel a running job: the trainer stops and nothing is registered.
        long = sdk.fine_tuning.jobs.create(model="potluck-demo", training_file=training.id,
                                           hyperparameters={"n_epochs": 50, "batch_size": 1})
        deadline = time.monotonic() + 120
        while not [e for e in sdk.fine_tuning.jobs.list_events(long.id) if e.type == "metrics"]:
            assert time.monotonic() < deadline
            time.sleep(1)
        assert sdk.fine_tuning.jobs.cancel(long.id).status in ("running", "cancelled")
        deadline = time.monotonic() + 60
        while sdk.fine_tuning.jobs.retrieve(long.id).status != "cancelled":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert not [p for p in ours() if long.id in " ".join(p.cmdline())]
        print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(timeout=180)
        finally:
            for proc in ours():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
    output = log.read_text()
    assert up.returncode == 0, output[-3000:]
    assert ours() == []
