"""Reposts and quote posts. A repost is a post of the reposter's pointing at the original (one
live repost per user and post; reposting a repost reposts its original); a quote is a post with
its own text and entities pointing at the original. Only public posts of public accounts can
be reposted or quoted (a followers-only or private audience is not the reposter's to widen).
Both count in the original's `reposts_count` and notify its authors (REPOST / QUOTE_POST) and
the sellers of products it links (PRODUCT_POST_SHARE).

When the original is deleted its reposts disappear with it; quotes stay, showing "post
unavailable" (`original_post: null`, `original_unavailable: true`)."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from server.domain import notifications
from server.domain.access import access_post, check_published
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import Command
from server.domain.notification_catalog import NotificationType, preview
from server.domain.posts import composing, distribution, live
from server.domain.posts.commands import MAX_CONTENT
from server.domain.posts.publishing import notify_mentions
from server.domain.posts.views import render_posts, user_brief
from server.errors import Forbidden
from server.ids import new_id
from server.pagination import decode_id_cursor, page
from server.store import interactions as interactions_store
from server.store.db import Row, Transaction
from server.store.posts import reads as store
from server.store.posts import writes


class QuoteIn(Command):
    """Your words above the quoted post."""

    content: str = Field(max_length=MAX_CONTENT * 4)


async def _original(ctx: Context, tx: Transaction, actor: Principal, post_id: uuid.UUID) -> Row:
    post = await access_post(ctx, tx, actor, post_id)
    if post["is_repost"] and post["original_post_id"] is not None:
        post = await access_post(ctx, tx, actor, post["original_post_id"])
    check_published(post)
    if post["visibility"] != "public":
        raise Forbidden("Only public posts can be reposted or quoted.")
    briefs = await store.user_briefs(tx, post["author_ids"])
    if any(b["is_private"] for b in briefs.values()):
        raise Forbidden("Posts of private accounts cannot be reposted or quoted.")
    return post


async def repost(ctx: Context, actor: Principal, post_id: uuid.UUID) -> dict[str, Any]:
    """Repost (again: your existing repost)."""
    await ctx.limit(f"post:{actor.user_id}", ctx.settings.rate_limits.post, "posts")
    async with ctx.db.transaction() as tx:
        original = await _original(ctx, tx, actor, post_id)
        # The original's row lock serialises reposts of it: one live repost per user.
        await store.lock_post(tx, original["id"])
        existing = await store.live_repost(tx, actor.user_id, original["id"])
        created = existing is None
        if existing is None:
            now = ctx.clock.now()
            existing = await writes.insert_post(tx, _values(actor, original, now, quote=None))
            await writes.bump_reposts(tx, original["id"], +1)
            await _notify(ctx, tx, original, existing, actor, NotificationType.REPOST)
            await distribution.on_published(ctx, tx, existing)  # into followers' feeds
    if created:
        live.counters_changed(ctx, original["id"])
    return (await render_posts(ctx, actor.user_id, [existing]))[0]


async def quote(
    ctx: Context, actor: Principal, post_id: uuid.UUID, command: QuoteIn
) -> dict[str, Any]:
    text = composing.check_text(command.content, "text")
    await ctx.limit(f"post:{actor.user_id}", ctx.settings.rate_limits.post, "posts")
    async with ctx.db.transaction() as tx:
        original = await _original(ctx, tx, actor, post_id)
        now = ctx.clock.now()
        resolved = await composing.resolve_text(tx, actor.user_id, text)
        values = _values(actor, original, now, quote=text)
        values["entities"] = resolved.entities
        post = await writes.insert_post(tx, values)
        await writes.set_mentions(tx, post["id"], resolved.mentioned)
        await writes.add_hashtags(tx, post["id"], resolved.hashtags, now)
        await writes.bump_posts_count(tx, [actor.user_id], +1)
        await writes.bump_reposts(tx, original["id"], +1)
        await _notify(ctx, tx, original, post, actor, NotificationType.QUOTE_POST)
        await notify_mentions(ctx, tx, post, resolved.mentioned)
        await distribution.on_published(ctx, tx, post)
    live.counters_changed(ctx, original["id"])
    return (await render_posts(ctx, actor.user_id, [post]))[0]


def _values(actor: Principal, original: Row, now: Any, *, quote: str | None) -> dict[str, Any]:
    return {
        "id": new_id(),
        "author_id": actor.user_id,
        "content": quote or "",
        "entities": [],
        "post_type": "text",
        "status": "published",
        "visibility": "public",
        "is_collaborative": False,
        "publish_at": None,
        "now": now,
        "published_at": now,
        "original_post_id": original["id"],
        "is_repost": quote is None,
        "is_quote": quote is not None,
    }


async def unrepost(ctx: Context, actor: Principal, post_id: uuid.UUID) -> None:
    """Undo your repost of the post (idempotent). Quotes are posts: delete them as posts."""
    async with ctx.db.transaction() as tx:
        mine = await store.live_repost(tx, actor.user_id, post_id)
        if mine is None:
            return
        now = ctx.clock.now()
        await distribution.on_deleted(ctx, tx, mine)  # out of followers' feeds
        await writes.update_post(tx, mine["id"], {"deleted_at": now, "updated_at": now})
        await writes.bump_reposts(tx, post_id, -1)
        original = await store.lock_post(tx, post_id)
        if original is not None:
            for author in original["author_ids"]:
                await notifications.retract(
                    ctx,
                    tx,
                    recipient_id=author,
                    type=NotificationType.REPOST,
                    entity_type="post",
                    entity_id=post_id,
                    actor_id=actor.user_id,
                )
    live.counters_changed(ctx, post_id)


async def _notify(
    ctx: Context, tx: Transaction, original: Row, post: Row, actor: Principal, type: str
) -> None:
    data = {
        "post_id": str(original["id"]),
        "repost_id": str(post["id"]),
        "quote_preview": preview(post["content"]),
    }
    sellers = await interactions_store.product_sellers(tx, original["id"])
    targets = [(a, type) for a in original["author_ids"]]
    targets += [
        (s, NotificationType.PRODUCT_POST_SHARE) for s in sellers if s not in original["author_ids"]
    ]
    for recipient, kind in targets:
        await notifications.notify(
            ctx,
            tx,
            recipient_id=recipient,
            type=kind,
            entity_type="post",
            entity_id=original["id"],
            actor_id=actor.user_id,
            data=data,
        )


async def list_reposts(
    ctx: Context, viewer: Principal, post_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Who reposted or quoted a post you can see, newest first."""
    await access_post(ctx, ctx.db, viewer, post_id)
    before = decode_id_cursor(cursor)
    rows = await store.reposters(ctx.db, post_id, viewer.user_id, before, limit + 1)
    rows, next_cursor = page(rows, limit, lambda r: str(r["id"]))
    return {
        "items": [
            {
                "post_id": str(r["id"]),
                "is_quote": r["is_quote"],
                "reposted_at": r["published_at"],
                "user": user_brief({**r, "id": r["user_id"]}),
            }
            for r in rows
        ],
        "next_cursor": next_cursor,
    }
