# SPDX-License-Identifier: Apache-2.0
"""uvicorn worker variants for the server-stack levers (``gunicorn -k workers.NAME``).

Potluck deploys ``uvicorn_worker.UvicornWorker``, whose ``loop="auto"`` and
``http="auto"`` pick uvloop and httptools when installed (``uvicorn[standard]`` installs
both). These force the pure-Python alternatives, to show what each one is worth.
"""

from __future__ import annotations

from typing import Any

from uvicorn_worker import UvicornWorker


class H11Worker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "h11"}


class AsyncioLoopWorker(UvicornWorker):
    CONFIG_KWARGS: dict[str, Any] = {"loop": "asyncio", "http": "auto"}
