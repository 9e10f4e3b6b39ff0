"""Deleting posts: a soft delete hides the post at once everywhere (every read filters
`deleted_at`), uncounts its hashtags and its authors' post counts, and tells `post:<id>`
subscribers; the row is purged 30 days later (the spec's retention) by a periodic job."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from server.domain import notifications
from server.domain.access import access_post, check_author
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.posts import distribution, live
from server.domain.posts import media as post_media
from server.store import post_media as media_store
from server.store.posts import reads as store
from server.store.posts import writes

DELETED_RETENTION = timedelta(days=30)


async def delete_post(ctx: Context, actor: Principal, post_id: uuid.UUID) -> None:
    """Delete a post: any of its authors may (a co-authored post leaves every profile)."""
    async with ctx.db.transaction() as tx:
        await access_post(ctx, tx, actor, post_id)
        post = await store.lock_post(tx, post_id)
        if post is None:
            return  # deleted meanwhile: the outcome asked for
        check_author(post, actor)
        now = ctx.clock.now()
        await writes.update_post(tx, post_id, {"deleted_at": now, "updated_at": now})
        await post_media.release(ctx, tx, await media_store.media_ids(tx, post_id))
        # Feeds: uncount its hashtags' use, retract it from timelines and live feeds.
        await distribution.on_deleted(ctx, tx, post)
        if post["status"] == "published":
            await writes.remove_hashtags(tx, post_id, None)
            await writes.bump_posts_count(tx, post["author_ids"], -1)
        # Notifications about it lead nowhere now: they go (likes, mentions, invitations...).
        await notifications.forget_entity(ctx, tx, entity_type="post", entity_id=post_id)
        await live.post_deleted(ctx, tx, post)


async def purge_deleted_posts(ctx: Context, payload: dict[str, Any]) -> None:
    """Job `posts.purge_deleted`: forget posts deleted more than 30 days ago, in batches."""
    cutoff = ctx.clock.now() - DELETED_RETENTION
    while await writes.purge_deleted(ctx.db, cutoff) >= 500:
        pass
