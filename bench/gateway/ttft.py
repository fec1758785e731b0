# SPDX-License-Identifier: Apache-2.0
"""Time to first token of streamed chat completions, direct and through the gateway.

Requests go one at a time, alternating direct and gateway, so both see the same
machine at the same moments. TTFT is the time from sending the request to reading
the first ``data:`` event that carries content.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import uvloop
from stats import percentile


@dataclass
class TtftSeries:
    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def p(self, q: float) -> float:
        return percentile(self.ttft_ms, q)


async def _stream_once(session: aiohttp.ClientSession, url: str, body: bytes,
                       headers: dict[str, str], series: TtftSeries) -> None:
    series.sent += 1
    started = time.perf_counter()
    first: float | None = None
    done = False
    try:
        async with session.post(url, data=body, headers=headers) as response:
            if response.status != 200:
                await response.read()
                series.errors[f"http {response.status}"] += 1
                return
            async for line in response.content:
                if first is None and line.startswith(b"data:") and b'"content"' in line:
                    first = time.perf_counter()
                if line.strip() == b"data: [DONE]":
                    done = True
    except (aiohttp.ClientError, TimeoutError) as exc:
        series.errors[type(exc).__name__] += 1
        return
    if first is None or not done:
        series.errors["incomplete stream"] += 1
        return
    series.ok += 1
    series.ttft_ms.append((first - started) * 1e3)
    series.total_ms.append((time.perf_counter() - started) * 1e3)


Target = tuple[str, dict[str, str], dict[str, str]]  # url, headers, warm-up headers


async def _run(targets: dict[str, Target], body: bytes, count: int,
               warmup: int) -> dict[str, TtftSeries]:
    out = {name: TtftSeries() for name in targets}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                     skip_auto_headers=("User-Agent",)) as session:
        for i in range(warmup + count):
            for name, (url, headers, warmup_headers) in targets.items():
                if i < warmup:
                    await _stream_once(session, url, body, warmup_headers, TtftSeries())
                else:
                    await _stream_once(session, url, body, headers, out[name])
    return out


def run(targets: dict[str, Target], body: bytes, *, count: int,
        warmup: int = 0) -> dict[str, TtftSeries]:
    """``targets``: name -> (url, headers, warm-up headers); warm-up requests (sent
    with a key that is not measured) are not counted."""
    return uvloop.run(_run(targets, body, count, warmup))
