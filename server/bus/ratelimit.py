"""Rate limits: GCRA (the generic cell rate algorithm) with a memory engine (one node) and a
Redis engine (many nodes, one Lua script per hit).

A limit of `count` per `window_s` lets a burst of `count` through, then one more every
`window_s / count` seconds: a smooth sliding budget, never the 2x burst a fixed window lets
through across its edge (`count` at the end of one window plus `count` at the start of the
next). Each key holds one number, its theoretical arrival time (TAT): when the budget would be
whole again. A hit of cost c moves it by c * window_s / count; the hit is refused (and moves
nothing) when that would put the TAT more than `window_s` ahead of now. A negative cost gives
budget back (a refund when the guarded work did not happen).

Time comes from the limiter's clock (server/clock.py), the same wall clock on every node; a
few milliseconds of skew between nodes shift budgets by as much, no more.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from server.clock import SYSTEM_CLOCK, Clock
from server.config import RateLimit
from server.errors import RateLimited


class RateLimiter(Protocol):
    """What every engine implements, and all a wrapper (e.g. a fail-open one) has to wrap."""

    async def hit(self, key: str, limit: RateLimit, cost: int = 1) -> int:
        """Spend `cost` of `key`'s budget under `limit`; return 0 if allowed, else whole
        seconds (>= 1) until it would be. A refused hit spends nothing. Raises if the engine
        is unreachable (Redis down): the caller decides whether to fail open or closed."""
        ...

    async def reset(self, key: str) -> None:
        """Give `key` its whole budget back (under every limit it was hit with)."""
        ...


async def enforce(limiter: RateLimiter, key: str, limit: RateLimit, what: str) -> None:
    retry_after = await limiter.hit(key, limit)
    if retry_after:
        raise RateLimited(
            f"Too many {what}: at most {limit.count} per {limit.window_s} s.",
            retry_after=retry_after,
        )


def _retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _full_key(key: str, limit: RateLimit) -> str:
    return f"{key}:{limit.window_s}"


class MemoryRateLimiter:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._last_sweep = 0.0

    async def hit(self, key: str, limit: RateLimit, cost: int = 1) -> int:
        now = self._clock.now().timestamp()
        full_key = _full_key(key, limit)
        window = float(limit.window_s)
        tat = self._tats.get(full_key, now)
        if tat > now + window:  # only if the clock went back: start afresh
            tat = now
        new_tat = max(tat, now) + cost * window / max(1, limit.count)
        if new_tat - window > now:
            return _retry_after(new_tat - window - now)
        if new_tat > now:
            self._tats[full_key] = new_tat
        else:
            self._tats.pop(full_key, None)
        self._sweep(now)
        return 0

    async def reset(self, key: str) -> None:
        for full_key in [k for k in self._tats if k.rsplit(":", 1)[0] == key]:
            del self._tats[full_key]

    def _sweep(self, now: float) -> None:
        """Drop keys whose budget is whole again (their TAT passed): memory stays bounded."""
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        self._tats = {k: tat for k, tat in self._tats.items() if tat > now}


# KEYS[1]: the key. ARGV: now (s), interval (s per unit), window (s), cost. Returns "0" when
# allowed, else the seconds until it would be (as text: Lua numbers come back truncated).
_GCRA = """
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat > now + window then tat = now end
if tat < now then tat = now end
local new_tat = tat + cost * interval
if new_tat - window > now then
  return tostring(new_tat - window - now)
end
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX',
             math.ceil((new_tat - now) * 1000))
end
return '0'
"""


class RedisRateLimiter:
    def __init__(self, redis: Any, prefix: str = "ng:rl:", clock: Clock = SYSTEM_CLOCK) -> None:
        self._redis = redis  # redis.asyncio.Redis
        self._prefix = prefix
        self._clock = clock
        self._script = redis.register_script(_GCRA)

    async def hit(self, key: str, limit: RateLimit, cost: int = 1) -> int:
        now = self._clock.now().timestamp()
        interval = limit.window_s / max(1, limit.count)
        wait = await self._script(
            keys=[f"{self._prefix}{_full_key(key, limit)}"],
            args=[f"{now:.6f}", repr(interval), limit.window_s, cost],
        )
        seconds = float(wait.decode() if isinstance(wait, bytes) else wait)
        return _retry_after(seconds) if seconds > 0 else 0

    async def reset(self, key: str) -> None:
        async for redis_key in self._redis.scan_iter(match=f"{self._prefix}{key}:*"):
            await self._redis.delete(redis_key)
