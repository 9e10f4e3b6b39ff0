"""Sending: a new message, a forwarded copy, and the one write path both share with "Contact
seller" (`append_message`): rate limit, nonce, reply check, the message row, its events and its
notification, in one transaction inside the conversation's slot.

Exactly once: a send with a client `nonce` is idempotent per (sender, nonce). A resend returns
the original message (and does not count against the rate limit); the same nonce used for
another conversation is 409.
"""

from __future__ import annotations

import uuid
from typing import Any

from server.domain import notifications
from server.domain.access import access_conversation, access_message, check_can_message
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.media.lifecycle import attach_to_message, check_message_media
from server.domain.messaging.commands import ForwardIn, SendIn
from server.domain.messaging.content import check_content, check_nonce, text_message_type
from server.domain.messaging.conversations import ensure_direct
from server.domain.messaging.ordering import conversation_lock
from server.domain.messaging.receipts import CONVERSATION_READ
from server.domain.messaging.views import as_uuid, message_view, product_snapshot
from server.domain.notification_catalog import preview
from server.domain.notifications import MEDIA_PREVIEW, NotificationType
from server.errors import Conflict, RateLimited, ValidationFailed
from server.ids import new_id
from server.store import commerce as commerce_store
from server.store import messaging as store
from server.store.db import Row, Transaction

# Gateway event (per-user, sequenced).
MESSAGE_CREATED = "message.created"


class _DuplicateNonce(Exception):
    """The sender already used this nonce (raised inside the transaction to roll it back)."""


async def send_message(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID, command: SendIn
) -> dict[str, Any]:
    """Send a text or link message (or, with `product_id`, a product-context one), optionally as
    a reply to a message of the same conversation. With `nonce`, a resend returns the original
    message instead of sending it twice."""
    product_id = command.product_id
    if product_id is None and command.message_type == "product_context":
        raise ValidationFailed.field("message_type", "send a product_id for a product message")
    media_ids = command.media_ids or []
    if media_ids and product_id is not None:
        raise ValidationFailed.field("media_ids", "a product message carries no media")
    if not media_ids and command.message_type in ("image", "video"):
        raise ValidationFailed.field(
            "media_ids",
            f"an {command.message_type} message needs attachments: your uploads' media_ids",
        )
    text = check_content(ctx, command.content, optional=bool(media_ids))
    nonce = check_nonce(command.nonce)
    if media_ids:
        kind = check_message_media(command.message_type, media_ids)
    elif product_id is not None:
        kind = "product_context"
    else:
        kind = text_message_type(text, command.message_type)
    snapshot = None
    if product_id is not None:
        product = await commerce_store.get_product(ctx.db, product_id, actor.user_id)
        if product is None:
            raise ValidationFailed.field("product_id", "is not a product you can see")
        snapshot = product_snapshot(product, await store.user_brief(ctx.db, product["owner_id"]))
    message, _ = await append_message(
        ctx,
        actor,
        conversation_id,
        content=text,
        message_type=kind,
        product_id=product_id,
        snapshot=snapshot,
        reply_to=command.reply_to_message_id,
        nonce=nonce,
        media_ids=media_ids,
    )
    return message


async def forward_message(
    ctx: Context, actor: Principal, message_id: uuid.UUID, command: ForwardIn
) -> dict[str, Any]:
    """Forward a message the user can see to a conversation they take part in (a copy marked
    forwarded; its original sender is not revealed)."""
    nonce = check_nonce(command.nonce)
    source = await access_message(ctx, ctx.db, actor, message_id)
    if source["deleted_at"] is not None:
        raise ValidationFailed.field("message_id", "a deleted message cannot be forwarded")
    message, _ = await append_message(
        ctx,
        actor,
        command.conversation_id,
        content=source["content"],
        message_type=source["message_type"],
        product_id=source["product_id"],
        snapshot=source["product_snapshot"],
        forwarded_from=source,
        nonce=nonce,
    )
    return message


async def replay(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID | None, row: Row
) -> dict[str, Any]:
    """The original message of a resent nonce, as its sender sees it now."""
    if conversation_id is not None and row["conversation_id"] != conversation_id:
        raise Conflict("This nonce was already used for a message in another conversation.")
    c = await store.context(ctx.db, row["conversation_id"], actor.user_id)
    return message_view(
        row,
        actor.user_id,
        other_read_seq=c["other_read_seq"] if c else None,
        other_delivered_seq=c["other_delivered_seq"] if c else None,
    )


async def append_message(
    ctx: Context,
    actor: Principal,
    conversation_id: uuid.UUID | None,
    *,
    content: str,
    message_type: str,
    product_id: uuid.UUID | None = None,
    snapshot: dict[str, Any] | None = None,
    reply_to: uuid.UUID | None = None,
    forwarded_from: Row | None = None,
    nonce: str | None = None,
    open_with: uuid.UUID | None = None,
    media_ids: list[uuid.UUID] | None = None,
) -> tuple[dict[str, Any], uuid.UUID]:
    """Persist one message and stage its events: the one write path of send, forward and
    contact. With `open_with` (and no conversation id) the conversation with that user is
    opened or created in the same transaction. Returns (the sender's view, conversation id).

    Whether the sender may write is decided by the insert itself (it adds nothing across a
    block or into a conversation they are not in); only a refused insert asks why."""
    me = actor.user_id
    lock_key = conversation_id or ("pair", *sorted((me, open_with or me)))
    # The rate limit is taken before the transaction (never a limiter round trip while a
    # database connection is held) and given back when the send turns out to be a resend.
    limit_key = f"message:{me}"
    try:
        await ctx.limit(limit_key, ctx.settings.rate_limits.message, "messages")
    except RateLimited:
        existing = await store.find_by_nonce(ctx.db, me, nonce) if nonce is not None else None
        if existing is None:
            raise
        return await replay(ctx, actor, conversation_id, existing), existing["conversation_id"]
    try:
        async with conversation_lock(ctx, lock_key):
            async with ctx.db.transaction() as tx:
                if conversation_id is None:
                    assert open_with is not None
                    conversation_id, _ = await ensure_direct(tx, me, open_with)
                if reply_to is not None:
                    await _check_reply(ctx, tx, actor, conversation_id, reply_to)
                row = await store.append(
                    tx,
                    id=new_id(),
                    conversation_id=conversation_id,
                    sender_id=me,
                    content=content,
                    message_type=message_type,
                    product_id=product_id,
                    product_snapshot=snapshot,
                    replied_to=reply_to,
                    forwarded_from=forwarded_from["id"] if forwarded_from else None,
                    nonce=nonce,
                    coalesce_notify=not _is_product_notice(snapshot, forwarded_from),
                )
                if row is None:
                    # Not sent: a resend of a nonce already used, or not allowed (say why).
                    if nonce is not None and await store.find_by_nonce(tx, me, nonce):
                        raise _DuplicateNonce()
                    check_can_message(await access_conversation(ctx, tx, actor, conversation_id))
                    raise Conflict("The message could not be sent; try again.")
                c = {
                    "id": conversation_id,
                    "other_id": row["ctx_other_id"],
                    "other_read_seq": row["ctx_other_read_seq"],
                    "muted": row["ctx_muted"],
                    "unread_count": row["ctx_unread_count"],
                    "marked_unread": row["ctx_marked_unread"],
                }
                if forwarded_from is not None and forwarded_from["media_count"]:
                    row["media"] = await store.copy_media(
                        tx,
                        forwarded_from["id"],
                        row["id"],
                        [new_id() for _ in range(forwarded_from["media_count"])],
                    )
                    row["media_count"] = len(row["media"] or [])
                elif media_ids:
                    row["media"] = await attach_to_message(
                        ctx, tx, actor, row["id"], message_type, media_ids
                    )
                    row["media_count"] = len(row["media"])
                view = await _stage_new_message(ctx, tx, c, row)
    except _DuplicateNonce:
        await ctx.limiter.hit(limit_key, ctx.settings.rate_limits.message, cost=-1)
        existing = await store.find_by_nonce(ctx.db, me, nonce or "")
        if existing is None:  # pragma: no cover - the duplicate vanished (deleted user)
            raise Conflict("This nonce was already used.") from None
        return await replay(ctx, actor, conversation_id, existing), existing["conversation_id"]
    return view, conversation_id


async def _check_reply(
    ctx: Context, tx: Transaction, actor: Principal, conversation_id: uuid.UUID, reply_to: Any
) -> None:
    """A reply quotes a message of the same conversation the sender can see, not deleted.
    Outside the conversation the answer is its 404 before any word about the quote."""
    quoted = await store.visible_message(tx, reply_to, actor.user_id)
    if quoted is None or quoted["conversation_id"] != conversation_id:
        await access_conversation(ctx, tx, actor, conversation_id)  # 404 first
        raise ValidationFailed.field("reply_to_message_id", "is not a message of this conversation")
    if quoted["deleted_at"] is not None:
        raise ValidationFailed.field("reply_to_message_id", "that message was deleted")


async def _stage_new_message(ctx: Context, tx: Transaction, c: Row, row: Row) -> dict[str, Any]:
    """Events and notifications of a new message (inside its transaction; sent after commit).
    Returns the sender's view of the message. (Event payloads hold UUIDs and datetimes as they
    are: the bus and the codecs encode them.)"""
    me = as_uuid(row["sender_id"])
    assert me is not None  # messages.sender_id is NOT NULL
    other = c["other_id"]
    state = {as_uuid(p["user_id"]): p for p in row["participants"] or []}
    conversation_id = c["id"]
    sender_view = message_view(row, me, other_read_seq=c["other_read_seq"], other_delivered_seq=0)
    other_view = message_view(row, other)
    other_state = state.get(other) or {"unread_count": 0, "muted": False}
    base = {"conversation_id": conversation_id, "seq": row["seq"]}
    ctx.events.to_users(
        tx,
        [me],
        MESSAGE_CREATED,
        {
            **base,
            "message": sender_view,
            "conversation": {
                "id": conversation_id,
                "unread_count": 0,
                "is_muted": bool(c["muted"]),
                "last_message_at": row["created_at"],
            },
        },
    )
    ctx.events.to_users(
        tx,
        [other],
        MESSAGE_CREATED,
        {
            **base,
            "message": other_view,
            "conversation": {
                "id": conversation_id,
                "unread_count": other_state["unread_count"],
                "is_muted": bool(other_state["muted"]),
                "last_message_at": row["created_at"],
            },
        },
    )
    if c["unread_count"] or c["marked_unread"]:
        # Replying reads the conversation: a read receipt for the other participant, and the
        # sender's notifications about it are read.
        await notifications.mark_entity_read(
            ctx, tx, recipient_id=me, entity_type="conversation", entity_id=conversation_id
        )
        ctx.events.to_users(
            tx,
            [other],
            CONVERSATION_READ,
            {**base, "user_id": me, "read_at": row["created_at"]},
        )
    if other_state["muted"]:
        pass  # a muted conversation stays silent (the append counted nothing either)
    elif _is_product_notice(row.get("product_snapshot"), row["is_forwarded"]):
        await _notify_product_message(ctx, tx, conversation_id, me, other, row)
    else:
        # Counted by the append for the coalescing writer (notifications.py, issue 15).
        await notifications.notify_new_message_if_offline(
            ctx, tx, recipient=other, conversation=conversation_id
        )
    return sender_view


def _is_product_notice(snapshot: dict[str, Any] | None, forwarded: Any) -> bool:
    """A product-context message that is not a forward notifies as `product_message`, at
    once; every other message is a coalesced `new_message`."""
    product_name = ((snapshot or {}).get("product") or {}).get("name")
    return bool(product_name) and not forwarded


async def _notify_product_message(
    ctx: Context,
    tx: Transaction,
    conversation_id: uuid.UUID,
    sender: uuid.UUID | None,
    recipient: uuid.UUID,
    row: Row,
) -> None:
    """`product_message` (a product-context message that is not a forward), at once; the
    entity is the conversation, so they batch per conversation."""
    product = (row.get("product_snapshot") or {}).get("product") or {}
    await notifications.notify(
        ctx,
        tx,
        recipient_id=recipient,
        actor_id=sender,
        type=NotificationType.PRODUCT_MESSAGE,
        entity_type="conversation",
        entity_id=conversation_id,
        data={
            "conversation_id": str(conversation_id),
            "message_id": str(row["id"]),
            "message_preview": preview(
                row["content"] or MEDIA_PREVIEW.get(row["message_type"], "")
            ),
            "product_name": preview(product.get("name") or "", 60),
            "product_id": str(row["product_id"]) if row["product_id"] else None,
        },
    )
