# SPDX-License-Identifier: Apache-2.0
"""Requests and tokens per minute, per API key and per organization, without a round trip
to Redis on most requests.

Windows are fixed minutes. Redis holds each window's count; a gateway worker does not ask
Redis for every request but takes a *lease*: a slice of a window's request budget
(``lease_size``), granted by one Lua script that never lets the window's count pass the
limit. The worker spends the lease locally and takes another when it runs out. Tokens
are known only when a request ends: each worker adds them up locally and pushes the sum
to Redis every ``flush_seconds``, reading back the window's total (everyone's tokens);
a request is refused while that total plus the worker's own unpushed tokens has reached
the limit.

The bounds this gives, with N workers (tested in tests/community/gateway):

- requests per minute: never more than the limit R in a window while Redis answers (a
  lease is granted only from what the window has left). Fewer may be admitted: up to
  (N - 1) x lease_size requests may sit unspent in other workers' leases when one worker
  runs out; ``lease_size(R) = max(1, min(R // 20, 50))``, i.e. at most 5 % of R per worker.
- tokens per minute: a request is admitted while the known total is under the limit, so
  a window overshoots by the tokens of requests in flight plus what other workers used in
  the last ``flush_seconds`` (0.25 s) and have not pushed yet.
- Redis unreachable (degraded mode): each worker goes on enforcing every limit from its own
  counts for the rest of the window, as if it were alone, so a window admits at most
  N x R; it logs once per outage and takes leases from Redis again when it answers.

With no limit set (0), nothing is counted and no Redis call is made.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from potluck.inference import errors
from potluck.inference.context import ONLINE, Caller, RequestContext
from potluck.inference.policies import Policy, Refusal

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60
KEY_TTL = 2 * WINDOW_SECONDS
# Grants up to ARGV[2i] more requests in window KEYS[i] without passing its limit ARGV[2i-1];
# returns each grant and the window's count after it.
_LEASE = """
local out = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local want = tonumber(ARGV[2 * i])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  local grant = math.max(0, math.min(want, limit - used))
  if grant > 0 then
    used = redis.call('INCRBY', KEYS[i], grant)
    redis.call('EXPIRE', KEYS[i], tonumber(ARGV[#ARGV]))
  end
  table.insert(out, grant)
  table.insert(out, used)
end
return out
"""

_WHAT = {"rpm:k": "requests per minute for this API key",
         "rpm:o": "requests per minute for this organization",
         "tpm:k": "tokens per minute for this API key",
         "tpm:o": "tokens per minute for this organization"}


def lease_size(limit: int) -> int:
    """Requests a worker takes at once from a window of ``limit`` requests."""
    return max(1, min(limit // 20, 50))


@dataclass(frozen=True)
class Defaults:
    """Limits for callers whose key or organization sets none (0: unlimited)."""

    key_rpm: int = 0
    key_tpm: int = 0
    org_rpm: int = 0
    org_tpm: int = 0


@dataclass(frozen=True)
class Verdict:
    """``allowed``, else why (``reason``) and in how many seconds to retry. ``limits``:
    the tightest requests and tokens limits that applied, as
    ``(kind, limit, remaining)`` for the rate-limit headers."""

    allowed: bool
    retry_after: int = 0
    reason: str = ""
    limits: tuple[tuple[str, int, int], ...] = ()


@dataclass
class _Window:
    """What this worker knows of one counter (e.g. a key's requests) in one window."""

    leased: int = 0  # requests granted to this worker and not spent yet
    seen: int = 0  # the window's count in Redis when last read (everyone's)
    spent: int = 0  # requests or tokens this worker used, not pushed to Redis yet (tokens)
    local: int = 0  # requests this worker admitted in degraded mode


@dataclass
class _State:
    minute: int = -1
    windows: dict[str, _Window] = field(default_factory=dict)


class Limiter:
    """Per-worker limiter; ``check`` before a request, ``add_tokens`` after it, and run
    ``flush`` (or ``run``) in the background to push tokens."""

    def __init__(self, redis: Redis, defaults: Defaults, *, flush_seconds: float = 0.25
                 ) -> None:
        self.redis = redis
        self.defaults = defaults
        self.flush_seconds = flush_seconds
        self._lease = redis.register_script(_LEASE)
        self._state = _State()
        self.degraded = False

    # -- the request path -------------------------------------------------------------
    def _limits(self, caller: Caller) -> dict[str, int]:
        d = self.defaults
        found = {f"rpm:k:{caller.api_key_id}": _pick(caller.key_rpm, d.key_rpm),
                 f"rpm:o:{caller.organization_id}": _pick(caller.org_rpm, d.org_rpm),
                 f"tpm:k:{caller.api_key_id}": _pick(caller.key_tpm, d.key_tpm),
                 f"tpm:o:{caller.organization_id}": _pick(caller.org_tpm, d.org_tpm)}
        return {name: limit for name, limit in found.items() if limit > 0}

    def _windows(self, now: float) -> dict[str, _Window]:
        minute = int(now // WINDOW_SECONDS)
        if minute != self._state.minute:  # a new window: old leases are void
            self._state = _State(minute=minute)
        return self._state.windows

    async def check(self, caller: Caller) -> Verdict:
        """Admit one request of ``caller`` or say why not (no Redis call on most)."""
        limits = self._limits(caller)
        if not limits:
            return Verdict(True)
        now = time.time()
        windows = self._windows(now)
        retry_after = max(1, int(WINDOW_SECONDS - now % WINDOW_SECONDS) + 1)
        for name, limit in limits.items():
            if name.startswith("tpm:"):
                window = windows.setdefault(name, _Window())
                if window.seen + window.spent >= limit:
                    return Verdict(False, retry_after, _reason(name, limit))
        requests = {name: limit for name, limit in limits.items() if name.startswith("rpm:")}
        empty = [name for name in requests if windows.setdefault(name, _Window()).leased < 1]
        if empty:
            refused = await self._refill(empty, requests, windows)
            if refused is not None:
                return Verdict(False, retry_after, _reason(refused, requests[refused]))
        for name in requests:
            windows[name].leased -= 1
        return Verdict(True, limits=self._headers(limits, windows))

    async def _refill(self, names: list[str], limits: dict[str, int],
                      windows: dict[str, _Window]) -> str | None:
        """Take leases for ``names``; the first one that has nothing left, or None."""
        minute = self._state.minute
        if not self.degraded:
            args: list[int] = []
            for name in names:
                args += [limits[name], lease_size(limits[name])]
            try:
                granted = await self._lease(keys=[_key(name, minute) for name in names],
                                            args=[*args, KEY_TTL])
            except (RedisError, OSError) as exc:
                self._degrade(exc)
            else:
                refused = None
                for i, name in enumerate(names):
                    windows[name].leased += int(granted[2 * i])
                    windows[name].seen = int(granted[2 * i + 1])
                    if windows[name].leased < 1 and refused is None:
                        refused = name
                return refused
        for name in names:  # degraded: this worker counts alone, against the whole limit
            window = windows[name]
            if window.local >= limits[name]:
                return name
            window.local += 1
            window.leased += 1
        return None

    def _degrade(self, exc: BaseException) -> None:
        if not self.degraded:
            log.warning("rate limits: Redis unreachable (%s); each worker enforces them "
                        "alone until it answers", exc.__class__.__name__)
        self.degraded = True

    def _headers(self, limits: dict[str, int], windows: dict[str, _Window]
                 ) -> tuple[tuple[str, int, int], ...]:
        out = []
        for kind in ("rpm", "tpm"):
            tightest = None
            for name, limit in limits.items():
                if not name.startswith(kind):
                    continue
                window = windows.get(name, _Window())
                used = window.seen + window.spent if kind == "tpm" else \
                    max(window.seen - window.leased, window.local)
                remaining = max(0, limit - used)
                if tightest is None or remaining < tightest[2]:
                    tightest = (kind, limit, remaining)
            if tightest is not None:
                out.append(tightest)
        return tuple(out)

    def add_tokens(self, caller: Caller, tokens: int) -> None:
        """Count a finished request's tokens (pushed to Redis by the next ``flush``)."""
        if tokens <= 0:
            return
        windows = self._windows(time.time())
        for name in self._limits(caller):
            if name.startswith("tpm:"):
                windows.setdefault(name, _Window()).spent += tokens

    # -- background -------------------------------------------------------------------
    async def flush(self) -> None:
        """Push this worker's tokens and read every active window's total; a Redis that
        answers again ends degraded mode."""
        minute = self._state.minute
        names = [n for n in self._state.windows if n.startswith("tpm:")]
        if not names and not self.degraded:
            return
        pushed = {name: self._state.windows[name].spent for name in names}
        try:
            pipe = self.redis.pipeline(transaction=False)
            for name in names:
                key = _key(name, minute)
                pipe.incrby(key, pushed[name])
                pipe.expire(key, KEY_TTL)
            if self.degraded:
                pipe.ping()
            results = await pipe.execute()
        except (RedisError, OSError) as exc:
            self._degrade(exc)
            return
        if self.degraded:
            log.info("rate limits: Redis answers again; leases resume")
            self.degraded = False
        if minute != self._state.minute:
            return  # a new window began meanwhile: what was pushed belongs to the old one
        for i, name in enumerate(names):
            window = self._state.windows[name]
            window.spent -= pushed[name]
            window.seen = int(results[2 * i])

    async def run(self) -> None:
        """``flush`` every ``flush_seconds``, for the life of the worker."""
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.exception("rate limits: flush failed")


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


def _key(name: str, minute: int) -> str:
    return f"potluck:rl:{name}:{minute}"


def _reason(name: str, limit: int) -> str:
    return f"Rate limit reached: {limit} {_WHAT[name[:5]]}."


def _reset(seconds: int) -> bytes:
    """OpenAI's format for a reset time, e.g. ``"17s"``."""
    return f"{seconds}s".encode()


class RateLimits(Policy):
    """The key and organization limits as a stage of the pipeline (online requests only:
    OpenAI's Batch API has its own, separate limits). Refuses with OpenAI's 429
    (``rate_limit_exceeded``, ``Retry-After``), sends OpenAI's ``x-ratelimit-*`` headers
    on admitted requests (``limit``, ``remaining``, ``reset`` for requests and tokens;
    ``remaining`` is this worker's view: exact for one worker, within the lease bound
    above for several), and counts the tokens of each finished request."""

    name = "rate-limits"
    order = 100

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    async def on_request(self, ctx: RequestContext) -> None:
        if ctx.source != ONLINE or ctx.caller is None:
            return
        verdict = await self.limiter.check(ctx.caller)
        if not verdict.allowed:
            error = errors.rate_limited(verdict.reason, verdict.retry_after)
            raise Refusal(error.message, status=429, code="rate_limit_exceeded",
                          type="rate_limit_error", headers=error.headers)
        if verdict.limits:
            reset = _reset(max(1, int(WINDOW_SECONDS - time.time() % WINDOW_SECONDS)))
            for kind, limit, remaining in verdict.limits:
                what = b"requests" if kind == "rpm" else b"tokens"
                ctx.response_headers += [
                    (b"x-ratelimit-limit-" + what, str(limit).encode()),
                    (b"x-ratelimit-remaining-" + what, str(remaining).encode()),
                    (b"x-ratelimit-reset-" + what, reset)]
            ctx.state["limited"] = True

    async def on_finish(self, ctx: RequestContext) -> None:
        if ctx.state.get("limited") and ctx.caller is not None:
            self.limiter.add_tokens(ctx.caller, ctx.total_tokens)
