# SPDX-License-Identifier: Apache-2.0
"""API key authentication for /v1, with a short per-worker cache.

A key is looked up once and then served from memory for ``ttl`` seconds, so a
revocation takes effect within that time (default 5 s) on every worker. Unknown keys
are cached too, so a client with a bad key cannot make every request hit Postgres.

With the database unreachable (degraded mode), a key this worker has seen is served from
its last answer, however old, and looked up again at most once per ``ttl``; a key it has
never seen gets a 503 (``database_unavailable``, with Retry-After), never a 500. A
revocation made meanwhile takes effect once the database answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict
from datetime import datetime

from django.db import DatabaseError
from django.utils import timezone

from potluck.accounts import keys
from potluck.accounts.models import ApiKey
from potluck.accounts.services import LAST_USED_RESOLUTION
from potluck.gateway.db import DatabaseThread
from potluck.inference.context import Caller
from potluck.inference.errors import InferenceError

log = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5


def database_unavailable() -> InferenceError:
    """What a caller whose key this worker has never seen gets while Postgres is down."""
    return InferenceError(503, "Potluck cannot check this API key right now (its database "
                          "is unreachable); retry shortly.", type="server_error",
                          code="database_unavailable",
                          headers=[(b"retry-after", str(RETRY_AFTER_SECONDS).encode())])


def _load(lookup: str, raw: str) -> tuple[Caller | None, datetime | None]:
    key = (ApiKey.objects.select_related("organization").filter(lookup=lookup)
           .only("id", "secret_hash", "scopes", "expires_at", "revoked_at", "rpm_limit",
                 "tpm_limit", "last_used_at", "organization__id", "organization__rpm_limit",
                 "organization__tpm_limit").first())
    if key is None or not keys.matches(raw, key.secret_hash) or key.revoked_at is not None:
        return None, None
    org = key.organization
    return Caller(organization_id=str(org.id), api_key_id=str(key.id),
                  scopes=frozenset(key.scopes), expires_at=key.expires_at,
                  key_rpm=key.rpm_limit, key_tpm=key.tpm_limit, org_rpm=org.rpm_limit,
                  org_tpm=org.tpm_limit), key.last_used_at


def _touch(key_id: str) -> None:
    ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())


class KeyCache:
    def __init__(self, db: DatabaseThread, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.db = db
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Caller | None]] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._loading: dict[str, asyncio.Future[Caller | None]] = {}
        self.degraded = False  # the last lookup found the database unreachable

    async def authenticate(self, raw: str) -> Caller | None:
        parsed = keys.parse(raw)
        if parsed is None:
            return None
        digest = keys.hash_key(raw)
        now = time.monotonic()
        hit = self._entries.get(digest)
        if hit is not None and now - hit[0] < self.ttl:
            caller = hit[1]
        else:
            caller = await self._lookup(digest, parsed.lookup, raw, now)
        if caller is None:
            return None
        if caller.expires_at is not None and caller.expires_at <= timezone.now():
            return None
        await self._maybe_touch(caller.api_key_id, now)
        return caller

    async def _lookup(self, digest: str, lookup: str, raw: str, now: float) -> Caller | None:
        """One database lookup per key at a time: requests that miss together (a busy key
        whose entry just expired) share it, instead of each queueing its own lookup on the
        single database thread."""
        pending = self._loading.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(digest, lookup, raw, now))
            self._loading[digest] = pending
            pending.add_done_callback(functools.partial(self._fetched, digest))
        # Shielded: a request that goes away does not cancel the lookup others wait on.
        return await asyncio.shield(pending)

    def _fetched(self, digest: str, future: asyncio.Future[Caller | None]) -> None:
        if self._loading.get(digest) is future:
            del self._loading[digest]
        if not future.cancelled():
            future.exception()  # retrieved, even if every waiter went away

    async def _fetch(self, digest: str, lookup: str, raw: str, now: float) -> Caller | None:
        try:
            caller, last_used = await self.db.run(_load, lookup, raw)
        except DatabaseError as exc:
            return self._stale(digest, now, exc)
        if self.degraded:
            log.info("API keys: the database answers again; lookups resumed")
            self.degraded = False
        self._remember(digest, now, caller)
        if caller is not None and last_used is not None:
            # Seed from the database so a fresh worker does not rewrite it at once.
            age = (timezone.now() - last_used).total_seconds()
            self._touched.setdefault(caller.api_key_id, now - age)
        return caller

    def _stale(self, digest: str, now: float, exc: DatabaseError) -> Caller | None:
        """The database is down: the last answer for a known key (checked again after
        ``ttl``), or ``database_unavailable`` for a key never seen by this worker."""
        if not self.degraded:
            log.warning("API keys: the database is unreachable (%s); serving keys this "
                        "worker knows from its cache", exc.__class__.__name__)
            self.degraded = True
        known = self._entries.get(digest)
        if known is None:
            raise database_unavailable() from None
        self._remember(digest, now, known[1])
        return known[1]

    def _remember(self, digest: str, now: float, caller: Caller | None) -> None:
        self._entries[digest] = (now, caller)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def _maybe_touch(self, key_id: str, now: float) -> None:
        last = self._touched.get(key_id)
        if last is None or now - last > LAST_USED_RESOLUTION.total_seconds():
            self._touched[key_id] = now
            # Off the request's path: last-used is informative, latency is not.
            task = asyncio.create_task(self._touch(key_id))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _touch(self, key_id: str) -> None:
        # Informative only: with the database down it is written again later.
        with contextlib.suppress(DatabaseError):
            await self.db.run(_touch, key_id)
