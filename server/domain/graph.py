"""The social graph: follow (with requests for private accounts), block and mute."""

from __future__ import annotations

import uuid
from typing import Any

from server.domain import notifications
from server.domain.accounts import find_user, find_visible_user, profile_view
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.feeds.timelines import timelines_of
from server.domain.notifications import NotificationType
from server.errors import Forbidden, NotFound, ValidationFailed
from server.ids import new_id
from server.pagination import decode_id_cursor, page
from server.store import graph as graph_store
from server.store import users as users_store
from server.store.db import Row


def _page_of_users(
    rows: list[Row], limit: int, viewer: uuid.UUID, key: str, extra: str | None = None
) -> dict[str, Any]:
    rows, next_cursor = page(rows, limit, lambda row: str(row[key]))
    items = []
    for row in rows:
        item = profile_view(row, viewer)
        if extra:
            item[extra] = row[key]
        items.append(item)
    return {"items": items, "next_cursor": next_cursor}


async def follow(ctx: Context, actor: Principal, target_ref: str) -> dict[str, Any]:
    target = await find_visible_user(ctx, actor, target_ref)
    if target["id"] == actor.user_id:
        raise ValidationFailed.field("id", "you cannot follow yourself")
    await ctx.limit(f"follow:{actor.user_id}", ctx.settings.rate_limits.follow, "follow changes")
    async with ctx.db.transaction() as tx:
        await graph_store.lock_users(tx, actor.user_id, target["id"])
        rel = await graph_store.relationship(tx, actor.user_id, target["id"])
        if rel["blocked_by"]:
            raise NotFound("No such user.")
        if rel["blocking"]:
            raise Forbidden("You have blocked this user; unblock them first.")
        if rel["following"] is not None:
            return {"status": rel["following"], "created": False}
        # Read privacy under the lock: a concurrent switch to public cannot strand a request.
        is_private = await users_store.is_private(tx, target["id"])
        status = "pending" if is_private else "accepted"
        row = await graph_store.insert_follow(
            tx, id=new_id(), follower=actor.user_id, following=target["id"], status=status
        )
        # Both users are locked and no follow existed: the insert cannot hit the conflict.
        assert row is not None
        await on_followed(ctx, tx, actor, target, row)
    if status == "accepted":
        await forget_timeline(ctx, actor.user_id)
    return {"status": status, "created": True, "follow_id": row["id"]}


async def on_followed(ctx: Context, tx: Any, actor: Principal, target: Row, follow: Row) -> None:
    """Side effects of a new follow or follow request (notifications hook in here)."""
    await notifications.notify(
        ctx,
        tx,
        recipient_id=target["id"],
        actor_id=actor.user_id,
        type=NotificationType.FOLLOW_REQUEST
        if follow["status"] == "pending"
        else NotificationType.FOLLOW,
        entity_type="user",
        entity_id=target["id"],
        data={"follow_id": str(follow["id"])},
    )


async def forget_timeline(ctx: Context, user_id: uuid.UUID) -> None:
    """After a follow commits (never inside its transaction: it uses its own connection or
    Redis): the follower's home timeline never received the followed account's earlier posts;
    dropping it makes their next read rebuild it from PostgreSQL with them."""
    await timelines_of(ctx).forget(user_id)


async def on_follow_accepted(ctx: Context, tx: Any, accepter: Principal, follow: Row) -> None:
    """Side effects of an accepted follow request (notifications hook in here)."""
    await notifications.notify(
        ctx,
        tx,
        recipient_id=follow["follower_id"],
        actor_id=accepter.user_id,
        type=NotificationType.FOLLOW_ACCEPTED,
        entity_type="user",
        entity_id=accepter.user_id,
        data={"follow_id": str(follow["id"])},
    )


async def unfollow(ctx: Context, actor: Principal, target_ref: str) -> None:
    target_id = await _target_id(ctx, actor, target_ref)
    await ctx.limit(f"follow:{actor.user_id}", ctx.settings.rate_limits.follow, "follow changes")
    async with ctx.db.transaction() as tx:
        await graph_store.lock_users(tx, actor.user_id, target_id)
        await graph_store.delete_follow(tx, actor.user_id, target_id)
        # Live topics the follow opened (`feed:<target>`: a followers-only post would reach
        # a former follower) end with it, as they do on a block.
        ctx.events.recheck_topics(tx, [actor.user_id])


async def _target_id(ctx: Context, actor: Principal, target_ref: str) -> uuid.UUID:
    user = await find_visible_user(ctx, actor, target_ref)
    return user["id"]


async def list_requests(
    ctx: Context, actor: Principal, limit: int, cursor: str | None
) -> dict[str, Any]:
    rows = await graph_store.list_requests(ctx.db, actor.user_id, limit, decode_id_cursor(cursor))
    return _page_of_users(rows, limit, actor.user_id, "follow_id", extra="follow_id")


async def accept_request(ctx: Context, actor: Principal, follow_id: uuid.UUID) -> dict[str, Any]:
    async with ctx.db.transaction() as tx:
        await graph_store.lock_users(tx, actor.user_id)
        row = await graph_store.accept_request(tx, follow_id, actor.user_id)
        if row is None:
            raise NotFound("No such follow request.")
        await on_follow_accepted(ctx, tx, actor, row)
    await forget_timeline(ctx, row["follower_id"])
    return {"status": "accepted", "follow_id": follow_id, "follower_id": row["follower_id"]}


async def decline_request(ctx: Context, actor: Principal, follow_id: uuid.UUID) -> None:
    async with ctx.db.transaction() as tx:
        if await graph_store.delete_request(tx, follow_id, actor.user_id) is None:
            raise NotFound("No such follow request.")


async def _list_visible(ctx: Context, viewer: Principal, ref: str) -> Row:
    """The user whose follower / following list is asked for, if the viewer may see it."""
    user = await find_visible_user(ctx, viewer, ref)
    if (
        user["is_private"]
        and user["id"] != viewer.user_id
        and not await graph_store.is_accepted_follower(ctx.db, viewer.user_id, user["id"])
    ):
        raise Forbidden("This account is private.")
    return user


async def list_followers(
    ctx: Context, viewer: Principal, ref: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    user = await _list_visible(ctx, viewer, ref)
    rows = await graph_store.list_followers(
        ctx.db, user["id"], limit, decode_id_cursor(cursor), viewer.user_id
    )
    return _page_of_users(rows, limit, viewer.user_id, "follow_id")


async def list_following(
    ctx: Context, viewer: Principal, ref: str, limit: int, cursor: str | None
) -> dict[str, Any]:
    user = await _list_visible(ctx, viewer, ref)
    rows = await graph_store.list_following(
        ctx.db, user["id"], limit, decode_id_cursor(cursor), viewer.user_id
    )
    return _page_of_users(rows, limit, viewer.user_id, "follow_id")


async def block(ctx: Context, actor: Principal, target_ref: str) -> None:
    """Block silently: follows both ways go (counters too); neither side is notified."""
    target_id = await _target_id_allowing_blocked(ctx, actor, target_ref)
    async with ctx.db.transaction() as tx:
        await graph_store.lock_users(tx, actor.user_id, target_id)
        await graph_store.insert_block(tx, new_id(), actor.user_id, target_id)
        await graph_store.delete_follow(tx, actor.user_id, target_id)
        await graph_store.delete_follow(tx, target_id, actor.user_id)
        await on_blocked(ctx, tx, actor.user_id, target_id)


async def on_blocked(ctx: Context, tx: Any, blocker: uuid.UUID, blocked: uuid.UUID) -> None:
    """Other capabilities drop what a block ends (list memberships, pending invites...)."""
    await notifications.on_blocked(ctx, tx, blocker, blocked)
    # Live topics either may no longer read (the other's buy-together group...) stop too.
    ctx.events.recheck_topics(tx, [blocker, blocked])


async def _target_id_allowing_blocked(ctx: Context, actor: Principal, ref: str) -> uuid.UUID:
    """Blocking works on someone who already blocked you (it must not reveal their block)."""
    user = await find_user(ctx, ref)
    if user["id"] == actor.user_id:
        raise ValidationFailed.field("id", "you cannot do this to yourself")
    return user["id"]


async def unblock(ctx: Context, actor: Principal, target_ref: str) -> None:
    target_id = await _target_id_allowing_blocked(ctx, actor, target_ref)
    async with ctx.db.transaction() as tx:
        await graph_store.delete_block(tx, actor.user_id, target_id)


async def mute(ctx: Context, actor: Principal, target_ref: str) -> None:
    target_id = await _target_id_allowing_blocked(ctx, actor, target_ref)
    await graph_store.insert_mute(ctx.db, new_id(), actor.user_id, target_id)


async def unmute(ctx: Context, actor: Principal, target_ref: str) -> None:
    target_id = await _target_id_allowing_blocked(ctx, actor, target_ref)
    await graph_store.delete_mute(ctx.db, actor.user_id, target_id)


async def list_blocked(
    ctx: Context, actor: Principal, limit: int, cursor: str | None
) -> dict[str, Any]:
    rows = await graph_store.list_blocked(ctx.db, actor.user_id, limit, decode_id_cursor(cursor))
    return _page_of_users(rows, limit, actor.user_id, "entry_id")


async def list_muted(
    ctx: Context, actor: Principal, limit: int, cursor: str | None
) -> dict[str, Any]:
    rows = await graph_store.list_muted(ctx.db, actor.user_id, limit, decode_id_cursor(cursor))
    return _page_of_users(rows, limit, actor.user_id, "entry_id")
