"""The job queue's own upkeep: forget finished jobs and old period records (hourly)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.jobs.registry import every, register
from server.store import jobs as jobs_store

DONE_RETENTION_S = 86_400  # finished jobs are kept a day for inspection
DEAD_RETENTION_S = 30 * 86_400  # dead-lettered ones a month
PERIODIC_RUNS_RETENTION = timedelta(days=60)  # long past any period a worker could still claim


async def cleanup_jobs(ctx: Any, payload: dict[str, Any]) -> None:
    """Job `jobs.cleanup`: forget old finished jobs (in batches)."""
    while await jobs_store.purge_finished(ctx.db, DONE_RETENTION_S, DEAD_RETENTION_S) >= 5000:
        pass
    await jobs_store.purge_periodic_runs(ctx.db, ctx.clock.now() - PERIODIC_RUNS_RETENTION)


register("jobs.cleanup", cleanup_jobs, timeout_s=600)
every("jobs.cleanup", "jobs.cleanup", "hourly", minute=17)
