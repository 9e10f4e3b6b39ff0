"""The coalescing NEW_MESSAGE writer (issue 15): a background loop of every serving node.

Woken by this node's sends (after a coalescing window of `messaging.notify_coalesce_ms`), and
every FALLBACK_S anyway (counts left by a node that died), it claims the message counts sends
left on recipients' participant rows (server/store/message_notify.py) and turns each
conversation's count into one batched notification (notifications.flush_message_notifications),
in one transaction per claim of up to BATCH conversations. Nodes share the work through row
locks (SKIP LOCKED): a count is written once. A node that dies leaves its counts for the next
pass of any node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from server.bus.faults import is_bus_failure
from server.domain import notifications
from server.domain.context import Context

log = logging.getLogger(__name__)

BATCH = 200
ERROR_BACKOFF_S = 1.0
STOP_TIMEOUT_S = 5.0
# A pass even without a wake-up: counts of a node that died, or of a send whose wake-up came
# before its commit. (Polling every window instead cost a scan per 50 ms on an idle node.)
FALLBACK_S = 1.0


async def flush_once(ctx: Context) -> int:
    """Write everything pending now (the loop's one pass). Returns conversations written."""
    total = 0
    while True:
        async with ctx.db.transaction() as tx:
            claimed = await notifications.flush_message_notifications(
                ctx, tx, limit=BATCH, skip_locked=True
            )
        total += claimed
        if claimed < BATCH:
            return total


class _Writer:
    """The loop, stopped between passes: a pass is never cancelled mid-query (an aiopg query
    cancelled under a transaction can leave its connection unusable)."""

    def __init__(self, ctx: Context, window_s: float) -> None:
        self.ctx = ctx
        self.window_s = window_s
        self.fallback_s = max(FALLBACK_S, window_s)
        self.stopping = asyncio.Event()
        self.counted = asyncio.Event()

    async def _wait(self) -> None:
        """Until a count is left (then its coalescing window) or FALLBACK_S passed."""
        waiters = [asyncio.ensure_future(e.wait()) for e in (self.counted, self.stopping)]
        try:
            await asyncio.wait(
                waiters, timeout=self.fallback_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
        if self.counted.is_set() and not self.stopping.is_set():
            # A burst within the window is one batch update; a stop cuts the window short.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.window_s)
        self.counted.clear()

    async def run(self) -> None:
        while not self.stopping.is_set():
            await self._wait()
            try:
                # The last pass after a stop writes what the last sends counted.
                await flush_once(self.ctx)
            except Exception as exc:
                # The counts stay where they are (the transaction rolled back): the next pass
                # (of this node or any other) writes them.
                if not is_bus_failure(exc):
                    log.exception("message notifications: pass failed")
                if not self.stopping.is_set():
                    await asyncio.sleep(ERROR_BACKOFF_S)


async def run_message_notifier(ctx: Context) -> AsyncIterator[None]:
    """Lifecycle (server/capabilities.py): the writer runs while the server runs; on the way
    out it finishes its pass and makes one last one."""
    writer = _Writer(ctx, ctx.settings.messaging.notify_coalesce_ms / 1000)
    task = asyncio.get_running_loop().create_task(writer.run(), name="message-notifier")
    notifications.message_count_listeners.append(writer.counted.set)
    try:
        yield
    finally:
        notifications.message_count_listeners.remove(writer.counted.set)
        writer.stopping.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), STOP_TIMEOUT_S)
        except TimeoutError:
            log.warning("message notifications: last pass still running; the next start writes")
            task.cancel()
