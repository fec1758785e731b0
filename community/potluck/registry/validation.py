# SPDX-License-Identifier: Apache-2.0
"""Checks that a local directory holds a model (or adapter) that vLLM can load.

Each check names what is missing or broken, so a refusal tells the user what to fix.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from potluck.errors import InvalidInput

_CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length",
                 "max_sequence_length")
_TOKENIZER_SETS = (("tokenizer.json",), ("tokenizer.model",), ("vocab.json", "merges.txt"))


@dataclass(frozen=True)
class ModelInspection:
    architecture: str
    context_length: int | None
    size_bytes: int
    capabilities: tuple[str, ...] = ("chat", "completions")


# Architectures (transformers class names) of generative models: vLLM serves completions
# for them, and chat where the tokenizer has a chat template. Anything else is served as
# an embedding model (vLLM's pooling runner).
_GENERATIVE_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")


def capabilities_of(directory: Path, architecture: str) -> tuple[str, ...]:
    """The endpoints a model directory can serve, from its architecture and tokenizer."""
    if not architecture.endswith(_GENERATIVE_SUFFIXES):
        return ("embeddings",)
    if has_chat_template(directory):
        return ("chat", "completions")
    return ("completions",)


def has_chat_template(directory: Path) -> bool:
    """Whether the tokenizer holds a chat template (tokenizer_config.json, or the files
    transformers also reads: chat_template.jinja / chat_template.json)."""
    if (directory / "chat_template.jinja").is_file() or \
            (directory / "chat_template.json").is_file():
        return True
    try:
        config = json.loads((directory / "tokenizer_config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(config, dict) and bool(config.get("chat_template"))


@dataclass(frozen=True)
class AdapterInspection:
    rank: int
    alpha: float | None
    target_modules: list[str]
    base_model: str | None
    size_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


class InvalidModelDirectory(InvalidInput):
    def __init__(self, path: Path, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(f"{path} is not a loadable model: " + "; ".join(reasons), field="path")


def _read_json(path: Path, reasons: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        reasons.append(f"{path.name} is missing")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reasons.append(f"{path.name} is not valid JSON ({exc})")
        return None
    if not isinstance(data, dict):
        reasons.append(f"{path.name} must hold a JSON object")
        return None
    return data


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file is unusable (truncated, bad header), or None if it is whole."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                return f"{path.name} is truncated (no header)"
            (header_len,) = struct.unpack("<Q", head)
            if header_len > min(size - 8, 100_000_000):
                return f"{path.name} has a corrupt header length"
            header = json.loads(handle.read(header_len))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"{path.name} has an unreadable header ({exc})"
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"]
    if not ends:
        return f"{path.name} holds no tensors"
    expected = 8 + header_len + max(ends)
    if size < expected:
        return f"{path.name} is truncated ({size} of {expected} bytes)"
    return None


def _check_weights(directory: Path, reasons: list[str], stems: tuple[str, ...]) -> int:
    index = next((directory / f"{s}.safetensors.index.json" for s in stems
                  if (directory / f"{s}.safetensors.index.json").is_file()), None)
    if index is not None:
        data = _read_json(index, reasons) or {}
        shards = sorted(set((data.get("weight_map") or {}).values()))
        if not shards:
            reasons.append(f"{index.name} lists no weight files")
        files = [directory / s for s in shards]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            reasons.append("weight shards missing: " + ", ".join(missing[:5]))
            return 0
    else:
        files = sorted(directory.glob("*.safetensors")) or sorted(
            p for s in stems for p in directory.glob(f"{s}*.bin"))
        if not files:
            reasons.append("no weights (*.safetensors or " + "/".join(f"{s}*.bin" for s in stems)
                           + ")")
            return 0
    for f in files:
        if f.suffix == ".safetensors":
            problem = safetensors_problem(f)
            if problem:
                reasons.append(problem)
    return sum(f.stat().st_size for f in files if f.is_file())


def _check_directory(path: Path) -> tuple[Path, list[str]]:
    directory = path.expanduser()
    if not directory.is_absolute():
        raise InvalidInput(f"{path} must be an absolute path", field="path")
    if not directory.exists():
        raise InvalidModelDirectory(directory, ["the directory does not exist"])
    if not directory.is_dir():
        raise InvalidModelDirectory(directory, ["it is a file, not a directory"])
    return directory.resolve(), []


def inspect_model_directory(path: Path) -> ModelInspection:
    directory, reasons = _check_directory(path)
    config = _read_json(directory / "config.json", reasons)
    architecture = ""
    context_length = None
    if config is not None:
        archs = config.get("architectures") or []
        architecture = archs[0] if archs and isinstance(archs[0], str) else ""
        if not architecture and not config.get("model_type"):
            reasons.append("config.json names neither architectures nor model_type")
        architecture = architecture or str(config.get("model_type", ""))
        context_length = next((int(config[k]) for k in _CONTEXT_KEYS
                               if isinstance(config.get(k), int) and config[k] > 0), None)
    size = _check_weights(directory, reasons, ("model", "pytorch_model"))
    if not any(all((directory / f).is_file() for f in group) for group in _TOKENIZER_SETS):
        reasons.append("no tokenizer (tokenizer.json, tokenizer.model, or vocab.json + "
                       "merges.txt)")
    if reasons:
        raise InvalidModelDirectory(directory, reasons)
    return ModelInspection(architecture=architecture, context_length=context_length,
                           size_bytes=size,
                           capabilities=capabilities_of(directory, architecture))


def inspect_adapter_directory(path: Path) -> AdapterInspection:
    directory, reasons = _check_directory(path)
    config = _read_json(directory / "adapter_config.json", reasons)
    rank = 0
    if config is not None:
        if str(config.get("peft_type", "LORA")).upper() != "LORA":
            reasons.append(f"adapter type {config.get('peft_type')!r} is not LoRA")
        rank = config.get("r") if isinstance(config.get("r"), int) else 0
        if rank <= 0:
            reasons.append("adapter_config.json has no positive rank r")
    size = _check_weights(directory, reasons, ("adapter_model",))
    if reasons or config is None:
        raise InvalidModelDirectory(directory, reasons)
    targets = config.get("target_modules") or []
    return AdapterInspection(
        rank=rank, alpha=config.get("lora_alpha"),
        target_modules=list(targets) if isinstance(targets, list) else [str(targets)],
        base_model=config.get("base_model_name_or_path"), size_bytes=size,
    )
