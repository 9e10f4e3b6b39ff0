"""The coalescing NEW_MESSAGE writer (issue 15): a background loop of every serving node.

Every `messaging.notify_coalesce_ms` it claims the message counts sends left on recipients'
participant rows (server/store/message_notify.py) and turns each conversation's count into one
batched notification (notifications.flush_message_notifications), in one transaction per
claim of up to BATCH conversations. Nodes share the work through row locks (SKIP LOCKED): a
count is written once. A node that dies leaves its counts for the next pass of any node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from server.bus.faults import is_bus_failure
from server.domain import notifications
from server.domain.context import Context

log = logging.getLogger(__name__)

BATCH = 200
ERROR_BACKOFF_S = 1.0


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


async def _run(ctx: Context, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await flush_once(ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The counts stay where they are (the transaction rolled back): the next pass
            # writes them.
            if not is_bus_failure(exc):
                log.exception("message notifications: pass failed")
            await asyncio.sleep(ERROR_BACKOFF_S)


async def run_message_notifier(ctx: Context) -> AsyncIterator[None]:
    """Lifecycle (server/capabilities.py): the writer runs while the server runs; on the way
    out one last pass writes what the last sends counted."""
    task = asyncio.get_running_loop().create_task(
        _run(ctx, ctx.settings.messaging.notify_coalesce_ms / 1000), name="message-notifier"
    )
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        try:
            await flush_once(ctx)
        except Exception:
            log.warning("message notifications: final pass failed; the next start writes them")
