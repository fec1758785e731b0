# SPDX-License-Identifier: Apache-2.0
"""Where a gateway worker's CPU time goes, from py-spy's raw (collapsed) stacks.

Each sample is given to one part of the request path: the deepest frame of Potluck's
own features (authentication, the limiter, the usage append, metrics, policies) if the
stack has one, else the deepest library frame (aiohttp, redis-py, orjson, uvicorn's
protocol, logging, the event loop), else "other". Run it on a file that ``run.py``
wrote (``BENCH_PYSPY``): ``python bench/gateway/profile_summary.py FILE``.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

# (category, pattern on a frame "function (path:line)"); features first, deepest wins.
FEATURES = [
    ("auth: API key cache", r"potluck/gateway/auth\.py|potluck/accounts/keys\.py"),
    ("limits: Redis Lua call", r"potluck/gateway/limits\.py"),
    ("usage: Redis XADD", r"potluck/gateway/usage_writer\.py|potluck/usage/stream\.py"),
    ("metrics: prometheus", r"potluck/gateway/metrics\.py|prometheus_client/"),
    ("policies", r"potluck/extensions\.py|noop_policies/|_apply_policies|_after_policies"),
    ("catalog: replica choice", r"potluck/gateway/catalog\.py"),
]
LIBRARIES = [
    ("orjson", r"orjson"),
    ("aiohttp client (upstream)", r"aiohttp/|yarl/|multidict/"),
    # With a socket timeout, redis-py runs each command in its own task (asyncio.wait_for),
    # so its sending and parsing show without the caller (limiter or usage) above them.
    ("redis-py client (own task per command)", r"redis/"),
    ("access log (logging)", r"logging/|gunicorn/glogging"),
    ("uvicorn protocol (httptools/h11; writes to the client)",
     r"uvicorn/protocols/|httptools|h11/"),
    ("gateway app (request handling)", r"potluck/gateway/app\.py|potluck/asgi\.py"),
    ("uuid (request ids)", r"\(uuid\.py"),
    ("database thread (psycopg, Django)", r"psycopg|django/"),
]
# The event loop's own frames (and the worker's outermost ones): a sample is given to
# whoever called into them. py-spy names files relative to the stdlib or site-packages,
# so "(asyncio/" is the stdlib's and "redis/asyncio/" is not.
GENERIC = (r"\((asyncio|concurrent/futures)/|uvloop|\(threading\.py|\(gunicorn/"
           r"|\(uvicorn_worker/|\(uvicorn/(_compat|server|main)\.py|\(<frozen runpy>")


def categorize(frames: list[str]) -> str:
    """``frames`` root first, as py-spy writes them."""
    best: tuple[int, str] | None = None
    for depth, frame in enumerate(frames):
        for name, pattern in FEATURES:
            if re.search(pattern, frame):
                best = (depth, name)
    if best:
        return best[1]
    for frame in reversed(frames):
        if re.search(GENERIC, frame):
            continue
        for name, pattern in LIBRARIES:
            if re.search(pattern, frame):
                return name
        return "other"
    return "event loop (uvloop's C loop: polling, socket reads, callbacks)"


def summarize(path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, samples by category, samples by leaf frame)."""
    by_category: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        n = int(count)
        total += n
        by_category[categorize(frames)] += n
        leaves[frames[-1]] += n
    return total, by_category, leaves


def report(path: Path, top: int = 15) -> str:
    total, by_category, leaves = summarize(path)
    if not total:
        return f"{path}: no samples"
    lines = [f"{path.name}: {total} samples"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in by_category.most_common()]
    lines.append("  top leaf frames:")
    lines += [f"  {n / total:6.1%}  {frame}" for frame, n in leaves.most_common(top)]
    return "\n".join(lines)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(report(Path(arg)))
