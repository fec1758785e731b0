# SPDX-License-Identifier: Apache-2.0
"""A small OpenAI-shaped server standing in for a vLLM replica (its HTTP boundary only)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FakeReplica:
    fail_first: int = 0  # answer 503 to this many requests before answering normally
    always: int | None = None  # answer every request with this status
    delay: float = 0.0  # seconds before each answer
    request_ids: list[str] = field(default_factory=list)  # x-request-id of each request
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each request
    models: list[str] = field(default_factory=list)  # the "model" each request named
    port: int = 0

    async def complete(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = await request.json()
        self.request_ids.append(request.headers.get("x-request-id", ""))
        self.arrivals.append(time.monotonic())
        self.models.append(body.get("model", ""))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.always is not None:
            return web.json_response({"error": {"message": "unavailable"}}, status=self.always)
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.json_response({"error": {"message": "overloaded"}}, status=503)
        if body.get("top_k", -1) < -1:  # vLLM refuses this with a 400 (Potluck does not check it)
            return web.json_response({"error": {"message": "top_k must be -1 or at least 1",
                                                "type": "BadRequestError", "code": 400}},
                                     status=400)
        usage = {"prompt_tokens": 3, "completion_tokens": body.get("max_tokens", 1),
                 "total_tokens": 3 + body.get("max_tokens", 1)}
        return web.json_response({
            "id": "cmpl-fake", "object": "text_completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "text": f"echo {body.get('prompt')}",
                         "finish_reason": "length"}], "usage": usage})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/completions", self.complete)
        app.router.add_post("/v1/chat/completions", self.complete)
        return app


class ReplicaThread:
    """Runs a FakeReplica on its own event loop in a daemon thread."""

    def __init__(self, replica: FakeReplica) -> None:
        self.replica = replica
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.runner = web.AppRunner(self.replica.app())
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.replica.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> FakeReplica:
        self.thread.start()
        self.ready.wait(10)
        return self.replica

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
