"""The timeline engine: per-reader home timelines, the fan-out-on-write half of the home feed.

Two engines implement `Timelines` side by side: `PgTimelines` (table `home_timeline`, the
embedded default and any deployment on the memory bus) and `RedisTimelines`
(server/bus/timelines.py, sorted sets, when the Redis bus is configured). Both keep:

- Ordering: a page is the newest entries strictly before the keyset `before`, ordered by
  (published_at, post_id) descending, the order PostgreSQL gives posts.
- A timeline is a cache: `page` answers None when the reader's timeline is not built (never
  read, dropped after `feeds.timeline_ttl_s` unread, lost with Redis); the caller rebuilds it
  from PostgreSQL with `replace` (`store.feeds.rebuild_entries`, one query).
- `add` writes only into built timelines (readers who stopped reading cost nothing) and is
  idempotent (an entry is a set member; a fan-out job run twice adds nothing new); each
  timeline keeps its newest `feeds.timeline_cap` entries.
- Atomicity: `replace` swaps a whole timeline at once. `add` / `remove` per timeline are
  independent: a reader may see a fan-out half done, never a torn entry. Nothing here is
  authoritative: every page is re-checked against PostgreSQL before it is shown
  (server/domain/feeds/home.py), so a stale entry (unfollowed, blocked, deleted) never shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from server.bus.timelines import RedisTimelines
from server.domain.context import Context
from server.store import feeds as store
from server.store.db import Database

Entry = tuple[datetime, uuid.UUID]


class Timelines(Protocol):
    async def page(
        self, user_id: uuid.UUID, before: Entry | None, limit: int
    ) -> list[Entry] | None:
        """Up to `limit` entries before `before`, newest first; None: not built."""
        ...

    async def add(
        self, user_ids: Sequence[uuid.UUID], post_id: uuid.UUID, published_at: datetime
    ) -> int:
        """Add the post to the built timelines among `user_ids`; how many were added."""
        ...

    async def remove(self, user_ids: Sequence[uuid.UUID], post_id: uuid.UUID) -> None:
        """Take the post out of these users' timelines."""
        ...

    async def replace(self, user_id: uuid.UUID, entries: Sequence[Entry]) -> None:
        """The user's timeline becomes `entries` (newest `cap` kept), marked built."""
        ...

    async def forget(self, user_id: uuid.UUID) -> None:
        """Drop the user's timeline: their next read rebuilds it (after a new follow, whose
        earlier posts the timeline never received)."""
        ...


class PgTimelines:
    """`Timelines` over the `home_timeline` table (server/store/feeds.py)."""

    def __init__(self, db: Database, now: Callable[[], datetime]) -> None:
        self.db = db
        self.now = now  # the Context's clock, read at each call (tests move it)

    async def page(
        self, user_id: uuid.UUID, before: Entry | None, limit: int
    ) -> list[Entry] | None:
        return await store.timeline_page(self.db, user_id, before, limit, self.now())

    async def add(
        self, user_ids: Sequence[uuid.UUID], post_id: uuid.UUID, published_at: datetime
    ) -> int:
        return await store.timeline_add(self.db, user_ids, post_id, published_at)

    async def remove(self, user_ids: Sequence[uuid.UUID], post_id: uuid.UUID) -> None:
        # One statement by post id (home_timeline_post_idx) covers every reader.
        await store.timeline_remove(self.db, post_id)

    async def replace(self, user_id: uuid.UUID, entries: Sequence[Entry]) -> None:
        async with self.db.transaction() as tx:
            await store.timeline_replace(tx, user_id, entries, self.now())

    async def forget(self, user_id: uuid.UUID) -> None:
        await store.timeline_forget(self.db, user_id)


def timelines_of(ctx: Context) -> Timelines:
    """The engine of this deployment: Redis sorted sets on the Redis bus, else PostgreSQL.
    Built once per Context (kept in ctx.caches)."""
    engine = ctx.caches.get("feeds.timelines")
    if engine is None:
        settings = ctx.settings
        redis = getattr(ctx.bus, "redis", None)
        if settings.redis.url and redis is not None:
            engine = RedisTimelines(
                redis,
                prefix=settings.redis.prefix,
                cap=settings.feeds.timeline_cap,
                ttl_s=settings.feeds.timeline_ttl_s,
            )
        else:
            engine = PgTimelines(ctx.db, lambda: ctx.clock.now())
        ctx.caches["feeds.timelines"] = engine
    return engine
