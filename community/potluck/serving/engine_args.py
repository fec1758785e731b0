# SPDX-License-Identifier: Apache-2.0
"""What a deployment may ask of vLLM, checked before anything is stored.

Every refusal names the offending field, so the API and the CLI can point at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from potluck.errors import InvalidInput
from potluck.registry.models import RegisteredModel

MAX_REPLICAS = 16
DTYPES = ("auto", "float32", "bfloat16", "float16")
LORA_RANKS = (8, 16, 32, 64)
ENGINE_ARG_KEYS = ("dtype", "max_model_len", "gpus_per_replica", "enable_lora", "max_lora_rank",
                   "extra_args")
PLACEMENT_KEYS = ("nodes",)
# Flags that Potluck sets itself: letting extra_args repeat them would break the replica's
# identity (its port, its name) or where it listens.
MANAGED_FLAGS = ("--model", "--served-model-name", "--host", "--port", "--dtype",
                 "--max-model-len", "--enable-lora", "--max-lora-rank", "--revision")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def clean_replicas(value: Any) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_REPLICAS:
        raise InvalidInput(f"must be a whole number from 0 to {MAX_REPLICAS}", field="replicas")
    return value


def _clean_extra_args(value: Any) -> list[str]:
    field = "engine_args.extra_args"
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise InvalidInput("must be a list of strings", field=field)
    for arg in value:
        flag = arg.split("=", 1)[0]
        if flag in MANAGED_FLAGS:
            raise InvalidInput(f"{flag} is set by Potluck; use the engine argument instead",
                               field=field)
    return list(value)


def _known_keys(raw: Any, known: Sequence[str], *, field: str, noun: str) -> dict[str, Any]:
    """``raw`` as a dict (None: empty) whose keys are all in ``known``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("must be an object", field=field)
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise InvalidInput(f"unknown {noun} {unknown[0]!r}; known: " + ", ".join(known),
                           field=field)
    return raw


def clean_engine_args(raw: Any, model: RegisteredModel) -> dict[str, Any]:
    """Engine arguments in their stored shape; unknown keys and bad values are refused."""
    raw = _known_keys(raw, ENGINE_ARG_KEYS, field="engine_args", noun="engine argument")
    args: dict[str, Any] = {"dtype": raw.get("dtype", "auto")}
    if args["dtype"] not in DTYPES:
        raise InvalidInput("must be one of " + ", ".join(DTYPES), field="engine_args.dtype")

    max_len = raw.get("max_model_len")
    if max_len is not None:
        if not _is_int(max_len) or max_len < 1:
            raise InvalidInput("must be a positive number of tokens",
                               field="engine_args.max_model_len")
        if model.context_length and max_len > model.context_length:
            raise InvalidInput(f"must be at most the model's context length "
                               f"({model.context_length})", field="engine_args.max_model_len")
        args["max_model_len"] = max_len

    gpus = raw.get("gpus_per_replica")
    if gpus is not None:  # absent: one GPU on a GPU host, none on a CPU host
        if not _is_int(gpus) or gpus < 0:
            raise InvalidInput("must be a whole number, 0 or more",
                               field="engine_args.gpus_per_replica")
        args["gpus_per_replica"] = gpus

    enable_lora = raw.get("enable_lora", False)
    if not isinstance(enable_lora, bool):
        raise InvalidInput("must be true or false", field="engine_args.enable_lora")
    args["enable_lora"] = enable_lora
    rank = raw.get("max_lora_rank")
    if rank is not None:
        if not enable_lora:
            raise InvalidInput("needs enable_lora", field="engine_args.max_lora_rank")
        if not _is_int(rank) or rank not in LORA_RANKS:
            raise InvalidInput("must be one of " + ", ".join(map(str, LORA_RANKS)),
                               field="engine_args.max_lora_rank")
        args["max_lora_rank"] = rank

    args["extra_args"] = _clean_extra_args(raw.get("extra_args", []))
    return args


def clean_placement(raw: Any) -> dict[str, Any]:
    """``{"nodes": [names]}``: the nodes replicas may run on (empty or absent: any)."""
    raw = _known_keys(raw, PLACEMENT_KEYS, field="placement", noun="placement key")
    nodes = raw.get("nodes", [])
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
        raise InvalidInput("must be a list of node names", field="placement.nodes")
    return {"nodes": sorted(set(nodes))} if nodes else {}
