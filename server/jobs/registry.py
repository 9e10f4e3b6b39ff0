"""What the workers know how to run: job kinds (handlers) and periodic jobs.

Handlers are plain `async def handler(ctx, payload) -> None` functions living next to the
capability they serve; each capability registers its own in the `jobs` module it names in
server/capabilities.py (`register(...)`, `every(...)`). A handler must be safe to run again for
the same payload (delivery is at-least-once: a worker killed after the side effect but before
it recorded success makes the job run again). Raise PermanentJobError for failures a retry
cannot fix.

This module is a leaf (it imports nothing from server): the queue (server/jobs/queue.py) looks
kinds up here. The capabilities' job modules import their handlers, so they are loaded where
processes start (`capabilities.load_jobs()`, from the composition root), never by the queue or
the registry (that would be an import cycle: capability -> queue -> registrations -> capability).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

Handler = Callable[[Any, dict[str, Any]], Awaitable[None]]


class PermanentJobError(Exception):
    """The job can never succeed (bad payload, rejected by the remote end): dead-letter it now."""


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    # A run taking longer is cancelled and counted as a failed attempt.
    timeout_s: float = 300
    # None: settings.jobs.max_attempts.
    max_attempts: int | None = None


HANDLERS: dict[str, JobKind] = {}
# Set once every capability has registered its kinds (`seal`, from capabilities.load_jobs).
_sealed = False


def seal() -> None:
    """Every kind is registered: from now on `job_kind` refuses unknown names."""
    global _sealed
    _sealed = True


def job_kind(name: str) -> JobKind | None:
    """The registered kind `name`. An unknown name raises ValueError once the registry is sealed
    (every process that builds a Context through server/bootstrap.py loads and seals it: a typo
    fails at enqueue). Before that it returns None."""
    kind = HANDLERS.get(name)
    if kind is None and _sealed:
        raise ValueError(f"no job handler registered for {name!r}")
    return kind


def register(
    name: str, handler: Handler, *, timeout_s: float = 300, max_attempts: int | None = None
) -> JobKind:
    kind = JobKind(name, handler, timeout_s, max_attempts)
    HANDLERS[name] = kind
    return kind


@dataclass(frozen=True)
class Periodic:
    """A job enqueued once per period, at `period_start`, by whichever worker gets there first.

    `every` is "hourly", "daily" or "weekly"; `minute` / `hour` / `weekday` (0 = Monday, UTC)
    place the period start. The job's payload gets `period_start` and `previous_start` (ISO)."""

    name: str
    kind: str
    every: str
    minute: int = 0
    hour: int | Callable[[Any], int] = 0
    weekday: int | Callable[[Any], int] = 0
    payload: dict[str, Any] = field(default_factory=dict)

    def _resolve(self, value: int | Callable[[Any], int], settings: Any) -> int:
        return value(settings) if callable(value) else value

    def period_start(self, now: datetime, settings: Any = None) -> datetime:
        """The start of the period `now` falls in."""
        now = now.astimezone(UTC)
        if self.every == "hourly":
            start = now.replace(minute=self.minute, second=0, microsecond=0)
            return start if start <= now else start - timedelta(hours=1)
        hour = self._resolve(self.hour, settings)
        start = now.replace(hour=hour, minute=self.minute, second=0, microsecond=0)
        if self.every == "daily":
            return start if start <= now else start - timedelta(days=1)
        if self.every == "weekly":
            weekday = self._resolve(self.weekday, settings)
            start -= timedelta(days=(start.weekday() - weekday) % 7)
            return start if start <= now else start - timedelta(days=7)
        raise ValueError(f"unknown period {self.every!r}")

    @property
    def length(self) -> timedelta:
        return {
            "hourly": timedelta(hours=1),
            "daily": timedelta(days=1),
            "weekly": timedelta(days=7),
        }[self.every]


PERIODIC: list[Periodic] = []


def every(
    name: str,
    kind: str,
    every: str,
    *,
    minute: int = 0,
    hour: int | Callable[[Any], int] = 0,
    weekday: int | Callable[[Any], int] = 0,
    payload: dict[str, Any] | None = None,
) -> Periodic:
    periodic = Periodic(name, kind, every, minute, hour, weekday, payload or {})
    PERIODIC[:] = [p for p in PERIODIC if p.name != name] + [periodic]
    return periodic
