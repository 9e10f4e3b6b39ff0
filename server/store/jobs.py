"""The job queue table: enqueue, claim (SKIP LOCKED + lease), renew, finish, retry, dead-letter."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import aiopg

from server.store.db import Queries, Row, jsonb

CHANNEL = "nexgate_jobs"

JOB_COLUMNS = """id, kind, payload, status, run_at, attempts, max_attempts, coalesce_key,
                 locked_by, locked_until, last_error, created_at, updated_at, finished_at"""


async def insert(
    q: Queries,
    *,
    id: uuid.UUID,
    kind: str,
    payload: dict[str, Any],
    run_at: datetime | None,
    delay_s: float,
    max_attempts: int | None,
    coalesce_key: str | None,
    sensitive: bool,
) -> uuid.UUID | None:
    """Insert a queued job; None when `coalesce_key` matches a job that is still queued.

    A job due now also NOTIFYs the workers' channel (delivered when the transaction commits)."""
    params = {
        "id": id,
        "kind": kind,
        "payload": jsonb(payload),
        "run_at": run_at,
        "delay": delay_s,
        "max_attempts": max_attempts,
        "key": coalesce_key,
        "sensitive": sensitive,
        "channel": CHANNEL,
    }
    return await q.fetchval(
        """WITH ins AS (
             INSERT INTO jobs (id, kind, payload, run_at, max_attempts, coalesce_key, sensitive)
             VALUES (%(id)s, %(kind)s, %(payload)s,
                     coalesce(%(run_at)s, now()) + make_interval(secs => %(delay)s),
                     %(max_attempts)s, %(key)s, %(sensitive)s)
             ON CONFLICT (coalesce_key) WHERE status = 'queued' AND coalesce_key IS NOT NULL
             DO NOTHING
             RETURNING id, run_at
           )
           SELECT id, CASE WHEN run_at <= now() THEN pg_notify(%(channel)s, '') END AS notified
           FROM ins""",
        params,
    )


async def reclaim_expired(q: Queries, max_attempts: int) -> list[Row]:
    """Jobs whose lease expired (their worker died or hung): back to the queue, or dead when
    they have used up their attempts (a job that keeps killing its worker is a poison pill)."""
    return await q.fetch(
        """WITH expired AS (
             SELECT id FROM jobs
             WHERE status = 'running' AND locked_until < now()
             ORDER BY locked_until
             LIMIT 100
             FOR UPDATE SKIP LOCKED
           )
           UPDATE jobs j SET
             status = CASE WHEN j.attempts >= coalesce(j.max_attempts, %(max)s)
                           THEN 'dead' ELSE 'queued' END,
             run_at = now(),
             locked_by = NULL,
             locked_until = NULL,
             last_error = coalesce(j.last_error || E'\\n', '')
                          || 'lease expired (worker ' || coalesce(j.locked_by, '?') || ' lost)',
             finished_at = CASE WHEN j.attempts >= coalesce(j.max_attempts, %(max)s)
                                THEN now() END,
             updated_at = now()
           FROM expired WHERE j.id = expired.id
           RETURNING j.id, j.kind, j.status""",
        {"max": max_attempts},
    )


async def claim(q: Queries, worker: str, limit: int, lease_s: float) -> list[Row]:
    """Lease up to `limit` due jobs to `worker` (oldest due first), counting an attempt."""
    return await q.fetch(
        f"""WITH next AS (
              SELECT id FROM jobs
              WHERE status = 'queued' AND run_at <= now()
              ORDER BY run_at
              LIMIT %(limit)s
              FOR UPDATE SKIP LOCKED
            )
            UPDATE jobs j SET
              status = 'running',
              attempts = j.attempts + 1,
              locked_by = %(worker)s,
              locked_until = now() + make_interval(secs => %(lease)s),
              updated_at = now()
            FROM next WHERE j.id = next.id
            RETURNING {", ".join("j." + c.strip() for c in JOB_COLUMNS.split(","))}""",
        {"worker": worker, "limit": limit, "lease": lease_s},
    )


async def renew(
    q: Queries, worker: str, job_ids: list[uuid.UUID], lease_s: float
) -> set[uuid.UUID]:
    """Extend the leases this worker still holds; the ids it no longer holds are missing."""
    rows = await q.fetch(
        """UPDATE jobs SET locked_until = now() + make_interval(secs => %(lease)s)
           WHERE id = ANY(%(ids)s) AND status = 'running' AND locked_by = %(worker)s
           RETURNING id""",
        {"ids": job_ids, "worker": worker, "lease": lease_s},
    )
    return {row["id"] for row in rows}


async def finish(q: Queries, job_id: uuid.UUID, worker: str) -> bool:
    """Mark done (only if this worker still holds the lease)."""
    return (
        await q.execute(
            """UPDATE jobs SET status = 'done', finished_at = now(), updated_at = now(),
                 locked_by = NULL, locked_until = NULL,
                 payload = CASE WHEN sensitive THEN '{}'::jsonb ELSE payload END
               WHERE id = %s AND status = 'running' AND locked_by = %s""",
            (job_id, worker),
        )
        == 1
    )


async def fail(
    q: Queries, job_id: uuid.UUID, worker: str, error: str, retry_in_s: float | None
) -> str | None:
    """Record a failed attempt: back to the queue after `retry_in_s`, or dead when None.
    Returns the new status, or None if this worker no longer held the lease."""
    return await q.fetchval(
        """UPDATE jobs SET
             status = CASE WHEN %(retry)s::float8 IS NULL THEN 'dead' ELSE 'queued' END,
             run_at = CASE WHEN %(retry)s::float8 IS NULL THEN run_at
                           ELSE now() + make_interval(secs => %(retry)s::float8) END,
             finished_at = CASE WHEN %(retry)s::float8 IS NULL THEN now() END,
             payload = CASE WHEN %(retry)s::float8 IS NULL AND sensitive
                            THEN '{}'::jsonb ELSE payload END,
             last_error = %(error)s,
             locked_by = NULL,
             locked_until = NULL,
             updated_at = now()
           WHERE id = %(id)s AND status = 'running' AND locked_by = %(worker)s
           RETURNING status""",
        {"id": job_id, "worker": worker, "error": error[:4000], "retry": retry_in_s},
    )


async def release(q: Queries, job_ids: list[uuid.UUID], worker: str) -> int:
    """Hand unfinished jobs back on a graceful shutdown (the interrupted attempt is not counted)."""
    return await q.execute(
        """UPDATE jobs SET status = 'queued', run_at = now(), attempts = greatest(attempts - 1, 0),
             locked_by = NULL, locked_until = NULL, updated_at = now()
           WHERE id = ANY(%s) AND status = 'running' AND locked_by = %s""",
        (job_ids, worker),
    )


async def get(q: Queries, job_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))


async def next_run_at(q: Queries) -> datetime | None:
    """When the earliest queued job is due (so an idle worker knows how long it may sleep)."""
    return await q.fetchval("SELECT min(run_at) FROM jobs WHERE status = 'queued'")


async def schedule_period(q: Queries, *, name: str, period_start: datetime) -> bool:
    """Claim the right to enqueue `name` for this period; False if another worker already did."""
    return (
        await q.execute(
            """INSERT INTO periodic_runs (name, period_start) VALUES (%s, %s)
               ON CONFLICT (name, period_start) DO NOTHING""",
            (name, period_start),
        )
        == 1
    )


async def purge_finished(q: Queries, done_age_s: float, dead_age_s: float) -> int:
    """Forget finished jobs: done ones after `done_age_s`, dead ones after `dead_age_s`."""
    count = await q.execute(
        """DELETE FROM jobs WHERE id IN (
             SELECT id FROM jobs
             WHERE (status = 'done' AND finished_at < now() - make_interval(secs => %(done)s))
                OR (status = 'dead' AND finished_at < now() - make_interval(secs => %(dead)s))
             LIMIT 5000)""",
        {"done": done_age_s, "dead": dead_age_s},
    )
    return count


async def purge_periodic_runs(q: Queries, before: datetime) -> None:
    """Forget which periods were scheduled before `before` (periods are on the rule clock)."""
    await q.execute("DELETE FROM periodic_runs WHERE period_start < %s", (before,))


async def queue_depths(q: Queries) -> dict[str, int]:
    """Jobs due and waiting, running, and dead (each count served by a partial index)."""
    return await q.fetchrow_one(
        """SELECT
             (SELECT count(*) FROM jobs WHERE status = 'queued' AND run_at <= now()) AS ready,
             (SELECT count(*) FROM jobs WHERE status = 'running') AS running,
             (SELECT count(*) FROM jobs WHERE status = 'dead') AS dead"""
    )


async def listen(dsn: str) -> Any:
    """A dedicated connection LISTENing on CHANNEL (an aiopg connection: await
    `conn.notifies.get()` for each wake-up; close it with `conn.close()`)."""
    conn = await aiopg.connect(dsn, timeout=10)
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"LISTEN {CHANNEL}")
    except BaseException:
        conn.close()
        raise
    return conn
