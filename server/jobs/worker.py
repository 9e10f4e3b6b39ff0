"""The job worker: claims due jobs, runs them under a renewed lease, retries, dead-letters.

Guarantees (proved in tests/test_jobs*.py):
- At-least-once: a job is finished only after its handler returned. A worker killed mid-job
  (SIGKILL, OOM, lost host) stops renewing its lease; once the lease expires any worker reclaims
  the job and runs it again.
- Never twice at the same time: a job is claimed with FOR UPDATE SKIP LOCKED and leased to one
  worker; the lease is renewed every lease/3 while the handler runs, and a worker that cannot
  renew in time (database unreachable, event loop stalled) cancels the handler before its lease
  can expire in the database. Renewal and completion are fenced on `locked_by`, so a worker
  that lost its lease can neither extend it nor overwrite the new owner's result.
- Failures are retried with exponential backoff (retry_base_s * 2^(attempt-1), jittered,
  capped at retry_max_s) and dead-lettered after max_attempts (status 'dead', last_error kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.jobs.metrics import JOBS_FINISHED
from server.jobs.queue import enqueue
from server.jobs.registry import HANDLERS, PERIODIC, Periodic, PermanentJobError
from server.store import jobs as jobs_store
from server.store.db import Row

log = logging.getLogger("nexgate.jobs")


def worker_name(suffix: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}{suffix}"


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Delay before the next attempt after `attempts` failed ones (jittered up to +25%)."""
    delay = min(max_s, base_s * (2 ** max(0, attempts - 1)))
    return min(max_s, delay * (1 + random.random() * 0.25))


async def _settle(tasks: list[asyncio.Task], timeout_s: float, *, cancel: bool = True) -> None:
    """Wait (bounded) for tasks to end, cancelling them first unless `cancel` is False."""
    tasks = [t for t in tasks if not t.done()]
    if not tasks:
        return
    if cancel:
        for task in tasks:
            task.cancel()
    await asyncio.wait(tasks, timeout=timeout_s)


@dataclass
class _Running:
    job: Row
    task: asyncio.Task | None = None
    deadline: float = 0.0  # monotonic time our lease surely still holds until
    cancel_reason: str | None = None


async def execute(ctx: Any, job: Row, worker: str, *, running: _Running | None = None) -> str:
    """Run one claimed job and record the outcome; returns 'done', 'queued', 'dead' or 'lost'."""
    outcome = await _execute(ctx, job, worker, running)
    JOBS_FINISHED.labels(job["kind"], outcome).inc()
    return outcome


async def _execute(ctx: Any, job: Row, worker: str, running: _Running | None) -> str:
    settings = ctx.settings.jobs
    kind = HANDLERS.get(job["kind"])
    max_attempts = job["max_attempts"] or (kind and kind.max_attempts) or settings.max_attempts
    started = time.perf_counter()
    try:
        if kind is None:
            raise LookupError(f"no handler registered for job kind {job['kind']!r}")
        async with asyncio.timeout(kind.timeout_s):
            await kind.handler(ctx, job["payload"])
    except asyncio.CancelledError:
        reason = running.cancel_reason if running else None
        if reason == "lost":
            log.warning("job lease lost; stopped", extra={"job_id": str(job["id"])})
            return "lost"
        raise
    except Exception as exc:
        permanent = isinstance(exc, PermanentJobError)
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        if isinstance(exc, TimeoutError):
            error = f"timed out after {kind.timeout_s if kind else '?'} s"
        retry = None
        if not permanent and job["attempts"] < max_attempts:
            retry = backoff_s(job["attempts"], settings.retry_base_s, settings.retry_max_s)
        status = await jobs_store.fail(ctx.db, job["id"], worker, error, retry)
        level = logging.ERROR if status == "dead" else logging.WARNING
        log.log(
            level,
            "job failed" + ("; dead-lettered" if status == "dead" else "; will retry"),
            extra={
                "job_id": str(job["id"]),
                "kind": job["kind"],
                "attempt": job["attempts"],
                "error": error,
                "retry_in_s": retry,
            },
        )
        return status or "lost"
    finished = await jobs_store.finish(ctx.db, job["id"], worker)
    log.info(
        "job done" if finished else "job finished after its lease was lost",
        extra={
            "job_id": str(job["id"]),
            "kind": job["kind"],
            "attempt": job["attempts"],
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
    return "done" if finished else "lost"


@dataclass
class Worker:
    """One worker: `await worker.run()` until `await worker.close()` (or `stop()`)."""

    ctx: Any
    name: str = field(default_factory=worker_name)
    concurrency: int | None = None
    listen: bool = True
    periodic: bool = True
    maintenance_interval_s: float = 30.0

    def __post_init__(self) -> None:
        s = self.ctx.settings.jobs
        # How many jobs run at once: the field as given, else the setting (typed, resolved).
        self._slots: int = self.concurrency or s.concurrency
        self.concurrency = self._slots
        self.lease_s = s.lease_s
        self.poll_interval_s = s.poll_interval_s
        self._running: dict[uuid.UUID, _Running] = {}
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: Any = None  # the LISTEN connection (server.store.jobs.listen)
        self._tasks: list[asyncio.Task] = []
        self._scheduled: dict[str, datetime] = {}
        self._last_maintenance = 0.0
        self._run_task: asyncio.Task | None = None
        self.processed = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> asyncio.Task:
        self._run_task = asyncio.create_task(self.run(), name=f"jobs-worker {self.name}")
        return self._run_task

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def close(self, grace_s: float | None = None) -> None:
        """Stop claiming, give running jobs `grace_s` to finish, hand the rest back."""
        self.stop()
        grace = self.ctx.settings.jobs.shutdown_grace_s if grace_s is None else grace_s
        if self._run_task is not None:
            await _settle([self._run_task], 5, cancel=False)
        await self._drain(grace)
        # Background loops also watch the stop flag: cancelling a task awaiting aiopg can be
        # swallowed (asyncio.wait_for in Python 3.11), so never wait on them unboundedly.
        await _settle(self._tasks, 2)
        self._tasks.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    async def _drain(self, grace_s: float) -> None:
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        leftover = list(self._running.values())
        for r in leftover:
            r.cancel_reason = "shutdown"
            if r.task is not None:
                r.task.cancel()
        await _settle([r.task for r in leftover if r.task is not None], 5, cancel=False)
        if leftover:
            with contextlib.suppress(Exception):
                await jobs_store.release(self.ctx.db, [r.job["id"] for r in leftover], self.name)
            log.info("jobs handed back on shutdown", extra={"count": len(leftover)})

    # -- main loop ------------------------------------------------------------------------

    async def run(self) -> None:
        log.info("job worker started", extra={"worker": self.name, "concurrency": self.concurrency})
        if self.listen:
            self._tasks.append(asyncio.create_task(self._listen()))
        self._tasks.append(asyncio.create_task(self._heartbeat()))
        while not self._stopping.is_set():
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("job worker tick failed")
                await self._sleep(self.poll_interval_s)
                continue
            await self._sleep(self.poll_interval_s)
        log.info("job worker stopping", extra={"worker": self.name})

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()
        self._wakeup.clear()

    async def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; False once the worker is stopping."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        return not self._stopping.is_set()

    async def _tick(self) -> None:
        now = time.monotonic()
        if now - self._last_maintenance >= min(self.maintenance_interval_s, self.lease_s / 2):
            self._last_maintenance = now
            await self.maintenance()
        while not self._stopping.is_set():
            free = self._slots - len(self._running)
            if free <= 0:
                return
            jobs = await jobs_store.claim(self.ctx.db, self.name, free, self.lease_s)
            for job in jobs:
                self._spawn(job)
            if len(jobs) < free:
                return

    async def maintenance(self) -> None:
        """Reclaim jobs of dead workers and enqueue due periodic jobs."""
        for row in await jobs_store.reclaim_expired(
            self.ctx.db, self.ctx.settings.jobs.max_attempts
        ):
            log.warning(
                "job lease expired; reclaimed",
                extra={"job_id": str(row["id"]), "kind": row["kind"], "status": row["status"]},
            )
        if self.periodic:
            await self.schedule_periodic()

    async def schedule_periodic(self, now: datetime | None = None) -> list[str]:
        """Enqueue each periodic job once for its current period (idempotent across workers)."""
        now = now or self.ctx.clock.now()
        scheduled = []
        for periodic in list(PERIODIC):
            start = periodic.period_start(now, self.ctx.settings)
            if self._scheduled.get(periodic.name) == start:
                continue
            if await self._schedule_one(periodic, start, enqueue):
                scheduled.append(periodic.name)
            self._scheduled[periodic.name] = start
        return scheduled

    async def _schedule_one(self, periodic: Periodic, start: datetime, enqueue: Any) -> bool:
        payload = {
            **periodic.payload,
            "period_start": start.isoformat(),
            "previous_start": (start - periodic.length).isoformat(),
        }
        async with self.ctx.db.transaction() as tx:
            if not await jobs_store.schedule_period(tx, name=periodic.name, period_start=start):
                return False
            await enqueue(tx, periodic.kind, payload)
        log.info("periodic job enqueued", extra={"periodic": periodic.name, "period": str(start)})
        return True

    def _spawn(self, job: Row) -> None:
        running = _Running(job, deadline=time.monotonic() + self.lease_s * 0.9)
        self._running[job["id"]] = running
        running.task = asyncio.create_task(self._run_job(running))

    async def _run_job(self, running: _Running) -> None:
        try:
            await execute(self.ctx, running.job, self.name, running=running)
            self.processed += 1
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("recording a job outcome failed", extra={"job_id": running.job["id"]})
        finally:
            self._running.pop(running.job["id"], None)
            self._wakeup.set()

    # -- lease renewal --------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        interval = self.lease_s / 3
        while await self._pause(interval):
            if not self._running:
                continue
            ids = list(self._running)
            sent_at = time.monotonic()
            try:
                async with asyncio.timeout(interval):
                    held = await jobs_store.renew(self.ctx.db, self.name, ids, self.lease_s)
            except Exception:
                log.warning("lease renewal failed", exc_info=True)
                held = None
            for job_id in ids:
                running = self._running.get(job_id)
                if running is None:
                    continue
                if held is not None and job_id in held:
                    # The database computed the new expiry after we sent the request.
                    running.deadline = sent_at + self.lease_s * 0.9
                elif held is not None:
                    self._lose(running)
            now = time.monotonic()
            for running in list(self._running.values()):
                if running.deadline <= now:
                    self._lose(running)

    def _lose(self, running: _Running) -> None:
        if running.task is not None and not running.task.done():
            running.cancel_reason = "lost"
            running.task.cancel()

    # -- LISTEN / NOTIFY ------------------------------------------------------------------

    async def _listen(self) -> None:
        """Wake up as soon as a job is committed (the poll interval is only the fallback)."""
        while not self._stopping.is_set():
            try:
                self._listener = await jobs_store.listen(self.ctx.db.dsn)
                while True:
                    await self._listener.notifies.get()
                    self._wakeup.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.info("job LISTEN connection lost; polling until it is back", exc_info=True)
            finally:
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None
            await self._pause(5)

    # -- tests and tools ------------------------------------------------------------------

    async def run_until_idle(self, timeout_s: float = 30) -> int:
        """Run every due job (and the ones they enqueue) until none is due; returns how many."""
        deadline = time.monotonic() + timeout_s
        before = self.processed
        while time.monotonic() < deadline:
            await jobs_store.reclaim_expired(self.ctx.db, self.ctx.settings.jobs.max_attempts)
            jobs = await jobs_store.claim(self.ctx.db, self.name, self._slots, self.lease_s)
            for job in jobs:
                self._spawn(job)
            tasks = [r.task for r in self._running.values() if r.task is not None]
            if not tasks:
                return self.processed - before
            await asyncio.wait(tasks)
        raise TimeoutError("jobs still due after the timeout")
