# SPDX-License-Identifier: Apache-2.0
"""A trainer's progress as the node agent reads it: numbered events, metrics, validation
loss at the eval steps, and whole checkpoints announced as they are written."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainer_runs import EVENT_KEYS, LORA_LR, METRICS_KEYS, losses_by_step

# Real training runs or model builds: once per CI run, in its community-only phase.
pytestmark = pytest.mark.slow


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
