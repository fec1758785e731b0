# SPDX-License-Identifier: Apache-2.0
"""Usage events on their way to the Redis usage stream: a journal file per writer, shipped
in the background.

``record`` appends the event to this writer's journal (one ``write(2)``, no round trip),
before the request's last bytes go to the client. A background task (``run``) ships new
lines to the usage stream (``XADD``, many per pipeline) every ``ship_seconds``. So:

- a worker killed at any point loses nothing it recorded: the line is in the kernel's
  page cache once ``write`` returns, and whoever ships next (any worker of any process on
  this host sharing the data dir) finds the journal of a writer that is gone;
- Redis down delays usage, it never loses it: lines wait in the journal, and shipping
  resumes by itself when Redis answers, with or without traffic;
- a line shipped twice (a writer killed between ``XADD`` and noting it) is harmless: the
  roll-up records each request id once.

Each writer holds an exclusive ``flock`` on its journal for its life; a journal whose lock
can be taken has no writer left (its process died or closed it), and is shipped whole and
deleted by the first writer that finds it. Lines are the ``UsageEvent``'s JSON (the usage
stream's field ``r``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import redis
from redis.asyncio import Redis
from redis.exceptions import RedisError

from potluck.usage.stream import FIELD, STREAM_KEY, UsageEvent, encode

log = logging.getLogger(__name__)

SHIP_BATCH = 500  # lines per pipeline
TRUNCATE_AT = 1 << 20  # bytes: a fully shipped journal larger than this starts over


class UsageJournal:
    """One writer's journal (see the module docstring). Not thread-safe: one event loop."""

    def __init__(self, redis: Redis, directory: Path, *, ship_seconds: float = 0.05) -> None:
        self.redis = redis
        self.directory = directory
        self.ship_seconds = ship_seconds
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"usage-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._shipped = 0  # bytes of the journal already in the stream
        self._written = 0
        self._redis_down = False
        # One shipment at a time; ``run`` shields each round, so a writer closing (its
        # task cancelled) never interrupts an XADD whose answer it has not read yet:
        # ``close`` waits for that round and ships only what it left.
        self._shipping = asyncio.Lock()

    # -- the request path -------------------------------------------------------------
    async def record(self, event: UsageEvent) -> None:
        """Append one event (returns once it is in the journal; no network)."""
        line = _line(event)
        os.write(self._fd, line)
        self._written += len(line)

    # -- shipping ---------------------------------------------------------------------
    @property
    def pending_bytes(self) -> int:
        return self._written - self._shipped

    async def ship(self) -> int:
        """Move this journal's new lines to the usage stream; returns how many moved."""
        async with self._shipping:
            return await self._ship()

    async def _ship(self) -> int:
        if self._written == self._shipped:
            return 0
        data = os.pread(self._fd, self._written - self._shipped, self._shipped)
        complete = data[: data.rfind(b"\n") + 1]
        moved = 0
        for start, lines in _chunks(complete):
            await self._xadd(lines)
            self._shipped += start
            moved += len(lines)
        if self._shipped == self._written and self._written > TRUNCATE_AT:
            os.ftruncate(self._fd, 0)  # O_APPEND: the next record starts at 0
            self._shipped = self._written = 0
        return moved

    async def _xadd(self, lines: list[bytes]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for line in lines:
            pipe.xadd(STREAM_KEY, {FIELD: _stream_value(line)})
        await pipe.execute()

    async def recover(self) -> int:
        """Ship and delete the journals no writer holds any more (their process died, or
        an earlier version's spool); returns how many lines moved."""
        async with self._shipping:
            return await self._recover()

    async def _recover(self) -> int:
        moved = 0
        for claimed in abandoned_journals(self.directory, exclude=self.path):
            with claimed:
                for _, lines in _chunks(claimed.data):
                    await self._xadd(lines)
                    moved += len(lines)
                claimed.done()
        return moved

    async def _round(self, rounds: int) -> None:
        await self.ship()
        if rounds % 100 == 0:
            recovered = await self.recover()
            if recovered:
                log.info("shipped %d usage records left by writers that are gone", recovered)

    async def run(self) -> None:
        """Ship every ``ship_seconds`` and recover others' journals every few seconds, for
        the life of the writer; Redis being down is logged once per outage."""
        rounds = 0
        while True:
            try:
                await asyncio.shield(self._round(rounds))
                if self._redis_down:
                    log.info("usage journal: Redis answers again; shipping resumed")
                    self._redis_down = False
            except (RedisError, OSError) as exc:
                if not self._redis_down:
                    log.warning("usage journal: Redis unreachable (%s); %d bytes of usage wait "
                                "in %s", exc.__class__.__name__, self.pending_bytes, self.path)
                self._redis_down = True
            except Exception:
                log.exception("usage journal: shipping failed")
            rounds += 1
            await asyncio.sleep(self.ship_seconds)

    async def close(self) -> None:
        """Ship what is left if Redis answers; delete the journal when all of it shipped."""
        with contextlib.suppress(RedisError, OSError):
            await self.ship()
        if self._written == self._shipped:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        os.close(self._fd)  # releases the lock: a journal left behind is recovered


class _Claimed:
    """An abandoned journal, locked by us: ``data`` (its complete lines); ``done()``
    deletes it once shipped. Leaving the ``with`` block releases it either way."""

    def __init__(self, path: Path, fd: int, data: bytes) -> None:
        self.path, self.fd, self.data = path, fd, data

    def done(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def __enter__(self) -> _Claimed:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def abandoned_journals(directory: Path, exclude: Path | None = None) -> Iterator[_Claimed]:
    """Journals in ``directory`` whose writer is gone (their lock can be taken), one at a
    time, each locked while the caller ships it."""
    for path in sorted(directory.glob("usage-*.jsonl")):
        if path == exclude:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # its writer is alive
            continue
        if not path.exists():  # another process shipped and deleted it meanwhile
            os.close(fd)
            continue
        data = path.read_bytes()
        yield _Claimed(path, fd, data[: data.rfind(b"\n") + 1])


def recover_journals(directory: Path, conn: redis.Redis) -> int:
    """``UsageJournal.recover`` for a process without an event loop (the node agent, on
    its heartbeat): ships abandoned journals with a synchronous client."""
    moved = 0
    if not directory.is_dir():
        return 0
    for claimed in abandoned_journals(directory):
        with claimed:
            for _, lines in _chunks(claimed.data):
                pipe = conn.pipeline(transaction=False)
                for line in lines:
                    pipe.xadd(STREAM_KEY, {FIELD: _stream_value(line)})
                pipe.execute()
                moved += len(lines)
            claimed.done()
    return moved


def _line(event: UsageEvent) -> bytes:
    value = encode(event)[FIELD]
    return (value if isinstance(value, bytes) else value.encode()) + b"\n"


def _stream_value(line: bytes) -> bytes:
    """The stream field of a journal line (a spool line of an earlier version holds the
    whole entry, ``{"r": "..."}``)."""
    line = line.rstrip(b"\n")
    if line.startswith(b'{"r":'):
        with contextlib.suppress(orjson.JSONDecodeError, AttributeError):
            value = orjson.loads(line)["r"]
            return value.encode() if isinstance(value, str) else line
    return line


def _chunks(data: bytes) -> list[tuple[int, list[bytes]]]:
    """Complete lines in groups of ``SHIP_BATCH``, each with its length in bytes."""
    out: list[tuple[int, list[bytes]]] = []
    lines = data.splitlines(keepends=True)
    for i in range(0, len(lines), SHIP_BATCH):
        group = lines[i:i + SHIP_BATCH]
        out.append((sum(len(line) for line in group), [ln for ln in group if ln.strip()]))
    return out
