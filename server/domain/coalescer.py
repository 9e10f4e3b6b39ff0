"""`Coalescer`: at most one emission per key per interval, however often the key is touched.

Live counters (a post's likes, a poll's results) change far faster than anyone can watch:
1,000 likes in a second must not become 1,000 events to every subscriber. `touch(key)` after
each change; the first touch of a quiet key emits at once, later touches within the interval
arrange one more emission at the interval's end, and the emitter reads the state *then*, so the
last event always carries the final numbers. Per process: with N nodes a key emits at most N
times per interval (each node coalesces the changes it made).

Ordering: emissions of one key never overlap and follow each other by at least `interval_s`.
Atomicity: none needed; an emission that fails is logged and the next touch emits again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)


class Coalescer:
    def __init__(self, interval_s: float, emit: Callable[[Hashable], Awaitable[None]]) -> None:
        self.interval_s = interval_s
        self._emit = emit
        self._last: dict[Hashable, float] = {}  # key -> loop time of its last emission
        self._pending: dict[Hashable, asyncio.Task[None]] = {}

    def touch(self, key: Hashable) -> None:
        """The state behind `key` changed: emit now, or once when the interval ends."""
        if key in self._pending:
            return  # an emission is already arranged; it will read the newest state
        loop = asyncio.get_running_loop()
        wait = self._last.get(key, -1e18) + self.interval_s - loop.time()
        self._pending[key] = loop.create_task(self._run(key, max(0.0, wait)))

    async def _run(self, key: Hashable, wait: float) -> None:
        try:
            if wait:
                await asyncio.sleep(wait)
        finally:
            # From here on, touches arrange the next emission (this one may read too early).
            if self._pending.get(key) is asyncio.current_task():
                del self._pending[key]
        self._last[key] = asyncio.get_running_loop().time()
        try:
            await self._emit(key)
        except Exception:
            log.exception("coalesced emission for %r failed", key)
        self._forget_old()

    def _forget_old(self) -> None:
        if len(self._last) > 10_000:
            horizon = asyncio.get_running_loop().time() - self.interval_s
            for key in [k for k, t in self._last.items() if t < horizon]:
                del self._last[key]

    async def close(self) -> None:
        """Cancel arranged emissions (shutdown)."""
        tasks = list(self._pending.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
