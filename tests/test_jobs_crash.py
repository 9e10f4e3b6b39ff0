"""Crash recovery with real `nexgate worker` processes: one is SIGKILLed while a push job is
in flight (the relay holds the request open); the job is not lost, is not taken over while
that worker is alive, and runs again elsewhere once its lease expires. A SIGTERM hands the
job back at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from server.jobs.worker import Worker
from tests.helpers import register
from tests.notifications_support import app_client, ctx_of, jobs, wait_until

ROOT = Path(__file__).resolve().parent.parent
LEASE_S = 2


def start_worker(database_url: str, relay_url: str, tmp_path: Path, name: str):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NEXGATE_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(
        {
            "NEXGATE_DATABASE_URL": database_url,
            "NEXGATE_DATABASE_MIGRATE_ON_START": "false",
            "NEXGATE_DATABASE_POOL_MAX": "4",
            "NEXGATE_PUSH_WEBHOOK_URL": relay_url,
            "NEXGATE_PUSH_WEBHOOK_TIMEOUT_S": "600",
            "NEXGATE_JOBS_LEASE_S": str(LEASE_S),
            "NEXGATE_JOBS_POLL_INTERVAL_S": "0.2",
            "NEXGATE_JOBS_SHUTDOWN_GRACE_S": "0.5",
            "NEXGATE_SERVER_DATA_DIR": str(tmp_path / f"var-{name}"),
            "NEXGATE_AUTH_JWT_SECRET": "worker-secret-" + "x" * 32,
        }
    )
    log = open(tmp_path / f"{name}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "worker", "--concurrency", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return proc, log


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path, relay):
    return await app_client(
        aiohttp_client,
        clean_db,
        tmp_path,
        push={"webhook_url": relay.url, "webhook_timeout_s": 600},
        jobs={"lease_s": LEASE_S, "poll_interval_s": 0.2},
    )


async def queue_a_push(client) -> uuid.UUID:
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    resp = await client.post(f"/api/users/{alice.id}/follow", headers=bob.auth)
    assert resp.status in (200, 201)
    [job] = await jobs(client, "push.send")
    return job["id"]


async def test_a_worker_killed_mid_job_loses_nothing(client, relay, clean_db, tmp_path):
    relay.hang_first = True  # the first delivery attempt never gets an answer
    job_id = await queue_a_push(client)
    proc, log = start_worker(clean_db, relay.url, tmp_path, "doomed")
    rescuer = None
    try:
        await relay.wait_for(1, timeout_s=30)  # the worker process is mid-job
        [job] = await jobs(client, "push.send")
        assert job["status"] == "running" and f":{proc.pid}:" in job["locked_by"]

        # Another worker polls all along: while the first one lives it renews its lease, so
        # the job is never run twice at the same time (here for 1.5 leases).
        rescuer = Worker(ctx_of(client), listen=False, periodic=False)
        rescuer.maintenance_interval_s = 0.2
        rescuer.start()
        await asyncio.sleep(LEASE_S * 1.5)
        assert len(relay.requests) == 1
        [job] = await jobs(client, "push.send")
        assert job["status"] == "running" and f":{proc.pid}:" in job["locked_by"]

        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL

        await relay.wait_for(2, timeout_s=LEASE_S * 4)  # ran again, elsewhere
        assert relay.requests[1]["notification_id"] == relay.requests[0]["notification_id"]

        async def done():
            [job] = await jobs(client, "push.send")
            return job if job["status"] == "done" else None

        job = await wait_until(done, 10)
        assert job["id"] == job_id and job["attempts"] == 2
        assert f"worker {proc.pid}" in job["last_error"] or "lease expired" in job["last_error"]
        assert len(relay.requests) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
        if rescuer is not None:
            await rescuer.close(grace_s=0.1)


async def test_sigterm_hands_the_running_job_back(client, relay, clean_db, tmp_path):
    relay.hang_first = True
    await queue_a_push(client)
    proc, log = start_worker(clean_db, relay.url, tmp_path, "stopped")
    try:
        await relay.wait_for(1, timeout_s=30)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 20) == 0
        [job] = await jobs(client, "push.send")
        # Back in the queue at once (no lease to wait out), the interrupted attempt not counted.
        assert job["status"] == "queued" and job["attempts"] == 0 and job["locked_by"] is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
