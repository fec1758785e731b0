# SPDX-License-Identifier: Apache-2.0
"""An open-loop load generator: requests leave at fixed times, whatever the answers do.

Request i is due at start + i / rate. It is sent then (or at once, if the loop is
late), and its latency is measured from the time it was due, not from when it left,
so a stall of the server or of this client shows up in the latencies instead of
quietly lowering the rate (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import uvloop
from stats import percentile


@dataclass
class OpenLoopResult:
    rate: float
    seconds: float
    sent: int = 0
    ok: int = 0
    latencies_ms: list[float] = field(default_factory=list)  # every answer, from its due time
    errors: Counter[str] = field(default_factory=Counter)
    max_send_lag_ms: float = 0.0  # how late the generator sent its latest request
    achieved_rate: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


async def _one(session: aiohttp.ClientSession, url: str, body: bytes,
               headers: dict[str, str], due: float, result: OpenLoopResult) -> None:
    try:
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        result.errors[type(exc).__name__] += 1
        return
    result.latencies_ms.append((time.perf_counter() - due) * 1e3)
    if status == 200:
        result.ok += 1
    else:
        result.errors[f"http {status}"] += 1


async def _run(url: str, body: bytes, headers: dict[str, str], rate: float, seconds: float,
               warmup_headers: dict[str, str] | None, timeout: float) -> OpenLoopResult:
    result = OpenLoopResult(rate, seconds)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=timeout),
                                     skip_auto_headers=("User-Agent",)) as session:
        if warmup_headers is not None:  # open a few connections; not counted
            for _ in range(20):
                async with session.post(url, data=body, headers=warmup_headers) as response:
                    await response.read()
        count = int(rate * seconds)
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter() + 0.05
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lag = (time.perf_counter() - due) * 1e3
            result.max_send_lag_ms = max(result.max_send_lag_ms, lag)
            task = asyncio.create_task(_one(session, url, body, headers, due, result))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            result.sent += 1
        sent_for = time.perf_counter() - start
        if tasks:
            await asyncio.wait(tasks)
        result.achieved_rate = result.sent / sent_for if sent_for > 0 else 0.0
    return result


def run(url: str, body: bytes, headers: dict[str, str], *, rate: float, seconds: float,
        warmup_headers: dict[str, str] | None = None, timeout: float = 10.0) -> OpenLoopResult:
    return uvloop.run(_run(url, body, headers, rate, seconds, warmup_headers, timeout))
