"""Enqueueing: the one call every capability uses to hand slow or fallible work to the workers.

    job_id = await enqueue(tx, "email.send", {"to": ..., "subject": ..., "text": ...})

Call it with the transaction of the write that causes the work: the job exists exactly when that
write commits (never for a rolled-back write, never lost after a committed one).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from server.ids import new_id
from server.jobs.registry import job_kind
from server.store import jobs as jobs_store
from server.store.db import Queries


async def enqueue(
    tx: Queries,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    delay_s: float = 0,
    coalesce_key: str | None = None,
    max_attempts: int | None = None,
    sensitive: bool = False,
) -> uuid.UUID | None:
    """Queue a job of `kind` (registered by a capability's `jobs` module) inside `tx`.

    An unknown `kind` raises ValueError (the registry is sealed by the composition root). This
    module asks the registry and never imports the capabilities' job modules: they import the
    capabilities that call this.

    - `run_at` / `delay_s`: not before this time (default: now); the delay is added to run_at.
    - `coalesce_key`: while a job with the same key is still queued (not yet started), this call
      is a no-op and returns None; the queued job does the work for both (its handler should
      read the current state rather than trust a stale payload).
    - `max_attempts`: overrides settings.jobs.max_attempts for this job.
    - `sensitive`: the payload (e.g. an email with a reset link) is wiped once the job finishes.
    The payload must be JSON-serialisable (UUIDs and datetimes as strings).
    """
    spec = job_kind(kind)
    return await jobs_store.insert(
        tx,
        id=new_id(),
        kind=kind,
        payload=payload or {},
        run_at=run_at,
        delay_s=float(delay_s),
        max_attempts=max_attempts or (spec.max_attempts if spec else None),
        coalesce_key=coalesce_key,
        sensitive=sensitive,
    )
