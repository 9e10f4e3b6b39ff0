"""Conversations: open the one conversation of a pair, list, get, delete for yourself, mute,
mark unread.

There is one direct conversation per pair of users (a unique pair key), so opening it again,
from either side or concurrently, answers the existing one. The other participant sees a new
conversation only once it has a message; deleting it only clears your own history.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from server.domain import notifications
from server.domain.access import NO_CONVERSATION, access_conversation, check_can_message_user
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import ConversationListQuery, CreateConversationIn, MuteIn
from server.domain.messaging.ordering import conversation_lock
from server.domain.messaging.views import (
    conversation_view,
    decode_time_id_cursor,
    jsonable,
    product_banner,
)
from server.errors import NotFound, ValidationFailed
from server.ids import new_id
from server.pagination import encode_cursor
from server.store import conversations as conversations_store
from server.store import messaging as store
from server.store.db import Transaction

# Gateway events (per-user, sequenced).
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_UPDATED = "conversation.updated"
CONVERSATION_DELETED = "conversation.deleted"


async def ensure_direct(tx: Transaction, me: uuid.UUID, other: uuid.UUID) -> tuple[uuid.UUID, bool]:
    """The pair's conversation, created with both participants if missing (race-safe: the
    unique pair key). The other participant sees a new conversation only once it has a
    message; for `me` a conversation they had deleted comes back (empty)."""
    low, high = sorted((me, other))
    conversation_id = await conversations_store.insert_direct(
        tx, id=new_id(), low=low, high=high, creator=me
    )
    if conversation_id is not None:
        await conversations_store.add_participant(
            tx, id=new_id(), conversation_id=conversation_id, user_id=me, hidden=False
        )
        await conversations_store.add_participant(
            tx, id=new_id(), conversation_id=conversation_id, user_id=other, hidden=True
        )
        return conversation_id, True
    conversation_id = await conversations_store.find_direct(tx, low, high)
    assert conversation_id is not None
    await conversations_store.unhide(tx, conversation_id, me)
    return conversation_id, False


async def create_conversation(
    ctx: Context, actor: Principal, command: CreateConversationIn
) -> dict[str, Any]:
    """Open the one conversation with another user (creating it again returns the existing
    one, `created` false). A block either way forbids it."""
    other = await store.active_user_by_ref(ctx.db, command.user_id, command.username)
    if other is None:
        raise NotFound("No such user.")
    if other["id"] == actor.user_id:
        raise ValidationFailed.field("user_id", "you cannot start a conversation with yourself")
    await check_can_message_user(ctx, ctx.db, actor, other)
    async with ctx.db.transaction() as tx:
        conversation_id, created = await ensure_direct(tx, actor.user_id, other["id"])
    view = await get_conversation(ctx, actor, conversation_id)
    if created:
        # The creator's other devices learn of it; the other user only with its first message.
        async with ctx.db.transaction() as tx:
            ctx.events.to_users(
                tx,
                [actor.user_id],
                CONVERSATION_CREATED,
                jsonable({"conversation_id": conversation_id, "conversation": view}),
            )
    return {**view, "created": created}


async def list_conversations(
    ctx: Context, actor: Principal, query: ConversationListQuery
) -> dict[str, Any]:
    """The user's conversations, latest message first, each with the last message they can
    see and their unread count. Keyset-paginated (index: participants (user_id, activity_at
    DESC, conversation_id DESC) WHERE NOT hidden)."""
    limit = query.limit
    rows = await store.conversation_page(
        ctx.db, actor.user_id, limit=limit + 1, after=decode_time_id_cursor(query.cursor)
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last["activity_at"].isoformat(), str(last["id"]))
    return {
        "items": [conversation_view(row, actor.user_id) for row in rows],
        "next_cursor": next_cursor,
    }


async def get_conversation(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID
) -> dict[str, Any]:
    """One conversation with its participants and its product banner (if any). The list query
    filtered to one id is itself the access check: it only finds the actor's own."""
    rows = await store.conversation_page(
        ctx.db, actor.user_id, limit=1, after=None, conversation_id=conversation_id
    )
    if not rows:
        raise NotFound(NO_CONVERSATION)
    row = rows[0]
    view = conversation_view(row, actor.user_id)
    view["participants"] = await conversations_store.participants(ctx.db, conversation_id)
    banner_message = await store.product_context_message(
        ctx.db, conversation_id, actor.user_id, row["cleared_seq"]
    )
    view["product_context"] = (
        await product_banner(
            ctx, actor.user_id, {**banner_message, "conversation_id": conversation_id}
        )
        if banner_message
        else None
    )
    return view


async def delete_conversation(ctx: Context, actor: Principal, conversation_id: uuid.UUID) -> None:
    """Delete the conversation for this user only: its history up to now is gone for them and
    it leaves their list until a new message arrives. The other participant keeps everything."""
    async with conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            await access_conversation(ctx, tx, actor, conversation_id)
            await conversations_store.lock_conversation(tx, conversation_id)
            cleared = await conversations_store.clear_history(tx, conversation_id, actor.user_id)
            if cleared is None:  # not a participant: what access_conversation answers
                raise NotFound(NO_CONVERSATION)
            await notifications.mark_entity_read(
                ctx,
                tx,
                recipient_id=actor.user_id,
                entity_type="conversation",
                entity_id=conversation_id,
            )
            ctx.events.to_users(
                tx,
                [actor.user_id],
                CONVERSATION_DELETED,
                jsonable(
                    {
                        "conversation_id": conversation_id,
                        "cleared_seq": cleared["cleared_seq"],
                        "cleared_at": cleared["cleared_at"],
                    }
                ),
            )


async def mute_conversation(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID, command: MuteIn
) -> dict[str, Any]:
    """Mute, for `duration_s` or until unmuted. Messages of a muted conversation are still
    delivered live, but cause no notification and no push."""
    return await _set_muted(ctx, actor, conversation_id, True, command.duration_s)


async def unmute_conversation(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID
) -> dict[str, Any]:
    """New messages notify and push again."""
    return await _set_muted(ctx, actor, conversation_id, False, None)


async def _set_muted(
    ctx: Context,
    actor: Principal,
    conversation_id: uuid.UUID,
    muted: bool,
    duration_s: int | None,
) -> dict[str, Any]:
    until = ctx.clock.now() + timedelta(seconds=duration_s) if muted and duration_s else None
    async with ctx.db.transaction() as tx:
        await access_conversation(ctx, tx, actor, conversation_id)
        row = await conversations_store.set_mute(tx, conversation_id, actor.user_id, muted, until)
        if row is None:  # not a participant: what access_conversation answers
            raise NotFound(NO_CONVERSATION)
        ctx.events.to_users(
            tx,
            [actor.user_id],
            CONVERSATION_UPDATED,
            jsonable(
                {
                    "conversation_id": conversation_id,
                    "is_muted": row["is_muted"],
                    "muted_until": row["muted_until"],
                }
            ),
        )
    return await get_conversation(ctx, actor, conversation_id)


async def mark_unread(ctx: Context, actor: Principal, conversation_id: uuid.UUID) -> dict[str, Any]:
    """Flag the conversation unread for yourself (no read receipt is withdrawn)."""
    async with ctx.db.transaction() as tx:
        await access_conversation(ctx, tx, actor, conversation_id)
        if await conversations_store.set_marked_unread(tx, conversation_id, actor.user_id, True):
            ctx.events.to_users(
                tx,
                [actor.user_id],
                CONVERSATION_UPDATED,
                jsonable({"conversation_id": conversation_id, "marked_unread": True}),
            )
    return await get_conversation(ctx, actor, conversation_id)
