"""Digest periods across every weekday and the hours around the daily / weekly slots.

A notification must land in exactly one daily and one weekly digest window, whatever the day
and hour it happens at; and the window holding it must open (be scheduled) within a day for the
daily digest and within a week for the weekly one. The worker's scheduling is driven by the
clock, so each case pins it and walks it forward as a running worker would see time pass.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.capabilities import load_jobs
from server.clock import ManualClock
from server.config import load_settings
from server.jobs.registry import PERIODIC, Periodic

load_jobs()
SETTINGS = load_settings(env={})
DAILY = next(p for p in PERIODIC if p.name == "notifications.digest.daily")
WEEKLY = next(p for p in PERIODIC if p.name == "notifications.digest.weekly")
SLOT_HOUR = SETTINGS.jobs.digest_hour_utc
# One week starting on a Monday; every weekday, and minutes around the digest hour.
MONDAY = datetime(2026, 6, 8, tzinfo=UTC)
OFFSETS = [
    timedelta(hours=SLOT_HOUR) + delta
    for delta in (
        -timedelta(hours=1),
        -timedelta(minutes=1),
        -timedelta(microseconds=1),
        timedelta(0),
        timedelta(microseconds=1),
        timedelta(minutes=1),
        timedelta(hours=1),
        timedelta(hours=12),
    )
]
CASES = [MONDAY + timedelta(days=day) + offset for day in range(7) for offset in OFFSETS]


def windows_opened(periodic: Periodic, clock: ManualClock, until: datetime) -> list[tuple]:
    """Walk the clock forward in 5-minute ticks, as a worker's maintenance loop does, and
    record each new period as (scheduled_at, window_start, window_end)."""
    opened = []
    seen = None
    while clock.now() <= until:
        start = periodic.period_start(clock.now(), SETTINGS)
        if start != seen:
            opened.append((clock.now(), start - periodic.length, start))
            seen = start
        clock.advance(minutes=5)
    return opened


@pytest.mark.parametrize("event_at", CASES, ids=lambda t: t.strftime("%a-%H:%M:%S.%f"))
@pytest.mark.parametrize("periodic", [DAILY, WEEKLY], ids=["daily", "weekly"])
def test_every_notification_lands_in_exactly_one_digest_window(periodic, event_at):
    clock = ManualClock(event_at)
    horizon = event_at + periodic.length + timedelta(hours=1)
    opened = windows_opened(periodic, clock, horizon)
    holding = [w for w in opened if w[1] <= event_at < w[2]]
    assert len(holding) == 1, (event_at, opened)
    scheduled_at, _window_start, window_end = holding[0]
    # The window closes at the next slot after the event, and is scheduled right then.
    assert event_at < window_end <= event_at + periodic.length
    assert scheduled_at - window_end < timedelta(minutes=5)
    assert window_end.hour == SLOT_HOUR and window_end.minute == 0
    if periodic is WEEKLY:
        assert window_end.weekday() == SETTINGS.jobs.digest_weekday


def test_a_manual_clock_is_pinned_until_moved():
    clock = ManualClock(MONDAY)
    assert clock.now() == MONDAY
    assert clock.advance(days=1, hours=2) == MONDAY + timedelta(days=1, hours=2)
    clock.set(MONDAY)
    assert clock.now() == MONDAY
    with pytest.raises(ValueError):
        ManualClock(datetime(2026, 1, 1))  # naive times are refused
