"""Read and delivery receipts: per-participant watermarks (`last_read_seq`,
`last_delivered_seq`) that only move forward.

Delivery states, for a message the viewer sent: `sent` (persisted), `delivered` (the other
participant's client acknowledged it: `messages.delivered`, or it fetched it over HTTP),
`read` (the other participant marked the conversation read up to it). The sender gets
`message.delivered` and `conversation.read` events as the watermarks move; across a block
either way nothing is shown to the other side.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.domain import notifications
from server.domain.access import NO_CONVERSATION, access_conversation, blocked_either_way
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.messaging.commands import UpToIn
from server.domain.messaging.ordering import conversation_lock
from server.domain.messaging.views import jsonable
from server.errors import NotFound, ValidationFailed
from server.store import messaging as store
from server.store.db import Row

# Gateway events (per-user, sequenced).
CONVERSATION_READ = "conversation.read"
MESSAGE_DELIVERED = "message.delivered"


async def _seq_up_to(q: Any, conversation: Row, command: UpToIn) -> int:
    """The seq a read / delivered mark goes up to: a message of the conversation, a seq, or
    (neither) the latest message."""
    if command.message_id is not None:
        found = await store.message_seq_of(q, conversation["id"], command.message_id)
        if found is None:
            raise ValidationFailed.field("message_id", "is not a message of this conversation")
        return found
    if command.seq is not None:
        return min(command.seq, conversation["message_seq"])
    return conversation["message_seq"]


async def mark_read(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID, command: UpToIn
) -> dict[str, Any]:
    """Mark the conversation read up to a message (default: the latest). The other
    participant gets `conversation.read` (a read receipt) and the reader's other devices get it
    with the new unread count. Idempotent; the watermark never moves back."""
    async with conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            c = await access_conversation(ctx, tx, actor, conversation_id)
            up_to = await _seq_up_to(tx, c, command)
            row = await store.mark_read(tx, conversation_id, actor.user_id, up_to)
            if row is None:  # not a participant: what access_conversation answers
                raise NotFound(NO_CONVERSATION)
            result = {
                "conversation_id": conversation_id,
                "user_id": actor.user_id,
                "seq": row["last_read_seq"],
                "read_at": row["last_read_at"],
                "unread_count": row["unread_count"],
                "marked_unread": False,
            }
            if row["unread_count"] == 0 and row["notify_count"]:
                # Counted for the coalescing writer and not written yet: no need now.
                await notifications.clear_pending(
                    ctx, tx, recipient=actor.user_id, conversation=conversation_id
                )
            if row["unread_count"] == 0:  # all read: so are its notifications
                await notifications.mark_entity_read(
                    ctx,
                    tx,
                    recipient_id=actor.user_id,
                    entity_type="conversation",
                    entity_id=conversation_id,
                )
            if row["changed"] and not blocked_either_way(c):
                receipt = {k: result[k] for k in ("conversation_id", "user_id", "seq", "read_at")}
                ctx.events.to_users(tx, [c["other_id"]], CONVERSATION_READ, jsonable(receipt))
            if row["changed"] or c["marked_unread"] or c["unread_count"] != row["unread_count"]:
                ctx.events.to_users(tx, [actor.user_id], CONVERSATION_READ, jsonable(result))
    return result


async def mark_delivered(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID, command: UpToIn
) -> dict[str, Any]:
    """The recipient's client acknowledges it has received messages up to a seq (or message):
    the sender gets `message.delivered`. Idempotent and monotonic.

    The common ack (by seq, or the latest) is one UPDATE that also checks participation and
    blocks, sent with BEGIN, plus COMMIT with its outbox row: two round trips. Only when it
    moved nothing (a repeated ack, or no such conversation) is the conversation read."""
    if command.message_id is None:
        async with ctx.db.transaction() as tx:
            row = await store.advance_delivered(tx, conversation_id, actor.user_id, command.seq)
            if row is not None:
                if not row["blocked"]:
                    _stage_delivered(ctx, tx, conversation_id, actor.user_id, row)
                return {
                    "conversation_id": conversation_id,
                    "delivered_seq": row["last_delivered_seq"],
                }
    c = await access_conversation(ctx, ctx.db, actor, conversation_id)
    up_to = await _seq_up_to(ctx.db, c, command)
    await advance_delivered(ctx, actor.user_id, c, up_to)
    return {
        "conversation_id": conversation_id,
        "delivered_seq": max(up_to, c["last_delivered_seq"]),
    }


async def advance_delivered(
    ctx: Context, user_id: uuid.UUID, conversation: Row, up_to: int
) -> None:
    """Move `user_id`'s delivery watermark in an accessed conversation up to `up_to` (never
    back) and tell the sender (also when fetching messages counts as delivery). It takes no
    conversation slot: the event carries the watermark itself, which clients only move up."""
    if up_to <= conversation["last_delivered_seq"]:
        return
    conversation_id = conversation["id"]
    async with ctx.db.transaction() as tx:
        row = await store.mark_delivered(tx, conversation_id, user_id, up_to)
        if row is not None and not blocked_either_way(conversation):
            row["other_id"] = conversation["other_id"]
            _stage_delivered(ctx, tx, conversation_id, user_id, row)


def _stage_delivered(
    ctx: Context, tx: Any, conversation_id: uuid.UUID, user_id: uuid.UUID, row: Row
) -> None:
    """`message.delivered` to the sender (the other participant)."""
    ctx.events.to_users(
        tx,
        [row["other_id"]],
        MESSAGE_DELIVERED,
        jsonable(
            {
                "conversation_id": conversation_id,
                "user_id": user_id,
                "seq": row["last_delivered_seq"],
                "delivered_at": row["delivered_at"],
            }
        ),
    )
