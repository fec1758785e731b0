# SPDX-License-Identifier: Apache-2.0
"""The demo model's architecture, and its short pre-training on CPU.

A Llama of about 3.4 M parameters: hidden 256, 4 layers, 4 attention heads of size 64
(vLLM's CPU attention takes 32, 64 or 128, not 16), 2 key/value heads, and input and
output embeddings tied. Pre-training sees random 128-token windows of the corpus,
drawn from a generator seeded with ``seed``, so one seed gives one model.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from potluck.demo_model.tokenizer import CONTEXT_LENGTH

if TYPE_CHECKING:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

HIDDEN_SIZE = 256
LAYERS = 4
ATTENTION_HEADS = 4
HEAD_DIM = 64
KV_HEADS = 2
INTERMEDIATE_SIZE = 688

BATCH_SIZE = 16
SEQUENCE_LENGTH = 128
LEARNING_RATE = 2e-3
MIN_LEARNING_RATE = 2e-4
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
FINAL_LOSS_WINDOW = 10  # the reported final loss is the mean over these last steps


@dataclass(frozen=True)
class TrainingResult:
    initial_loss: float
    final_loss: float
    steps: int
    tokens_seen: int
    threads: int
    seconds: float


def cpu_count() -> int:
    """The cores this process may run on (cgroup/affinity aware where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def model_config(tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
    import torch
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN_SIZE, num_hidden_layers=LAYERS,
        num_attention_heads=ATTENTION_HEADS, num_key_value_heads=KV_HEADS, head_dim=HEAD_DIM,
        intermediate_size=INTERMEDIATE_SIZE, max_position_embeddings=CONTEXT_LENGTH,
        tie_word_embeddings=True, rms_norm_eps=1e-5, initializer_range=0.02,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, dtype=torch.float32,
    )


def init_model(config: LlamaConfig, seed: int) -> LlamaForCausalLM:
    """A freshly initialised model; the same seed gives the same weights."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id)
    return model


def parameter_count(model: torch.nn.Module) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    return sum(p.numel() for p in model.parameters())


def token_stream(tokenizer: PreTrainedTokenizerFast, documents: list[str]) -> torch.Tensor:
    """All documents as one sequence of ids, each as ``BOS text EOS``."""
    import torch

    ids: list[int] = []
    # The backend directly: documents are longer than the context, and that is fine here.
    for encoding in tokenizer.backend_tokenizer.encode_batch(documents):  # adds BOS
        ids.extend(encoding.ids)
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


def learning_rate(step: int, steps: int) -> float:
    """Linear warm-up over the first tenth (at most 25 steps), then cosine decay."""
    warmup = max(1, min(25, steps // 10))
    if step < warmup:
        return LEARNING_RATE * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return MIN_LEARNING_RATE + (LEARNING_RATE - MIN_LEARNING_RATE) * cosine


def batch_loss(model: LlamaForCausalLM, batch: torch.Tensor) -> torch.Tensor:
    return model(input_ids=batch, labels=batch).loss


def pretrain(model: LlamaForCausalLM, tokens: torch.Tensor, *, steps: int, seed: int,
             progress: bool = True) -> TrainingResult:
    """Train ``model`` in place for ``steps`` batches of 16 x 128 tokens."""
    import torch

    if tokens.numel() <= SEQUENCE_LENGTH:
        raise ValueError(f"the corpus has {tokens.numel()} tokens, fewer than one window")
    threads = cpu_count()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    order = torch.Generator().manual_seed(seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=LEARNING_RATE, betas=(0.9, 0.95), eps=1e-8)
    offsets_range = tokens.numel() - SEQUENCE_LENGTH
    columns = torch.arange(SEQUENCE_LENGTH)
    losses: list[float] = []
    started = time.monotonic()
    model.train()
    try:
        with _progress_bar(steps, enabled=progress) as advance:
            for step in range(steps):
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(step, steps)
                starts = torch.randint(0, offsets_range, (BATCH_SIZE, 1), generator=order)
                loss = batch_loss(model, tokens[starts + columns])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
                optimizer.step()
                losses.append(loss.item())
                advance(losses[-1])
    finally:
        torch.set_num_threads(previous_threads)
    model.eval()
    window = losses[-FINAL_LOSS_WINDOW:]
    return TrainingResult(
        initial_loss=losses[0], final_loss=sum(window) / len(window), steps=steps,
        tokens_seen=steps * BATCH_SIZE * SEQUENCE_LENGTH, threads=threads,
        seconds=time.monotonic() - started)


@contextmanager
def _progress_bar(total: int, *, enabled: bool) -> Iterator[Callable[[float], None]]:
    """A rich progress bar on stderr that shows the loss; a no-op when disabled."""
    if not enabled:
        yield lambda loss: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn("pre-training potluck-demo"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("pre-training", total=total, loss="-")
        yield lambda loss: progress.update(task, advance=1, loss=f"{loss:.3f}")
