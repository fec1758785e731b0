# SPDX-License-Identifier: Apache-2.0
"""The model being trained: the base model, its tokenizer, and LoRA or full training.

Training runs in float32 on CPU (bfloat16 matmuls are emulated, and slow, on CPUs
without AMX); a full fine-tune is saved back in the base model's own dtype.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from potluck.finetune.trainer.failures import (
    INVALID_BASE_MODEL,
    INVALID_CHECKPOINT,
    INVALID_SPEC,
    TrainingFailed,
)
from potluck.finetune.trainer.spec import TrainingSpec

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

# What a full fine-tune copies from the base model besides its weights and config.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "added_tokens.json", "chat_template.jinja", "chat_template.json",
                   "tokenizer.model", "vocab.json", "merges.txt")
ALL_LINEAR = "all-linear"  # peft: every linear layer but the output head


@dataclass
class LoadedModel:
    model: torch.nn.Module  # a peft model for LoRA, the transformers model for full
    tokenizer: PreTrainedTokenizerBase
    base_dtype: torch.dtype  # what a full fine-tune is saved as
    pad_id: int

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]


def load_tokenizer(spec: TrainingSpec) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    base = check_base_dir(spec)
    try:
        return AutoTokenizer.from_pretrained(base)
    except Exception as exc:  # transformers raises many kinds for a broken directory
        raise TrainingFailed(INVALID_BASE_MODEL,
                             f"cannot load the base model's tokenizer: {exc}") from exc


def max_positions(spec: TrainingSpec) -> int | None:
    """The longest sequence the base model was made for, if its config says."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(check_base_dir(spec))
    except Exception as exc:
        raise TrainingFailed(INVALID_BASE_MODEL,
                             f"cannot read the base model's config: {exc}") from exc
    value = getattr(config, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def load_model(spec: TrainingSpec, tokenizer: PreTrainedTokenizerBase,
               checkpoint: Path | None) -> LoadedModel:
    """The base model ready to train; a full fine-tune resumes from ``checkpoint``'s weights,
    a LoRA one loads them later (``load_adapter_weights``)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    base = check_base_dir(spec)
    weights = checkpoint if checkpoint is not None and spec.method == "full" else base
    try:
        config = AutoConfig.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32)
    except Exception as exc:
        code = INVALID_CHECKPOINT if weights != base else INVALID_BASE_MODEL
        raise TrainingFailed(code, f"cannot load the model: {exc}") from exc
    base_dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(base_dtype, str):
        base_dtype = getattr(torch, base_dtype, torch.float32)
    model.config.use_cache = False  # no key/value cache is needed to train
    if spec.method == "lora":
        model = _with_lora(model, spec)
    else:
        model.requires_grad_(True)
    pad_id = next((i for i in (tokenizer.pad_token_id, tokenizer.eos_token_id)
                   if i is not None), 0)
    return LoadedModel(model=model, tokenizer=tokenizer,
                       base_dtype=base_dtype if isinstance(base_dtype, torch.dtype)
                       else torch.float32,
                       pad_id=pad_id)


def check_base_dir(spec: TrainingSpec) -> Path:
    base = Path(spec.base_model_path)
    if not (base / "config.json").is_file():
        raise TrainingFailed(INVALID_BASE_MODEL,
                             f"{base} is not a model directory (no config.json)")
    return base


def _with_lora(model: torch.nn.Module, spec: TrainingSpec) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=spec.lora_rank, lora_alpha=spec.lora_alpha,
                        lora_dropout=spec.lora_dropout, task_type="CAUSAL_LM",
                        target_modules=list(spec.target_modules) if spec.target_modules
                        else ALL_LINEAR)
    try:
        return get_peft_model(model, config)
    except ValueError as exc:  # e.g. a target module the model does not have
        raise TrainingFailed(INVALID_SPEC, f"cannot apply LoRA: {exc}") from exc


def save_weights(loaded: LoadedModel, directory: Path) -> None:
    """LoRA: the adapter (adapter_config.json, adapter_model.safetensors); full: the model
    (config.json, generation_config.json, model.safetensors), in the training dtype."""
    loaded.model.save_pretrained(directory)


def load_adapter_weights(loaded: LoadedModel, checkpoint: Path) -> None:
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    try:
        weights = load_peft_weights(str(checkpoint), device="cpu")
        outcome = set_peft_model_state_dict(loaded.model, weights)
    except Exception as exc:
        raise TrainingFailed(INVALID_CHECKPOINT,
                             f"cannot load the checkpoint's adapter: {exc}") from exc
    unexpected = list(getattr(outcome, "unexpected_keys", []) or [])
    missing = [k for k in getattr(outcome, "missing_keys", []) or [] if "lora_" in k]
    if unexpected or missing:
        raise TrainingFailed(INVALID_CHECKPOINT, "the checkpoint's adapter does not match "
                             f"this spec's LoRA settings ({len(missing)} missing, "
                             f"{len(unexpected)} unexpected tensors)")


def save_final(loaded: LoadedModel, spec: TrainingSpec, directory: Path) -> None:
    """``final/``: a peft adapter that vLLM loads, or a complete model dir for full."""
    if spec.method == "lora":
        loaded.model.save_pretrained(directory)
        return
    loaded.model.to(loaded.base_dtype)
    loaded.model.config.use_cache = True
    loaded.model.save_pretrained(directory)
    base = Path(spec.base_model_path)
    for name in TOKENIZER_FILES:
        if (base / name).is_file():
            shutil.copy2(base / name, directory / name)


def model_summary(loaded: LoadedModel) -> dict[str, Any]:
    total = sum(p.numel() for p in loaded.model.parameters())
    trainable = sum(p.numel() for p in loaded.trainable_parameters())
    return {"parameters": total, "trainable_parameters": trainable}
