# SPDX-License-Identifier: Apache-2.0
"""A small OpenAI-shaped upstream for testing the gateway's own logic (not vLLM)."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Behaviour:
    # ok | error503 | slow_stream | die_mid_answer | cut_stream | headers_then_die |
    # vllm_error400 (an error in vLLM's own shape) | silent (no answer for 5 s)
    mode: str = "ok"
    chunks: int = 3
    delay: float = 0.0
    # The text of the answer, piece by piece (one stream event each); default w0 w1 w2.
    pieces: list[str] | None = None


@dataclass
class FakeUpstream:
    behaviour: Behaviour = field(default_factory=Behaviour)
    bodies: list[dict] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    tokenized: list[dict] = field(default_factory=list)
    port: int = 0

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        b = self.behaviour
        if b.mode == "silent":  # a replica stuck (or working on a long answer)
            await asyncio.sleep(5)
        if b.mode == "error503":
            return web.json_response({"error": {"message": "overloaded"}}, status=503)
        if b.mode == "vllm_error400":
            return web.json_response({"error": {"message": "This model's maximum context "
                                                "length is 512 tokens.",
                                                "type": "BadRequestError", "param": None,
                                                "code": 400}}, status=400)
        if b.mode == "headers_then_die" and body.get("stream"):
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)  # headers out, then the process "dies"
            request.transport.close()
            return response
        if b.mode == "die_mid_answer":  # headers and half a body, then the process "dies"
            response = web.StreamResponse(headers={"content-type": "application/json",
                                                   "content-length": "1000"})
            await response.prepare(request)
            await response.write(b'{"id": "cmpl-1", "choices": [')
            request.transport.close()
            return response
        pieces = b.pieces or [f"w{i} " for i in range(b.chunks)]
        usage = {"prompt_tokens": 7, "completion_tokens": len(pieces),
                 "total_tokens": 7 + len(pieces)}
        chat = request.path.endswith("/chat/completions")
        if not body.get("stream"):
            text = "".join(b.pieces) if b.pieces else "hello " * b.chunks
            choice = ({"index": 0, "message": {"role": "assistant", "content": text},
                       "finish_reason": "stop"} if chat else
                      {"index": 0, "text": text, "finish_reason": "stop"})
            return web.json_response({"id": "cmpl-1", "object": "chat.completion" if chat else
                                      "text_completion", "created": 1, "model": body["model"],
                                      "choices": [choice], "usage": usage})
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            count = len(pieces) if b.mode != "slow_stream" else 1000
            for i in range(count):
                piece = pieces[i] if i < len(pieces) else f"w{i} "
                last = i == count - 1
                delta = ({"index": 0, "delta": {"content": piece},
                          "finish_reason": "stop" if last else None}
                         if chat else {"index": 0, "text": piece,
                                       "finish_reason": "stop" if last else None})
                chunk = {"id": "c", "object": "chat.completion.chunk" if chat
                         else "text_completion", "created": 1,
                         "model": body["model"], "choices": [delta]}
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                if b.mode == "cut_stream" and i == 1:  # the replica dies mid-stream
                    request.transport.close()
                    return response
                await asyncio.sleep(0.05 if b.mode == "slow_stream" else b.delay)
            if (body.get("stream_options") or {}).get("include_usage"):
                final = {"id": "c", "object": "chat.completion.chunk", "created": 1,
                         "model": body["model"], "choices": [], "usage": usage}
                await response.write(f"data: {json.dumps(final)}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled.set()
            raise
        return response

    async def tokenize(self, request: web.Request) -> web.Response:
        """vLLM's /tokenize: here one token per word of the prompt or messages."""
        body = await request.json()
        self.tokenized.append(body)
        text = body.get("prompt") or " ".join(str(m.get("content", ""))
                                              for m in body.get("messages") or [])
        return web.json_response({"count": len(text.split()), "max_model_len": 512,
                                  "tokens": []})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/tokenize", self.tokenize)
        app.router.add_post("/v1/chat/completions", self.completions)
        app.router.add_post("/v1/completions", self.completions)
        return app


class UpstreamThread:
    """Runs a FakeUpstream on its own event loop in a daemon thread."""

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        runner = web.AppRunner(self.upstream.app(), handler_cancellation=True)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.upstream.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.runner = runner
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> FakeUpstream:
        self.thread.start()
        self.ready.wait(10)
        return self.upstream

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
