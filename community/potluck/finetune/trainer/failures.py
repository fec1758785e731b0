# SPDX-License-Identifier: Apache-2.0
"""Why a training run failed: a stable code for machines, a message for people."""

from __future__ import annotations

INVALID_SPEC = "invalid_spec"
INVALID_BASE_MODEL = "invalid_base_model"
INVALID_TRAINING_FILE = "invalid_training_file"
INVALID_VALIDATION_FILE = "invalid_validation_file"
NO_TRAINABLE_TOKENS = "no_trainable_tokens"
INVALID_CHECKPOINT = "invalid_checkpoint"
OUT_OF_MEMORY = "out_of_memory"
DIVERGED = "training_diverged"
INTERNAL_ERROR = "internal_error"


class TrainingFailed(Exception):
    """A reason to stop the run with exit code 2; ``message`` is safe to show the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}
