"""Notifications: the one call every capability makes (`notify`), and the notification center
(list, unread count, mark read, read all, delete, preferences).

Usage from any domain action, inside the transaction of the write that causes it:

    from server.domain import notifications
    from server.domain.notifications import NotificationType

    async with ctx.db.transaction() as tx:
        like = await posts_store.insert_like(tx, ...)
        await notifications.notify(
            ctx, tx,
            recipient_id=post["author_id"], actor_id=actor.user_id,
            type=NotificationType.LIKE_POST, entity_type="post", entity_id=post["id"],
        )

Everything else (rules, preferences, batching, unread counter, live events, push, email) is
handled behind that call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from server.bus.faults import is_bus_failure
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.notification_catalog import (
    BATCH_WINDOW_S,
    MAX_ACTORS,
    Category,
    NotificationSettings,
    NotificationType,
    SettingsPatch,
    action,
    channels_for,
    effective_settings,
    info,
    merge_patch,
    preview,
    render,
    types_in,
)
from server.errors import NotFound, ValidationFailed
from server.ids import new_id
from server.jobs.queue import enqueue
from server.pagination import decode_cursor, encode_cursor
from server.store import message_notify as message_notify_store
from server.store import notifications as store
from server.store.db import Row, Transaction

__all__ = [
    "MEDIA_PREVIEW",
    "Category",
    "NotificationType",
    "flush_message_notifications",
    "forget_entity",
    "mark_entity_read",
    "notify",
    "preview",
    "retract",
]

log = logging.getLogger(__name__)

# A batch that grows while its recipient is offline re-pushes at most this often.
PUSH_UPDATE_DELAY_S = 60

# Gateway events (per-user, sequenced, to every live session of the recipient).
CREATED = "notification.created"
UPDATED = "notification.updated"
READ = "notification.read"
READ_ALL = "notification.read_all"
DELETED = "notification.deleted"

# What a notification shows for a media message without a caption.
MEDIA_PREVIEW = {"image": "Sent a photo", "video": "Sent a video"}


def _jsonable(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value))


def view(row: Row) -> dict[str, Any]:
    """A notification as clients see it: structured fields plus the rendered `content`."""
    actors = row.get("actors") or []
    if isinstance(actors, str):
        actors = orjson.loads(actors)
    return {
        "id": row["id"],
        "type": row["type"],
        "category": info(row["type"]).category.value,
        "entity_type": row["entity_type"],
        "entity_id": row["entity_id"],
        "actor_id": row["actor_id"],
        "actors": actors,
        "actor_count": row["actor_count"],
        "event_count": row["event_count"],
        "data": row["data"] or {},
        "content": row["content"],
        "action": action(
            row["type"], row["entity_type"], row["entity_id"], row["actor_ids"], row["actor_count"]
        ),
        "is_read": row["is_read"],
        "read_at": row["read_at"],
        "created_at": row["created_at"],
        "updated_at": row["latest_at"],
    }


def _usernames(actors: list[dict[str, Any]]) -> list[str]:
    return [a["username"] for a in actors]


async def _online(ctx: Context, user_id: uuid.UUID) -> bool:
    """Whether the user has a live session; when presence cannot be read (the bus is down),
    offline: a push that duplicates a live event beats an alert lost with the bus."""
    try:
        return bool(await ctx.bus.online_users([user_id]))
    except Exception as exc:
        if not is_bus_failure(exc):
            raise
        log.warning("presence unavailable; pushing to %s", user_id)
        return False


async def notify(
    ctx: Context,
    tx: Transaction,
    *,
    recipient_id: uuid.UUID,
    type: NotificationType | str,
    entity_type: str,
    entity_id: uuid.UUID,
    actor_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
    events: int = 1,
) -> dict[str, Any] | None:
    """Notify `recipient_id` that `actor_id` did `type` to `entity_type`/`entity_id`.

    Call it INSIDE the transaction `tx` of the write that causes it; nothing is visible or
    delivered unless that transaction commits. Returns the notification as clients see it, or
    None when nothing was recorded. In order:

    1. Rules: never to yourself; nothing between users who block each other (either way);
       nothing from an actor the recipient muted; at most `rate_limits.notify_per_actor` from
       one actor to one recipient (messages exempt); an inactive recipient gets nothing.
    2. Preferences of the recipient's category for `type` (push / in-app / email, frequency
       all / important / none; critical types always reach the in-app center).
    3. Batching: the same `type` + entity for the recipient within 5 minutes (and still unread)
       updates that notification instead of adding one: the actor moves to the front of its
       actor list (kept to 100), actor_count / event_count grow, `data` merges, the time moves
       to now and the text is re-rendered ("@ana, @ben, @cy and 10 others liked your post").
       Concurrent calls for one key are serialised by a unique index: one row, every actor.
    4. The unread counter moves in `tx`; after commit `notification.created` or
       `notification.updated` (with `unread_count`) goes to every live session of the
       recipient. If they have none, a push job is enqueued in `tx` (at once for a new
       notification; a growing batch re-pushes at most once a minute, with its latest text);
       email "on" enqueues one email per batch, digests are periodic.

    `data` holds what the template needs (e.g. `comment_preview` for COMMENT_POST,
    `product_name` for PRODUCT_MESSAGE; pass text through `preview()`), plus anything a client
    wants (ids of the comment, conversation, ...). JSON values only. `events` > 1 folds that
    many events of one actor at once (the coalescing NEW_MESSAGE writer).
    A capability that must stay silent (a muted conversation) simply does not call notify().
    """
    type = NotificationType(type)
    spec = info(type)
    if actor_id is not None and actor_id == recipient_id:
        return None
    facts = await store.recipient_context(tx, recipient_id, actor_id)
    if not facts["recipient_active"] or facts["blocked"] or facts["muting"]:
        return None
    settings = effective_settings(facts["prefs"])
    channels = channels_for(settings, type, actor_is_followed=facts["follows_actor"])
    if not channels.any:
        return None
    if actor_id is not None and not spec.flood_exempt:
        over = await ctx.limiter.hit(
            f"notify:{recipient_id}:{actor_id}", ctx.settings.rate_limits.notify_per_actor
        )
        if over:
            log.info(
                "notification dropped by the flood cap",
                extra={"recipient": str(recipient_id), "actor": str(actor_id)},
            )
            return None

    # Everything that does not need the batch row happens before the upsert locks it, so
    # concurrent events of one batch hold that lock as briefly as possible.
    push = channels.push and not await _online(ctx, recipient_id)
    payload = _jsonable(data or {})
    row = None
    now = ctx.clock.now()
    for _ in range(3):
        row = await store.upsert_batch(
            tx,
            id=new_id(),
            recipient=recipient_id,
            type=type.value,
            entity_type=entity_type,
            entity_id=entity_id,
            actor=actor_id,
            data=payload,
            visible=channels.in_app,
            window_s=BATCH_WINDOW_S,
            max_actors=MAX_ACTORS,
            now=now,
            events=events,
        )
        if row is not None:
            break
    if row is None:  # pragma: no cover - only if the clock jumps under us
        raise RuntimeError("could not record the notification")

    content = render(
        type, _usernames(row["actors"]), row["actor_count"], row["event_count"], row["data"]
    )
    row["content"] = content
    delta = 1 if row["inserted"] and row["visible"] else 0
    unread = await store.set_content_and_count(tx, row["id"], content, recipient_id, delta, now)
    result = view(row)

    if row["visible"]:
        ctx.events.to_users(
            tx,
            [recipient_id],
            CREATED if row["inserted"] else UPDATED,
            _jsonable({"notification": result, "unread_count": unread}),
        )
    if push:
        # A new notification is pushed at once; updates of a batch at most once per
        # PUSH_UPDATE_DELAY_S (they coalesce into the queued push, which sends the latest text).
        await enqueue(
            tx,
            "push.send",
            {"notification_id": str(row["id"]), "user_id": str(recipient_id)},
            delay_s=0 if row["inserted"] else PUSH_UPDATE_DELAY_S,
            coalesce_key=f"push:{row['id']}",
        )
    if channels.email == "on" and row["inserted"]:
        # One email per batch, sent when its window closes (so it carries the batched text),
        # and only if the recipient has not read it by then.
        await enqueue(
            tx,
            "notifications.email",
            {"notification_id": str(row["id"])},
            delay_s=BATCH_WINDOW_S,
            coalesce_key=f"email:{row['id']}",
        )
    return result


# -- NEW_MESSAGE, coalesced (issue 15) -------------------------------------------------------
#
# A send does not call notify() for a plain message: its own statement counts the message on
# the recipient's participant row (durable with the message, skipped when muted), and
# flush_message_notifications turns each conversation's count into one notify() call with
# `events=count`: a burst becomes one batch update, out of the send's transaction. It runs
# from the background writer (server/domain/message_notifier.py, every
# messaging.notify_coalesce_ms), inline in the send when the recipient is offline (their push
# leaves at once, as before), and before the recipient's own notification reads (they never
# read a list that misses a message they were sent). Reading or replying to the conversation
# clears its count: a notification about messages already read is not created.


async def flush_message_notifications(
    ctx: Context,
    tx: Transaction,
    *,
    recipient: uuid.UUID | None = None,
    conversation: uuid.UUID | None = None,
    limit: int = 200,
    skip_locked: bool = False,
) -> int:
    """Turn pending message counts into NEW_MESSAGE notifications (batched per conversation,
    rules and preferences applied by notify() as for any notification). Returns how many
    conversations' counts were claimed."""
    rows = await message_notify_store.claim(
        tx, recipient=recipient, conversation=conversation, limit=limit, skip_locked=skip_locked
    )
    for row in rows:
        # Muted since, or the message deleted since (its text must not leak into a preview).
        if row["muted"] or row["message_id"] is None or row["deleted_at"] is not None:
            continue
        content = row["content"] or MEDIA_PREVIEW.get(row["message_type"], "")
        await notify(
            ctx,
            tx,
            recipient_id=row["recipient_id"],
            actor_id=row["sender_id"],
            type=NotificationType.NEW_MESSAGE,
            entity_type="conversation",
            entity_id=row["conversation_id"],
            data={
                "conversation_id": str(row["conversation_id"]),
                "message_id": str(row["message_id"]),
                "message_preview": preview(content),
            },
            events=row["notify_count"],
        )
    return len(rows)


# Wakes the writers of this process (server/domain/message_notifier.py registers here): a
# count was left. The writer waits its coalescing window first, by which time the send has
# committed; one that has not yet is found by the writer's fallback pass.
message_count_listeners: list[Callable[[], None]] = []


async def notify_new_message_if_offline(
    ctx: Context, tx: Transaction, *, recipient: uuid.UUID, conversation: uuid.UUID
) -> None:
    """In the send's transaction: an offline recipient's count becomes its notification (and
    push job) now, as it always did; an online one's waits for the writer (they have the
    message live already)."""
    if not await _online(ctx, recipient):
        await flush_message_notifications(ctx, tx, recipient=recipient, conversation=conversation)
        return
    for wake in message_count_listeners:
        wake()


async def settle_pending(ctx: Context, recipient: uuid.UUID) -> None:
    """Before the recipient reads their notifications: write what the coalescing writer has
    not written yet (one indexed probe when there is nothing)."""
    if await message_notify_store.has_pending(ctx.db, recipient):
        async with ctx.db.transaction() as tx:
            await flush_message_notifications(ctx, tx, recipient=recipient)


async def clear_pending(
    ctx: Context, tx: Transaction, *, recipient: uuid.UUID, conversation: uuid.UUID
) -> None:
    """The recipient read the conversation: its pending count is moot."""
    await message_notify_store.clear(tx, conversation, recipient)


async def retract(
    ctx: Context,
    tx: Transaction,
    *,
    recipient_id: uuid.UUID,
    type: NotificationType | str,
    entity_type: str,
    entity_id: uuid.UUID,
    actor_id: uuid.UUID,
) -> None:
    """Undo an actor's part in a notification (an unlike, a deleted comment, an unfollow):
    the actor leaves the notification of that key; a notification left without actors goes."""
    rows = await store.rows_with_actor(
        tx,
        recipient=recipient_id,
        actor=actor_id,
        type=NotificationType(type).value,
        entity_type=entity_type,
        entity_id=entity_id,
    )
    await _remove_actor_from(ctx, tx, recipient_id, actor_id, rows)


async def mark_entity_read(
    ctx: Context,
    tx: Transaction,
    *,
    recipient_id: uuid.UUID,
    entity_type: str,
    entity_id: uuid.UUID,
) -> int:
    """The recipient has seen an entity elsewhere (opened the conversation, viewed the post):
    their notifications about it are read too. Returns how many changed."""
    rows = await store.mark_entity_read(tx, recipient_id, entity_type, entity_id)
    visible = [r for r in rows if r["visible"]]
    if visible:
        unread = await store.adjust_counter(tx, recipient_id, -len(visible))
        for row in visible:
            ctx.events.to_users(
                tx, [recipient_id], READ, {"id": str(row["id"]), "unread_count": unread}
            )
    return len(rows)


async def forget_entity(
    ctx: Context, tx: Transaction, *, entity_type: str, entity_id: uuid.UUID
) -> None:
    """Delete every notification about an entity that no longer exists (a deleted post)."""
    rows = await store.rows_for_entity(tx, entity_type, entity_id)
    if not rows:
        return
    await _delete_rows(ctx, tx, [r["id"] for r in rows])


async def on_blocked(ctx: Context, tx: Transaction, blocker: uuid.UUID, blocked: uuid.UUID) -> None:
    """A block ends what the two caused each other: each leaves the other's notifications."""
    for recipient, actor in sorted([(blocker, blocked), (blocked, blocker)]):
        rows = await store.rows_with_actor(tx, recipient=recipient, actor=actor)
        await _remove_actor_from(ctx, tx, recipient, actor, rows)


async def _remove_actor_from(
    ctx: Context, tx: Transaction, recipient: uuid.UUID, actor: uuid.UUID, rows: list[Row]
) -> None:
    gone: list[uuid.UUID] = []
    changed: list[uuid.UUID] = []
    for row in rows:
        if row["actor_count"] <= 1 or len(row["actor_ids"]) <= 1:
            gone.append(row["id"])
            continue
        updated = await store.remove_actor(tx, row["id"], actor)
        assert updated is not None  # rows_with_actor locked it in this transaction
        content = render(
            updated["type"],
            _usernames(updated["actors"]),
            updated["actor_count"],
            updated["event_count"],
            updated["data"],
        )
        await store.set_content(tx, row["id"], content)
        if updated["visible"]:
            changed.append(row["id"])
    if gone:
        await _delete_rows(ctx, tx, gone)
    if changed:
        unread = await store.unread_count(tx, recipient)
        for notification_id in changed:
            current = await store.get(tx, notification_id)
            assert current is not None  # locked by rows_with_actor in this transaction
            ctx.events.to_users(
                tx,
                [recipient],
                UPDATED,
                _jsonable({"notification": view(current), "unread_count": unread}),
            )


async def _delete_rows(ctx: Context, tx: Transaction, ids: list[uuid.UUID]) -> None:
    deleted = await store.delete_rows(tx, ids)
    by_user: dict[uuid.UUID, list[Row]] = {}
    for row in deleted:
        by_user.setdefault(row["recipient_id"], []).append(row)
    for user, rows in sorted(by_user.items()):
        dec = sum(1 for r in rows if not r["is_read"] and r["visible"])
        unread = await store.adjust_counter(tx, user, -dec)
        for r in rows:
            if r["visible"]:
                ctx.events.to_users(
                    tx, [user], DELETED, {"id": str(r["id"]), "unread_count": unread}
                )


# -- the notification center ---------------------------------------------------------------


def _decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        return datetime.fromisoformat(values[0]), uuid.UUID(str(values[1]))
    except (TypeError, ValueError):
        raise ValidationFailed.field("cursor", "is not a cursor this list produced") from None


async def list_notifications(
    ctx: Context,
    viewer: Principal,
    *,
    limit: int,
    cursor: str | None,
    unread: bool = False,
    types: list[str] | None = None,
    category: str | None = None,
) -> dict[str, Any]:
    """The viewer's notifications, latest activity first; keyset-paginated."""
    wanted: list[str] | None = None
    if types:
        try:
            wanted = sorted({NotificationType(t).value for t in types})
        except ValueError:
            raise ValidationFailed.field("type", "is not a notification type") from None
    if category:
        in_category = types_in({Category(category)})
        wanted = sorted(set(wanted) & set(in_category)) if wanted is not None else in_category
        if not wanted:
            return {"items": [], "next_cursor": None, "unread_count": 0}
    await settle_pending(ctx, viewer.user_id)
    rows = await store.list_page(
        ctx.db,
        viewer.user_id,
        limit=limit,
        after=_decode_cursor(cursor),
        unread_only=unread,
        types=wanted,
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last["latest_at"].isoformat(), str(last["id"]))
    return {
        "items": [view(row) for row in rows],
        "next_cursor": next_cursor,
        "unread_count": await store.unread_count(ctx.db, viewer.user_id),
    }


async def unread_count(ctx: Context, viewer: Principal) -> dict[str, int]:
    await settle_pending(ctx, viewer.user_id)
    return {"unread_count": await store.unread_count(ctx.db, viewer.user_id)}


async def mark_read(ctx: Context, viewer: Principal, notification_id: uuid.UUID) -> dict[str, Any]:
    """Mark one notification read (idempotent); other devices get `notification.read`."""
    async with ctx.db.transaction() as tx:
        row = await store.mark_read(tx, notification_id, viewer.user_id)
        if row is None:
            raise NotFound("No such notification.")
        if row["changed"] and row["visible"]:
            unread = await store.adjust_counter(tx, viewer.user_id, -1)
            ctx.events.to_users(
                tx, [viewer.user_id], READ, {"id": str(notification_id), "unread_count": unread}
            )
        else:
            unread = await store.unread_count(tx, viewer.user_id)
    return {
        "id": notification_id,
        "is_read": True,
        "read_at": row["read_at"],
        "unread_count": unread,
    }


async def mark_all_read(ctx: Context, viewer: Principal) -> dict[str, int]:
    async with ctx.db.transaction() as tx:
        changed = await store.mark_all_read(tx, viewer.user_id)
        unread = await store.adjust_counter(tx, viewer.user_id, -changed)
        if changed:
            ctx.events.to_users(
                tx, [viewer.user_id], READ_ALL, {"marked": changed, "unread_count": unread}
            )
    return {"marked": changed, "unread_count": unread}


async def delete(ctx: Context, viewer: Principal, notification_id: uuid.UUID) -> None:
    async with ctx.db.transaction() as tx:
        row = await store.delete(tx, notification_id, viewer.user_id)
        if row is None:
            raise NotFound("No such notification.")
        dec = 1 if not row["is_read"] and row["visible"] else 0
        unread = await store.adjust_counter(tx, viewer.user_id, -dec)
        if row["visible"]:
            ctx.events.to_users(
                tx, [viewer.user_id], DELETED, {"id": str(notification_id), "unread_count": unread}
            )


async def get_settings(ctx: Context, viewer: Principal) -> NotificationSettings:
    return effective_settings(await store.get_settings(ctx.db, viewer.user_id))


async def update_settings(
    ctx: Context, viewer: Principal, patch: SettingsPatch
) -> NotificationSettings:
    async with ctx.db.transaction() as tx:
        stored = await store.lock_settings(tx, viewer.user_id)
        merged = merge_patch(stored, patch)
        await store.save_settings(tx, viewer.user_id, merged)
    return effective_settings(merged)
