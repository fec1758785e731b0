# SPDX-License-Identifier: Apache-2.0
"""Which examples each step trains on, and how they become tensors.

The order of an epoch is a permutation drawn from ``(seed, epoch)`` alone, so a resumed
run knows the batch of any step without replaying the ones before it. Batches are padded
on the right to their own longest example, not to ``max_seq_len``. With causal attention
a real token never looks at the padding after it, and padded positions carry no label,
so no attention mask is needed: attention takes its plain causal path.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from potluck.finetune.trainer.tokenization import IGNORE_INDEX, Example

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Batch:
    input_ids: torch.Tensor
    labels: torch.Tensor
    tokens: int  # real (unpadded) tokens


class Schedule:
    """Steps are numbered from 1; step ``s`` trains batch ``(s - 1) % steps_per_epoch``
    of epoch ``(s - 1) // steps_per_epoch``."""

    def __init__(self, examples: int, batch_size: int, n_epochs: int, seed: int) -> None:
        self.examples = examples
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.seed = seed
        self.steps_per_epoch = math.ceil(examples / batch_size)
        self.total_steps = self.steps_per_epoch * n_epochs
        self._orders: dict[int, list[int]] = {}

    def epoch_order(self, epoch: int) -> list[int]:
        if epoch not in self._orders:
            order = list(range(self.examples))
            random.Random(f"potluck-finetune:{self.seed}:{epoch}").shuffle(order)
            self._orders = {epoch: order}  # one epoch is ever in use
        return self._orders[epoch]

    def indices(self, step: int) -> list[int]:
        epoch, position = divmod(step - 1, self.steps_per_epoch)
        start = position * self.batch_size
        return self.epoch_order(epoch)[start:start + self.batch_size]

    def epoch_of(self, step: int) -> float:
        """Epochs completed after ``step`` (1.5: half-way through the second)."""
        return step / self.steps_per_epoch

    def ends_epoch(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0


def collate(examples: list[Example], pad_id: int) -> Batch:
    import torch

    width = max(len(e.input_ids) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    tokens = 0
    for row, example in enumerate(examples):
        length = len(example.input_ids)
        input_ids[row, :length] = torch.tensor(example.input_ids, dtype=torch.long)
        labels[row, :length] = torch.tensor(example.labels, dtype=torch.long)
        tokens += length
    return Batch(input_ids, labels, tokens)


def sequential_batches(examples: list[Example], batch_size: int, pad_id: int) -> list[Batch]:
    """The examples in file order, batched: for evaluation."""
    return [collate(examples[i:i + batch_size], pad_id)
            for i in range(0, len(examples), batch_size)]
