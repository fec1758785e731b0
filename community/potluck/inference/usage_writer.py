# SPDX-License-Identifier: Apache-2.0
"""Hands each finished request's usage to the Redis stream, without waiting on Postgres.

If Redis cannot take it, the record is appended to a spool file in the data dir and
replayed later: a Redis outage delays usage, it never loses it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from potluck.usage.stream import STREAM_KEY, UsageEvent, encode

log = logging.getLogger(__name__)


class UsageWriter:
    def __init__(self, redis: Redis, spool_dir: Path) -> None:
        self.redis = redis
        self.spool_dir = spool_dir
        self.spool = spool_dir / f"usage-{os.getpid()}.jsonl"
        self._lock = asyncio.Lock()

    async def record(self, event: UsageEvent, token_keys: tuple[str, ...] = ()) -> None:
        fields = encode(event)
        tokens = event.prompt_tokens + event.completion_tokens
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.xadd(STREAM_KEY, fields)
            if tokens:
                for key in token_keys:
                    if key:
                        pipe.incrby(key, tokens)
                        pipe.expire(key, 120)
            await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("usage record %s spooled (redis: %s)", event.request_id,
                        exc.__class__.__name__)
            self._spool(fields)

    def _spool(self, fields: dict) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps({k: v.decode() if isinstance(v, bytes) else v
                             for k, v in fields.items()})
        with self.spool.open("ab") as handle:
            handle.write(line + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    async def replay(self) -> int:
        """Move spooled records (this worker's, and those of dead workers) into the stream."""
        if not self.spool_dir.exists():
            return 0
        moved = 0
        async with self._lock:
            for path in sorted(self.spool_dir.glob("usage-*.jsonl")):
                pid = int(path.stem.removeprefix("usage-") or 0)
                if path != self.spool and _alive(pid):
                    continue
                claimed = path.with_suffix(f".replaying-{os.getpid()}")
                try:
                    path.rename(claimed)
                except FileNotFoundError:
                    continue
                lines = claimed.read_bytes().splitlines()
                try:
                    pipe = self.redis.pipeline(transaction=False)
                    for line in lines:
                        pipe.xadd(STREAM_KEY, orjson.loads(line))
                    await pipe.execute()
                except (RedisError, OSError):
                    claimed.rename(path)  # still down: keep it for the next try
                    return moved
                # A record may now be in the stream twice if an earlier replay died
                # half-way; the roll-up's request-id key makes that harmless.
                claimed.unlink()
                moved += len(lines)
        return moved


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
