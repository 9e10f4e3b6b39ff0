"""Durable background work: a PostgreSQL-backed queue and its workers.

- `enqueue(tx, kind, payload, ...)` (server/jobs/queue.py): queue work in the transaction of the
  write that causes it.
- server/jobs/registry.py: job kinds and periodic jobs; each capability registers its own
  (its `jobs` module in server/capabilities.py), server/jobs/maintenance.py the queue's upkeep.
- server/jobs/worker.py: the worker (claim with SKIP LOCKED, leases, retries, dead letters).
- server/jobs/runtime.py: `nexgate worker` runs workers as their own processes; `nexgate serve`
  runs one in-process when settings.jobs.in_process_worker (the embedded default).

Why not a library: the maintained PostgreSQL queues for asyncio (procrastinate, ...) are built on
psycopg 3 and bring their own schema and migration tooling, while this server runs aiopg /
psycopg2 with yoyo migrations and needs enqueueing inside its own transactions. The queue is one
table and a few statements (server/store/jobs.py); its guarantees are proved in tests/test_jobs*.
"""

from __future__ import annotations

from server.jobs.queue import enqueue

__all__ = ["enqueue"]
