# SPDX-License-Identifier: Apache-2.0
"""Requests/min and tokens/min per API key and per organization, in Redis.

One Lua script checks and counts atomically in one round trip. Windows are fixed
minutes; tokens are added after a request finishes (its cost is known only then), so
a request is refused when the window's tokens already reached the limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from potluck.inference import errors
from potluck.inference.context import ONLINE, Caller, RequestContext
from potluck.inference.policies import Policy, Refusal

_SCRIPT = """
local ttl = tonumber(ARGV[5])
for i = 3, 4 do
  local limit = tonumber(ARGV[i])
  if limit > 0 and tonumber(redis.call('GET', KEYS[i]) or '0') >= limit then
    return {0, i}
  end
end
local counted = {}
for i = 1, 2 do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], ttl) end
  local limit = tonumber(ARGV[i])
  if limit > 0 and n > limit then
    redis.call('DECR', KEYS[i])
    for _, k in ipairs(counted) do redis.call('DECR', k) end
    return {0, i}
  end
  table.insert(counted, KEYS[i])
end
return {1, 0}
"""

_WHAT = {1: "requests per minute for this API key", 2: "requests per minute for this organization",
         3: "tokens per minute for this API key", 4: "tokens per minute for this organization"}


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0
    reason: str = ""
    token_keys: tuple[str, str] = ("", "")


@dataclass(frozen=True)
class Defaults:
    key_rpm: int = 0
    key_tpm: int = 0
    org_rpm: int = 0
    org_tpm: int = 0


class Limiter:
    def __init__(self, redis: Redis, defaults: Defaults) -> None:
        self.redis = redis
        self.defaults = defaults
        self._script = redis.register_script(_SCRIPT)

    async def check(self, caller: Caller) -> Verdict:
        now = time.time()
        minute = int(now // 60)
        k, o = caller.api_key_id, caller.organization_id
        keys = [f"potluck:rl:rpm:k:{k}:{minute}", f"potluck:rl:rpm:o:{o}:{minute}",
                f"potluck:rl:tpm:k:{k}:{minute}", f"potluck:rl:tpm:o:{o}:{minute}"]
        d = self.defaults
        limits = [_pick(caller.key_rpm, d.key_rpm), _pick(caller.org_rpm, d.org_rpm),
                  _pick(caller.key_tpm, d.key_tpm), _pick(caller.org_tpm, d.org_tpm)]
        allowed, which = await self._script(keys=keys, args=[*limits, 120])
        if allowed:
            return Verdict(True, token_keys=(keys[2], keys[3]))
        retry_after = max(1, int(60 - now % 60) + 1)
        return Verdict(False, retry_after, f"Rate limit reached: {limits[which - 1]} "
                                           f"{_WHAT[int(which)]}.")


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value


class RateLimits(Policy):
    """The key and organization limits as a stage of the pipeline (online requests only:
    OpenAI's Batch API has its own, separate limits). Refuses with OpenAI's 429
    (``rate_limit_exceeded``, ``Retry-After``); the tokens a request used are added to
    the windows by the usage meter, in the same round trip as its usage record."""

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
        ctx.state["token_keys"] = verdict.token_keys
