"""The home feed `GET /api/posts`: posts and reposts of the accounts the viewer follows, their
own and co-authored posts, and posts with hashtags they follow, newest first by
(published_at, id), keyset-paginated.

Strategy (the hybrid large timelines use):
- Fan-out on write: publishing enqueues a job (server/domain/feeds/fanout.py) that pushes the
  post id into the timelines of the followers of each author below `feeds.fanout_threshold`
  followers (server/domain/feeds/timelines.py: PostgreSQL table or Redis sorted sets).
- Fan-out on read: authors at or past the threshold are never fanned out; their posts, the
  viewer's own and co-authored ones, and followed hashtags' posts are pulled at read time
  from their indexes (server/store/feeds.pulled).
- Merge: both sources give their newest N entries before the cursor; the union's first N
  distinct entries are exactly the first N of the feed. Then one query re-checks those
  candidates against PostgreSQL (visible now, not muted, not hidden, still followed) so
  unfollow, block, mute, hide and delete take effect on the next page whatever the timeline
  holds; if that filtering leaves the page short, the next N candidates are read (a bounded
  number of rounds; the cursor then points past what was examined).
A missing timeline (never built, expired unread, Redis restarted) is rebuilt from PostgreSQL
in one query before the page is read.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.feeds.timelines import Entry, timelines_of
from server.domain.posts.views import render_posts
from server.pagination import decode_time_id_cursor, encode_cursor
from server.store import feeds as store
from server.store.db import Row

MAX_ROUNDS = 4  # candidate batches read per page before answering short with a cursor


def keyset(cursor: str | None) -> Entry | None:
    """The (published_at, id) a previous page ended at; a bogus cursor is a 422 problem."""
    return decode_time_id_cursor(cursor)


def cursor_of(entry: Entry) -> str:
    return encode_cursor(entry[0].isoformat(), str(entry[1]))


def merge(*sources: list[Entry], limit: int) -> list[Entry]:
    """The first `limit` distinct entries of the union of sorted sources, newest first."""
    return sorted(set().union(*sources), reverse=True)[:limit]


async def candidates(
    ctx: Context,
    viewer: uuid.UUID,
    before: Entry | None,
    n: int,
    sources: tuple[list[uuid.UUID], list[uuid.UUID]] | None = None,
) -> list[Entry]:
    """The first `n` feed candidates after `before`: timeline entries merged with the pull
    (`sources`: the pulled authors and hashtags, read once per page)."""
    timelines = timelines_of(ctx)
    pushed = await timelines.page(viewer, before, n)
    if pushed is None:
        entries = await store.rebuild_entries(ctx.db, viewer, ctx.settings.feeds.timeline_cap)
        await timelines.replace(viewer, entries)
        pushed = [e for e in entries if before is None or e < before][:n]
    if sources is None:
        sources = await store.pull_sources(ctx.db, viewer, ctx.settings.feeds.fanout_threshold)
    authors, hashtags = sources
    pulled = await store.pulled(ctx.db, authors, hashtags, before, n)
    return merge(pushed, pulled, limit=n)


async def home_feed(
    ctx: Context, viewer: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    before = keyset(cursor)
    sources = await store.pull_sources(ctx.db, viewer.user_id, ctx.settings.feeds.fanout_threshold)
    rows, next_entry = await filtered_page(ctx, viewer.user_id, before, limit, sources)
    big = [author for author in sources[0] if author != viewer.user_id]
    return {
        "items": await render_posts(ctx, viewer.user_id, rows),
        "next_cursor": cursor_of(next_entry) if next_entry else None,
        # Live pushes of these authors come on one topic each (PROTOCOL.md, "Feed pushes").
        "live_topics": [f"feed:{author}" for author in big],
    }


async def filtered_page(
    ctx: Context,
    viewer: uuid.UUID,
    before: Entry | None,
    limit: int,
    sources: tuple[list[uuid.UUID], list[uuid.UUID]],
) -> tuple[list[Row], Entry | None]:
    """The page's rows (visible now) and where the next page starts (None: the end)."""

    async def batch(after: Entry | None, n: int) -> list[Entry]:
        return await candidates(ctx, viewer, after, n, sources)

    async def shown(ids: list[uuid.UUID]) -> list[Row]:
        return await store.feed_filter(ctx.db, viewer, ids, ctx.clock.now())

    return await keyset_page(batch, shown, before, limit)


async def keyset_page(
    batch: Callable[[Entry | None, int], Awaitable[list[Entry]]],
    shown: Callable[[list[uuid.UUID]], Awaitable[list[Row]]],
    before: Entry | None,
    limit: int,
) -> tuple[list[Row], Entry | None]:
    """A page of a filtered keyset list: candidates come in order from `batch` (n at a time
    after a key), `shown` keeps those the viewer may see (one query per batch). Over-fetches,
    and refills when filtering leaves the page short, for at most MAX_ROUNDS batches; then
    answers short with a cursor past what it examined. Returns (rows, next key or None)."""
    n = limit + limit // 2 + 5  # over-fetch: filtering removes some
    kept: list[Row] = []
    for _ in range(MAX_ROUNDS):
        entries = await batch(before, n)
        if entries:
            rows = {row["id"]: row for row in await shown([e[1] for e in entries])}
            kept.extend(rows[post_id] for _, post_id in entries if post_id in rows)
        if len(kept) > limit:
            page = kept[:limit]
            return page, (page[-1]["published_at"], page[-1]["id"])
        if len(entries) < n:
            return kept, None  # the sources are exhausted
        before = entries[-1]
    return kept, before
