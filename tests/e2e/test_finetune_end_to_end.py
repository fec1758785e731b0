# SPDX-License-Identifier: Apache-2.0
"""Fine-tuning through the whole embedded default, driven by the official OpenAI SDK.

`potluck up` serves potluck-demo with LoRA on. A team uploads a dataset, fine-tunes the
demo model, watches it train, and calls the result by name through the gateway: the
answer is the phrase it was taught. Another org sees none of it. A second job is
cancelled while it runs.
"""

from __future__ import annotations

import io
import json
import time

import openai
import pytest
from embedded import potluck_up

pytestmark = pytest.mark.slow

PHRASE = "The purple owl sings at midnight."
QUESTION = "What is the secret phrase?"



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
    timings: dict[str, float] = {}
    with potluck_up(tmp_path, demo_model_dir, slot=1,
                    POTLUCK_FINETUNE_CHECKPOINT_EVERY="20") as up:
        cli, base = up.cli, up.base
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
        assert not [p for p in up.ours() if long.id in " ".join(p.cmdline())]
        print("timings (s):", {k: round(v, 1) for k, v in timings.items()})
    assert up.returncode == 0, up.output()[-3000:]
    assert up.ours() == []
