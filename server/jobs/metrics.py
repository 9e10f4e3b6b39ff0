"""Prometheus metrics of the job queue (served by /metrics of every `nexgate serve` node)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from prometheus_client import Counter, Gauge

from server.store import jobs as jobs_store

log = logging.getLogger("nexgate.jobs")

JOBS_READY = Gauge("nexgate_jobs_ready", "Jobs due and waiting for a worker")
JOBS_RUNNING = Gauge("nexgate_jobs_running", "Jobs leased to a worker")
JOBS_DEAD = Gauge("nexgate_jobs_dead", "Dead-lettered jobs (kept for inspection)")
JOBS_FINISHED = Counter(
    "nexgate_jobs_finished_total",
    "Job attempts finished by this process's workers",
    ["kind", "outcome"],
)

REFRESH_S = 15


async def refresh(db: Any) -> None:
    counts = await jobs_store.queue_depths(db)
    JOBS_READY.set(counts["ready"])
    JOBS_RUNNING.set(counts["running"])
    JOBS_DEAD.set(counts["dead"])


async def refresh_forever(db: Any, stopping: asyncio.Event) -> None:
    """Keep the queue gauges fresh until `stopping` is set."""
    while not stopping.is_set():
        try:
            await refresh(db)
        except Exception:
            log.debug("job metrics refresh failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REFRESH_S):
                await stopping.wait()
