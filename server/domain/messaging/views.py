"""How messaging shows things: a message and a conversation as one viewer sees them, the product
card a message keeps and the product banner above a conversation, the keyset cursors of its
lists, and the JSON helpers of event payloads.

Views are per viewer: `status` (sent / delivered / read) and `client_nonce` appear only on the
viewer's own messages, `me` on their own reactions. An event therefore carries the view of its
recipient, never one shared view.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

from server.domain import cards
from server.domain.context import Context
from server.domain.messaging.content import links_in
from server.errors import ValidationFailed
from server.pagination import decode_cursor
from server.store import commerce as commerce_store
from server.store import messaging as store
from server.store.db import Row

# Timestamps of a message row that come back as strings when the row was built as jsonb.
_TIME_KEYS = ("created_at", "edited_at", "deleted_at", "reply_deleted_at")

# JSON helpers ------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A JSON-only copy (UUIDs and datetimes as strings) for event payloads."""

    def default(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        return str(v)

    return orjson.loads(orjson.dumps(value, default=default))


def as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def message_from_jsonb(row: dict[str, Any]) -> dict[str, Any]:
    """A message row that came back as jsonb: timestamps back to datetimes."""
    for key in _TIME_KEYS:
        if key in row:
            row[key] = as_datetime(row[key])
    return row


# Cursors -----------------------------------------------------------------------------------


def decode_seq_cursor(cursor: str | None) -> int | None:
    """The seq a page of messages ended at (newest first)."""
    values = decode_cursor(cursor, 1)
    if values is None:
        return None
    if not isinstance(values[0], int) or isinstance(values[0], bool) or values[0] < 0:
        raise ValidationFailed.field("cursor", "is not a cursor this list produced")
    return values[0]


def decode_time_id_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (time, id) a page ordered by time ended at: conversations, search hits."""
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        at = datetime.fromisoformat(str(values[0]))
        if at.tzinfo is None:
            raise ValueError
        return at, uuid.UUID(str(values[1]))
    except (TypeError, ValueError):
        raise ValidationFailed.field("cursor", "is not a cursor this list produced") from None


# Messages and conversations ----------------------------------------------------------------


def message_view(
    row: Row,
    viewer: uuid.UUID | None,
    *,
    other_read_seq: int | None = None,
    other_delivered_seq: int | None = None,
) -> dict[str, Any]:
    """A message as `viewer` sees it. `status` (sent / delivered / read) is set on the viewer's
    own messages when the other participant's watermarks are given; `client_nonce` only for
    the sender."""
    sender = as_uuid(row["sender_id"])
    deleted = row.get("deleted_at") is not None
    mine = viewer is not None and sender == viewer
    status = None
    if mine and other_read_seq is not None:
        seq = row["seq"]
        if seq <= other_read_seq:
            status = "read"
        elif other_delivered_seq is not None and seq <= other_delivered_seq:
            status = "delivered"
        else:
            status = "sent"
    reply = None
    if row.get("reply_id") is not None:
        reply_deleted = row.get("reply_deleted_at") is not None
        reply = {
            "id": as_uuid(row["reply_id"]),
            "sender_id": as_uuid(row["reply_sender_id"]),
            "message_type": row["reply_type"],
            "content": None if reply_deleted else row["reply_content"],
            "has_media": bool(row.get("reply_has_media")),
            "is_deleted": reply_deleted,
        }
    snapshot = row.get("product_snapshot") or None
    reactions = [
        {
            "emoji": r["emoji"],
            "count": r["count"],
            "user_ids": r["user_ids"],
            "me": viewer is not None and str(viewer) in [str(u) for u in r["user_ids"]],
        }
        for r in (row.get("reactions") or [])
    ]
    content = "" if deleted else row["content"]
    return {
        "id": as_uuid(row["id"]),
        "conversation_id": as_uuid(row["conversation_id"]),
        "seq": row["seq"],
        "sender_id": sender,
        "message_type": row["message_type"],
        "content": None if deleted else content,
        "links": [] if deleted else links_in(content),
        "product": snapshot["product"] if snapshot else None,
        "product_id": as_uuid(row.get("product_id")),
        "reply_to": reply,
        "is_forwarded": bool(row.get("is_forwarded")),
        "media": [] if deleted else list(row.get("media") or []),
        "reactions": reactions,
        "is_edited": bool(row["is_edited"]),
        "edited_at": as_datetime(row.get("edited_at")),
        "is_deleted": deleted,
        "deleted_at": as_datetime(row.get("deleted_at")),
        "created_at": as_datetime(row["created_at"]),
        "status": status,
        "client_nonce": row.get("client_nonce") if mine else None,
    }


def message_view_in(row: Row, viewer: uuid.UUID, conversation: Row) -> dict[str, Any]:
    """`message_view` with the delivery status the other participant of `conversation` (as
    the viewer accessed it) has reached."""
    return message_view(
        row,
        viewer,
        other_read_seq=conversation["other_read_seq"],
        other_delivered_seq=conversation["other_delivered_seq"],
    )


def participants(conversation: Row) -> list[uuid.UUID]:
    """Both participants of a conversation the actor accessed, the actor first: the
    recipients of an event that each gets with their own view."""
    return [conversation["me_id"], conversation["other_id"]]


def conversation_view(row: Row, viewer: uuid.UUID) -> dict[str, Any]:
    """A conversation in the viewer's list: the other user, the last message they can see,
    their unread count, mute state and both participants' watermarks."""
    last = row.get("last_message")
    last_view = None
    if last:
        last_view = message_view_in(message_from_jsonb(dict(last)), viewer, row)
    return {
        "id": row["id"],
        "conversation_type": row["conversation_type"],
        "other_user": row["other_user"],
        "is_muted": bool(row["muted"]),
        "muted_until": row["muted_until"] if row["muted"] else None,
        "unread_count": row["unread_count"],
        "marked_unread": row["marked_unread"],
        "last_read_seq": row["last_read_seq"],
        "last_read_at": row["last_read_at"],
        "last_delivered_seq": row["last_delivered_seq"],
        "receipts": {
            "user_id": row["other_id"],
            "read_seq": row["other_read_seq"],
            "read_at": row["other_read_at"],
            "delivered_seq": row["other_delivered_seq"],
            "delivered_at": row["other_delivered_at"],
        },
        "last_message": last_view,
        "last_message_at": row["last_message_at"],
        "message_seq": row["message_seq"],
        "cleared_seq": row["cleared_seq"],
        "is_hidden": row["hidden"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


# Products ----------------------------------------------------------------------------------


def product_snapshot(product: Row, seller: Row | None) -> dict[str, Any]:
    """What a product-context message keeps of the product (the banner outlives the product)."""
    return jsonable(
        {
            "product": cards.product_card(product),
            "seller": seller_card(seller) if seller else None,
        }
    )


def seller_card(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "display_name": row["display_name"],
        "profile_picture_url": row["profile_picture_url"],
        "is_verified": row["is_verified"],
        "link": f"/users/{row['username']}",
    }


async def product_banner(ctx: Context, viewer: uuid.UUID, message: Row) -> dict[str, Any]:
    """The product banner of a product-context message: the live product card when the product
    still exists (and its seller and the viewer do not block each other), else the card as it
    was when sent, marked removed. With quick links to the product, its shop and the seller."""
    snapshot = message["product_snapshot"] or {}
    live = None
    if message["product_id"] is not None:
        live = await commerce_store.get_product(ctx.db, message["product_id"], viewer)
    if live is not None:
        product = jsonable(cards.product_card(live))
        seller_row = await store.user_brief(ctx.db, live["owner_id"])
        seller = jsonable(seller_card(seller_row)) if seller_row else snapshot.get("seller")
    else:
        product = {**(snapshot.get("product") or {}), "is_available": False}
        seller = snapshot.get("seller")
    shop = product.get("shop")
    links = {
        "product": product.get("link"),
        "shop": shop.get("link") if shop else None,
        "seller": seller.get("link") if seller else None,
    }
    actions = [
        {"kind": kind, "label": label, "link": links[key]}
        for kind, label, key in (
            ("view_product", "View Product", "product"),
            ("visit_shop", "Visit Shop", "shop"),
            ("view_seller", "View Seller", "seller"),
        )
        if links[key]
    ]
    return {
        "message_id": message["id"],
        "conversation_id": message.get("conversation_id"),
        "product_id": as_uuid((snapshot.get("product") or {}).get("id")) or message["product_id"],
        "product": product,
        "shop": shop,
        "seller": seller,
        "is_removed": live is None,
        "links": links,
        "actions": actions,
        "sent_at": message["created_at"],
    }
