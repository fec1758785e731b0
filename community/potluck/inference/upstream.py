# SPDX-License-Identifier: Apache-2.0
"""Sending a request to a replica, with the one set of retry rules online calls and batch
lines share.

The rules (``RetryRules``):

- A request goes to the READY replica with the fewest requests in flight (for an
  adapter: among those that hold it).
- A connection failure, a 502 or a 503 from the replica, or a replica that dies before
  anything of its answer reached the client, is retried: on a replica not tried yet if
  there is one, else on the least busy one again after a short back-off; at most
  ``max_attempts`` sends in all. Generation has no side effects, so a retry is safe.
  When the last attempt still gets a 502 or 503, that answer is the answer; when it
  could not connect, the request fails (``UpstreamFailed``, a 502 for the client).
- A replica that stays silent past the read timeout is not retried (it may be working
  on a long answer): the request fails with a timeout (504).
- Any other answer, 4xx included, is the answer.

A caller may veto a retry (``may_retry``): a batch run that may have lost its lease
sends nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from potluck import env
from potluck.inference.catalog import Catalog, ModelEntry, ReplicaEntry
from potluck.inference.context import RequestContext

RETRYABLE_STATUS = frozenset({502, 503})


class NoReadyReplica(Exception):
    """The model is deployed but no replica is READY now (online: 503; batch: wait)."""


class UpstreamFailed(Exception):
    """Every attempt failed (``timeout``: the replica stayed silent too long)."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.timeout = timeout


class RetryVetoed(Exception):
    """The caller's ``may_retry`` said no: the request is put back, not failed."""


@dataclass(frozen=True)
class RetryRules:
    """``max_attempts``: sends in all, the first included; ``backoff``: seconds before
    sending again to a replica already tried (times the attempt number, capped at
    ``max_backoff``). The same for online calls and batch lines."""

    max_attempts: int = 3
    backoff: float = 0.25
    max_backoff: float = 2.0

    def delay(self, attempt: int) -> float:
        return min(self.backoff * attempt, self.max_backoff)

    @classmethod
    def configured(cls) -> RetryRules:
        """The rules with ``POTLUCK_UPSTREAM_MAX_ATTEMPTS`` (read now, default 3)."""
        return cls(max_attempts=max(1, env.env_int("POTLUCK_UPSTREAM_MAX_ATTEMPTS", 3)))


@dataclass
class Attempt:
    """One send: the replica chosen and its answer's headers (the body is still to read)."""

    replica: ReplicaEntry
    response: aiohttp.ClientResponse

    def close(self) -> None:
        """Done with this replica: release the connection and its in-flight count."""
        self.response.release()
        self.replica.in_flight -= 1


class Upstream:
    """Sends requests to replicas from a ``Catalog`` over one pooled aiohttp session."""

    def __init__(self, http: aiohttp.ClientSession, catalog: Catalog,
                 rules: RetryRules | None = None) -> None:
        self.http = http
        self.catalog = catalog
        self.rules = rules or RetryRules.configured()

    def _choose(self, entry: ModelEntry, tried: set[str]) -> tuple[ReplicaEntry | None, bool]:
        """A replica not tried yet, else the least busy one again (``True``: a repeat)."""
        replica = self.catalog.pick(entry, tried)
        if replica is not None:
            return replica, False
        return self.catalog.pick(entry, set()), True

    async def send(self, ctx: RequestContext, payload: bytes, tried: set[str],
                   may_retry: Callable[[], Awaitable[bool]] | None = None) -> Attempt:
        """Send ``payload`` to ``ctx.entry``'s replicas until one answers with a status
        that is not retryable; returns that attempt (the caller reads and closes it).

        ``tried`` collects the replicas used, across calls for one request (a caller
        that must retry after reading, e.g. a replica dying mid-answer, calls again).
        Raises ``NoReadyReplica``, ``UpstreamFailed`` or ``RetryVetoed``.
        """
        assert ctx.entry is not None and ctx.endpoint is not None
        last = "no answer"
        while ctx.attempts < self.rules.max_attempts:
            replica, repeat = self._choose(ctx.entry, tried)
            if replica is None:  # none READY (or every one went away meanwhile)
                raise NoReadyReplica(ctx.entry.name)
            if ctx.attempts:
                if may_retry is not None and not await may_retry():
                    raise RetryVetoed()
                if repeat:
                    await asyncio.sleep(self.rules.delay(ctx.attempts))
            ctx.attempts += 1
            tried.add(replica.id)
            replica.in_flight += 1
            try:
                response = await self.http.post(
                    replica.url_for(ctx.endpoint.path), data=payload,
                    headers={"content-type": "application/json",
                             "x-request-id": ctx.request_id})
            except aiohttp.SocketTimeoutError:  # silent past the read timeout: not retried
                replica.in_flight -= 1
                raise UpstreamFailed("The model did not answer in time.", timeout=True
                                     ) from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                # (a connect timeout is one of these: the replica is unreachable)
                replica.in_flight -= 1
                last = f"replica unreachable ({exc.__class__.__name__})"
                continue
            except TimeoutError:
                replica.in_flight -= 1
                raise UpstreamFailed("The model did not answer in time.", timeout=True
                                     ) from None
            except BaseException:  # cancelled: the client went away
                replica.in_flight -= 1
                raise
            ctx.replica_id = replica.id
            if response.status in RETRYABLE_STATUS and ctx.attempts < self.rules.max_attempts:
                last = f"replica answered {response.status}"
                Attempt(replica, response).close()
                continue
            return Attempt(replica, response)  # the answer (the last 502/503 included)
        raise UpstreamFailed(f"No replica of '{ctx.entry.name}' answered ({last}) in "
                             f"{ctx.attempts} attempt(s).")

    def retries_left(self, ctx: RequestContext) -> bool:
        return ctx.attempts < self.rules.max_attempts

    async def fetch(self, ctx: RequestContext, payload: bytes,
                    may_retry: Callable[[], Awaitable[bool]] | None = None
                    ) -> tuple[int, bytes, str]:
        """A whole non-streamed answer: ``(status, body, content type)``. A replica that
        dies mid-answer is retried like one that failed to connect (nothing reached the
        client yet). Raises like ``send``."""
        tried: set[str] = set()
        while True:
            attempt = await self.send(ctx, payload, tried, may_retry)
            try:
                body = await attempt.response.read()
            except aiohttp.SocketTimeoutError:  # silent mid-answer: not retried either
                raise UpstreamFailed("The model did not answer in time.", timeout=True
                                     ) from None
            except aiohttp.ClientError as exc:
                if not self.retries_left(ctx):
                    raise UpstreamFailed(f"The replica failed mid-answer "
                                         f"({exc.__class__.__name__}).") from None
                continue
            except TimeoutError:
                raise UpstreamFailed("The model did not answer in time.", timeout=True
                                     ) from None
            finally:
                attempt.close()
            return (attempt.response.status, body,
                    attempt.response.headers.get("content-type", "application/json"))
