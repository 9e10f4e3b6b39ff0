"""Likes on posts: like / unlike (idempotent, exact counts), the likers list, the authors'
`likes_received`, LIKE_POST notifications batched per post ("@a, @b and 98 others liked your
post"; an unlike takes the actor back out), PRODUCT_POST_LIKE to the sellers of products the
post links, and live counters on `post:<id>` (coalesced)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

from server.domain import notifications
from server.domain.access import access_post, check_published
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.notification_catalog import NotificationType
from server.domain.posts import live
from server.domain.posts.views import user_brief
from server.errors import ValidationFailed
from server.pagination import decode_cursor, page
from server.store import interactions as store
from server.store.db import Row, Transaction

log = logging.getLogger(__name__)


async def like_post(ctx: Context, actor: Principal, post_id: uuid.UUID) -> dict[str, Any]:
    """Like a post you can see (again: nothing changes). 200 likes / hour."""
    await ctx.limit(f"like:{actor.user_id}", ctx.settings.rate_limits.like, "likes")
    async with ctx.db.transaction() as tx:
        post = await access_post(ctx, tx, actor, post_id)
        check_published(post)
        count = None
        if not await store.has_liked(tx, post_id, actor.user_id):
            # The post's row (its count) and the authors' rows are what every liker of the
            # post writes: they are locked last, in one statement just before COMMIT, so a
            # burst of likes queues on them for one round trip each, not the whole action.
            await _notify(ctx, tx, post, actor, like=True)
            count = await store.add_like(
                tx, post_id, actor.user_id, ctx.clock.now(), authors=post["author_ids"]
            )
    if count is None:
        return {"post_id": str(post_id), "liked": True, "likes_count": post["likes_count"]}
    live.counters_changed(ctx, post_id)
    return {"post_id": str(post_id), "liked": True, "likes_count": count}


async def unlike_post(ctx: Context, actor: Principal, post_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.db.transaction() as tx:
        post = await access_post(ctx, tx, actor, post_id)
        count = None
        if await store.has_liked(tx, post_id, actor.user_id):
            await _notify(ctx, tx, post, actor, like=False)
            count = await store.remove_like(tx, post_id, actor.user_id, authors=post["author_ids"])
    if count is None:
        return {"post_id": str(post_id), "liked": False, "likes_count": post["likes_count"]}
    live.counters_changed(ctx, post_id)
    return {"post_id": str(post_id), "liked": False, "likes_count": count}


async def _notify(
    ctx: Context, tx: Transaction, post: Row, actor: Principal, *, like: bool
) -> None:
    targets = [(a, NotificationType.LIKE_POST) for a in post["author_ids"]]
    sellers = await store.product_sellers(tx, post["id"])
    targets += [
        (s, NotificationType.PRODUCT_POST_LIKE) for s in sellers if s not in post["author_ids"]
    ]
    for recipient, type in targets:
        if like:
            await notifications.notify(
                ctx,
                tx,
                recipient_id=recipient,
                type=type,
                entity_type="post",
                entity_id=post["id"],
                actor_id=actor.user_id,
                data={"post_id": str(post["id"])},
            )
        else:
            await notifications.retract(
                ctx,
                tx,
                recipient_id=recipient,
                type=type,
                entity_type="post",
                entity_id=post["id"],
                actor_id=actor.user_id,
            )


async def list_likers(
    ctx: Context, viewer: Principal, post_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Who liked a post you can see, newest first (users you and they blocked left out)."""
    await access_post(ctx, ctx.db, viewer, post_id)
    before = None
    values = decode_cursor(cursor, 2)
    if values is not None:
        try:
            before = (datetime.fromisoformat(str(values[0])), uuid.UUID(str(values[1])))
        except ValueError:
            raise ValidationFailed.field("cursor", "is not a cursor this list produced") from None
    rows = await store.likers(ctx.db, post_id, viewer.user_id, before, limit + 1)
    rows, next_cursor = page(rows, limit, lambda r: (r["liked_at"].isoformat(), str(r["id"])))
    return {
        "items": [{**(user_brief(r) or {}), "liked_at": r["liked_at"]} for r in rows],
        "next_cursor": next_cursor,
    }


async def reconcile_counters_job(ctx: Context, payload: dict[str, Any]) -> None:
    """Job `posts.reconcile_counters` (nightly, the spec's counter repair): recount every
    post's likes, comments, reposts and bookmarks in batches and fix drift (a crash between
    systems, a manual fix in SQL); logs how many were off."""
    after: uuid.UUID | None = None
    fixed = 0
    while True:
        after, changed = await store.reconcile_post_counters(ctx.db, after, 1000)
        fixed += changed
        if after is None:
            break
    if fixed:
        log.warning("reconciled the counters of %d posts", fixed)
