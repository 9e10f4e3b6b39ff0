"""Comments on posts: comment, reply (nested up to settings.posts.comment_max_depth; a reply
to a reply at the limit attaches to that reply's parent, as Instagram does), edit your own,
delete (yours, or any on your post; one with replies stays as a "[deleted]" placeholder, one
without disappears), like / unlike, @mentions and `$shop`s as entities (as in posts).

A comment exists for a viewer only if its post does (`access_comment`). Lists leave out
comments of users the viewer and they blocked each other. Notifications: COMMENT_POST to the
post's authors, REPLY_COMMENT to the parent's author, MENTION_COMMENT to those mentioned,
PRODUCT_POST_COMMENT to sellers of linked products, LIKE_COMMENT on likes. 100 comments / hour.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from server.domain import notifications
from server.domain.access import NO_COMMENT, access_comment, access_post, check_published
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import Command
from server.domain.notification_catalog import NotificationType, preview
from server.domain.posts import composing, live
from server.domain.posts.commands import MAX_CONTENT
from server.domain.posts.views import user_brief
from server.errors import Forbidden, NotFound
from server.ids import new_id
from server.pagination import decode_id_cursor, page
from server.store import comments as store
from server.store import interactions as interactions_store
from server.store.db import Row, Transaction
from server.store.posts import reads as posts_store

DELETED = "[deleted]"


class CommentIn(Command):
    """A comment's text (mentions and `$shop`s become entities)."""

    content: str = Field(max_length=MAX_CONTENT * 4)
    parent_id: uuid.UUID | None = Field(None, description="Reply to this comment of the post")


class CommentEditIn(Command):
    content: str = Field(max_length=MAX_CONTENT * 4)


def view(row: Row, briefs: dict[uuid.UUID, Row], liked: set[uuid.UUID]) -> dict[str, Any]:
    deleted = row["deleted_at"] is not None
    return {
        "id": str(row["id"]),
        "post_id": str(row["post_id"]),
        "parent_id": str(row["parent_id"]) if row["parent_id"] else None,
        "depth": row["depth"],
        "author": None if deleted else user_brief(briefs.get(row["author_id"])),
        "content": DELETED if deleted else row["content"],
        "entities": [] if deleted else row["entities"],
        "is_deleted": deleted,
        "likes_count": row["likes_count"],
        "replies_count": row["replies_count"],
        "liked": row["id"] in liked,
        "is_edited": row["edited_at"] is not None,
        "edited_at": row["edited_at"],
        "created_at": row["created_at"],
    }


async def _render(ctx: Context, viewer: Principal, rows: list[Row]) -> list[dict[str, Any]]:
    briefs = await posts_store.user_briefs(ctx.db, {r["author_id"] for r in rows})
    liked = await store.liked_by(ctx.db, [r["id"] for r in rows], viewer.user_id)
    return [view(r, briefs, liked) for r in rows]


async def add_comment(
    ctx: Context, actor: Principal, post_id: uuid.UUID, command: CommentIn
) -> dict[str, Any]:
    text = composing.check_text(command.content, "text")
    await ctx.limit(f"comment:{actor.user_id}", ctx.settings.rate_limits.comment, "comments")
    async with ctx.db.transaction() as tx:
        post = await access_post(ctx, tx, actor, post_id)
        check_published(post)
        parent = None
        if command.parent_id is not None:
            parent = await store.get(tx, command.parent_id)
            if parent is None or parent["post_id"] != post_id or parent["deleted_at"]:
                raise NotFound("No such comment to reply to on this post.")
            if parent["depth"] >= ctx.settings.posts.comment_max_depth:
                parent = await store.get(tx, parent["parent_id"])  # the deepest allowed
                assert parent is not None
        resolved = await composing.resolve_text(tx, actor.user_id, text)
        row = await store.insert(
            tx,
            {
                "id": new_id(),
                "post_id": post_id,
                "author_id": actor.user_id,
                "parent_id": parent["id"] if parent else None,
                "depth": parent["depth"] + 1 if parent else 0,
                "content": text,
                "entities": resolved.entities,
                "at": ctx.clock.now(),
            },
        )
        await _notify_new(ctx, tx, post, parent, row, resolved.mentioned)
    live.counters_changed(ctx, post_id)
    return (await _render(ctx, actor, [row]))[0]


async def _notify_new(
    ctx: Context,
    tx: Transaction,
    post: Row,
    parent: Row | None,
    comment: Row,
    mentioned: list[uuid.UUID],
) -> None:
    actor = comment["author_id"]
    data = {
        "post_id": str(post["id"]),
        "comment_id": str(comment["id"]),
        "comment_preview": preview(comment["content"]),
        "reply_preview": preview(comment["content"]),
    }
    told: set[uuid.UUID] = {actor}
    targets: list[tuple[uuid.UUID, NotificationType]] = []
    if parent is not None:
        targets.append((parent["author_id"], NotificationType.REPLY_COMMENT))
    targets += [(a, NotificationType.COMMENT_POST) for a in post["author_ids"]]
    targets += [(m, NotificationType.MENTION_COMMENT) for m in mentioned]
    sellers = await interactions_store.product_sellers(tx, post["id"])
    targets += [(s, NotificationType.PRODUCT_POST_COMMENT) for s in sellers]
    for recipient, type in targets:
        if recipient in told:
            continue  # one notification per person: the most specific
        told.add(recipient)
        entity = (
            ("comment", comment["id"])
            if type != NotificationType.COMMENT_POST
            else (
                "post",
                post["id"],
            )
        )
        await notifications.notify(
            ctx,
            tx,
            recipient_id=recipient,
            type=type,
            entity_type=entity[0],
            entity_id=entity[1],
            actor_id=actor,
            data=data,
        )


async def edit_comment(
    ctx: Context, actor: Principal, comment_id: uuid.UUID, command: CommentEditIn
) -> dict[str, Any]:
    text = composing.check_text(command.content, "text")
    async with ctx.db.transaction() as tx:
        comment, _ = await access_comment(ctx, tx, actor, comment_id, for_update=True)
        if comment["deleted_at"] is not None:
            raise NotFound(NO_COMMENT)
        if comment["author_id"] != actor.user_id:
            raise Forbidden("Only its author may edit a comment.")
        resolved = await composing.resolve_text(tx, actor.user_id, text)
        row = await store.edit(tx, comment_id, text, resolved.entities, ctx.clock.now())
    return (await _render(ctx, actor, [row]))[0]


async def delete_comment(ctx: Context, actor: Principal, comment_id: uuid.UUID) -> None:
    """Its author, or any author of the post, deletes it."""
    async with ctx.db.transaction() as tx:
        comment, post = await access_comment(ctx, tx, actor, comment_id, for_update=True)
        if comment["deleted_at"] is not None:
            return
        if actor.user_id != comment["author_id"] and actor.user_id not in post["author_ids"]:
            raise Forbidden("Only its author or the post's authors may delete a comment.")
        await store.soft_delete(tx, comment, ctx.clock.now())
        await notifications.forget_entity(ctx, tx, entity_type="comment", entity_id=comment_id)
        # The post's "commented" batch loses this commenter unless they have other comments.
        others = await store.live_comments_by(tx, post["id"], comment["author_id"])
        for author in post["author_ids"] if not others else ():
            await notifications.retract(
                ctx,
                tx,
                recipient_id=author,
                type=NotificationType.COMMENT_POST,
                entity_type="post",
                entity_id=post["id"],
                actor_id=comment["author_id"],
            )
    live.counters_changed(ctx, post["id"])


async def get_comment(ctx: Context, viewer: Principal, comment_id: uuid.UUID) -> dict[str, Any]:
    comment, _ = await access_comment(ctx, ctx.db, viewer, comment_id)
    return (await _render(ctx, viewer, [comment]))[0]


async def list_comments(
    ctx: Context, viewer: Principal, post_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Top-level comments, oldest first, each with its first replies inlined (four queries
    per page whatever its size)."""
    await access_post(ctx, ctx.db, viewer, post_id)
    rows = await store.top_level(
        ctx.db, post_id, viewer.user_id, decode_id_cursor(cursor), limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda r: str(r["id"]))
    inlined = await store.first_replies(
        ctx.db, [r["id"] for r in rows], viewer.user_id, ctx.settings.posts.replies_inlined
    )
    rendered = await _render(ctx, viewer, rows + inlined)
    by_id = {c["id"]: c for c in rendered}
    items = []
    for row in rows:
        item = by_id[str(row["id"])]
        item["replies"] = [by_id[str(r["id"])] for r in inlined if r["parent_id"] == row["id"]]
        items.append(item)
    return {"items": items, "next_cursor": next_cursor}


async def list_replies(
    ctx: Context, viewer: Principal, comment_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """A comment's replies, oldest first."""
    comment, _ = await access_comment(ctx, ctx.db, viewer, comment_id)
    rows = await store.replies(
        ctx.db, comment["id"], viewer.user_id, decode_id_cursor(cursor), limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda r: str(r["id"]))
    return {"items": await _render(ctx, viewer, rows), "next_cursor": next_cursor}


async def like_comment(ctx: Context, actor: Principal, comment_id: uuid.UUID) -> dict[str, Any]:
    await ctx.limit(f"like:{actor.user_id}", ctx.settings.rate_limits.like, "likes")
    async with ctx.db.transaction() as tx:
        comment, _ = await access_comment(ctx, tx, actor, comment_id)
        if comment["deleted_at"] is not None:
            raise NotFound(NO_COMMENT)
        count = await store.add_like(tx, comment_id, actor.user_id, ctx.clock.now())
        if count is not None:
            await notifications.notify(
                ctx,
                tx,
                recipient_id=comment["author_id"],
                type=NotificationType.LIKE_COMMENT,
                entity_type="comment",
                entity_id=comment_id,
                actor_id=actor.user_id,
                data={
                    "post_id": str(comment["post_id"]),
                    "comment_preview": preview(comment["content"]),
                },
            )
    likes = comment["likes_count"] if count is None else count
    return {"comment_id": str(comment_id), "liked": True, "likes_count": likes}


async def unlike_comment(ctx: Context, actor: Principal, comment_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.db.transaction() as tx:
        comment, _ = await access_comment(ctx, tx, actor, comment_id)
        count = await store.remove_like(tx, comment_id, actor.user_id)
        if count is not None:
            await notifications.retract(
                ctx,
                tx,
                recipient_id=comment["author_id"],
                type=NotificationType.LIKE_COMMENT,
                entity_type="comment",
                entity_id=comment_id,
                actor_id=actor.user_id,
            )
    likes = comment["likes_count"] if count is None else count
    return {"comment_id": str(comment_id), "liked": False, "likes_count": likes}
