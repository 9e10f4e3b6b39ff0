"""Collaborative posts, by the spec's workflow: the creator invites co-authors (at creation or
later); each invitee accepts (joins the byline and the post shows on their profile) or declines
(their invitation is deleted and the creator told); a post waiting for its invitees is
published when the last one answers. A co-author may leave; the creator may remove anyone but
themselves. Bylines, profiles and visibility read `author_ids`, kept with the rows here."""

from __future__ import annotations

import uuid
from typing import Any

from server.domain import notifications
from server.domain.access import access_post, check_author
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.notification_catalog import NotificationType, preview
from server.domain.posts import composing, live
from server.domain.posts.publishing import notify_invited, publish_now
from server.domain.posts.views import render_posts
from server.errors import Conflict, Forbidden, NotFound
from server.pagination import decode_id_cursor, page
from server.store.db import Row, Transaction
from server.store.posts import reads as store
from server.store.posts import writes

NO_INVITATION = "You have no invitation to collaborate on this post."


async def invite(
    ctx: Context, actor: Principal, post_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> dict[str, Any]:
    """The creator invites more co-authors (up to the limit, counting those already on it)."""
    async with ctx.db.transaction() as tx:
        post = await _locked(ctx, tx, actor, post_id)
        check_author(post, actor, creator_only=True)
        existing = await store.collaborators_of(tx, [post_id])
        wanted = await composing.check_collaborators(
            tx,
            actor.user_id,
            user_ids,
            limit=ctx.settings.posts.max_collaborators,
            already=len(existing),
        )
        now = ctx.clock.now()
        invited = await writes.invite_collaborators(tx, post_id, wanted, actor.user_id, now)
        if invited and post["status"] != "draft":
            await notify_invited(ctx, tx, post, actor.user_id, invited)
    return (await render_posts(ctx, actor.user_id, [post]))[0]


async def accept(ctx: Context, actor: Principal, post_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.db.transaction() as tx:
        post, _mine = await _invitation(ctx, tx, actor, post_id)
        now = ctx.clock.now()
        await writes.accept_collaboration(tx, post_id, actor.user_id, now)
        if post["status"] == "published":
            await writes.bump_posts_count(tx, [actor.user_id], +1)
        await _notify_creator(ctx, tx, post, actor, NotificationType.COLLABORATION_ACCEPTED)
        post = await _settled(ctx, tx, post_id)
    return (await render_posts(ctx, actor.user_id, [post]))[0]


async def decline(ctx: Context, actor: Principal, post_id: uuid.UUID) -> None:
    async with ctx.db.transaction() as tx:
        post, _ = await _invitation(ctx, tx, actor, post_id)
        await writes.drop_collaborator(tx, post_id, actor.user_id)
        await _notify_creator(ctx, tx, post, actor, NotificationType.COLLABORATION_DECLINED)
        await _settled(ctx, tx, post_id)


async def remove(
    ctx: Context, actor: Principal, post_id: uuid.UUID, user_id: uuid.UUID
) -> dict[str, Any] | None:
    """A co-author leaves (`user_id` is themselves), or the creator removes a collaborator or
    withdraws an invitation. The creator cannot be removed."""
    async with ctx.db.transaction() as tx:
        post = await _locked(ctx, tx, actor, post_id)
        if user_id == post["author_id"]:
            raise Forbidden("The post's creator is always its primary author.")
        if user_id != actor.user_id:
            check_author(post, actor, creator_only=True)
        row = await writes.collaborator(tx, post_id, user_id)
        if row is None:
            raise NotFound("This user is not a collaborator of the post.")
        await writes.drop_collaborator(tx, post_id, user_id)
        if row["status"] == "accepted" and post["status"] == "published":
            await writes.bump_posts_count(tx, [user_id], -1)
        post = await _settled(ctx, tx, post_id)
        if post["status"] == "published":
            await live.post_updated(ctx, tx, post, ["authors"])
    if user_id == actor.user_id:
        return None  # they left: the post may no longer be theirs to see
    return (await render_posts(ctx, actor.user_id, [post]))[0]


async def pending_invitations(
    ctx: Context, actor: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Posts you are invited to co-author and have not answered, newest first."""
    rows = await store.pending_invitations(
        ctx.db, actor.user_id, decode_id_cursor(cursor), limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda r: str(r["id"]))
    return {"items": await render_posts(ctx, actor.user_id, rows), "next_cursor": next_cursor}


async def _locked(ctx: Context, tx: Transaction, actor: Principal, post_id: uuid.UUID) -> Row:
    await access_post(ctx, tx, actor, post_id)
    post = await store.lock_post(tx, post_id)
    if post is None:
        raise NotFound("No such post.")
    return post


async def _invitation(
    ctx: Context, tx: Transaction, actor: Principal, post_id: uuid.UUID
) -> tuple[Row, Row]:
    try:
        post = await _locked(ctx, tx, actor, post_id)
    except NotFound:
        raise NotFound(NO_INVITATION) from None
    mine = await writes.collaborator(tx, post_id, actor.user_id)
    if mine is None:
        raise NotFound(NO_INVITATION)
    if mine["status"] != "pending":
        raise Conflict("You already accepted this invitation.")
    return post, mine


async def _settled(ctx: Context, tx: Transaction, post_id: uuid.UUID) -> Row:
    """The post after an answer: published now if it was waiting and nobody is left to answer."""
    post = await store.lock_post(tx, post_id)
    assert post is not None
    if post["status"] == "pending_collaboration" and not await writes.pending_count(tx, post_id):
        post = await publish_now(ctx, tx, post, ctx.clock.now())
    return post


async def _notify_creator(
    ctx: Context, tx: Transaction, post: Row, actor: Principal, type: NotificationType
) -> None:
    await notifications.notify(
        ctx,
        tx,
        recipient_id=post["author_id"],
        type=type,
        entity_type="post",
        entity_id=post["id"],
        actor_id=actor.user_id,
        data={"post_id": str(post["id"]), "post_preview": preview(post["content"])},
    )
