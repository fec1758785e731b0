# SPDX-License-Identifier: Apache-2.0
"""``events.jsonl``: the run's append-only progress log, one JSON object per line.

A resumed run appends to the same file and continues the sequence numbers. A line that a
killed process left half-written is skipped when looking for the last number, and the
next line starts on a fresh line so that it stays readable.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

Level = Literal["info", "warn", "error"]
EventType = Literal["message", "metrics", "checkpoint", "result"]
EVENTS_FILE = "events.jsonl"


def last_seq(path: Path) -> int:
    """The highest ``seq`` among the readable lines of ``path``; 0 when there are none."""
    highest = 0
    try:
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    event = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                seq = event.get("seq") if isinstance(event, dict) else None
                if isinstance(seq, int) and seq > highest:
                    highest = seq
    except FileNotFoundError:
        return 0
    return highest


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every readable event of ``path``, in file order."""
    events = []
    with path.open("rb") as handle:
        for raw in handle:
            try:
                event = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(event, dict):
                events.append(event)
    return events


class EventLog:
    """Appends events to ``<output_dir>/events.jsonl``, one flushed line each."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / EVENTS_FILE
        self._seq = last_seq(self.path)
        self._handle = self.path.open("ab")
        if self._handle.tell() > 0 and not _ends_with_newline(self.path):
            self._handle.write(b"\n")
            self._handle.flush()

    def emit(self, type_: EventType, message: str, data: dict[str, Any] | None = None, *,
             level: Level = "info") -> dict[str, Any]:
        self._seq += 1
        event = {"seq": self._seq, "created_at": time.time(), "level": level, "type": type_,
                 "message": message, "data": data or {}}
        # One write per line: a reader never sees half an event unless the process dies
        # inside this call.
        self._handle.write(json.dumps(event, allow_nan=False).encode() + b"\n")
        self._handle.flush()
        return event

    def info(self, message: str, **data: Any) -> None:
        self.emit("message", message, data)

    def warn(self, message: str, **data: Any) -> None:
        self.emit("message", message, data, level="warn")

    def close(self) -> None:
        self._handle.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"
