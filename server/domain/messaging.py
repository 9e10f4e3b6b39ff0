"""Direct messaging: one-on-one conversations, messages, receipts, reactions, typing, search and
product-context messages ("Contact seller").

Every action here is one domain action: authorization, all writes in one transaction, events
published after commit. HTTP handlers (server/http/messaging.py) and gateway calls
(server/ws/methods/messaging.py) both call these functions.

Ordering. A message gets `seq`, the next number of its conversation, under the conversation's
row lock, and its `created_at` from the database clock under that lock; lists are ordered by
`seq`. Every write to a conversation also runs under a node-local lock of that conversation
that is held until its events are published, so on a node the per-user event order (the bus
`s`) is the commit order. Across nodes, two senders racing in one conversation can see their
events published in either order within a sub-millisecond window; every message event carries
`seq`, so a client places each message by it.

Delivery states, for a message the viewer sent: `sent` (persisted), `delivered` (the other
participant's client acknowledged it: `messages.delivered`, or it fetched it over HTTP),
`read` (the other participant marked the conversation read up to it). They are watermarks per
participant (`last_delivered_seq`, `last_read_seq`); the sender gets `message.delivered` and
`conversation.read` events as they move.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import unicodedata
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import orjson

from server.config import RateLimit
from server.domain import cards, notifications
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.notification_catalog import preview
from server.domain.notifications import NotificationType
from server.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from server.ids import new_id
from server.pagination import decode_cursor, encode_cursor
from server.store import commerce as commerce_store
from server.store import messaging as store
from server.store.db import Row, Transaction

log = logging.getLogger(__name__)

# Gateway events (per-user, sequenced).
MESSAGE_CREATED = "message.created"
MESSAGE_UPDATED = "message.updated"
MESSAGE_DELETED = "message.deleted"
MESSAGE_DELIVERED = "message.delivered"
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_UPDATED = "conversation.updated"
CONVERSATION_DELETED = "conversation.deleted"
CONVERSATION_READ = "conversation.read"
REACTION_ADDED = "reaction.added"
REACTION_REMOVED = "reaction.removed"
TYPING = "typing"

TYPING_TTL_S = 6.0  # a `typing` event lapses after this long unless renewed
TYPING_RENEW_S = 2  # renewals more frequent than this are dropped (clients renew every ~3 s)
MAX_REACTIONS_PER_USER = 10  # distinct emojis one user may put on one message
MAX_LINKS = 10
NONCE_MAX_CHARS = 100
DEFAULT_CONTACT_TEXT = "Hi, I'm interested in {name}. Is this still available?"

CANNOT_MESSAGE = "You cannot message this account."
YOU_BLOCKED = "You have blocked this account. Unblock it to send messages."
NO_CONVERSATION = "No such conversation."
NO_MESSAGE = "No such message."

_URL_RE = re.compile(r"(?i)\b(?:https?://|www\.)[^\s<>\"']+")
_SHORTCODE_RE = re.compile(r"^:[a-z0-9_+\-]{1,40}:$")
_WORD_RE = re.compile(r"\w+", re.UNICODE)
_TIME_KEYS = (
    "created_at",
    "edited_at",
    "deleted_at",
    "reply_deleted_at",
)


class _DuplicateNonce(Exception):
    """The sender already used this nonce (raised inside the transaction to roll it back)."""


# Helpers ------------------------------------------------------------------------------------


def _json(value: Any) -> Any:
    """A JSON-only copy (UUIDs and datetimes as strings) for event payloads."""

    def default(v: Any) -> Any:
        if isinstance(v, datetime):
            return v.isoformat()
        return str(v)

    return orjson.loads(orjson.dumps(value, default=default))


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _from_jsonb(row: dict[str, Any]) -> dict[str, Any]:
    """A message row that came back as jsonb: timestamps back to datetimes."""
    for key in _TIME_KEYS:
        if key in row:
            row[key] = _time(row[key])
    return row


@asynccontextmanager
async def _conversation_lock(ctx: Context, key: Any) -> AsyncIterator[None]:
    """The node-local lock of one conversation, held from BEGIN until the events of the write
    are published, so the events of one conversation leave this node in commit order."""
    locks = ctx.extras.get("messaging.locks")
    if locks is None:
        locks = ctx.extras["messaging.locks"] = weakref.WeakValueDictionary()
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = asyncio.Lock()
    async with lock:
        yield


PUBLISH_ATTEMPTS = 6
PUBLISH_BACKOFF_S = (0.01, 0.05, 0.2, 0.5, 1.0)


async def _publish(
    ctx: Context, user_ids: list[uuid.UUID], type: str, data: dict[str, Any]
) -> None:
    """Publish a user event, retrying when the bus fails (a committed message must not lose
    its live delivery to a transient bus error: the recipient would only see it on refetch).
    At-least-once: a retry after an ambiguous failure can repeat an event, which clients drop
    by message id. Retries happen under the conversation lock, so order is kept."""
    recipients = list(dict.fromkeys(user_ids))
    for attempt in range(PUBLISH_ATTEMPTS):
        try:
            await ctx.bus.publish_user(recipients, type, data)
            return
        except Exception:
            if attempt == PUBLISH_ATTEMPTS - 1:
                log.exception("event not published", extra={"type": type, "users": len(recipients)})
                return
            await asyncio.sleep(PUBLISH_BACKOFF_S[attempt])


def _emit(
    ctx: Context, tx: Transaction, user_ids: list[uuid.UUID], type: str, data: dict[str, Any]
) -> None:
    """Publish once `tx` has committed (never for a rolled-back write), reliably."""
    tx.after_commit(lambda: _publish(ctx, user_ids, type, data))


def links_in(content: str) -> list[str]:
    found = []
    for match in _URL_RE.finditer(content or ""):
        url = match.group(0).rstrip(".,;:!?)]}")
        if url not in found:
            found.append(url)
        if len(found) >= MAX_LINKS:
            break
    return found


def check_content(ctx: Context, content: str | None) -> str:
    """The message text, trimmed; 422 with a clear reason when empty, too long or not text."""
    text = (content or "").strip()
    if "\x00" in text:
        raise ValidationFailed.field("content", "may not contain NUL characters")
    if not text:
        raise ValidationFailed.field("content", "a message needs some text")
    limit = ctx.settings.messaging.max_message_chars
    if len(text) > limit:
        raise ValidationFailed.field(
            "content", f"is {len(text)} characters long; a message holds at most {limit}"
        )
    return text


def check_nonce(nonce: str | None) -> str | None:
    if nonce is None:
        return None
    if not nonce or len(nonce) > NONCE_MAX_CHARS or "\x00" in nonce:
        raise ValidationFailed.field("nonce", f"must be 1 to {NONCE_MAX_CHARS} characters")
    return nonce


def _message_type(content: str, requested: str | None) -> str:
    if requested in (None, "text", "link"):
        has_link = bool(links_in(content))
        if requested == "link" and not has_link:
            raise ValidationFailed.field("message_type", "a link message needs a URL in content")
        if requested == "text":
            return "text"
        return "link" if has_link else "text"
    if requested in ("image", "video"):
        raise ValidationFailed.field(
            "message_type", "attachments are not accepted yet (they come with media uploads)"
        )
    if requested == "product_context":
        raise ValidationFailed.field("message_type", "send a product_id for a product message")
    raise ValidationFailed.field("message_type", "must be text or link")


def check_emoji(emoji: str) -> str:
    """An emoji (unicode, with modifiers and joiners) or a `:shortcode:`."""
    value = (emoji or "").strip()
    if not value or len(value) > 32:
        raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
    if value.isascii():
        if not _SHORTCODE_RE.match(value):
            raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
        return value
    symbolic = False
    for ch in value:
        cat = unicodedata.category(ch)
        if cat[0] in ("L", "Z") or cat in ("Cc", "Cs", "Co", "Cn"):
            raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
        if cat in ("So", "Sk", "Me"):
            symbolic = True
    if not symbolic:
        raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
    return value


def _tsquery(text: str | None) -> str | None:
    """`"red bike"` -> `red:* & bike:*` (every word, as a prefix); only word characters
    survive, so the result is always a valid tsquery."""
    words = _WORD_RE.findall((text or "").lower())[:8]
    if not words:
        return None
    return " & ".join(f"{word}:*" for word in words)


def _seq_cursor(cursor: str | None) -> int | None:
    values = decode_cursor(cursor, 1)
    if values is None:
        return None
    if not isinstance(values[0], int) or isinstance(values[0], bool) or values[0] < 0:
        raise ValidationFailed.field("cursor", "is not a cursor this list produced")
    return values[0]


def _time_id_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
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


def _can_message(c: Row) -> None:
    if c["blocking"]:
        raise Forbidden(YOU_BLOCKED)
    if c["blocked_by"] or not c["other_active"]:
        raise Forbidden(CANNOT_MESSAGE)


# Views --------------------------------------------------------------------------------------


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
    sender = _uuid(row["sender_id"])
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
            "id": _uuid(row["reply_id"]),
            "sender_id": _uuid(row["reply_sender_id"]),
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
        "id": _uuid(row["id"]),
        "conversation_id": _uuid(row["conversation_id"]),
        "seq": row["seq"],
        "sender_id": sender,
        "message_type": row["message_type"],
        "content": None if deleted else content,
        "links": [] if deleted else links_in(content),
        "product": snapshot["product"] if snapshot else None,
        "product_id": _uuid(row.get("product_id")),
        "reply_to": reply,
        "is_forwarded": bool(row.get("is_forwarded")),
        "media": [] if deleted else list(row.get("media") or []),
        "reactions": reactions,
        "is_edited": bool(row["is_edited"]),
        "edited_at": _time(row.get("edited_at")),
        "is_deleted": deleted,
        "deleted_at": _time(row.get("deleted_at")),
        "created_at": _time(row["created_at"]),
        "status": status,
        "client_nonce": row.get("client_nonce") if mine else None,
    }


def _conversation_view(row: Row, viewer: uuid.UUID) -> dict[str, Any]:
    last = row.get("last_message")
    last_view = None
    if last:
        last_view = message_view(
            _from_jsonb(dict(last)),
            viewer,
            other_read_seq=row["other_read_seq"],
            other_delivered_seq=row["other_delivered_seq"],
        )
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


def _snapshot(product: Row, seller: Row | None) -> dict[str, Any]:
    """What a product-context message keeps of the product (the banner outlives the product)."""
    return _json(
        {
            "product": cards.product_card(product),
            "seller": _seller(seller) if seller else None,
        }
    )


def _seller(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "username": row["username"],
        "display_name": row["display_name"],
        "profile_picture_url": row["profile_picture_url"],
        "is_verified": row["is_verified"],
        "link": f"/users/{row['username']}",
    }


async def _banner(ctx: Context, viewer: uuid.UUID, message: Row) -> dict[str, Any]:
    """The product banner of a product-context message: the live product card when the product
    still exists (and its seller and the viewer do not block each other), else the card as it
    was when sent, marked removed. With quick links to the product, its shop and the seller."""
    snapshot = message["product_snapshot"] or {}
    live = None
    if message["product_id"] is not None:
        live = await commerce_store.get_product(ctx.db, message["product_id"], viewer)
    if live is not None:
        product = _json(cards.product_card(live))
        seller_row = await store.user_brief(ctx.db, live["owner_id"])
        seller = _json(_seller(seller_row)) if seller_row else snapshot.get("seller")
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
        "product_id": _uuid((snapshot.get("product") or {}).get("id")) or message["product_id"],
        "product": product,
        "shop": shop,
        "seller": seller,
        "is_removed": live is None,
        "links": links,
        "actions": actions,
        "sent_at": message["created_at"],
    }


# Conversations ------------------------------------------------------------------------------


async def _other_user(ctx: Context, actor: Principal, user_id: Any, username: Any) -> Row:
    other = await store.active_user_by_ref(ctx.db, user_id, username)
    if other is None:
        raise NotFound("No such user.")
    if other["id"] == actor.user_id:
        raise ValidationFailed.field("user_id", "you cannot start a conversation with yourself")
    return other


async def _ensure_direct(
    tx: Transaction, me: uuid.UUID, other: uuid.UUID
) -> tuple[uuid.UUID, bool]:
    """The pair's conversation, created with both participants if missing (race-safe: the
    unique pair key). The other participant sees a new conversation only once it has a
    message; for `me` a conversation they had deleted comes back (empty)."""
    low, high = sorted((me, other))
    conversation_id = await store.insert_direct(tx, id=new_id(), low=low, high=high, creator=me)
    if conversation_id is not None:
        await store.add_participant(
            tx, id=new_id(), conversation_id=conversation_id, user_id=me, hidden=False
        )
        await store.add_participant(
            tx, id=new_id(), conversation_id=conversation_id, user_id=other, hidden=True
        )
        return conversation_id, True
    conversation_id = await store.find_direct(tx, low, high)
    assert conversation_id is not None
    await store.unhide(tx, conversation_id, me)
    return conversation_id, False


async def create_conversation(
    ctx: Context, actor: Principal, *, user_id: uuid.UUID | None = None, username: str | None = None
) -> dict[str, Any]:
    """Open the one conversation with another user (creating it again returns the existing
    one, `created` false). A block either way forbids it."""
    other = await _other_user(ctx, actor, user_id, username)
    blocks = await store.blocks_between(ctx.db, actor.user_id, other["id"])
    if blocks["blocking"]:
        raise Forbidden(YOU_BLOCKED)
    if blocks["blocked_by"]:
        raise Forbidden(CANNOT_MESSAGE)
    async with ctx.db.transaction() as tx:
        conversation_id, created = await _ensure_direct(tx, actor.user_id, other["id"])
    view = await get_conversation(ctx, actor, conversation_id)
    if created:
        await _publish(
            ctx,
            [actor.user_id],
            CONVERSATION_CREATED,
            _json({"conversation_id": conversation_id, "conversation": view}),
        )
    return {**view, "created": created}


async def list_conversations(
    ctx: Context, actor: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """The user's conversations, latest message first, each with the last message they can
    see and their unread count. Keyset-paginated (index: participants (user_id, activity_at
    DESC, conversation_id DESC) WHERE NOT hidden)."""
    rows = await store.conversation_page(
        ctx.db, actor.user_id, limit=limit + 1, after=_time_id_cursor(cursor)
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last["activity_at"].isoformat(), str(last["id"]))
    return {
        "items": [_conversation_view(row, actor.user_id) for row in rows],
        "next_cursor": next_cursor,
    }


async def get_conversation(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID
) -> dict[str, Any]:
    """One conversation with its participants and its product banner (if any)."""
    rows = await store.conversation_page(
        ctx.db, actor.user_id, limit=1, after=None, conversation_id=conversation_id
    )
    if not rows:
        raise NotFound(NO_CONVERSATION)
    row = rows[0]
    view = _conversation_view(row, actor.user_id)
    view["participants"] = await store.participants(ctx.db, conversation_id)
    banner_message = await store.product_context_message(
        ctx.db, conversation_id, actor.user_id, row["cleared_seq"]
    )
    view["product_context"] = (
        await _banner(ctx, actor.user_id, {**banner_message, "conversation_id": conversation_id})
        if banner_message
        else None
    )
    return view


async def _context(ctx: Context, q: Any, actor: Principal, conversation_id: uuid.UUID) -> Row:
    c = await store.context(q, conversation_id, actor.user_id)
    if c is None:
        raise NotFound(NO_CONVERSATION)
    return c


async def delete_conversation(ctx: Context, actor: Principal, conversation_id: uuid.UUID) -> None:
    """Delete the conversation for this user only: its history up to now is gone for them and
    it leaves their list until a new message arrives. The other participant keeps everything."""
    async with _conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            await _context(ctx, tx, actor, conversation_id)
            await store.lock_conversation(tx, conversation_id)
            cleared = await store.clear_history(tx, conversation_id, actor.user_id)
            await notifications.mark_entity_read(
                ctx,
                tx,
                recipient_id=actor.user_id,
                entity_type="conversation",
                entity_id=conversation_id,
            )
            _emit(
                ctx,
                tx,
                [actor.user_id],
                CONVERSATION_DELETED,
                _json(
                    {
                        "conversation_id": conversation_id,
                        "cleared_seq": cleared["cleared_seq"],
                        "cleared_at": cleared["cleared_at"],
                    }
                ),
            )


async def set_muted(
    ctx: Context,
    actor: Principal,
    conversation_id: uuid.UUID,
    muted: bool,
    *,
    duration_s: int | None = None,
) -> dict[str, Any]:
    """Mute (optionally for `duration_s`) or unmute. Messages of a muted conversation are still
    delivered live, but cause no notification and no push."""
    until = ctx.clock.now() + timedelta(seconds=duration_s) if muted and duration_s else None
    async with ctx.db.transaction() as tx:
        await _context(ctx, tx, actor, conversation_id)
        row = await store.set_mute(tx, conversation_id, actor.user_id, muted, until)
        _emit(
            ctx,
            tx,
            [actor.user_id],
            CONVERSATION_UPDATED,
            _json(
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
        await _context(ctx, tx, actor, conversation_id)
        if await store.set_marked_unread(tx, conversation_id, actor.user_id, True):
            _emit(
                ctx,
                tx,
                [actor.user_id],
                CONVERSATION_UPDATED,
                _json({"conversation_id": conversation_id, "marked_unread": True}),
            )
    return await get_conversation(ctx, actor, conversation_id)


async def _seq_for(
    q: Any, c: Row, conversation_id: uuid.UUID, message_id: uuid.UUID | None, seq: int | None
) -> int:
    """The seq a read / delivered mark goes up to: a message of the conversation, a seq, or
    (neither) the latest message."""
    if message_id is not None:
        found = await store.message_seq_of(q, conversation_id, message_id)
        if found is None:
            raise ValidationFailed.field("message_id", "is not a message of this conversation")
        return found
    if seq is not None:
        return min(seq, c["message_seq"])
    return c["message_seq"]


async def mark_read(
    ctx: Context,
    actor: Principal,
    conversation_id: uuid.UUID,
    *,
    message_id: uuid.UUID | None = None,
    seq: int | None = None,
) -> dict[str, Any]:
    """Mark the conversation read up to a message (default: the latest). The other
    participant gets `conversation.read` (a read receipt) and the reader's other devices get it
    with the new unread count. Idempotent; the watermark never moves back."""
    async with _conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            c = await _context(ctx, tx, actor, conversation_id)
            up_to = await _seq_for(tx, c, conversation_id, message_id, seq)
            row = await store.mark_read(tx, conversation_id, actor.user_id, up_to)
            result = {
                "conversation_id": conversation_id,
                "user_id": actor.user_id,
                "seq": row["last_read_seq"],
                "read_at": row["last_read_at"],
                "unread_count": row["unread_count"],
                "marked_unread": False,
            }
            if row["unread_count"] == 0:  # all read: so are its notifications
                await notifications.mark_entity_read(
                    ctx,
                    tx,
                    recipient_id=actor.user_id,
                    entity_type="conversation",
                    entity_id=conversation_id,
                )
            if row["changed"] and not (c["blocking"] or c["blocked_by"]):
                receipt = {k: result[k] for k in ("conversation_id", "user_id", "seq", "read_at")}
                _emit(ctx, tx, [c["other_id"]], CONVERSATION_READ, _json(receipt))
            if row["changed"] or c["marked_unread"] or c["unread_count"] != row["unread_count"]:
                _emit(ctx, tx, [actor.user_id], CONVERSATION_READ, _json(result))
    return result


async def mark_delivered(
    ctx: Context,
    actor: Principal,
    conversation_id: uuid.UUID,
    *,
    message_id: uuid.UUID | None = None,
    seq: int | None = None,
) -> dict[str, Any]:
    """The recipient's client acknowledges it has received messages up to a seq (or message):
    the sender gets `message.delivered`. Idempotent and monotonic."""
    c = await _context(ctx, ctx.db, actor, conversation_id)
    up_to = await _seq_for(ctx.db, c, conversation_id, message_id, seq)
    await _advance_delivered(ctx, actor.user_id, c, conversation_id, up_to)
    return {
        "conversation_id": conversation_id,
        "delivered_seq": max(up_to, c["last_delivered_seq"]),
    }


async def _advance_delivered(
    ctx: Context, user_id: uuid.UUID, c: Row, conversation_id: uuid.UUID, up_to: int
) -> None:
    if up_to <= c["last_delivered_seq"]:
        return
    row = await store.mark_delivered(ctx.db, conversation_id, user_id, up_to)
    if row is not None and not (c["blocking"] or c["blocked_by"]):
        await _publish(
            ctx,
            [c["other_id"]],
            MESSAGE_DELIVERED,
            _json(
                {
                    "conversation_id": conversation_id,
                    "user_id": user_id,
                    "seq": row["last_delivered_seq"],
                    "delivered_at": row["delivered_at"],
                }
            ),
        )


# Messages -----------------------------------------------------------------------------------


async def list_messages(
    ctx: Context,
    actor: Principal,
    conversation_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None = None,
    after_seq: int | None = None,
) -> dict[str, Any]:
    """Messages the user can see, newest first (keyset on seq); with `after_seq`, the ones after
    it oldest first (catching up after being away). Fetching them counts as delivery."""
    c = await _context(ctx, ctx.db, actor, conversation_id)
    before = _seq_cursor(cursor) if after_seq is None else None
    rows = await store.message_page(
        ctx.db,
        conversation_id,
        actor.user_id,
        c["cleared_seq"],
        limit=limit + 1,
        before_seq=before,
        after_seq=after_seq,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        next_cursor = encode_cursor(rows[-1]["seq"]) if after_seq is None else None
    items = [
        message_view(
            row,
            actor.user_id,
            other_read_seq=c["other_read_seq"],
            other_delivered_seq=c["other_delivered_seq"],
        )
        for row in rows
    ]
    newest = max((row["seq"] for row in rows), default=0)
    await _advance_delivered(ctx, actor.user_id, c, conversation_id, newest)
    result: dict[str, Any] = {"items": items, "next_cursor": next_cursor}
    if after_seq is not None:
        result["has_more"] = more
    return result


async def get_message(ctx: Context, actor: Principal, message_id: uuid.UUID) -> dict[str, Any]:
    row = await store.visible_message(ctx.db, message_id, actor.user_id)
    if row is None:
        raise NotFound(NO_MESSAGE)
    c = await _context(ctx, ctx.db, actor, row["conversation_id"])
    return message_view(
        row,
        actor.user_id,
        other_read_seq=c["other_read_seq"],
        other_delivered_seq=c["other_delivered_seq"],
    )


async def _replay(ctx: Context, actor: Principal, conversation_id: uuid.UUID | None, row: Row):
    """The original message of a resent nonce."""
    if conversation_id is not None and row["conversation_id"] != conversation_id:
        raise Conflict("This nonce was already used for a message in another conversation.")
    c = await store.context(ctx.db, row["conversation_id"], actor.user_id)
    return message_view(
        row,
        actor.user_id,
        other_read_seq=c["other_read_seq"] if c else None,
        other_delivered_seq=c["other_delivered_seq"] if c else None,
    )


async def send_message(
    ctx: Context,
    actor: Principal,
    conversation_id: uuid.UUID,
    *,
    content: str | None,
    message_type: str | None = None,
    reply_to: uuid.UUID | None = None,
    product_id: uuid.UUID | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Send a text or link message (or, with `product_id`, a product-context one), optionally as
    a reply to a message of the same conversation. With `nonce`, a resend returns the original
    message instead of sending it twice."""
    text = check_content(ctx, content)
    nonce = check_nonce(nonce)
    kind = "product_context" if product_id is not None else _message_type(text, message_type)
    snapshot = None
    if product_id is not None:
        product = await commerce_store.get_product(ctx.db, product_id, actor.user_id)
        if product is None:
            raise ValidationFailed.field("product_id", "is not a product you can see")
        snapshot = _snapshot(product, await store.user_brief(ctx.db, product["owner_id"]))
    message, _ = await _append(
        ctx,
        actor,
        conversation_id,
        content=text,
        message_type=kind,
        product_id=product_id,
        snapshot=snapshot,
        reply_to=reply_to,
        nonce=nonce,
    )
    return message


async def _append(
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
) -> tuple[dict[str, Any], uuid.UUID]:
    """Persist one message and publish it: the one write path of send, forward and contact.
    With `open_with` (and no conversation id) the conversation with that user is opened or
    created in the same transaction. Returns (the sender's view, conversation id)."""
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
        return await _replay(ctx, actor, conversation_id, existing), existing["conversation_id"]
    try:
        async with _conversation_lock(ctx, lock_key):
            async with ctx.db.transaction() as tx:
                if conversation_id is None:
                    assert open_with is not None
                    conversation_id, _ = await _ensure_direct(tx, me, open_with)
                if reply_to is not None:
                    quoted = await store.visible_message(tx, reply_to, me)
                    if quoted is None or quoted["conversation_id"] != conversation_id:
                        await _context(ctx, tx, actor, conversation_id)  # 404 first
                        raise ValidationFailed.field(
                            "reply_to_message_id", "is not a message of this conversation"
                        )
                    if quoted["deleted_at"] is not None:
                        raise ValidationFailed.field(
                            "reply_to_message_id", "that message was deleted"
                        )
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
                )
                if row is None:
                    # Not sent: a resend of a nonce already used, or not allowed (say why).
                    if nonce is not None and await store.find_by_nonce(tx, me, nonce):
                        raise _DuplicateNonce()
                    _can_message(await _context(ctx, tx, actor, conversation_id))
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
                view = await _after_append(ctx, tx, c, row)
    except _DuplicateNonce:
        await ctx.limiter.hit(limit_key, ctx.settings.rate_limits.message, cost=-1)
        existing = await store.find_by_nonce(ctx.db, me, nonce or "")
        if existing is None:  # pragma: no cover - the duplicate vanished (deleted user)
            raise Conflict("This nonce was already used.") from None
        return await _replay(ctx, actor, conversation_id, existing), existing["conversation_id"]
    return view, conversation_id


async def _after_append(ctx: Context, tx: Transaction, c: Row, row: Row) -> dict[str, Any]:
    """Events and notifications of a new message (inside its transaction; sent after commit).
    Returns the sender's view of the message. (Event payloads hold UUIDs and datetimes as they
    are: the bus and the codecs encode them.)"""
    me = _uuid(row["sender_id"])
    other = c["other_id"]
    state = {_uuid(p["user_id"]): p for p in row["participants"] or []}
    conversation_id = c["id"]
    sender_view = message_view(row, me, other_read_seq=c["other_read_seq"], other_delivered_seq=0)
    other_view = message_view(row, other)
    other_state = state.get(other) or {"unread_count": 0, "muted": False}
    base = {"conversation_id": conversation_id, "seq": row["seq"]}
    _emit(
        ctx,
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
    _emit(
        ctx,
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
        _emit(
            ctx,
            tx,
            [other],
            CONVERSATION_READ,
            {**base, "user_id": me, "read_at": row["created_at"]},
        )
    if not other_state["muted"]:
        snapshot = row.get("product_snapshot")
        product_name = ((snapshot or {}).get("product") or {}).get("name")
        data = {
            "conversation_id": str(conversation_id),
            "message_id": str(row["id"]),
            "message_preview": preview(row["content"]),
        }
        if product_name and not row["is_forwarded"]:
            data["product_name"] = preview(product_name, 60)
            data["product_id"] = str(row["product_id"]) if row["product_id"] else None
        await notifications.notify(
            ctx,
            tx,
            recipient_id=other,
            actor_id=me,
            type=NotificationType.PRODUCT_MESSAGE
            if "product_name" in data
            else NotificationType.NEW_MESSAGE,
            entity_type="conversation",
            entity_id=conversation_id,
            data=data,
        )
    return sender_view


async def forward_message(
    ctx: Context,
    actor: Principal,
    message_id: uuid.UUID,
    *,
    conversation_id: uuid.UUID,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Forward a message the user can see to a conversation they take part in (a copy marked
    forwarded; its original sender is not revealed)."""
    nonce = check_nonce(nonce)
    source = await store.visible_message(ctx.db, message_id, actor.user_id)
    if source is None:
        raise NotFound(NO_MESSAGE)
    if source["deleted_at"] is not None:
        raise ValidationFailed.field("message_id", "a deleted message cannot be forwarded")
    message, _ = await _append(
        ctx,
        actor,
        conversation_id,
        content=source["content"],
        message_type=source["message_type"],
        product_id=source["product_id"],
        snapshot=source["product_snapshot"],
        forwarded_from=source,
        nonce=nonce,
    )
    return message


async def _locked_message(
    ctx: Context, tx: Transaction, actor: Principal, message_id: uuid.UUID
) -> tuple[Row, Row]:
    """The message (row-locked) and its conversation context, if the user can see it."""
    await store.lock_message(tx, message_id)
    row = await store.visible_message(tx, message_id, actor.user_id)
    if row is None:
        raise NotFound(NO_MESSAGE)
    c = await _context(ctx, tx, actor, row["conversation_id"])
    return row, c


async def _conversation_of(ctx: Context, message_id: uuid.UUID) -> uuid.UUID:
    conversation_id = await store.conversation_of(ctx.db, message_id)
    if conversation_id is None:
        raise NotFound(NO_MESSAGE)
    return conversation_id


async def edit_message(
    ctx: Context, actor: Principal, message_id: uuid.UUID, *, content: str | None
) -> dict[str, Any]:
    """Edit your own message within `messaging.edit_window_s` of sending it."""
    text = check_content(ctx, content)
    conversation_id = await _conversation_of(ctx, message_id)
    async with _conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            row, c = await _locked_message(ctx, tx, actor, message_id)
            if row["sender_id"] != actor.user_id:
                raise Forbidden("You can only edit your own messages.")
            if row["deleted_at"] is not None:
                raise ValidationFailed.field("message_id", "a deleted message cannot be edited")
            if row["is_forwarded"]:
                raise ValidationFailed.field("message_id", "a forwarded message cannot be edited")
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
            if text == row["content"]:
                return message_view(
                    row,
                    actor.user_id,
                    other_read_seq=c["other_read_seq"],
                    other_delivered_seq=c["other_delivered_seq"],
                )
            kind = row["message_type"]
            if kind in ("text", "link"):
                kind = "link" if links_in(text) else "text"
            updated = await store.edit(tx, message_id, text, kind)
            _emit_to_both(ctx, tx, c, MESSAGE_UPDATED, updated)
    return message_view(
        updated,
        actor.user_id,
        other_read_seq=c["other_read_seq"],
        other_delivered_seq=c["other_delivered_seq"],
    )


def _emit_to_both(ctx: Context, tx: Transaction, c: Row, type: str, row: Row, **extra: Any) -> None:
    """One event per participant, each with the message as that participant sees it."""
    for viewer in _both(c):
        _emit(
            ctx,
            tx,
            [viewer],
            type,
            _json(
                {
                    "conversation_id": c["id"],
                    "seq": row["seq"],
                    "message": message_view(row, viewer),
                    **extra,
                }
            ),
        )


def _both(c: Row) -> list[uuid.UUID]:
    return [c["me_id"], c["other_id"]]


async def delete_message(
    ctx: Context, actor: Principal, message_id: uuid.UUID, *, scope: str = "self"
) -> dict[str, Any]:
    """Delete a message for yourself (it disappears for you only) or, as its sender, for
    everyone (both participants keep a tombstone: "This message was deleted")."""
    if scope not in ("self", "everyone"):
        raise ValidationFailed.field("scope", "must be self or everyone")
    conversation_id = await _conversation_of(ctx, message_id)
    async with _conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            row, c = await _locked_message(ctx, tx, actor, message_id)
            if scope == "everyone":
                if row["sender_id"] != actor.user_id:
                    raise Forbidden("Only the sender can delete a message for everyone.")
                if row["deleted_at"] is None:
                    row = await store.tombstone(tx, message_id)
                    unread = {_uuid(u["user_id"]): u["unread_count"] for u in row["unread"] or []}
                    for viewer in _both(c):
                        payload = {
                            "conversation_id": c["id"],
                            "message_id": message_id,
                            "seq": row["seq"],
                            "scope": "everyone",
                            "message": message_view(row, viewer),
                        }
                        if viewer in unread:
                            payload["unread_count"] = unread[viewer]
                        _emit(ctx, tx, [viewer], MESSAGE_DELETED, _json(payload))
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
                _emit(ctx, tx, [actor.user_id], MESSAGE_DELETED, _json(payload))
    return {"message_id": message_id, "scope": "self", "deleted": True}


async def add_reaction(
    ctx: Context, actor: Principal, message_id: uuid.UUID, emoji: str
) -> dict[str, Any]:
    """React with an emoji (once per message, user and emoji; again is a no-op)."""
    emoji = check_emoji(emoji)
    conversation_id = await _conversation_of(ctx, message_id)
    async with _conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            row, c = await _locked_message(ctx, tx, actor, message_id)
            _can_message(c)
            if row["deleted_at"] is not None:
                raise ValidationFailed.field("message_id", "a deleted message cannot be reacted to")
            count = await store.count_user_reactions(tx, message_id, actor.user_id)
            if count >= MAX_REACTIONS_PER_USER:
                raise ValidationFailed.field(
                    "emoji", f"at most {MAX_REACTIONS_PER_USER} reactions per message"
                )
            added = await store.add_reaction(
                tx, id=new_id(), message_id=message_id, user_id=actor.user_id, emoji=emoji
            )
            reactions = await store.reactions_of(tx, message_id)
            if added:
                _emit_reaction(ctx, tx, c, REACTION_ADDED, row, actor.user_id, emoji, reactions)
                author = row["sender_id"]
                if author != actor.user_id and not c["other_muted"]:
                    await notifications.notify(
                        ctx,
                        tx,
                        recipient_id=author,
                        actor_id=actor.user_id,
                        type=NotificationType.MESSAGE_REACTION,
                        entity_type="conversation",
                        entity_id=c["id"],
                        data={
                            "emoji": emoji,
                            "conversation_id": str(c["id"]),
                            "message_id": str(message_id),
                            "message_preview": preview(row["content"]),
                        },
                    )
    return _reactions_result(message_id, reactions, actor.user_id)


async def remove_reaction(
    ctx: Context, actor: Principal, message_id: uuid.UUID, emoji: str
) -> dict[str, Any]:
    emoji = (emoji or "").strip()
    if not emoji or len(emoji) > 64:
        raise ValidationFailed.field("emoji", "must be one emoji or a :shortcode:")
    conversation_id = await _conversation_of(ctx, message_id)
    async with _conversation_lock(ctx, conversation_id):
        async with ctx.db.transaction() as tx:
            row, c = await _locked_message(ctx, tx, actor, message_id)
            removed = await store.remove_reaction(tx, message_id, actor.user_id, emoji)
            reactions = await store.reactions_of(tx, message_id)
            if removed:
                _emit_reaction(ctx, tx, c, REACTION_REMOVED, row, actor.user_id, emoji, reactions)
    return _reactions_result(message_id, reactions, actor.user_id)


def _reactions_result(message_id: uuid.UUID, reactions: list, viewer: uuid.UUID) -> dict:
    return {
        "message_id": message_id,
        "reactions": [
            {**r, "me": str(viewer) in [str(u) for u in r["user_ids"]]} for r in reactions or []
        ],
    }


def _emit_reaction(
    ctx: Context,
    tx: Transaction,
    c: Row,
    type: str,
    row: Row,
    user_id: uuid.UUID,
    emoji: str,
    reactions: list,
) -> None:
    for viewer in _both(c):
        _emit(
            ctx,
            tx,
            [viewer],
            type,
            _json(
                {
                    "conversation_id": c["id"],
                    "message_id": row["id"],
                    "seq": row["seq"],
                    "user_id": user_id,
                    "emoji": emoji,
                    **_reactions_result(row["id"], reactions, viewer),
                }
            ),
        )


# Typing -------------------------------------------------------------------------------------


async def typing(
    ctx: Context, actor: Principal, conversation_id: uuid.UUID, *, active: bool = True
) -> dict[str, Any]:
    """Tell the other participant you are typing: a `typing` event that lapses by itself after
    `expires_in_ms` unless renewed (renew every ~3 s while typing; more frequent renewals are
    dropped). `active=False` sends the stop at once. Nothing is stored."""
    c = await _context(ctx, ctx.db, actor, conversation_id)
    ttl_ms = int(TYPING_TTL_S * 1000) if active else 0
    result = {"conversation_id": conversation_id, "expires_in_ms": ttl_ms}
    if c["blocking"] or c["blocked_by"] or not c["other_active"]:
        return result
    if active:
        throttle = RateLimit(count=1, window_s=TYPING_RENEW_S)
        if await ctx.limiter.hit(f"typing:{actor.user_id}:{conversation_id}", throttle):
            return result
    await ctx.bus.publish_user(
        [c["other_id"]],
        TYPING,
        {
            "conversation_id": str(conversation_id),
            "user_id": str(actor.user_id),
            "active": active,
            "expires_in_ms": ttl_ms,
            "expires_at": int(time.time() * 1000) + ttl_ms,
        },
    )
    return result


# Search -------------------------------------------------------------------------------------


async def search_messages(
    ctx: Context,
    actor: Principal,
    *,
    q: str,
    conversation_id: uuid.UUID | None = None,
    limit: int,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Full-text search (every word as a prefix) over the messages the user can see in their
    own conversations, newest first; never a message they deleted, nor anything before their
    "delete conversation"."""
    tsquery = _tsquery(q)
    if tsquery is None:
        raise ValidationFailed.field("q", "needs at least one word to search for")
    if conversation_id is not None:
        await _context(ctx, ctx.db, actor, conversation_id)
    rows = await store.search(
        ctx.db,
        actor.user_id,
        tsquery,
        limit=limit + 1,
        after=_time_id_cursor(cursor),
        conversation_id=conversation_id,
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last["created_at"].isoformat(), str(last["id"]))
    return {
        "items": [
            {
                "conversation_id": row["conversation_id"],
                "other_user": row["other_user"],
                "message": message_view(row, actor.user_id),
            }
            for row in rows
        ],
        "next_cursor": next_cursor,
    }


# Product context ----------------------------------------------------------------------------


async def contact_seller(
    ctx: Context,
    actor: Principal,
    product_id: uuid.UUID,
    *,
    text: str | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """ "Contact seller": open (or reuse) the one conversation with the product's owner and send
    a product-context message, by default "Hi, I'm interested in <name>. Is this still
    available?". The conversation then shows the product banner."""
    nonce = check_nonce(nonce)
    product = await commerce_store.get_product(ctx.db, product_id, actor.user_id)
    if product is None:
        raise NotFound("No such product.")
    seller_id = product["owner_id"]
    if seller_id == actor.user_id:
        raise ValidationFailed.field("id", "this is your own product")
    if text is not None and text.strip():
        content = check_content(ctx, text)
    else:
        name = preview(product["name"], 200)
        content = check_content(ctx, DEFAULT_CONTACT_TEXT.format(name=name))
    if nonce is not None:
        existing = await store.find_by_nonce(ctx.db, actor.user_id, nonce)
        if existing is not None:
            message = await _replay(ctx, actor, None, existing)
            conversation = await get_conversation(ctx, actor, existing["conversation_id"])
            return {"conversation": conversation, "message": message, "created": False}
    seller = await store.user_brief(ctx.db, seller_id)
    if seller is None or not seller["is_active"]:
        raise Forbidden(CANNOT_MESSAGE)
    blocks = await store.blocks_between(ctx.db, actor.user_id, seller_id)
    if blocks["blocking"]:
        raise Forbidden(YOU_BLOCKED)
    if blocks["blocked_by"]:
        raise Forbidden(CANNOT_MESSAGE)
    low, high = sorted((actor.user_id, seller_id))
    existing_id = await store.find_direct(ctx.db, low, high)
    message, conversation_id = await _append(
        ctx,
        actor,
        existing_id,
        content=content,
        message_type="product_context",
        product_id=product_id,
        snapshot=_snapshot(product, seller),
        nonce=nonce,
        open_with=seller_id,
    )
    conversation = await get_conversation(ctx, actor, conversation_id)
    return {"conversation": conversation, "message": message, "created": existing_id is None}


async def product_context(ctx: Context, actor: Principal, message_id: uuid.UUID) -> dict[str, Any]:
    """The product a message is about: its own product for a product-context message, else the
    product banner in effect at that message (the latest product-context message before it)."""
    row = await store.visible_message(ctx.db, message_id, actor.user_id)
    if row is None:
        raise NotFound(NO_MESSAGE)
    banner = row if row["product_snapshot"] is not None else None
    if banner is None:
        c = await _context(ctx, ctx.db, actor, row["conversation_id"])
        banner = await store.product_context_message(
            ctx.db, row["conversation_id"], actor.user_id, c["cleared_seq"], row["seq"]
        )
    if banner is None:
        raise NotFound("This message has no product context.")
    return await _banner(ctx, actor.user_id, {**banner, "conversation_id": row["conversation_id"]})
