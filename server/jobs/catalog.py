"""The one place that lists every job kind and every periodic job.

A capability adds its background work here: `register("kind", handler)` for a job kind (the
handler lives in the capability's domain module) and `every(...)` for a periodic one.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.domain import digests, push
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


# -- job kinds ---------------------------------------------------------------------------
register("email.send", digests.send_email_job, timeout_s=60)
register("push.send", push.send_push_job, timeout_s=60)
register("notifications.email", digests.send_notification_email_job, timeout_s=60)
register("notifications.digest_fanout", digests.digest_fanout_job, timeout_s=3600)
register("notifications.digest", digests.digest_job, timeout_s=120)
register("notifications.cleanup", digests.cleanup_job, timeout_s=3600)
register("notifications.reconcile", digests.reconcile_job, timeout_s=3600)
register("jobs.cleanup", cleanup_jobs, timeout_s=600)

# -- periodic jobs (UTC) -----------------------------------------------------------------
every(
    "notifications.digest.daily",
    "notifications.digest_fanout",
    "daily",
    hour=lambda s: s.jobs.digest_hour_utc,
    payload={"period": "daily"},
)
every(
    "notifications.digest.weekly",
    "notifications.digest_fanout",
    "weekly",
    hour=lambda s: s.jobs.digest_hour_utc,
    weekday=lambda s: s.jobs.digest_weekday,
    payload={"period": "weekly"},
)
every("notifications.cleanup", "notifications.cleanup", "daily", hour=3)
every("notifications.reconcile", "notifications.reconcile", "daily", hour=4)
every("jobs.cleanup", "jobs.cleanup", "hourly", minute=17)
