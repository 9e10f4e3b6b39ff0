"""The one source of "now" for business rules.

Every rule that depends on the time of day or on a period (batching windows, digests, edit
windows, mutes, token expiry, group deadlines, retention) reads `ctx.clock.now()` and passes
the value to SQL as a parameter, instead of calling `datetime.now()` or SQL `now()`. Tests
pin the clock with `ManualClock`, so they pass on any date and hour.

Infrastructure timing is deliberately not on this clock: job leases and run-at times,
rate-limit buckets and the bus's resume window use the real time of the process or the
database, because they coordinate real processes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The wall clock (production)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock a test sets: pinned at `start` until moved with `set` or `advance`."""

    def __init__(self, start: datetime) -> None:
        self._now = _utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = _utc(moment)

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by `delta` (or timedelta(**kwargs)); returns the new now."""
        self._now += delta if delta is not None else timedelta(**kwargs)
        return self._now


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("clock times must be timezone-aware")
    return moment.astimezone(UTC)


SYSTEM_CLOCK = SystemClock()
