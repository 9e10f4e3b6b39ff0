"""Fan-out on write and live feed pushes: the jobs.

Publishing a post (server/domain/posts/publishing.go_live) calls
server/domain/posts/distribution.on_published inside its transaction. That costs the author a
fixed amount whatever their follower count: one row read (the authors' follower counts), one
hashtag-usage upsert, one job enqueued, at most one topic event per author past the threshold.
The rest happens in the `feeds.fanout` job:

- authors below `feeds.fanout_threshold` followers: their accepted followers (minus those who
  mute an author) are read in keyset pages of `feeds.fanout_batch`; each page is added to the
  built timelines among them (one statement / one Redis script call) and the ones online
  (one presence round trip) get a `feed.post` event in their ordered log (outbox);
- authors at or past the threshold: no per-follower work at all. Their followers' feeds pull
  their posts at read time, and one `feed.post` event goes to the topic `feed:<author_id>`
  (staged in the publishing transaction), which followers' live sessions subscribe to.

Deleting a published post (distribution.on_deleted) retracts: `feed.post_removed` on the
same paths (the `feeds.retract` job for fanned-out authors, the topic for the others) and the
entries leave the timelines. Private posts are never pushed. Events carry ids and times, never
content: a client fetches the post over HTTP, which applies the visibility rules of now.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

from server.domain.context import Context
from server.domain.feeds.timelines import timelines_of
from server.domain.posts import distribution
from server.domain.posts.distribution import FEED_POST, FEED_POST_REMOVED, event_of
from server.store import feeds as store
from server.store.db import Row


async def _split(ctx: Context, post: Row) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    return await distribution.split_authors(ctx, ctx.db, post)


async def _follower_pages(
    ctx: Context, post: Row, authors: list[uuid.UUID]
) -> AsyncIterator[list[uuid.UUID]]:
    """Pages of distinct recipients: the accepted followers of `authors` who mute none of the
    post's authors, plus the authors themselves (their own feed shows their post)."""
    seen: set[uuid.UUID] = set()
    batch = ctx.settings.feeds.fanout_batch
    first = [a for a in post["author_ids"] if a not in seen]
    seen.update(first)
    yield first
    for author in authors:
        after: uuid.UUID | None = None
        while True:
            rows = await store.followers_page(ctx.db, author, post["author_ids"], after, batch)
            fresh = [r["user_id"] for r in rows if r["user_id"] not in seen]
            seen.update(fresh)
            if fresh:
                yield fresh
            if len(rows) < batch:
                break
            after = rows[-1]["follow_id"]


async def fanout_job(ctx: Context, payload: dict[str, Any]) -> None:
    """Job `feeds.fanout`: push a published post into its followers' timelines and live
    sessions. Safe to run again: timeline adds are idempotent; a repeated `feed.post` is
    deduplicated by clients on post_id."""
    post = await store.post_for_fanout(ctx.db, uuid.UUID(payload["post_id"]))
    if post is None or post["status"] != "published" or post["deleted_at"] is not None:
        return
    if post["visibility"] == "private":
        return
    small, _ = await _split(ctx, post)
    timelines = timelines_of(ctx)
    event = event_of(post)
    async for users in _follower_pages(ctx, post, small):
        await timelines.add(users, post["id"], post["published_at"])
        online = await ctx.bus.online_users(users)
        if online:
            async with ctx.db.transaction() as tx:
                ctx.events.to_users(tx, sorted(online), FEED_POST, event)


async def retract_job(ctx: Context, payload: dict[str, Any]) -> None:
    """Job `feeds.retract`: a deleted post leaves its readers' timelines; those online get
    `feed.post_removed`."""
    post = await store.post_for_fanout(ctx.db, uuid.UUID(payload["post_id"]))
    if post is None:
        return
    small, _ = await _split(ctx, post)
    timelines = timelines_of(ctx)
    event = event_of(post)
    async for users in _follower_pages(ctx, post, small):
        await timelines.remove(users, post["id"])
        online = await ctx.bus.online_users(users)
        if online:
            async with ctx.db.transaction() as tx:
                ctx.events.to_users(tx, sorted(online), FEED_POST_REMOVED, event)
