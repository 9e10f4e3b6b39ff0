"""The durable job queue: transactional enqueue, scheduling, coalescing, retries with backoff,
dead letters, lease expiry and fencing, periodic jobs across workers, graceful shutdown."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from server.jobs import enqueue
from server.jobs.registry import Periodic, PermanentJobError, register
from server.jobs.worker import Worker, backoff_s
from server.store import jobs as jobs_store
from tests.helpers import register as register_user
from tests.notifications_support import app_client, ctx_of, jobs, make_due, run_jobs, wait_until

RUNS: dict[str, list[float]] = {}
ACTIVE: dict[str, int] = {}
PEAK: dict[str, int] = {}


async def _record(ctx, payload) -> None:
    RUNS.setdefault(payload["key"], []).append(asyncio.get_running_loop().time())


async def _flaky(ctx, payload) -> None:
    RUNS.setdefault(payload["key"], []).append(0)
    if len(RUNS[payload["key"]]) <= payload.get("failures", 10**6):
        raise RuntimeError(f"boom #{len(RUNS[payload['key']])}")


async def _permanent(ctx, payload) -> None:
    raise PermanentJobError("this payload can never work")


async def _slow(ctx, payload) -> None:
    key = payload["key"]
    ACTIVE[key] = ACTIVE.get(key, 0) + 1
    PEAK[key] = max(PEAK.get(key, 0), ACTIVE[key])
    RUNS.setdefault(key, []).append(0)
    try:
        await asyncio.sleep(payload["seconds"])
    finally:
        ACTIVE[key] -= 1


register("test.record", _record)
register("test.flaky", _flaky)
register("test.permanent", _permanent)
register("test.slow", _slow)
register("test.timeout", _slow, timeout_s=0.2)


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path):
    return await app_client(aiohttp_client, clean_db, tmp_path, jobs={"max_attempts": 4})


def key() -> str:
    return uuid.uuid4().hex


async def put(client, kind: str, payload: dict, **kw) -> uuid.UUID | None:
    async with ctx_of(client).db.transaction() as tx:
        return await enqueue(tx, kind, payload, **kw)


async def test_a_job_exists_only_if_its_transaction_commits(client):
    k = key()
    with pytest.raises(RuntimeError):
        async with ctx_of(client).db.transaction() as tx:
            await enqueue(tx, "test.record", {"key": k})
            raise RuntimeError("the write failed")
    assert await jobs(client) == []
    await put(client, "test.record", {"key": k})
    assert await run_jobs(client) == 1
    assert len(RUNS[k]) == 1
    [job] = await jobs(client)
    assert job["status"] == "done" and job["attempts"] == 1 and job["finished_at"]


async def test_unknown_kinds_are_refused_at_enqueue(client):
    with pytest.raises(ValueError):
        await put(client, "no.such.kind", {})


async def test_failures_retry_with_exponential_backoff_then_dead_letter(client):
    k = key()
    await put(client, "test.flaky", {"key": k})  # fails every time; max_attempts = 4
    delays = []
    for attempt in range(1, 5):
        await run_jobs(client)
        [job] = await jobs(client)
        assert job["attempts"] == attempt
        assert f"boom #{attempt}" in job["last_error"]
        if attempt < 4:
            assert job["status"] == "queued"
            delays.append((job["run_at"] - job["updated_at"]).total_seconds())
            await make_due(client)
    assert job["status"] == "dead" and job["finished_at"]
    # retry_base_s = 1: 1 s, 2 s, 4 s (+ up to 25% jitter)
    for delay, base in zip(delays, (1, 2, 4), strict=True):
        assert base * 0.95 <= delay <= base * 1.3
    await make_due(client)
    assert await run_jobs(client) == 0  # a dead job stays dead
    assert len(RUNS[k]) == 4


async def test_a_job_that_recovers_is_done(client):
    k = key()
    await put(client, "test.flaky", {"key": k, "failures": 1}, max_attempts=2)
    await run_jobs(client)
    await make_due(client)
    await run_jobs(client)
    [job] = await jobs(client)
    assert job["status"] == "done" and job["attempts"] == 2


async def test_a_per_job_attempt_limit_and_permanent_errors(client):
    k = key()
    await put(client, "test.flaky", {"key": k}, max_attempts=1)
    await put(client, "test.permanent", {})
    await run_jobs(client)
    rows = await jobs(client)
    assert [(r["kind"], r["status"], r["attempts"]) for r in rows] == [
        ("test.flaky", "dead", 1),
        ("test.permanent", "dead", 1),
    ]
    assert "never work" in rows[1]["last_error"]


async def test_a_job_that_runs_too_long_is_a_failed_attempt(client):
    await put(client, "test.timeout", {"key": key(), "seconds": 5})
    await run_jobs(client)
    [job] = await jobs(client)
    assert job["status"] == "queued" and "timed out" in job["last_error"]


async def test_scheduled_jobs_wait_for_their_time(client):
    k = key()
    await put(client, "test.record", {"key": k}, delay_s=3600)
    at = datetime(2100, 1, 1, tzinfo=UTC)
    await put(client, "test.record", {"key": k}, run_at=at)
    assert await run_jobs(client) == 0
    rows = await jobs(client)
    assert rows[1]["run_at"] == at
    await make_due(client)
    assert await run_jobs(client) == 2


async def test_coalesced_jobs_run_once_while_queued(client):
    k = key()
    first = await put(client, "test.record", {"key": k}, coalesce_key="same")
    second = await put(client, "test.record", {"key": k}, coalesce_key="same")
    assert first is not None and second is None
    await run_jobs(client)
    assert len(RUNS[k]) == 1
    third = await put(client, "test.record", {"key": k}, coalesce_key="same")
    assert third is not None  # the earlier one already ran: new work, new job


async def test_an_expired_lease_makes_the_job_claimable_again_and_fences_the_old_owner(client):
    ctx = ctx_of(client)
    k = key()
    job_id = await put(client, "test.record", {"key": k})
    [claimed] = await jobs_store.claim(ctx.db, "ghost", 10, 0.2)  # a worker that then dies
    assert claimed["id"] == job_id
    assert await run_jobs(client) == 0  # leased: nobody else may run it
    await asyncio.sleep(0.3)
    assert await run_jobs(client) == 1  # the lease expired: reclaimed and run
    [job] = await jobs(client)
    assert job["status"] == "done" and job["attempts"] == 2
    assert "lease expired (worker ghost lost)" in job["last_error"]
    # The old owner can neither renew nor finish what it no longer holds.
    assert await jobs_store.renew(ctx.db, "ghost", [job_id], 60) == set()
    assert await jobs_store.finish(ctx.db, job_id, "ghost") is False


async def test_a_job_that_keeps_killing_its_worker_is_dead_lettered(client):
    ctx = ctx_of(client)
    await put(client, "test.record", {"key": key()}, max_attempts=2)
    for _ in range(2):
        assert await jobs_store.claim(ctx.db, "ghost", 1, 0.05)
        await asyncio.sleep(0.1)
        await jobs_store.reclaim_expired(ctx.db, 4)
    [job] = await jobs(client)
    assert job["status"] == "dead" and job["attempts"] == 2


async def test_a_running_job_keeps_its_lease_and_never_runs_twice_at_once(
    aiohttp_client, clean_db, tmp_path
):
    client = await app_client(
        aiohttp_client, clean_db, tmp_path, jobs={"lease_s": 0.6, "poll_interval_s": 0.05}
    )
    k = key()
    await put(client, "test.slow", {"key": k, "seconds": 2})
    workers = [Worker(ctx_of(client), listen=False, periodic=False) for _ in range(3)]
    for worker in workers:
        worker.start()
    try:
        await wait_until(lambda: any(w.processed for w in workers), 10)
    finally:
        for worker in workers:
            await worker.close()
    assert RUNS[k] == [0] and PEAK[k] == 1  # 2 s of work under a 0.6 s lease, renewed
    [job] = await jobs(client)
    assert job["status"] == "done" and job["attempts"] == 1 and job["last_error"] is None


async def test_a_graceful_shutdown_hands_unfinished_jobs_back(client):
    k = key()
    await put(client, "test.slow", {"key": k, "seconds": 30})
    worker = Worker(ctx_of(client), listen=False, periodic=False)
    worker.start()
    await wait_until(lambda: RUNS.get(k))
    await worker.close(grace_s=0.1)
    [job] = await jobs(client)
    assert job["status"] == "queued" and job["attempts"] == 0 and job["locked_by"] is None


async def test_a_committed_job_wakes_an_idle_worker_at_once(aiohttp_client, clean_db, tmp_path):
    client = await app_client(aiohttp_client, clean_db, tmp_path, jobs={"poll_interval_s": 30})
    worker = Worker(ctx_of(client), periodic=False)
    worker.start()
    try:
        await asyncio.sleep(0.5)  # past its first poll: now it only wakes on NOTIFY
        k = key()
        await put(client, "test.record", {"key": k})
        await wait_until(lambda: RUNS.get(k), 3, 0.01)
    finally:
        await worker.close()


async def test_the_in_process_worker_of_serve_runs_jobs(aiohttp_client, clean_db, tmp_path):
    client = await app_client(aiohttp_client, clean_db, tmp_path, jobs={"in_process_worker": True})
    alice = await register_user(client, "alice")
    bob = await register_user(client, "bob")
    await client.post(f"/api/users/{alice.id}/follow", headers=bob.auth)

    async def pushed() -> bool:
        pushes = await jobs(client, "push.send")
        return bool(pushes) and pushes[0]["status"] == "done"

    await wait_until(pushed)


async def test_each_period_is_scheduled_once_across_workers(client):
    ctx = ctx_of(client)
    now = datetime(2030, 5, 15, 9, 30, tzinfo=UTC)  # a Wednesday
    workers = [Worker(ctx, listen=False) for _ in range(4)]
    results = await asyncio.gather(*(w.schedule_periodic(now=now) for w in workers))
    scheduled = [name for names in results for name in names]
    assert sorted(scheduled) == sorted(set(scheduled))
    assert {
        "notifications.digest.daily",
        "notifications.digest.weekly",
        "notifications.cleanup",
        "notifications.reconcile",
        "jobs.cleanup",
    } <= set(scheduled)
    rows = await jobs(client)
    daily = [r for r in rows if r["payload"].get("period") == "daily"]
    assert len(daily) == 1
    assert daily[0]["payload"]["period_start"] == "2030-05-15T08:00:00+00:00"
    assert daily[0]["payload"]["previous_start"] == "2030-05-14T08:00:00+00:00"
    # The next period is scheduled when it comes.
    later = await workers[0].schedule_periodic(now=datetime(2030, 5, 16, 8, 0, tzinfo=UTC))
    assert "notifications.digest.daily" in later and "notifications.digest.weekly" not in later


def test_period_starts():
    at = datetime(2030, 5, 15, 9, 30, tzinfo=UTC)  # Wednesday
    assert Periodic("h", "k", "hourly", minute=17).period_start(at) == at.replace(hour=9, minute=17)
    assert Periodic("h", "k", "hourly", minute=45).period_start(at) == at.replace(hour=8, minute=45)
    assert Periodic("d", "k", "daily", hour=8).period_start(at) == at.replace(hour=8, minute=0)
    assert Periodic("d", "k", "daily", hour=10).period_start(at) == datetime(
        2030, 5, 14, 10, tzinfo=UTC
    )
    assert Periodic("w", "k", "weekly", hour=8, weekday=0).period_start(at) == datetime(
        2030, 5, 13, 8, tzinfo=UTC
    )
    assert Periodic("w", "k", "weekly", hour=10, weekday=2).period_start(at) == datetime(
        2030, 5, 8, 10, tzinfo=UTC
    )


def test_backoff_doubles_and_is_capped():
    assert 5 <= backoff_s(1, 5, 3600) <= 6.25
    assert 40 <= backoff_s(4, 5, 3600) <= 50
    assert backoff_s(30, 5, 3600) == 3600


async def test_finished_jobs_are_purged_after_their_retention(client):
    from server.jobs.maintenance import cleanup_jobs

    await put(client, "test.record", {"key": key()})
    await put(client, "test.permanent", {})
    await run_jobs(client)
    await cleanup_jobs(ctx_of(client), {})
    assert len(await jobs(client)) == 2  # too recent
    await ctx_of(client).db.execute("UPDATE jobs SET finished_at = finished_at - interval '2 days'")
    await cleanup_jobs(ctx_of(client), {})
    assert [j["status"] for j in await jobs(client)] == ["dead"]  # dead ones are kept longer


async def test_queue_depth_is_exported_for_the_backlog_alert(client):
    from server.jobs.metrics import refresh

    await put(client, "test.record", {"key": key()})
    await put(client, "test.record", {"key": key()})
    await put(client, "test.record", {"key": key()}, delay_s=3600)  # not due: not a backlog
    await put(client, "test.permanent", {})
    await run_jobs(client)  # runs the permanent one into the dead letters (and the two)
    await put(client, "test.record", {"key": key()})
    await refresh(ctx_of(client).db)
    text = await (await client.get("/metrics")).text()
    assert "nexgate_jobs_ready 1.0" in text
    assert "nexgate_jobs_dead 1.0" in text
    assert 'nexgate_jobs_finished_total{kind="test.permanent",outcome="dead"}' in text


async def test_worker_processes_share_the_servers_rate_limit_keys(clean_db, tmp_path, redis_url):
    """`nexgate worker` counts limits (e.g. the per-actor notification cap) in the same Redis keys
    as `nexgate serve`, under the deployment's configured prefix."""
    from server.bootstrap import close_context, open_context
    from server.config import RateLimit
    from tests.helpers import make_settings

    prefix = f"t{uuid.uuid4().hex[:8]}:"
    settings = make_settings(clean_db, tmp_path, redis={"url": redis_url, "prefix": prefix})
    ctx = await open_context(settings)
    try:
        limit = RateLimit(count=5, window_s=60)
        await ctx.limiter.hit("probe", limit)
        keys = await ctx.bus.redis.keys(f"{prefix}rl:probe:*")
        assert len(keys) == 1
        await ctx.bus.redis.delete(*keys)
    finally:
        await close_context(ctx)
