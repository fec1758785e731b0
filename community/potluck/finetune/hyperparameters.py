# SPDX-License-Identifier: Apache-2.0
"""Hyperparameters and adapter options: checked at create, resolved once the data is known.

Each of ``n_epochs``, ``batch_size`` and ``learning_rate_multiplier`` is ``"auto"`` or a
number, as in OpenAI's API. "auto" resolves from the number of training examples, once
the training file is validated; the job then reports the numbers it trains with.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings

from potluck.errors import InvalidInput
from potluck.finetune.models import Method

HYPERPARAMETER_KEYS = ("n_epochs", "batch_size", "learning_rate_multiplier")
LIMITS: dict[str, tuple[float, float]] = {
    "n_epochs": (1, 50),
    "batch_size": (1, 256),
    "learning_rate_multiplier": (1e-3, 100.0),
}
LORA_RANKS = (1, 2, 4, 8, 16, 32, 64)
ADAPTER_KEYS = ("type", "rank", "alpha", "dropout", "target_modules")
DEFAULT_LORA = {"rank": 8, "alpha": 16, "dropout": 0.0, "target_modules": None}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value)


def clean_hyperparameters(raw: Any) -> dict[str, Any]:
    """Requested values in their stored shape ("auto" or numbers within range)."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput("must be an object", field="hyperparameters")
    unknown = sorted(set(raw) - set(HYPERPARAMETER_KEYS))
    if unknown:
        raise InvalidInput(f"unknown hyperparameter {unknown[0]!r}; use "
                           + ", ".join(HYPERPARAMETER_KEYS), field=f"hyperparameters.{unknown[0]}")
    clean: dict[str, Any] = {}
    for key in HYPERPARAMETER_KEYS:
        value = raw.get(key, "auto")
        if value == "auto":
            clean[key] = "auto"
            continue
        low, high = LIMITS[key]
        whole = key != "learning_rate_multiplier"
        if not _number(value) or (whole and int(value) != value) or not low <= value <= high:
            kind = "a whole number" if whole else "a number"
            raise InvalidInput(f"must be \"auto\" or {kind} from {low:g} to {high:g}",
                               field=f"hyperparameters.{key}")
        clean[key] = int(value) if whole else float(value)
    return clean


def clean_adapter(raw: Any) -> tuple[str, dict[str, Any]]:
    """(method, options): ``{"type": "lora", rank, alpha, dropout, target_modules}`` or
    ``{"type": "full"}``; absent means LoRA with the defaults."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidInput("must be an object", field="adapter")
    unknown = sorted(set(raw) - set(ADAPTER_KEYS))
    if unknown:
        raise InvalidInput(f"unknown adapter option {unknown[0]!r}",
                           field=f"adapter.{unknown[0]}")
    method = raw.get("type", Method.LORA.value)
    if method not in (Method.LORA, Method.FULL):
        raise InvalidInput('must be "lora" or "full"', field="adapter.type")
    if method == Method.FULL:
        extra = sorted(set(raw) - {"type"})
        if extra:
            raise InvalidInput(f"{extra[0]!r} applies to LoRA only", field=f"adapter.{extra[0]}")
        return Method.FULL.value, {}
    options = {**DEFAULT_LORA, **{k: v for k, v in raw.items() if k != "type"}}
    if options["rank"] not in LORA_RANKS or isinstance(options["rank"], bool):
        raise InvalidInput("must be one of " + ", ".join(map(str, LORA_RANKS)),
                           field="adapter.rank")
    alpha = options["alpha"]
    if not _number(alpha) or int(alpha) != alpha or not 1 <= alpha <= 1024:
        raise InvalidInput("must be a whole number from 1 to 1024", field="adapter.alpha")
    dropout = options["dropout"]
    if not _number(dropout) or not 0 <= dropout < 1:
        raise InvalidInput("must be a number from 0 up to (not including) 1",
                           field="adapter.dropout")
    modules = options["target_modules"]
    if modules is not None and (
            not isinstance(modules, list) or not modules
            or not all(isinstance(m, str) and m.replace("_", "").isalnum() for m in modules)):
        raise InvalidInput("must be a non-empty list of module names, e.g. "
                           '["q_proj", "v_proj"]', field="adapter.target_modules")
    return Method.LORA.value, {"rank": int(options["rank"]), "alpha": int(alpha),
                               "dropout": float(dropout), "target_modules": modules}


# (weights at least this size → base learning rate), largest first: smaller models
# take larger steps. Measured on the demo model (13 MiB): LoRA r=8 learns a phrase in
# 100 steps at 5e-3 (3e-3..1e-2 work, 2e-2 diverges); full at 1e-3 in 60 steps.
LORA_RATES = ((2**30, 2e-4), (100 * 2**20, 1e-3), (0, 5e-3))
FULL_RATES = ((2**30, 1e-5), (100 * 2**20, 1e-4), (0, 1e-3))


def base_learning_rate(method: str, weights_bytes: int) -> float:
    """The operator's fixed rate when set (POTLUCK_FINETUNE_LORA_LR / _FULL_LR), else by size."""
    fixed = (settings.FINETUNE_LORA_LEARNING_RATE if method == Method.LORA
             else settings.FINETUNE_FULL_LEARNING_RATE)
    if fixed:
        return fixed
    table = LORA_RATES if method == Method.LORA else FULL_RATES
    return next(rate for floor, rate in table if weights_bytes >= floor)


def resolve(requested: dict[str, Any], *, examples: int, method: str,
            weights_bytes: int) -> dict[str, Any]:
    """Concrete numbers for the trainer: small datasets get more epochs, large ones bigger
    batches; the learning rate is the base rate for the method and model size times the
    multiplier."""
    batch_size = requested.get("batch_size", "auto")
    if batch_size == "auto":
        batch_size = max(1, min(8, examples // 16))
    batch_size = min(batch_size, max(1, examples))
    n_epochs = requested.get("n_epochs", "auto")
    if n_epochs == "auto":
        n_epochs = max(3, min(10, math.ceil(200 / max(1, examples))))
    multiplier = requested.get("learning_rate_multiplier", "auto")
    if multiplier == "auto":
        multiplier = 1.0
    base = base_learning_rate(method, weights_bytes)
    return {"n_epochs": int(n_epochs), "batch_size": int(batch_size),
            "learning_rate_multiplier": float(multiplier),
            "learning_rate": base * float(multiplier)}
