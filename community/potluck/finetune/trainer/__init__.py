# SPDX-License-Identifier: Apache-2.0
"""The fine-tuning trainer: a subprocess that trains one job and writes what it did.

Run as ``python -m potluck.finetune.trainer SPEC_PATH``. It reads a ``TrainingSpec`` (JSON),
trains a LoRA adapter or the full model on a chat dataset, and writes into the spec's
``output_dir``: ``events.jsonl`` (append-only progress), ``checkpoints/step-NNNNNN/``
(atomic, resumable), ``final/`` and ``result.json``. It never touches the database or
Redis; the node agent that launches it reads those files.

Exit codes: 0 succeeded, 2 failed (``result.json`` says why), 3 cancelled (SIGTERM),
4 paused (SIGUSR1: the last finished step is checkpointed, to resume from).
Importing this package does not import torch.
"""

from __future__ import annotations

from potluck.finetune.trainer.spec import TrainingSpec

EXIT_SUCCEEDED = 0
EXIT_FAILED = 2
EXIT_CANCELLED = 3
EXIT_PAUSED = 4

__all__ = ["EXIT_CANCELLED", "EXIT_FAILED", "EXIT_PAUSED", "EXIT_SUCCEEDED", "TrainingSpec"]
