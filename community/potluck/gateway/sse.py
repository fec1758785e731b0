# SPDX-License-Identifier: Apache-2.0
"""Pass an upstream SSE stream through event by event, reading its usage on the way.

The gateway asks vLLM for a final usage chunk (``stream_options.include_usage``) so
every stream can be metered; if the client did not ask for it, that chunk is removed
before it reaches the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson


def _same(event: bytes) -> bytes:
    return event


class StreamMeter:
    def __init__(self, client_wants_usage: bool,
                 rename: Callable[[bytes], bytes] = _same) -> None:
        """``rename`` is applied to whole events only (an adapter's server name becomes
        the caller's name for it; see ``ModelEntry.public_body``)."""
        self.client_wants_usage = client_wants_usage
        self.rename = rename
        self.buffer = b""
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.content_events = 0
        self.saw_usage = False
        self.first_content_at: float | None = None

    def feed(self, chunk: bytes) -> bytes:
        """Complete events to forward now; a partial event waits for the next chunk."""
        self.buffer += chunk
        if b"\n\n" not in self.buffer:
            return b""
        complete, _, self.buffer = self.buffer.rpartition(b"\n\n")
        out = []
        for event in complete.split(b"\n\n"):
            if self._keep(event):
                out.append(event)
        return self.rename(b"\n\n".join(out) + b"\n\n") if out else b""

    def flush(self) -> bytes:
        rest, self.buffer = self.buffer, b""
        return self.rename(rest)

    def _keep(self, event: bytes) -> bool:
        data = event.removeprefix(b"data: ").removeprefix(b"data:")
        if data is event or data.strip() == b"[DONE]":
            return True
        if b'"usage"' not in data or b'"usage":null' in data:
            self._count_content(data)
            return True
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        usage = payload.get("usage")
        if isinstance(usage, dict):
            self.saw_usage = True
            self.prompt_tokens = int(usage.get("prompt_tokens") or 0)
            self.completion_tokens = int(usage.get("completion_tokens") or 0)
            if not payload.get("choices"):
                return self.client_wants_usage
            if not self.client_wants_usage:
                return True
        self._count_content(data)
        return True

    def _count_content(self, data: bytes) -> None:
        if b'"choices":[]' in data:
            return
        self.content_events += 1
        if self.first_content_at is None:
            self.first_content_at = time.perf_counter()
