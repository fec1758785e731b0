# SPDX-License-Identifier: Apache-2.0
"""ASGI entry point, served by gunicorn with uvicorn workers (see deploy/).

Inference under /v1 and /metrics go to the lean gateway; everything else, including
the durable OpenAI endpoints (/v1/files, /v1/fine_tuning, /v1/batches), to Django.
Both share the same settings, models and Redis.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "potluck.settings")

django_application = get_asgi_application()

from potluck.gateway.app import Gateway  # noqa: E402 - needs Django set up first

gateway = Gateway()

# OpenAI endpoints that are not inference: served by Django views (potluck.openai_api).
DJANGO_V1_PREFIXES = ("/v1/files", "/v1/fine_tuning/", "/v1/batches")


def routes_to_gateway(path: str) -> bool:
    if path == "/metrics":
        return True
    return path.startswith("/v1/") and not path.startswith(DJANGO_V1_PREFIXES)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "http":
        if routes_to_gateway(scope["path"]):
            await gateway(scope, receive, send)
        else:
            await django_application(scope, receive, send)
    elif kind == "lifespan":
        await _lifespan(receive, send)
    else:
        await django_application(scope, receive, send)


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            # Background duties (catalogue, licence refresh, usage replay) start with the
            # worker, not with its first request.
            await gateway.start()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await gateway.shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
