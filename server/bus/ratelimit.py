"""Fixed-window rate limits with a memory engine (one node) and a Redis engine (many)."""

from __future__ import annotations

import time
from typing import Protocol

from server.config import RateLimit
from server.errors import RateLimited


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: RateLimit, cost: int = 1) -> int:
        """Count one use of `key`; return 0 if allowed, else seconds until it is allowed again."""
        ...

    async def reset(self, key: str) -> None: ...


async def enforce(limiter: RateLimiter, key: str, limit: RateLimit, what: str) -> None:
    retry_after = await limiter.hit(key, limit)
    if retry_after:
        raise RateLimited(
            f"Too many {what}: at most {limit.count} per {limit.window_s} s.",
            retry_after=retry_after,
        )


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}
        self._last_sweep = 0.0

    async def hit(self, key: str, limit: RateLimit, cost: int = 1) -> int:
        now = time.time()
        window = int(now // limit.window_s)
        full_key = f"{key}:{limit.window_s}"
        start, count = self._windows.get(full_key, (window, 0))
        if start != window:
            start, count = window, 0
        count += cost
        self._windows[full_key] = (start, count)
        self._sweep(now)
        if count > limit.count:
            return max(1, int((window + 1) * limit.window_s - now) + 1)
        return 0

    async def reset(self, key: str) -> None:
        for full_key in [k for k in self._windows if k.rsplit(":", 1)[0] == key]:
            del self._windows[full_key]

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        self._windows = {
            k: (start, count)
            for k, (start, count) in self._windows.items()
            if (start + 1) * int(k.rsplit(":", 1)[1]) > now
        }


class RedisRateLimiter:
    def __init__(self, redis, prefix: str = "ng:rl:") -> None:  # redis.asyncio.Redis
        self._redis = redis
        self._prefix = prefix

    async def hit(self, key: str, limit: RateLimit, cost: int = 1) -> int:
        now = time.time()
        window = int(now // limit.window_s)
        redis_key = f"{self._prefix}{key}:{limit.window_s}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrby(redis_key, cost)
            pipe.expire(redis_key, limit.window_s + 1)
            count, _ = await pipe.execute()
        if count > limit.count:
            return max(1, int((window + 1) * limit.window_s - now) + 1)
        return 0

    async def reset(self, key: str) -> None:
        async for redis_key in self._redis.scan_iter(match=f"{self._prefix}{key}:*"):
            await self._redis.delete(redis_key)
