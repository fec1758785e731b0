# SPDX-License-Identifier: Apache-2.0
"""The fake OpenAI upstream: nginx answering fixed bodies, as fast as anything can.

Two ports, one per model name the gateway routes: ``json_port`` answers a chat
completion with usage, ``sse_port`` a fixed stream of chat-completion chunks (a usage
chunk included). Every request is logged with the gateway's ``x-request-id``, so a
gateway phase can be reconciled request by request against the usage records.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson
import procs

PROMPT_TOKENS = 9
COMPLETION_TOKENS = 7

CHAT_BODY = orjson.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000,
    "model": "bench-fake",
    "choices": [{"index": 0, "message": {"role": "assistant",
                                         "content": "Hello from the fake upstream!"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
              "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
}).decode()


def _chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
    body: dict = {"id": "chatcmpl-bench", "object": "chat.completion.chunk",
                  "created": 1700000000, "model": "bench-fake-sse"}
    body["choices"] = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    if usage:
        body["usage"] = usage
    return "data: " + orjson.dumps(body).decode() + "\n\n"


STREAM_WORDS = ["Hello", " from", " the", " fake", " upstream", "!", ""]
SSE_BODY = "".join([
    _chunk({"role": "assistant", "content": ""}),
    *(_chunk({"content": w}) for w in STREAM_WORDS[:-1]),
    _chunk({}, finish="stop"),
    _chunk({}, usage={"prompt_tokens": PROMPT_TOKENS, "completion_tokens": len(STREAM_WORDS) - 1,
                      "total_tokens": PROMPT_TOKENS + len(STREAM_WORDS) - 1}),
    "data: [DONE]\n\n",
])
STREAM_COMPLETION_TOKENS = len(STREAM_WORDS) - 1


def _quote(text: str) -> str:
    """An nginx single-quoted string (its parser knows \\n, \\', \\\\)."""
    if "$" in text:
        raise ValueError("nginx would expand '$' in a return body")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
events {{ worker_connections 8192; multi_accept on; }}
http {{
    access_log off;
    log_format bench '$server_port $status $http_x_request_id';
    client_body_temp_path {dir}/body;
    client_body_buffer_size 64k;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server_tokens off;
    server {{
        listen 127.0.0.1:{json_port} backlog=4096;
        access_log {dir}/json.log bench;
        location / {{ default_type application/json; return 200 {chat}; }}
    }}
    server {{
        listen 127.0.0.1:{sse_port} backlog=4096;
        access_log {dir}/sse.log bench;
        location / {{ default_type text/event-stream; return 200 {sse}; }}
    }}
}}
"""


@dataclass
class Nginx:
    directory: Path
    binary: str
    json_port: int = 0
    sse_port: int = 0
    process: subprocess.Popen | None = None

    @property
    def json_url(self) -> str:
        return f"http://127.0.0.1:{self.json_port}"

    @property
    def sse_url(self) -> str:
        return f"http://127.0.0.1:{self.sse_port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "body").mkdir(exist_ok=True)
        self.json_port, self.sse_port = procs.free_port(), procs.free_port()
        conf = self.directory / "nginx.conf"
        conf.write_text(_CONF.format(
            dir=self.directory, json_port=self.json_port, sse_port=self.sse_port,
            chat=_quote(CHAT_BODY), sse=_quote(SSE_BODY),
            user="user root;" if os.geteuid() == 0 else ""))
        log = self.directory / "nginx.out"
        self.process = procs.spawn([self.binary, "-p", str(self.directory), "-e",
                                    str(self.directory / "error.log"), "-c", str(conf)], log)
        for url in (self.json_url, self.sse_url):
            procs.wait_until(lambda u=url: _post_ok(u), 15, "nginx", self.process,
                             self.directory / "error.log")

    def stop(self) -> None:
        procs.stop(self.process)
        self.process = None

    def log_size(self, which: str) -> int:
        path = self.directory / f"{which}.log"
        return path.stat().st_size if path.exists() else 0

    def log_since(self, which: str, offset: int) -> list[tuple[int, str]]:
        """(status, x-request-id) of every request logged after byte ``offset``."""
        with (self.directory / f"{which}.log").open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode().splitlines()
        out = []
        for line in lines:
            _, status, request_id = line.split(" ", 2)
            out.append((int(status), "" if request_id == "-" else request_id))
        return out


def _post_ok(url: str) -> bool:
    request = urllib.request.Request(url + "/v1/chat/completions", data=b"{}",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=2) as response:
        return response.status == 200
