"""Background work of the commerce read model: the buy-together expiry timer.

A group's status is always derived on read (an expired group reads "expired" the moment its
deadline passes), but open sockets subscribed to `group:<id>` must hear about it too, with no
ingest traffic to trigger it. The timer sleeps until the earliest unannounced deadline, claims
the groups whose deadline passed (exactly once across nodes: a row-locked UPDATE) and publishes
`group.updated` with the fresh card. Ingest wakes it when a group arrives with an earlier
deadline; a cap on the sleep covers groups ingested through another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from server.domain.commerce import live
from server.domain.context import Context

log = logging.getLogger(__name__)

MAX_SLEEP_S = 5.0  # longest gap between checks (a group ingested through another node)
MIN_SLEEP_S = 0.02
ERROR_BACKOFF_S = 2.0
TOMBSTONE_DAYS = 30  # how long deletes are remembered against late, older upserts
PRUNE_EVERY_S = 3600.0


class GroupExpiryTimer:
    def __init__(self, ctx: Context, max_sleep_s: float = MAX_SLEEP_S) -> None:
        self.ctx = ctx
        self.max_sleep_s = max_sleep_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._last_prune = 0.0
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="commerce-group-expiry")

    async def stop(self) -> None:
        """Let the current check finish (never cancel it mid-query), then end the loop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=5)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def wake(self) -> None:
        """Re-read the earliest deadline now (a group was ingested or changed)."""
        self._wake.set()

    async def tick(self) -> float:
        """Announce what expired; return how long to sleep before the next deadline."""
        await live.announce_expired_groups(self.ctx)
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = loop.time()
            await live.prune_tombstones(self.ctx, TOMBSTONE_DAYS)
        nxt = await live.next_group_expiry(self.ctx)
        if nxt is None:
            return self.max_sleep_s
        delay = (nxt - self.ctx.clock.now()).total_seconds()
        return min(self.max_sleep_s, max(MIN_SLEEP_S, delay))

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("group expiry check failed")
                delay = ERROR_BACKOFF_S
            if self._stopping:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)


async def run_group_expiry(ctx: Context) -> AsyncIterator[None]:
    """Run the buy-together expiry timer for as long as the caller's scope lasts (the app's
    lifetime): published as `ctx.group_expiry` so ingest can wake it, stopped on the way out."""
    timer = GroupExpiryTimer(ctx)
    ctx.group_expiry = timer
    timer.start()
    yield
    await timer.stop()
    ctx.group_expiry = None
