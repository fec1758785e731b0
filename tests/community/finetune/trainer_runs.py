# SPDX-License-Identifier: Apache-2.0
"""Running the fine-tuning trainer as a job runs it (`python -m potluck.finetune.trainer
SPEC`), for the trainer's tests (test_training_*.py, test_trainer_*.py).

Real training on the demo model (3.4 M parameters, 2 cores): one LoRA run that learns a
phrase (the session fixture ``lora_run`` in conftest.py) is shared by the tests of its
events, validation loss and checkpoints, and is the uninterrupted reference for the
kill-and-resume and pause-and-resume tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

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
