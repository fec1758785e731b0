# SPDX-License-Identifier: Apache-2.0
"""What a deployment may ask of vLLM, checked before anything is stored.

Tenants (the API) set engine options only from an **allowlist**: each option has a
name, a vLLM flag and a value checked for its type and range; no option takes a path,
loads code or opens a file. Anything else is refused, so a flag vLLM adds tomorrow is
refused until someone adds it here (``tests/community/serving/test_engine_allowlist.py``
checks every option against vLLM's own argument parser). Free-form vLLM arguments are
the operator's (``potluck deploy --vllm-arg``), stored apart in
``Deployment.operator_args`` and never writable through the API.

Every refusal names the offending field, so the API and the CLI can point at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from potluck.errors import InvalidInput
from potluck.registry.models import RegisteredModel

MAX_REPLICAS = 16
MAX_GPUS_PER_REPLICA = 8
PLACEMENT_KEYS = ("nodes",)
# Flags that Potluck sets itself from the deployment: repeating them, even as the
# operator, would break the replica's identity (its model, name, port) or where it listens.
MANAGED_FLAGS = ("--model", "--served-model-name", "--host", "--port", "--dtype",
                 "--max-model-len", "--enable-lora", "--max-lora-rank", "--revision",
                 "--tensor-parallel-size")
OPERATOR_ARGS_FIELD = "operator_args"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class EngineOption:
    """One tenant-settable engine option: ``key`` in ``engine_args``, its vLLM ``flag``.

    ``kind`` is ``"int"``, ``"float"``, ``"bool"`` or ``"choice"``; ints and floats lie
    in ``[low, high]``, choices in ``choices``. A bool renders as ``--flag`` /
    ``--no-flag`` (vLLM's ``BooleanOptionalAction``); others as ``--flag VALUE``.
    ``needs`` names a bool option that must be true for this one to be set.
    """

    key: str
    flag: str
    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()
    needs: str | None = None

    @property
    def field(self) -> str:
        return f"engine_args.{self.key}"

    def clean(self, value: Any) -> Any:
        """The value in its stored shape, or InvalidInput naming ``engine_args.<key>``."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise InvalidInput("must be true or false", field=self.field)
            return value
        if self.kind == "choice":
            if value not in self.choices or isinstance(value, bool):
                raise InvalidInput("must be one of " + ", ".join(map(str, self.choices)),
                                   field=self.field)
            return value
        # A float option takes an int too, as JSON does.
        ok = _is_int(value) or (self.kind == "float" and isinstance(value, float))
        if not ok or not (self.low is None or value >= self.low) or not (
                self.high is None or value <= self.high):
            noun = "a whole number" if self.kind == "int" else "a number"
            raise InvalidInput(f"must be {noun} from {self.low:g} to {self.high:g}",
                               field=self.field)
        return float(value) if self.kind == "float" else value

    def argv(self, value: Any) -> list[str]:
        """The vLLM arguments for a cleaned value."""
        if self.kind == "bool":
            return [self.flag if value else "--no-" + self.flag.removeprefix("--")]
        return [self.flag, str(value)]


# The allowlist. dtype, max_model_len, enable_lora and max_lora_rank have their own
# checks below (the model's context length; the rank a LoRA job may use).
OPTIONS: tuple[EngineOption, ...] = (
    EngineOption("dtype", "--dtype", "choice", "weights and activations type",
                 choices=("auto", "float32", "bfloat16", "float16")),
    EngineOption("max_model_len", "--max-model-len", "int",
                 "context length to serve (at most the model's)", low=1, high=2**24),
    EngineOption("enable_lora", "--enable-lora", "bool", "let replicas load LoRA adapters"),
    EngineOption("max_lora_rank", "--max-lora-rank", "choice", "largest adapter rank",
                 choices=(8, 16, 32, 64), needs="enable_lora"),
    EngineOption("max_loras", "--max-loras", "int", "adapters held at once per batch",
                 low=1, high=64, needs="enable_lora"),
    EngineOption("max_num_seqs", "--max-num-seqs", "int", "sequences per batch",
                 low=1, high=1024),
    EngineOption("max_num_batched_tokens", "--max-num-batched-tokens", "int",
                 "tokens per batch", low=1, high=2**20),
    EngineOption("gpu_memory_utilization", "--gpu-memory-utilization", "float",
                 "share of each GPU's memory the replica may use", low=0.05, high=0.95),
    EngineOption("enforce_eager", "--enforce-eager", "bool",
                 "no CUDA graphs or compilation (default on CPU hosts)"),
    EngineOption("enable_prefix_caching", "--enable-prefix-caching", "bool",
                 "reuse the KV cache of shared prompt prefixes"),
    EngineOption("enable_chunked_prefill", "--enable-chunked-prefill", "bool",
                 "split long prompts across batches"),
    EngineOption("kv_cache_dtype", "--kv-cache-dtype", "choice", "KV cache type",
                 choices=("auto", "bfloat16", "float16", "fp8", "fp8_e4m3", "fp8_e5m2")),
    EngineOption("max_logprobs", "--max-logprobs", "int",
                 "most log-probabilities a request may ask for", low=0, high=100),
    EngineOption("seed", "--seed", "int", "random seed", low=0, high=2**31 - 1),
)
OPTIONS_BY_KEY: dict[str, EngineOption] = {option.key: option for option in OPTIONS}
# Potluck's own option (not a vLLM flag): GPUs per replica, for placement; more than one
# becomes vLLM's tensor parallelism.
GPUS_OPTION = EngineOption("gpus_per_replica", "--tensor-parallel-size", "int",
                           "GPUs per replica (absent: one on GPU hosts, none on CPU hosts)",
                           low=0, high=MAX_GPUS_PER_REPLICA)
ENGINE_ARG_KEYS = (*OPTIONS_BY_KEY, GPUS_OPTION.key)


def clean_replicas(value: Any) -> int:
    if not _is_int(value) or not 0 <= value <= MAX_REPLICAS:
        raise InvalidInput(f"must be a whole number from 0 to {MAX_REPLICAS}", field="replicas")
    return value


def _known_keys(raw: Any, known: Sequence[str], *, field: str, noun: str) -> dict[str, Any]:
    """``raw`` as a dict (None: empty) whose keys are all in ``known``."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("must be an object", field=field)
    unknown = sorted(set(raw) - set(known), key=str)
    if unknown:
        raise InvalidInput(f"unknown {noun} {unknown[0]!r}; known: " + ", ".join(known),
                           field=field)
    return raw


def clean_engine_args(raw: Any, model: RegisteredModel) -> dict[str, Any]:
    """Engine arguments in their stored shape: ``dtype`` and ``enable_lora`` always, the
    other allowlisted options when set. Unknown keys and bad values are refused."""
    if isinstance(raw, dict) and "extra_args" in raw:
        raise InvalidInput("free-form vLLM arguments are set by the operator "
                           "(`potluck deploy --vllm-arg`), not through the API; use the "
                           "named engine options: " + ", ".join(ENGINE_ARG_KEYS),
                           field="engine_args.extra_args")
    raw = _known_keys(raw, ENGINE_ARG_KEYS, field="engine_args", noun="engine argument")
    args: dict[str, Any] = {"dtype": OPTIONS_BY_KEY["dtype"].clean(raw.get("dtype", "auto")),
                            "enable_lora": OPTIONS_BY_KEY["enable_lora"].clean(
                                raw.get("enable_lora", False))}
    for option in OPTIONS:
        value = raw.get(option.key)
        if option.key in args or value is None:
            continue
        if option.needs and not raw.get(option.needs):
            raise InvalidInput(f"needs {option.needs}", field=option.field)
        args[option.key] = option.clean(value)
    max_len = args.get("max_model_len")
    if max_len is not None and model.context_length and max_len > model.context_length:
        raise InvalidInput(f"must be at most the model's context length "
                           f"({model.context_length})", field="engine_args.max_model_len")
    if raw.get(GPUS_OPTION.key) is not None:
        args[GPUS_OPTION.key] = GPUS_OPTION.clean(raw[GPUS_OPTION.key])
    return args


def engine_argv(args: dict[str, Any], *, cpu_only: bool) -> list[str]:
    """vLLM arguments for stored engine arguments (only allowlisted keys are read)."""
    argv = OPTIONS_BY_KEY["dtype"].argv(args.get("dtype", "auto"))
    for option in OPTIONS[1:]:
        value = args.get(option.key)
        if value is None or (option.kind == "bool" and value is False
                             and option.key == "enable_lora"):
            continue
        argv += option.argv(value)
    if args.get("enable_lora") and "max_lora_rank" not in args:
        argv += OPTIONS_BY_KEY["max_lora_rank"].argv(16)
    if cpu_only and "enforce_eager" not in args:
        argv += OPTIONS_BY_KEY["enforce_eager"].argv(True)  # no graph compilation on CPU
    gpus = args.get(GPUS_OPTION.key)
    if not cpu_only and gpus and gpus > 1:
        argv += GPUS_OPTION.argv(gpus)
    return argv


def _flag_name(arg: str) -> str:
    """``--Served_Model-name=x`` → ``--served-model-name``: how vLLM's parser reads it."""
    return arg.split("=", 1)[0].replace("_", "-").lower()


def clean_operator_args(raw: Any, *, field: str = OPERATOR_ARGS_FIELD) -> list[str]:
    """The operator's free-form vLLM arguments (CLI only), as a list of strings.

    Refuses what would repeat a flag Potluck manages, in any spelling vLLM accepts (dashes
    or underscores, or an abbreviation such as ``--por``): use the named option instead.
    """
    if raw is None:
        return []
    if not isinstance(raw, list | tuple) or not all(isinstance(a, str) for a in raw):
        raise InvalidInput("must be a list of strings", field=field)
    for arg in raw:
        if not arg.startswith("--"):
            continue
        name = _flag_name(arg)
        clash = next((flag for flag in MANAGED_FLAGS if flag.startswith(name)), None)
        if clash is not None and len(name) > 2:
            raise InvalidInput(f"{arg.split('=', 1)[0]} is set by Potluck ({clash}); use "
                               "the engine option instead", field=field)
    return list(raw)


def clean_placement(raw: Any) -> dict[str, Any]:
    """``{"nodes": [names]}``: the nodes replicas may run on (empty or absent: any)."""
    raw = _known_keys(raw, PLACEMENT_KEYS, field="placement", noun="placement key")
    nodes = raw.get("nodes", [])
    if not isinstance(nodes, list) or not all(isinstance(n, str) and n for n in nodes):
        raise InvalidInput("must be a list of node names", field="placement.nodes")
    return {"nodes": sorted(set(nodes))} if nodes else {}

