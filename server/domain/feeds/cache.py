"""A short-lived per-process cache on the Context's clock: explore's snapshot and trending are
computed at most once per window per node (and per key), never per request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from server.domain.context import Context


async def cached(
    ctx: Context, name: str, key: Any, ttl_s: float, compute: Callable[[], Awaitable[Any]]
) -> tuple[Any, datetime]:
    """(value, computed_at): the value cached under (name, key) if computed less than `ttl_s`
    ago on ctx.clock, else `compute()`d now. Concurrent misses share one computation."""
    store: dict[Any, tuple[Any, datetime]] = ctx.caches.setdefault(f"feeds.cache.{name}", {})
    locks: dict[Any, asyncio.Lock] = ctx.caches.setdefault(f"feeds.locks.{name}", {})
    now = ctx.clock.now()
    hit = store.get(key)
    if hit is not None and timedelta(0) <= now - hit[1] < timedelta(seconds=ttl_s):
        return hit
    lock = locks.setdefault(key, asyncio.Lock())
    async with lock:
        hit = store.get(key)
        if hit is not None and timedelta(0) <= now - hit[1] < timedelta(seconds=ttl_s):
            return hit
        value = await compute()
        if len(store) > 64:  # keys are few (one per window size); never grow unbounded
            store.clear()
        store[key] = (value, now)
        return value, now
