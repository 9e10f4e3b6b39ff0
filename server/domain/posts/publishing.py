"""Creating and publishing posts: a post is written once (published, draft, scheduled, or
waiting for invited co-authors) and becomes public exactly once, in `go_live`, which is where
its hashtags are counted, its mentions and tagged shops notified and its authors' post counts
move. Nothing of a draft leaves its author before that.

States: draft -> (publish) -> pending_collaboration while invitations are unanswered ->
published; scheduled -> (its time, via the job queue) -> published. A published post is never
unpublished; it can be deleted.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from server.domain import notifications
from server.domain.access import access_post, check_author
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.notification_catalog import NotificationType, preview
from server.domain.posts import composing, distribution, polls
from server.domain.posts import media as post_media
from server.domain.posts.commands import CreatePostIn
from server.domain.posts.views import render_posts
from server.errors import Conflict, ValidationFailed
from server.ids import new_id
from server.jobs.queue import enqueue
from server.store.commerce import reads as commerce_reads
from server.store.db import Row, Transaction
from server.store.posts import reads as store
from server.store.posts import writes

MAX_SCHEDULE_AHEAD = timedelta(days=365)
PUBLISH_SCHEDULED_JOB = "posts.publish_scheduled"


async def create_post(ctx: Context, actor: Principal, command: CreatePostIn) -> dict[str, Any]:
    """Create a post (rate limited: `rate_limits.post`)."""
    has_poll = command.poll is not None
    if command.media_ids is None:  # the type is known without the media rows
        post_type = post_media.post_type_for(command.post_type, [], has_poll)
        text = composing.check_text(command.content, post_type)
    if command.poll is not None and not command.poll.question and not command.content.strip():
        raise ValidationFailed.field("poll", "ask the question in the text or in `question`")
    now = ctx.clock.now()
    publish_at = _check_publish_at(command.publish_at, now)
    if publish_at is not None and command.status == "draft":
        raise ValidationFailed.field("publish_at", "a draft has no publication time")
    await ctx.limit(f"post:{actor.user_id}", ctx.settings.rate_limits.post, "posts")
    async with ctx.db.transaction() as tx:
        if command.media_ids is not None:
            media = await post_media.check_media(tx, actor, command.media_ids)
            kinds = [m["media_type"] for m in media]
            post_type = post_media.post_type_for(command.post_type, kinds, has_poll)
            text = composing.check_text(command.content, post_type)
        resolved = await composing.resolve_text(tx, actor.user_id, text)
        links = await composing.resolve_links_of(ctx, tx, actor, command)
        invited = await composing.check_collaborators(
            tx,
            actor.user_id,
            command.collaborator_ids or [],
            limit=ctx.settings.posts.max_collaborators,
        )
        if command.status == "draft":
            status = "draft"
        elif invited:
            status = "pending_collaboration"
        elif publish_at is not None:
            status = "scheduled"
        else:
            status = "published"
        post = await writes.insert_post(
            tx,
            {
                "id": new_id(),
                "author_id": actor.user_id,
                "content": text,
                "entities": resolved.entities,
                "post_type": post_type,
                "status": status,
                "visibility": command.visibility,
                "is_collaborative": False,
                "publish_at": publish_at if status == "scheduled" else None,
                "now": now,
                "published_at": now if status == "published" else None,
            },
        )
        links = composing.with_shop_mentions(links, [], resolved)
        await writes.replace_links(tx, post["id"], **links.as_kwargs(), at=now)
        await writes.set_mentions(tx, post["id"], resolved.mentioned)
        if command.poll is not None:
            await polls.attach(ctx, tx, post["id"], command.poll, published_at=None)
        if command.media_ids:
            await post_media.attach(ctx, tx, post["id"], command.media_ids)
        if invited:
            await writes.invite_collaborators(tx, post["id"], invited, actor.user_id, now)
            if status != "draft":
                await notify_invited(ctx, tx, post, actor.user_id, invited)
        if status == "published":
            await go_live(ctx, tx, post, resolved, now)
        elif status == "scheduled":
            await enqueue(
                tx, PUBLISH_SCHEDULED_JOB, {"post_id": str(post["id"])}, run_at=publish_at
            )
    return (await render_posts(ctx, actor.user_id, [post]))[0]


def _check_publish_at(publish_at: datetime | None, now: datetime) -> datetime | None:
    if publish_at is None:
        return None
    if publish_at.tzinfo is None:
        raise ValidationFailed.field("publish_at", "needs a time zone (UTC: a trailing Z)")
    if publish_at <= now:
        raise ValidationFailed.field("publish_at", "is in the past: leave it out to publish now")
    if publish_at > now + MAX_SCHEDULE_AHEAD:
        raise ValidationFailed.field("publish_at", "is more than a year ahead")
    return publish_at


async def publish_post(ctx: Context, actor: Principal, post_id: uuid.UUID) -> dict[str, Any]:
    """Publish a draft or a scheduled post now. With invitations still unanswered it waits for
    them (`pending_collaboration`) and is published when the last one is answered."""
    async with ctx.db.transaction() as tx:
        post = await access_post(ctx, tx, actor, post_id)
        check_author(post, actor, creator_only=True)
        post = await store.lock_post(tx, post_id) or post
        if post["status"] in ("published", "pending_collaboration"):
            raise Conflict(f"This post is already {post['status'].replace('_', ' ')}.")
        now = ctx.clock.now()
        pending = await writes.pending_count(tx, post_id)
        if pending:
            post = await writes.update_post(
                tx,
                post_id,
                {"status": "pending_collaboration", "publish_at": None, "updated_at": now},
            )
            invited = [
                c["user_id"]
                for c in await store.collaborators_of(tx, [post_id])
                if c["status"] == "pending"
            ]
            if post["status"] != "draft":
                await notify_invited(ctx, tx, post, actor.user_id, invited)
        else:
            post = await publish_now(ctx, tx, post, now)
    return (await render_posts(ctx, actor.user_id, [post]))[0]


async def publish_now(ctx: Context, tx: Transaction, post: Row, now: datetime) -> Row:
    """Publish `post` (locked by the caller) at `now` and run what publication sets off."""
    post = await writes.update_post(
        tx,
        post["id"],
        {"status": "published", "published_at": now, "publish_at": None, "updated_at": now},
    )
    resolved = await composing.resolve_text(tx, post["author_id"], post["content"])
    await go_live(ctx, tx, post, resolved, now)
    return post


async def go_live(
    ctx: Context, tx: Transaction, post: Row, resolved: composing.Resolved, now: datetime
) -> None:
    """What publishing sets off, once per post: hashtags counted, authors' post counts, and
    notifications to the mentioned users and the owners of mentioned or tagged shops."""
    await writes.add_hashtags(tx, post["id"], resolved.hashtags, now)
    await writes.bump_posts_count(tx, post["author_ids"], +1)
    # Feeds: hashtag usage for trending, the fan-out job or the authors' feed topics.
    await distribution.on_published(ctx, tx, post)
    await polls.on_published(ctx, tx, post["id"], now)
    await notify_mentions(ctx, tx, post, resolved.mentioned)
    links = await store.links_of(tx, [post["id"]])
    await notify_shops(
        ctx, tx, post, [link["entity_id"] for link in links if link["kind"] == "shop"]
    )


async def notify_mentions(
    ctx: Context, tx: Transaction, post: Row, user_ids: list[uuid.UUID]
) -> None:
    for user_id in user_ids:
        if user_id in post["author_ids"]:
            continue
        await notifications.notify(
            ctx,
            tx,
            recipient_id=user_id,
            type=NotificationType.MENTION_POST,
            entity_type="post",
            entity_id=post["id"],
            actor_id=post["author_id"],
            data={"post_id": str(post["id"]), "post_preview": preview(post["content"])},
        )


async def notify_shops(ctx: Context, tx: Transaction, post: Row, shop_ids: list[uuid.UUID]) -> None:
    """SHOP_TAGGED to the owner of each shop the post tags or mentions."""
    if not shop_ids:
        return
    rows = await commerce_reads.get_shops(tx, shop_ids, post["author_id"])
    for shop_id, row in rows.items():
        await notifications.notify(
            ctx,
            tx,
            recipient_id=row["owner_id"],
            type=NotificationType.SHOP_TAGGED,
            entity_type="post",
            entity_id=post["id"],
            actor_id=post["author_id"],
            data={
                "post_id": str(post["id"]),
                "shop_id": str(shop_id),
                "shop_handle": row["handle"],
            },
        )


async def notify_invited(
    ctx: Context, tx: Transaction, post: Row, inviter: uuid.UUID, user_ids: list[uuid.UUID]
) -> None:
    for user_id in user_ids:
        await notifications.notify(
            ctx,
            tx,
            recipient_id=user_id,
            type=NotificationType.COLLABORATION_INVITE,
            entity_type="post",
            entity_id=post["id"],
            actor_id=inviter,
            data={"post_id": str(post["id"]), "post_preview": preview(post["content"])},
        )


async def publish_scheduled(ctx: Context, payload: dict[str, Any]) -> None:
    """Job `posts.publish_scheduled`: publish the post if it is still scheduled and due (an
    earlier manual publish, a deletion or a new time make this run a no-op)."""
    post_id = uuid.UUID(payload["post_id"])
    async with ctx.db.transaction() as tx:
        post = await store.lock_post(tx, post_id)
        now = ctx.clock.now()
        if post is None or post["status"] != "scheduled" or post["publish_at"] > now:
            return
        await publish_now(ctx, tx, post, now)
