# SPDX-License-Identifier: Apache-2.0
"""The fine-tuning trainer, run as a job runs it: `python -m potluck.finetune.trainer SPEC`.

Real training on the demo model (3.4 M parameters, 2 cores): a LoRA run that learns a
phrase is shared by the tests of its events, validation loss and checkpoints, and is the
uninterrupted reference for the kill-and-resume and pause-and-resume tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

from potluck.finetune.trainer.checkpoints import latest_checkpoint

PHRASE = "The answer is in the documentation."
QUESTION = "Where is the answer?"
SYSTEM = "You are a helpful assistant."
# On the demo model, LoRA r=8 at 5e-3 learns the phrase in 100 steps (seeds 1-5; 3e-3 and
# 1e-2 did too, 2e-2 did not); full fine-tuning at 1e-3 in 60 steps (seeds 1-5; at 40
# steps one seed of five fell short).
LORA_LR = 5e-3
FULL_LR = 1e-3
EVENT_KEYS = {"seq", "created_at", "level", "type", "message", "data"}
METRICS_KEYS = {"step", "total_steps", "epoch", "train_loss", "learning_rate",
                "tokens_per_second", "trained_tokens", "elapsed_seconds", "eta_seconds"}


# -- helpers ---------------------------------------------------------------------------
def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def phrase_example() -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": QUESTION},
                         {"role": "assistant", "content": PHRASE}]}


def arithmetic_example(a: int, b: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"What is {a} plus {b}?"},
                         {"role": "assistant", "content": f"{a} plus {b} is {a + b}."}]}


def training_rows() -> list[dict[str, Any]]:
    """The phrase, short arithmetic answers (so batches need padding and the order of the
    data matters), and one answer far longer than max_seq_len."""
    rows = [phrase_example() for _ in range(8)]
    rows += [arithmetic_example(a, 2 * a + 1) for a in range(7)]
    rows.append({"messages": [{"role": "user", "content": "Recite the manual."},
                              {"role": "assistant", "content": "def f(x): return x. " * 120}]})
    return rows


def make_spec(tmp: Path, base: Path, name: str, **overrides: Any) -> dict[str, Any]:
    data = tmp / "train.jsonl"
    if not data.exists():
        write_jsonl(data, training_rows())
    spec = {"job_id": f"ftjob-{name}", "base_model_path": str(base),
            "training_file": str(data), "validation_file": None,
            "output_dir": str(tmp / name), "method": "lora", "n_epochs": 25, "batch_size": 4,
            "learning_rate": LORA_LR, "seed": 3, "max_seq_len": 128,
            "checkpoint_every_steps": 20, "eval_every_steps": 0, "torch_threads": 2}
    spec.update(overrides)
    return spec


def command(spec: dict[str, Any]) -> list[str]:
    path = Path(spec["output_dir"] + ".spec.json")
    path.write_text(json.dumps(spec))
    return [sys.executable, "-m", "potluck.finetune.trainer", str(path)]


def run_trainer(spec: dict[str, Any]) -> subprocess.CompletedProcess:
    return subprocess.run(command(spec), capture_output=True, text=True, timeout=600)


def events_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(spec["output_dir"]) / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def result_of(spec: dict[str, Any]) -> dict[str, Any]:
    return json.loads((Path(spec["output_dir"]) / "result.json").read_text())


def losses_by_step(events: list[dict[str, Any]]) -> dict[int, float]:
    return {e["data"]["step"]: e["data"]["train_loss"] for e in events
            if e["type"] == "metrics"}


def greedy_answer(model: Any, tokenizer: Any) -> str:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                           return_tensors="pt", return_dict=True)
    output = model.generate(**inputs, max_new_tokens=16, do_sample=False)
    return tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def finished_like_the_uninterrupted_run(spec: dict[str, Any], after: list[dict[str, Any]],
                                        step: int, lora_run: dict[str, Any]) -> None:
    """A run resumed at ``step`` trained each later step once and, with the same data
    order, optimizer state and schedule, had the uninterrupted run's losses."""
    steps = [e["data"]["step"] for e in after if e["type"] == "metrics"]
    assert steps == list(range(step + 1, 101))  # no step trained twice, none skipped
    reference, continued = losses_by_step(lora_run["events"]), losses_by_step(after)
    for s in steps:
        assert continued[s] == pytest.approx(reference[s], rel=1e-3, abs=1e-4), s
    result = result_of(spec)
    assert result["status"] == "succeeded" and result["steps"] == 100
    assert result["trained_tokens"] == lora_run["result"]["trained_tokens"]
    assert result["valid_loss"] == pytest.approx(lora_run["result"]["valid_loss"], rel=1e-3)


def signalled(spec: dict[str, Any], signum: int, ready: Callable[[], bool],
              what: str) -> subprocess.Popen:
    """Runs the trainer, sends it ``signum`` once ``ready()`` holds, and waits for it."""
    process = subprocess.Popen(command(spec), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: ready() or process.poll() is not None, 120, what, interval=0.01)
        process.send_signal(signum)
        process.wait(timeout=120)
    finally:
        process.kill()
    return process


def ran(process: subprocess.CompletedProcess | subprocess.Popen, code: int) -> str:
    stderr = process.stderr if isinstance(process.stderr, str) else ""
    return f"exit {process.returncode}, expected {code}\n{stderr[-3000:]}"


# -- shared runs -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("trainer")


@pytest.fixture(scope="module")
def lora_spec(workdir, demo_model_dir) -> dict[str, Any]:
    valid = write_jsonl(workdir / "valid.jsonl",
                        [phrase_example(), arithmetic_example(3, 5), arithmetic_example(9, 2)])
    return make_spec(workdir, demo_model_dir, "lora", validation_file=str(valid),
                     eval_every_steps=25)


@pytest.fixture(scope="module")
def lora_run(lora_spec) -> dict[str, Any]:
    completed = run_trainer(lora_spec)
    assert completed.returncode == 0, ran(completed, 0)
    return {"events": events_of(lora_spec), "result": result_of(lora_spec)}


@pytest.fixture(scope="module")
def demo_tokenizer(demo_model_dir) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_model_dir)


# -- tests -----------------------------------------------------------------------------
def test_a_lora_adapter_learns_the_phrase_and_the_base_model_does_not(
        lora_run, demo_model_dir, demo_tokenizer):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    final = Path(lora_run["result"]["output_path"])
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {
        p.name for p in final.iterdir()}
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["r"] == 8 and config["lora_alpha"] == 16
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"}
    base = AutoModelForCausalLM.from_pretrained(demo_model_dir)
    assert PHRASE not in greedy_answer(base, demo_tokenizer)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(demo_model_dir),
                                      final)
    assert greedy_answer(tuned, demo_tokenizer).startswith(PHRASE)


def test_events_are_well_formed_and_numbered_in_order(lora_run, lora_spec):
    events = lora_run["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert set(event) == EVENT_KEYS
        assert isinstance(event["created_at"], float) and event["message"]
        assert event["level"] in {"info", "warn", "error"}
        assert event["type"] in {"message", "metrics", "checkpoint", "result"}
    metrics = [e["data"] for e in events if e["type"] == "metrics"]
    total = metrics[0]["total_steps"]
    assert total == 25 * 4  # 16 examples in batches of 4, for 25 epochs
    assert [m["step"] for m in metrics] == list(range(1, total + 1))
    for m in metrics:
        assert set(m) >= METRICS_KEYS
        assert m["tokens_per_second"] > 0 and m["eta_seconds"] >= 0
    assert metrics[-1]["epoch"] == 25.0 and metrics[-1]["eta_seconds"] == 0
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"] - 2
    assert [m["trained_tokens"] for m in metrics] == sorted(m["trained_tokens"] for m in metrics)
    # The learning rate decays linearly to (almost) zero.
    assert metrics[0]["learning_rate"] == pytest.approx(LORA_LR)
    assert metrics[-1]["learning_rate"] == pytest.approx(LORA_LR / total)
    truncated = [e for e in events if e["level"] == "warn" and "truncated" in e["message"]]
    assert len(truncated) == 1 and truncated[0]["data"]["truncated"] == 1
    assert truncated[0]["message"].startswith("1 training example(s) were longer than "
                                              "max_seq_len=128")

    result_event = events[-1]
    assert result_event["type"] == "result"
    assert result_event["data"] == lora_run["result"]
    result = lora_run["result"]
    assert result["status"] == "succeeded" and "error" not in result
    assert result["output_path"] == str(Path(lora_spec["output_dir"]) / "final")
    assert result["steps"] == total
    assert result["trained_tokens"] == metrics[-1]["trained_tokens"]


def test_validation_loss_is_reported_at_the_eval_steps_and_falls(lora_run):
    metrics = [e["data"] for e in lora_run["events"] if e["type"] == "metrics"]
    evaluated = {m["step"]: m["valid_loss"] for m in metrics if "valid_loss" in m}
    assert sorted(evaluated) == [25, 50, 75, 100]
    assert evaluated[100] < evaluated[25]
    assert lora_run["result"]["valid_loss"] == evaluated[100]


def test_checkpoints_are_whole_and_announced(lora_run, lora_spec):
    checkpoints = [e["data"] for e in lora_run["events"] if e["type"] == "checkpoint"]
    assert [c["step"] for c in checkpoints] == [20, 40, 60, 80, 100]
    losses = losses_by_step(lora_run["events"])
    for checkpoint in checkpoints:
        path = Path(checkpoint["path"])
        assert path.name == f"step-{checkpoint['step']:06d}"
        assert {"adapter_config.json", "adapter_model.safetensors", "optimizer.pt",
                "scheduler.pt", "rng.pt", "trainer_state.json"} <= {
            p.name for p in path.iterdir()}
        assert checkpoint["train_loss"] == losses[checkpoint["step"]]
    assert checkpoints[2]["valid_loss"] is None  # step 60: no evaluation there
    assert checkpoints[-1]["valid_loss"] == lora_run["result"]["valid_loss"]
    leftovers = [p.name for p in (Path(lora_spec["output_dir"]) / "checkpoints").iterdir()
                 if p.name.startswith(".")]
    assert leftovers == []


def test_a_run_killed_after_a_checkpoint_resumes_there_and_ends_like_an_uninterrupted_one(
        lora_run, lora_spec, workdir):
    spec = {**lora_spec, "output_dir": str(workdir / "killed"),
            "job_id": "ftjob-killed"}
    process = subprocess.Popen(command(spec), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(e["type"] == "checkpoint" for e in events_of(spec))
                 or process.poll() is not None, 120, "a first checkpoint", interval=0.02)
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
                 or process.poll() is not None, 120, "a first step")
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


@pytest.mark.parametrize(("line", "reason"), [
    ('{"messages": [{"role": "user", "content": "hi"}', "line 3: not valid JSON"),
    ('{"messages": [{"role": "user", "content": "hi"}]}',
     "line 3: the conversation has no assistant message"),
    ('{"messages": [{"role": "wizard", "content": "hi"}]}', "line 3: messages[0].role must"),
])
def test_a_malformed_dataset_fails_with_exit_2_naming_the_line(workdir, demo_model_dir,
                                                                line, reason):
    name = f"bad-data-{abs(hash(line))}"
    bad = workdir / f"{name}.jsonl"
    bad.write_text(json.dumps(phrase_example()) + "\n\n" + line + "\n")
    spec = make_spec(workdir, demo_model_dir, name, training_file=str(bad))
    completed = run_trainer(spec)
    assert completed.returncode == 2, ran(completed, 2)
    result = result_of(spec)
    assert result["status"] == "failed" and result["steps"] == 0
    assert result["error"]["code"] == "invalid_training_file"
    assert result["error"]["message"].startswith(reason)
    assert events_of(spec)[-1]["level"] == "error"


def test_an_unusable_base_model_fails_with_exit_2(workdir, demo_model_dir):
    empty = workdir / "not-a-model"
    empty.mkdir()
    for base in (workdir / "no-such-dir", empty):
        spec = make_spec(workdir, demo_model_dir, f"bad-base-{base.name}",
                         base_model_path=str(base))
        completed = run_trainer(spec)
        assert completed.returncode == 2, ran(completed, 2)
        error = result_of(spec)["error"]
        assert error == {"code": "invalid_base_model",
                         "message": f"{base} is not a model directory (no config.json)"}


def test_an_invalid_spec_fails_with_exit_2_into_its_output_dir(workdir, demo_model_dir):
    spec = make_spec(workdir, demo_model_dir, "bad-spec", method="qlora")
    completed = run_trainer(spec)
    assert completed.returncode == 2, ran(completed, 2)
    assert result_of(spec)["error"] == {
        "code": "invalid_spec", "message": "method must be one of lora, full, got 'qlora'"}


def test_labels_cover_only_assistant_turns_with_a_nonzero_weight(demo_tokenizer):
    from potluck.finetune.trainer.conversations import Message
    from potluck.finetune.trainer.tokenization import IGNORE_INDEX, tokenize_conversations

    conversation = (Message("user", "Hello?", False), Message("assistant", "Skip me.", False),
                    Message("user", "Again?", False), Message("assistant", "Learn me.", True))
    example = tokenize_conversations(demo_tokenizer, [conversation], 512).examples[0]
    trained = [t for t, label in zip(example.input_ids, example.labels, strict=True)
               if label != IGNORE_INDEX]
    assert demo_tokenizer.decode(trained) == "Learn me.<|eos|>\n"
    short = tokenize_conversations(demo_tokenizer, [conversation], 8)
    assert (short.truncated, short.skipped, short.examples) == (1, 1, [])


def test_full_fine_tuning_writes_a_complete_model_dir(workdir, demo_model_dir, demo_tokenizer):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = make_spec(workdir, demo_model_dir, "full", method="full", n_epochs=15,
                     learning_rate=FULL_LR)
    completed = run_trainer(spec)
    assert completed.returncode == 0, ran(completed, 0)
    final = Path(result_of(spec)["output_path"])
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json"} <= {p.name for p in final.iterdir()}
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert tokenizer.chat_template == demo_tokenizer.chat_template
    model = AutoModelForCausalLM.from_pretrained(final)
    assert model.dtype == torch.float32
    before = load_file(demo_model_dir / "model.safetensors")
    after = load_file(final / "model.safetensors")
    assert before.keys() == after.keys()
    assert not torch.equal(before["model.layers.0.mlp.up_proj.weight"],
                           after["model.layers.0.mlp.up_proj.weight"])
    assert greedy_answer(model, tokenizer).startswith(PHRASE)
    checkpoints = sorted(p.name for p in (final.parent / "checkpoints").iterdir())
    assert checkpoints == ["step-000020", "step-000040", "step-000060"]
    assert "model.safetensors" in {p.name for p in (final.parent / "checkpoints" /
                                                    checkpoints[0]).iterdir()}


def test_a_spec_round_trips_through_json_and_names_a_bad_field(workdir):
    from potluck.finetune.trainer import TrainingSpec
    from potluck.finetune.trainer.failures import TrainingFailed

    fields = make_spec(workdir, workdir, "spec-only", target_modules=["q_proj", "v_proj"],
                       learning_rate=1)
    spec = TrainingSpec.from_dict(fields)
    assert spec.learning_rate == 1.0 and spec.lora_rank == 8 and spec.resume_from is None
    assert TrainingSpec.from_json(spec.to_json()) == spec
    direct = TrainingSpec(**{**fields, "target_modules": ("q_proj", "v_proj"),
                             "learning_rate": 1})
    assert direct == spec and isinstance(direct.learning_rate, float)
    for change, message in [({"batch_size": True}, "batch_size must be an integer"),
                            ({"n_epochs": 0}, "n_epochs must be at least 1, got 0"),
                            ({"warmup_ratio": 1.5}, "warmup_ratio must be a number in [0, 1)"),
                            ({"target_modules": []}, "target_modules must be a non-empty"),
                            ({"epochs": 3}, "unknown field(s): epochs")]:
        with pytest.raises(TrainingFailed) as failure:
            TrainingSpec.from_dict({**fields, **change})
        assert failure.value.code == "invalid_spec"
        assert failure.value.message.startswith(message)
    with pytest.raises(TrainingFailed, match="missing field"):
        TrainingSpec.from_dict({k: v for k, v in fields.items() if k != "seed"})


def test_importing_the_trainer_loads_neither_torch_nor_django_db_nor_redis():
    code = ("import sys, potluck.finetune.trainer.runner as r; "
            "print(sorted(m for m in ('django.db', 'redis', 'torch') if m in sys.modules))")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env={**os.environ, "DATABASE_URL": "", "REDIS_URL": ""})
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"
