# SPDX-License-Identifier: Apache-2.0
"""What one training run does: the JSON file the node agent writes and the trainer reads.

``TrainingSpec.from_dict`` checks every field's type and range, so a bad spec fails the
run at once with a message that names the field, before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from potluck.finetune.trainer.failures import INVALID_SPEC, TrainingFailed

Method = Literal["lora", "full"]
METHODS = ("lora", "full")


@dataclass(frozen=True, kw_only=True)
class TrainingSpec:
    job_id: str
    base_model_path: str  # an HF model dir: config, safetensors, tokenizer, chat template
    training_file: str  # JSONL of chat examples (potluck.finetune.dataset)
    validation_file: str | None = None
    output_dir: str
    method: Method
    n_epochs: int
    batch_size: int
    learning_rate: float  # absolute, the peak after warm-up
    warmup_ratio: float = 0.0
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: list[str] | None = None  # None: every linear projection of the model
    seed: int
    max_seq_len: int
    checkpoint_every_steps: int  # 0: at the end of each epoch
    eval_every_steps: int  # 0: at the end of each epoch, when there is a validation file
    resume_from: str | None = None  # a checkpoint dir
    torch_threads: int | None = None  # None: the cores this process may use

    def __post_init__(self) -> None:
        # Accept what JSON and Python callers naturally write: 1 for 1.0, a tuple of names.
        for name in ("learning_rate", "warmup_ratio", "lora_dropout"):
            value = getattr(self, name)
            if _is_int(value):
                object.__setattr__(self, name, float(value))
        if isinstance(self.target_modules, tuple):
            object.__setattr__(self, "target_modules", list(self.target_modules))
        _check(self)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainingSpec:
        if not isinstance(data, dict):
            raise _invalid("the spec must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise _invalid(f"unknown field(s): {', '.join(unknown)}")
        missing = sorted(f.name for f in dataclasses.fields(cls) if f.name not in data
                         and f.default is dataclasses.MISSING)
        if missing:
            raise _invalid(f"missing field(s): {', '.join(missing)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> TrainingSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _invalid(f"the spec is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def read(cls, path: str | Path) -> TrainingSpec:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise _invalid(f"cannot read the spec file {path}: {exc}") from exc
        return cls.from_json(text)

    def write(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")


def _invalid(message: str) -> TrainingFailed:
    return TrainingFailed(INVALID_SPEC, message)


def _check(spec: TrainingSpec) -> None:
    for name in ("job_id", "base_model_path", "training_file", "output_dir"):
        value = getattr(spec, name)
        if not isinstance(value, str) or not value:
            raise _invalid(f"{name} must be a non-empty string")
    for name in ("validation_file", "resume_from"):
        value = getattr(spec, name)
        if value is not None and (not isinstance(value, str) or not value):
            raise _invalid(f"{name} must be a non-empty string or null")
    if spec.method not in METHODS:
        raise _invalid(f"method must be one of {', '.join(METHODS)}, got {spec.method!r}")
    minimums = {"n_epochs": 1, "batch_size": 1, "lora_rank": 1, "lora_alpha": 1,
                "max_seq_len": 2, "checkpoint_every_steps": 0, "eval_every_steps": 0,
                "seed": None}
    for name, minimum in minimums.items():
        value = getattr(spec, name)
        if not _is_int(value):
            raise _invalid(f"{name} must be an integer")
        if minimum is not None and value < minimum:
            raise _invalid(f"{name} must be at least {minimum}, got {value}")
    if spec.torch_threads is not None and (not _is_int(spec.torch_threads)
                                           or spec.torch_threads < 1):
        raise _invalid("torch_threads must be a positive integer or null")
    if not _is_float(spec.learning_rate) or not spec.learning_rate > 0:
        raise _invalid("learning_rate must be a positive number")
    for name in ("warmup_ratio", "lora_dropout"):
        value = getattr(spec, name)
        if not _is_float(value) or not 0.0 <= value < 1.0:
            raise _invalid(f"{name} must be a number in [0, 1)")
    modules = spec.target_modules
    if modules is not None and (not isinstance(modules, list) or not modules or not all(
            isinstance(m, str) and m for m in modules)):
        raise _invalid("target_modules must be a non-empty list of module names or null")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value)
