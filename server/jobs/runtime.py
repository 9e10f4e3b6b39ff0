"""Running workers: in-process beside `nexgate serve`, or as `nexgate worker`'s own process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from typing import Any

from server.jobs.metrics import refresh_forever
from server.jobs.worker import Worker

log = logging.getLogger("nexgate.jobs")


async def run_in_process_worker(ctx: Any) -> AsyncIterator[None]:
    """A server's jobs lifecycle: the in-process worker of the embedded default (when
    settings.jobs.in_process_worker) and the queue gauges of /metrics."""
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


async def run_worker(ctx: Any, concurrency: int | None = None) -> None:
    """`nexgate worker`: run one worker on `ctx` until SIGTERM / SIGINT, then hand running
    jobs back gracefully."""
    worker = Worker(ctx, concurrency=concurrency)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, worker.stop)
    print(f"Nexgate worker {worker.name} running (concurrency {worker.concurrency})", flush=True)
    stopping = asyncio.Event()  # the queue gauges of the worker's own /metrics
    gauges = asyncio.create_task(refresh_forever(ctx.db, stopping), name="jobs-metrics")
    try:
        await worker.run()
    finally:
        stopping.set()
        await asyncio.wait([gauges], timeout=5)
        await worker.close()
