# SPDX-License-Identifier: Apache-2.0
"""The Python ceiling: a minimal ASGI app that forwards /v1 calls with a pooled aiohttp session.

Served exactly as Potluck's web is (gunicorn -c python:potluck.gunicorn_conf, the same
uvicorn worker, one worker), it does only what any router must: read the body, find the
upstream by the body's ``model`` (orjson), POST it there on a kept-alive connection and
pass the answer back (an SSE answer chunk by chunk, as it arrives). No authentication,
limits, usage, policies or metrics: what Potluck adds over it is what Potluck's own
features cost.

``BENCH_RAW_UPSTREAMS``: a JSON object, model name -> base URL (``http://host:port``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

UPSTREAMS: dict[str, str] = orjson.loads(os.environ.get("BENCH_RAW_UPSTREAMS", "{}"))
_session: aiohttp.ClientSession | None = None


def _client() -> aiohttp.ClientSession:
    global _session
    if _session is None:
        _session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=600),
            auto_decompress=False, skip_auto_headers=("User-Agent",))
    return _session


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if _session is not None:
                    await _session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == "/healthz":
        await _plain(send, 200, b"{}")
        return
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    try:
        base = UPSTREAMS[orjson.loads(body)["model"]]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        await _plain(send, 404, b'{"error": {"message": "unknown model"}}')
        return
    async with _client().post(base + scope["path"], data=body,
                              headers={"content-type": "application/json"}) as response:
        content_type = response.headers.get("content-type", "application/json").encode()
        if content_type.startswith(b"text/event-stream"):
            await send({"type": "http.response.start", "status": response.status,
                        "headers": [(b"content-type", content_type)]})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        data = await response.read()
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(b"content-type", content_type),
                                (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
