# SPDX-License-Identifier: Apache-2.0
"""Sends a batch's lines to the READY replicas serving their models, a few at a time.

One asyncio loop per running batch (in the Celery worker thread that runs it): up to
``POTLUCK_BATCH_CONCURRENCY`` lines in flight over one pooled aiohttp session. Each
line goes through the inference core (``potluck.inference``) exactly as an online call
does: the same routing, retry rules, policies and usage record; only waiting for a
READY replica (instead of a 503) is the batch's own.

Database work runs on helper threads, so the loop never blocks on Postgres: one reads
the input and writes results, another refreshes progress and the routing table, and
the runner's ``LeaseKeeper`` renews the lease on a thread of its own (no slow query
holds up a renewal). The loop follows the keeper: it stops on cancellation, expiry or
a lost lease, and takes no new line while the lease is not surely held. Each finished
line's usage record is appended when it finishes (the usage meter stage), then a
writer commits its result row: a crash between the two re-runs the line, and the usage
record's fixed request id keeps it counted once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import aiohttp
import orjson
from django.conf import settings
from django.db import connections
from django.utils import timezone
from redis.asyncio import Redis

from potluck import extensions
from potluck.batches import conf, lease, results
from potluck.batches import input as batch_input
from potluck.batches.models import Batch, BatchStatus
from potluck.batches.results import Outcome
from potluck.files.models import StoredFile
from potluck.inference.catalog import Catalog, load_snapshot
from potluck.inference.context import BATCH, Caller, RequestContext
from potluck.inference.context import Outcome as Outcome_
from potluck.inference.core import Answer, InferenceCore
from potluck.inference.errors import InferenceError
from potluck.inference.metering import UsageMeter
from potluck.inference.upstream import NoReadyReplica, RetryVetoed
from potluck.inference.usage_writer import UsageJournal
from potluck.protocol import endpoints

log = logging.getLogger(__name__)
T = TypeVar("T")

READ_AHEAD = 256  # input lines read per trip to the helper thread
WRITE_GROUP = 256  # most results committed in one transaction
WRITE_TRIES = 5
NO_REPLICA_PAUSE = 1.0
# Set when this worker process is shutting down (see potluck.batches.tasks): runs stop
# taking lines, finish those in flight and hand their batch back at once.
WORKER_SHUTTING_DOWN = threading.Event()


class Stop:
    """Why a run stopped taking lines (None: it ran out of lines)."""

    CANCELLED = "cancelled"
    EXPIRED = "expired"
    LEASE_LOST = "lease_lost"
    SHUTDOWN = "worker_shutdown"
    ERROR = "error"


class _Deferred(Exception):
    """The run stops before this line is answered; a later run sends it."""


class Dispatcher:
    def __init__(self, batch: Batch, stored: StoredFile, keeper: lease.LeaseKeeper) -> None:
        self.batch = batch
        self.stored = stored
        self.keeper = keeper
        self.caller = Caller(organization_id=str(batch.organization_id),
                             api_key_id=str(batch.api_key_id) if batch.api_key_id else None)
        self.endpoint = endpoints.BY_PATH[batch.endpoint]
        self.catalog = Catalog()
        self.reason: str | None = None
        self.sent = 0  # HTTP requests made, retries included

    # -- entry point ----------------------------------------------------------------
    def run(self) -> str | None:
        """Send every line that has no result yet; None when all did, else why it stopped."""
        return asyncio.run(self._main())

    async def _main(self) -> str | None:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self.lease_changed = asyncio.Event()
        self.outcomes: asyncio.Queue[Outcome | None] = asyncio.Queue()
        self.helper = ThreadPoolExecutor(1, thread_name_prefix=f"{self.batch.pk}-db")
        self.watcher = ThreadPoolExecutor(1, thread_name_prefix=f"{self.batch.pk}-progress")
        self.keeper.on_change = functools.partial(_wake, loop, self.lease_changed)
        try:
            done = await self._call(results.recorded_lines, self.batch.pk)
            await self._refresh_catalog()
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=5,
                                            sock_read=conf.read_timeout())
            redis = Redis.from_url(settings.REDIS_URL, socket_timeout=5,
                                   socket_connect_timeout=2)
            self.usage = UsageJournal(redis, settings.DATA_DIR / "spool")
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
                    timeout=timeout, skip_auto_headers=("User-Agent",)) as self.http:
                self.core = InferenceCore(self.http, self.catalog, [UsageMeter(self.usage)])
                writer = asyncio.create_task(self._write_results())
                watchers = [asyncio.create_task(self._follow_lease()),
                            asyncio.create_task(self._refresh_progress()),
                            asyncio.create_task(self.usage.run())]
                try:
                    await self._dispatch(done)
                finally:
                    await self.outcomes.put(None)
                    await writer
                    for task in watchers:
                        task.cancel()
                    await asyncio.gather(*watchers, return_exceptions=True)
                    await self.usage.close()  # what Redis did not take waits in the journal
                    await redis.aclose()
        finally:
            self.keeper.on_change = None
            await self._call(connections.close_all)
            await self._watch(connections.close_all)
            self.helper.shutdown(wait=True)
            self.watcher.shutdown(wait=True)
        return self.reason

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.helper, functools.partial(function, *args))

    async def _watch(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.watcher, functools.partial(function, *args))

    def _halt(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            log.info("batch %s: stops taking lines (%s)", self.batch.pk, reason)
        self.stopping.set()

    async def _pause(self, seconds: float) -> bool:
        """Sleep, or less if the run is stopping; True if it is."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)
        return self.stopping.is_set()

    # -- dispatching ------------------------------------------------------------------
    async def _dispatch(self, done: set[int]) -> None:
        slots = asyncio.Semaphore(conf.concurrency())
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            slots.release()

        lines = batch_input.read_lines(self.stored)
        try:
            while not self.stopping.is_set():
                chunk = await self._call(_take, lines, READ_AHEAD)
                if not chunk:
                    break
                for line in chunk:
                    if line.number in done:
                        continue
                    await slots.acquire()
                    if not await self._lease_held():
                        slots.release()
                        break
                    task = asyncio.create_task(self._run_line(line))
                    running.add(task)
                    task.add_done_callback(finished)
            if running:  # in-flight lines finish, even when stopping
                await asyncio.wait(set(running))
        finally:
            await self._call(lines.close)

    async def _run_line(self, line: batch_input.InputLine) -> None:
        try:
            outcome = await self._send(line)
        except Exception:  # a bug must not lose the line silently: it gets an error result
            log.exception("batch %s line %s failed unexpectedly", self.batch.pk, line.number)
            outcome = Outcome(line=line.number, custom_id=line.custom_id, model=line.model,
                              error_code="internal_error", usage_status=500,
                              error_message="The request failed inside Potluck.")
        if outcome is not None:
            await self.outcomes.put(outcome)

    async def _send(self, line: batch_input.InputLine) -> Outcome | None:
        """The line's outcome; None if the run stopped before it could be answered (a
        later run sends it). The line goes through the inference core like an online
        call: the same policies, retry rules and usage record (under the line's own
        request id, written before its result row)."""
        outcome = Outcome(line=line.number, custom_id=line.custom_id, model=line.model)
        ctx = self.core.new_context(self.endpoint, source=BATCH, caller=self.caller,
                                    request_id=results.request_id(self.batch.pk, line.number))
        try:
            answer = await self._answer(ctx, line)
        except InferenceError as error:
            ctx.status = error.status
            if error.code in ("model_not_found", "upstream_error", "upstream_timeout"):
                outcome.error_code = ("replica_unreachable" if error.code == "upstream_error"
                                      else error.code)
                outcome.error_message = error.message
                outcome.usage_status = error.status
            else:  # refused by a policy or the request check: an answer in OpenAI's shape
                outcome.status_code, outcome.body = error.status, error.as_dict()
            answer = None
        except _Deferred:
            ctx.outcome = Outcome_.DEFERRED
            self.sent += ctx.attempts
            await self.core.finish(ctx)
            return None
        if answer is not None:
            outcome.status_code, outcome.body = answer.status, _parse(answer.body)
        outcome.prompt_tokens, outcome.completion_tokens = ctx.prompt_tokens, \
            ctx.completion_tokens
        outcome.replica_id, outcome.attempts = ctx.replica_id, ctx.attempts
        outcome.latency_ms = ctx.latency_ms
        self.sent += ctx.attempts
        await self.core.finish(ctx)  # its usage record, before its result row
        return outcome

    async def _answer(self, ctx: RequestContext, line: batch_input.InputLine) -> Answer:
        """Admit the line, then wait for a READY replica as long as the run goes on.
        Raises ``InferenceError`` (the line's final error) or ``_Deferred``."""
        payload = await self.core.admit(ctx, dict(line.body))
        while True:
            try:
                return await self.core.complete(ctx, payload, may_retry=self._lease_held)
            except NoReadyReplica:  # deployed, but no READY replica now: wait for one
                if await self._pause(NO_REPLICA_PAUSE):
                    raise _Deferred() from None
            except RetryVetoed:  # a retry while the lease may have lapsed: not recorded
                raise _Deferred() from None

    # -- recording --------------------------------------------------------------------
    async def _write_results(self) -> None:
        """The result rows, in groups of what has finished (each line's usage record was
        written when it finished, before it got here)."""
        while True:
            first = await self.outcomes.get()
            group = [] if first is None else [first]
            ended = first is None
            while not ended and len(group) < WRITE_GROUP and not self.outcomes.empty():
                item = self.outcomes.get_nowait()
                if item is None:
                    ended = True
                else:
                    group.append(item)
            if group and self.reason != Stop.ERROR:
                try:
                    await self._record(group)
                except Exception:
                    log.exception("batch %s: could not record %d results; a later run "
                                  "sends them again", self.batch.pk, len(group))
                    self._halt(Stop.ERROR)
            if ended:
                return

    async def _record(self, group: list[Outcome]) -> None:
        for attempt in range(1, WRITE_TRIES + 1):
            try:
                await self._call(results.record, self.batch.pk, group)
                return
            except Exception:
                if attempt == WRITE_TRIES:
                    raise
                log.warning("batch %s: writing results failed (try %d)", self.batch.pk,
                            attempt, exc_info=True)
                await self._call(connections.close_all)
                await asyncio.sleep(attempt)

    # -- lease, cancellation, expiry, progress ---------------------------------------
    async def _lease_held(self) -> bool:
        """True once the lease is surely held (at once, almost always); False if the run
        is stopping. While renewals are late, no line is sent: once the lease may have
        lapsed, another runner may take the batch over."""
        waited = False
        while not self.stopping.is_set():
            if self.keeper.usable():
                if waited:
                    log.info("batch %s: lease renewed; sending again", self.batch.pk)
                return True
            if self.keeper.lost:
                self._halt(Stop.LEASE_LOST)
                break
            if not waited:
                log.warning("batch %s: lease renewal is late; no new line until it is "
                            "renewed", self.batch.pk)
                waited = True
            self.lease_changed.clear()
            await self._until(self.lease_changed, self.keeper.interval)
        return False

    async def _follow_lease(self) -> None:
        """Stops the run on a lost lease, cancellation, expiry or worker shutdown, looking
        after every renewal (and every heartbeat interval, whatever happens)."""
        while True:
            if self.keeper.lost:
                self._halt(Stop.LEASE_LOST)
            elif WORKER_SHUTTING_DOWN.is_set():
                self._halt(Stop.SHUTDOWN)
            elif self.keeper.status == BatchStatus.CANCELLING:
                self._halt(Stop.CANCELLED)
            elif timezone.now() >= self.keeper.expires_at:
                self._halt(Stop.EXPIRED)
            if self.stopping.is_set():
                return
            self.lease_changed.clear()
            await self._until(self.lease_changed, self.keeper.interval)

    async def _until(self, event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    async def _refresh_progress(self) -> None:
        """The batch's request counts and the routing table, every heartbeat interval."""
        while True:
            await asyncio.sleep(self.keeper.interval)
            try:
                await self._watch(results.refresh_counts, self.batch.pk)
                await self._refresh_catalog()
                # A batch may run for hours: licence changes reach it like any worker.
                await self._watch(extensions.run_refreshers)
            except Exception:
                log.warning("batch %s: progress refresh failed", self.batch.pk, exc_info=True)
                await self._watch(connections.close_all)

    async def _refresh_catalog(self) -> None:
        self.catalog.replace(await self._watch(load_snapshot))


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    """Sets an asyncio event from another thread (the lease keeper's)."""
    with contextlib.suppress(RuntimeError):  # the loop has closed
        loop.call_soon_threadsafe(event.set)


def _take(lines: Iterator[batch_input.InputLine], count: int) -> list[batch_input.InputLine]:
    return list(itertools.islice(lines, count))


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")
