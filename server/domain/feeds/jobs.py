"""The feeds capability's background work: fan-out and retraction of posts, and the daily
trim of PostgreSQL timelines (Redis ones expire by TTL and trim on write). Imported by the
capability manifest (server/capabilities.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from server.domain.context import Context
from server.domain.feeds import fanout
from server.domain.posts import distribution
from server.jobs.registry import every, register
from server.store import feeds as store


async def trim_timelines(ctx: Context, payload: dict[str, Any]) -> None:
    """Job `feeds.trim_timelines`: drop timelines unread for timeline_ttl_s and cut the rest to
    timeline_cap entries (PostgreSQL engine; a no-op cost on the Redis one)."""
    settings = ctx.settings.feeds
    unread_since = ctx.clock.now() - timedelta(seconds=settings.timeline_ttl_s)
    await store.timeline_expire(ctx.db, unread_since, settings.timeline_cap)


register(distribution.FANOUT_JOB, fanout.fanout_job, timeout_s=600)
register(distribution.RETRACT_JOB, fanout.retract_job, timeout_s=600)
register("feeds.trim_timelines", trim_timelines, timeout_s=3600)
every("feeds.trim_timelines", "feeds.trim_timelines", "daily", hour=3, minute=50)
