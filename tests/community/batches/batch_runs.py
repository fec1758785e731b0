# SPDX-License-Identifier: Apache-2.0
"""Driving the batch runner in the test process against fake replicas (``run_batch`` is
what the Celery task calls; test_batch_end_to_end.py runs it in a real node agent against
real vLLM): helpers shared by test_batch_*.py."""

from __future__ import annotations

import socket
import sys
import threading
import traceback
from collections.abc import Iterable

from django.db import OperationalError, connections

from potluck.batches import input as batch_input
from potluck.batches import lease, lifecycle, results, runner, services
from potluck.batches.models import Batch
from potluck.files import selectors as file_selectors


def new_batch(org, stored, api_key=None, endpoint: str = "/v1/completions") -> Batch:
    return services.create_batch(org, {"input_file_id": stored.id, "endpoint": endpoint,
                                       "completion_window": "24h"}, api_key=api_key)


def in_background(batch_id: str) -> tuple[threading.Thread, list[str]]:
    """run_batch in a thread of its own (as a worker thread runs it)."""
    said: list[str] = []

    def work() -> None:
        try:
            said.append(runner.run_batch(batch_id))
        finally:
            connections.close_all()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, said


def join(thread: threading.Thread, seconds: float = 60) -> None:
    """Wait for a run started by ``in_background``; if it is still running after
    ``seconds``, fail with the stack of every thread (where it is stuck)."""
    thread.join(seconds)
    if thread.is_alive():
        frames = sys._current_frames()
        stacks = "\n".join(
            f"--- {t.name}\n" + "".join(traceback.format_stack(frames[t.ident]))
            for t in threading.enumerate() if t.ident in frames)
        raise AssertionError(f"the batch run did not end within {seconds:.0f} s; "
                             f"threads:\n{stacks}")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stored_file(org, file_id: str | None):
    assert file_id is not None
    return file_selectors.get_file(org, file_id)


def ran_some_lines(batch: Batch, stored, token: str, lines: Iterable[int]) -> None:
    """What a runner holding ``token`` leaves after recording ``lines``: the batch
    in progress, still leased to it, those lines with results ``{"recorded": n}``."""
    assert lease.claim(batch.pk, token) is not None
    assert lifecycle.start(batch, token, batch_input.check_input(stored, batch.endpoint))
    results.record(batch.pk, [results.Outcome(line=n, custom_id=f"req-{n}", model="fake-model",
                                              status_code=200, body={"recorded": n})
                              for n in lines])


def rid(batch: Batch, line: int) -> str:
    return f"batch_req_{batch.pk.removeprefix('batch_')}_{line}"


def outage_in(monkeypatch, module: object, name: str) -> list[bool]:
    """Makes ``module.name`` raise OperationalError while the returned flag is true."""
    real = getattr(module, name)
    down = [True]

    def maybe_down(*args: object) -> object:
        if down[0]:
            raise OperationalError("server closed the connection unexpectedly")
        return real(*args)

    monkeypatch.setattr(module, name, maybe_down)
    return down
