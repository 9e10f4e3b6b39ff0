"""Changing a sent message: editing your own within `messaging.edit_window_s`, and deleting one
for yourself or, as its sender, for everyone (a tombstone both participants keep).

Each runs in the conversation's slot with the message row locked, so an edit, a delete and a
reaction on one message are applied, and their events published, one after another.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.domain.access import access_conversation, access_message
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.media import lifecycle as media_lifecycle
from server.domain.messaging.commands import DeleteQuery, EditIn
from server.domain.messaging.content import check_content, links_in
from server.domain.messaging.ordering import conversation_lock, conversation_of_message
from server.domain.messaging.views import (
    as_uuid,
    jsonable,
    message_view,
    message_view_in,
    participants,
)
from server.errors import Forbidden, ValidationFailed
from server.store import messaging as store
from server.store.db import Row, Transaction

# Gateway events (per-user, sequenced).
MESSAGE_UPDATED = "message.updated"
MESSAGE_DELETED = "message.deleted"


async def edit_message(
    ctx: Context, actor: Principal, message_id: uuid.UUID, command: EditIn
) -> dict[str, Any]:
    """Edit your own message within `messaging.edit_window_s` of sending it."""
    text = check_content(ctx, command.content)
    conversation_id = await conversation_of_message(ctx, message_id)
    async with conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            row = await access_message(ctx, tx, actor, message_id, for_update=True)
            c = await access_conversation(ctx, tx, actor, row["conversation_id"])
            if row["sender_id"] != actor.user_id:
                raise Forbidden("You can only edit your own messages.")
            if row["deleted_at"] is not None:
                raise ValidationFailed.field("message_id", "a deleted message cannot be edited")
            if row["is_forwarded"]:
                raise ValidationFailed.field("message_id", "a forwarded message cannot be edited")
            _check_edit_window(ctx, row)
            if text == row["content"]:
                return message_view_in(row, actor.user_id, c)
            kind = row["message_type"]
            if kind in ("text", "link"):
                kind = "link" if links_in(text) else "text"
            updated = await store.edit(tx, message_id, text, kind)
            _stage_to_both(ctx, tx, c, MESSAGE_UPDATED, updated)
    return message_view_in(updated, actor.user_id, c)


def _check_edit_window(ctx: Context, row: Row) -> None:
    window = ctx.settings.messaging.edit_window_s
    age = (ctx.clock.now() - row["created_at"]).total_seconds()
    if age > window:
        minutes = window // 60
        limit = (
            f"{minutes} minute{'s' if minutes != 1 else ''}"
            if window % 60 == 0
            else f"{window} seconds"
        )
        raise Forbidden(f"A message can only be edited within {limit} of sending it.")


def _stage_to_both(ctx: Context, tx: Transaction, c: Row, type: str, row: Row) -> None:
    """One event per participant, each with the message as that participant sees it."""
    for viewer in participants(c):
        ctx.events.to_users(
            tx,
            [viewer],
            type,
            jsonable(
                {
                    "conversation_id": c["id"],
                    "seq": row["seq"],
                    "message": message_view(row, viewer),
                }
            ),
        )


async def delete_message(
    ctx: Context, actor: Principal, message_id: uuid.UUID, query: DeleteQuery
) -> dict[str, Any]:
    """Delete a message for yourself (it disappears for you only) or, as its sender, for
    everyone (both participants keep a tombstone: "This message was deleted")."""
    scope = query.scope
    if scope not in ("self", "everyone"):
        raise ValidationFailed.field("scope", "must be self or everyone")
    conversation_id = await conversation_of_message(ctx, message_id)
    async with conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            row = await access_message(ctx, tx, actor, message_id, for_update=True)
            c = await access_conversation(ctx, tx, actor, row["conversation_id"])
            if scope == "everyone":
                if row["sender_id"] != actor.user_id:
                    raise Forbidden("Only the sender can delete a message for everyone.")
                if row["deleted_at"] is None:
                    await _delete_for_everyone(ctx, tx, c, message_id)
                return {"message_id": message_id, "scope": "everyone", "deleted": True}
            hidden = await store.hide_for(tx, message_id, actor.user_id)
            if hidden is not None:
                payload = {
                    "conversation_id": c["id"],
                    "message_id": message_id,
                    "seq": row["seq"],
                    "scope": "self",
                }
                if hidden["unread_count"] is not None:
                    payload["unread_count"] = hidden["unread_count"]
                ctx.events.to_users(tx, [actor.user_id], MESSAGE_DELETED, jsonable(payload))
    return {"message_id": message_id, "scope": "self", "deleted": True}


async def _delete_for_everyone(
    ctx: Context, tx: Transaction, c: Row, message_id: uuid.UUID
) -> None:
    """Tombstone the message; each participant gets it as they now see it, with their unread
    count when the message was still unread for them."""
    media_ids = await media_lifecycle.message_media_ids(tx, message_id)
    row = await store.tombstone(tx, message_id)
    await media_lifecycle.release_message_media(ctx, tx, media_ids)
    unread = {as_uuid(u["user_id"]): u["unread_count"] for u in row["unread"] or []}
    for viewer in participants(c):
        payload = {
            "conversation_id": c["id"],
            "message_id": message_id,
            "seq": row["seq"],
            "scope": "everyone",
            "message": message_view(row, viewer),
        }
        if viewer in unread:
            payload["unread_count"] = unread[viewer]
        ctx.events.to_users(tx, [viewer], MESSAGE_DELETED, jsonable(payload))
