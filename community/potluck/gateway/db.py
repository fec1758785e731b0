# SPDX-License-Identifier: Apache-2.0
"""The gateway's database work, on one dedicated thread per worker.

Only cache misses and the once-a-second catalogue refresh reach the database, so one
thread (one connection, reused) is plenty and never starves the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


class DatabaseThread:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-db")

    async def run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        def call() -> R:
            close_old_connections()  # honours CONN_MAX_AGE and drops broken connections
            try:
                return fn(*args, **kwargs)
            except Exception:
                close_old_connections()
                raise

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
