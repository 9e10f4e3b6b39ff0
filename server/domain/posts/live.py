"""Live events of a post on its `post:<id>` topic (subscribing is authorized like the HTTP
read, server/ws/methods/posts.py).

Topic events carry ids, what changed and counters, never the content: a subscriber whose access
ended since it subscribed (the audience narrowed, a block) learns nothing it may no longer see,
and refetches `GET /api/posts/:id`, which applies the rules of now.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from typing import Any

from server.domain.coalescer import Coalescer
from server.domain.context import Context
from server.store.db import Row, Transaction
from server.store.posts import reads as store

POST_UPDATED = "post.updated"
POST_DELETED = "post.deleted"
COUNTERS_INTERVAL_S = 1.0  # at most one counters event per post per second (per node)


def topic(post_id: Any) -> str:
    return f"post:{post_id}"


def counters(post: Row) -> dict[str, int]:
    return {
        "likes_count": post["likes_count"],
        "comments_count": post["comments_count"],
        "reposts_count": post["reposts_count"],
        "bookmarks_count": post["bookmarks_count"],
    }


async def post_updated(ctx: Context, tx: Transaction, post: Row, changed: list[str]) -> None:
    """`post.updated` on the post's topic once `tx` commits."""
    ctx.events.to_topic(
        tx,
        topic(post["id"]),
        POST_UPDATED,
        {
            "post_id": str(post["id"]),
            "changed": [c for c in changed if c != "updated_at"],
            "edit_count": post["edit_count"],
            "edited_at": post["edited_at"].isoformat() if post["edited_at"] else None,
            "updated_at": post["updated_at"].isoformat(),
            **counters(post),
        },
    )


async def post_deleted(ctx: Context, tx: Transaction, post: Row) -> None:
    """`post.deleted` on the post's topic once `tx` commits (clients drop it at once)."""
    ctx.events.to_topic(tx, topic(post["id"]), POST_DELETED, {"post_id": str(post["id"])})


def counters_changed(ctx: Context, post_id: uuid.UUID) -> None:
    """A like / comment / repost / bookmark changed the post's counters (call after commit):
    subscribers get `post.updated` with `changed: ["counters"]`, coalesced to at most one per
    post per second, carrying the counts as they are when it is sent."""
    coalescer = ctx.coalescers.get(POST_UPDATED)
    if coalescer is None:

        async def emit(key: Hashable) -> None:
            row = await store.counters(ctx.db, key)  # type: ignore[arg-type]
            if row is not None:
                await ctx.events.ephemeral_to_topic(
                    topic(key), POST_UPDATED, {"post_id": str(key), "changed": ["counters"], **row}
                )

        coalescer = ctx.coalescers[POST_UPDATED] = Coalescer(COUNTERS_INTERVAL_S, emit)
    coalescer.touch(post_id)
