# SPDX-License-Identifier: Apache-2.0
"""Checkpoints: everything needed to resume a run exactly, written atomically.

``checkpoints/step-000050/`` holds the weights (a peft adapter, or the whole model), the
optimizer and scheduler state, the RNG state and ``trainer_state.json``. It is written
into a hidden temporary directory that is renamed into place once complete, so a process
killed at any moment leaves only whole checkpoints under their step names. (A rename
survives the process; surviving a power cut as well would need an fsync per file.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.finetune.trainer.failures import INVALID_CHECKPOINT, TrainingFailed

if TYPE_CHECKING:
    import torch

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
RNG_FILE = "rng.pt"
STATE_VERSION = 1
STEP_DIR = re.compile(r"^step-(\d{6,})$")


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


@dataclass(frozen=True)
class CheckpointState:
    """``trainer_state.json``: where the run was, and what it was running."""

    step: int
    trained_tokens: int
    train_loss: float | None
    valid_loss: float | None
    # What must match for the resumed run to continue the same training:
    method: str
    examples: int
    batch_size: int
    n_epochs: int
    seed: int
    lora: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "step": self.step,
                "trained_tokens": self.trained_tokens, "train_loss": self.train_loss,
                "valid_loss": self.valid_loss, "method": self.method,
                "examples": self.examples, "batch_size": self.batch_size,
                "n_epochs": self.n_epochs, "seed": self.seed, "lora": self.lora}


def save_checkpoint(output_dir: Path, state: CheckpointState, *, save_weights: Any,
                    optimizer: torch.optim.Optimizer, scheduler: Any) -> Path:
    """Write the checkpoint of ``state.step``; ``save_weights(dir)`` writes the weights."""
    import torch

    parent = output_dir / CHECKPOINTS_DIR
    parent.mkdir(parents=True, exist_ok=True)
    name = step_dir_name(state.step)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=parent))
    try:
        save_weights(staging)
        torch.save(optimizer.state_dict(), staging / OPTIMIZER_FILE)
        torch.save(scheduler.state_dict(), staging / SCHEDULER_FILE)
        torch.save({"torch": torch.get_rng_state()}, staging / RNG_FILE)
        (staging / STATE_FILE).write_text(json.dumps(state.as_dict(), indent=2) + "\n")
        make_readable(staging)
        _publish(staging, parent / name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return parent / name


def make_readable(directory: Path) -> None:
    """mkdtemp makes a directory 0700 and safetensors writes files 0600: let an engine
    that runs as another user read what the run produced."""
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o755 if path.is_dir() else 0o644)


def _publish(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``, replacing a checkpoint of the same step that an
    earlier, interrupted attempt at this run wrote."""
    if target.exists():
        retired = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(target, retired)
        os.rename(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, target)


def remove_partial_checkpoints(output_dir: Path) -> None:
    """Temporary directories that a killed run left behind."""
    parent = output_dir / CHECKPOINTS_DIR
    if parent.is_dir():
        for path in parent.iterdir():
            if path.name.startswith(".") and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The checkpoint of the highest step under ``output_dir``, or None: what to resume."""
    parent = Path(output_dir) / CHECKPOINTS_DIR
    found = [(int(m.group(1)), p) for p in parent.glob("step-*")
             if (m := STEP_DIR.match(p.name)) and (p / STATE_FILE).is_file()]
    return max(found)[1] if found else None


def read_state(checkpoint: Path) -> CheckpointState:
    try:
        data = json.loads((checkpoint / STATE_FILE).read_text())
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unknown checkpoint version {data.get('version')!r}")
        return CheckpointState(
            step=int(data["step"]), trained_tokens=int(data["trained_tokens"]),
            train_loss=data["train_loss"], valid_loss=data["valid_loss"],
            method=str(data["method"]), examples=int(data["examples"]),
            batch_size=int(data["batch_size"]), n_epochs=int(data["n_epochs"]),
            seed=int(data["seed"]), lora=data["lora"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise TrainingFailed(INVALID_CHECKPOINT,
                             f"{checkpoint} is not a usable checkpoint: {exc}") from exc


def restore_training_state(checkpoint: Path, optimizer: torch.optim.Optimizer,
                           scheduler: Any) -> None:
    """Optimizer, scheduler and RNG as they were when the checkpoint was written."""
    import torch

    try:
        optimizer.load_state_dict(torch.load(checkpoint / OPTIMIZER_FILE, weights_only=True))
        scheduler.load_state_dict(torch.load(checkpoint / SCHEDULER_FILE, weights_only=True))
        rng = torch.load(checkpoint / RNG_FILE, weights_only=True)
        torch.set_rng_state(rng["torch"])
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        raise TrainingFailed(INVALID_CHECKPOINT,
                             f"cannot restore the checkpoint's training state: {exc}") from exc
