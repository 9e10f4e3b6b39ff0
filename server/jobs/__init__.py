"""Durable background work: a PostgreSQL-backed queue and its workers.

- `enqueue(tx, kind, payload, ...)` (server/jobs/queue.py): queue work in the transaction of the
  write that causes it.
- server/jobs/catalog.py: every job kind and periodic job, in one place.
- server/jobs/worker.py: the worker (claim with SKIP LOCKED, leases, retries, dead letters).
- `nexgate worker` runs workers as their own processes; `nexgate serve` runs one in-process
  when settings.jobs.in_process_worker (the embedded default).

Why not a library: the maintained PostgreSQL queues for asyncio (procrastinate, ...) are built on
psycopg 3 and bring their own schema and migration tooling, while this server runs aiopg /
psycopg2 with yoyo migrations and needs enqueueing inside its own transactions. The queue is one
table and a few statements (server/store/jobs.py); its guarantees are proved in tests/test_jobs*.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from server.jobs.queue import enqueue

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["enqueue", "jobs_lifecycle"]


async def jobs_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Run the in-process worker of the embedded default (when configured)."""
    import asyncio

    from server.app_keys import CONTEXT
    from server.jobs.metrics import refresh_forever
    from server.jobs.runtime import attach_senders, close_senders
    from server.jobs.worker import Worker

    ctx = app[CONTEXT]
    attach_senders(ctx)
    worker = None
    if ctx.settings.jobs.in_process_worker:
        worker = Worker(ctx)
        worker.start()
    stopping = asyncio.Event()
    gauges = asyncio.create_task(refresh_forever(ctx.db, stopping), name="jobs-metrics")
    yield
    stopping.set()
    await asyncio.wait([gauges], timeout=5)
    if worker is not None:
        await worker.close()
    await close_senders(ctx)
