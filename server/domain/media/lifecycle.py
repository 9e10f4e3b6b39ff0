"""A media's life after upload: attached (to a message, a profile picture or cover photo; posts
next), released when what showed it goes, and purged once nothing refers to it.

- unattached uploads are purged `media.unattached_ttl_s` (24 h) after upload;
- a message deleted for everyone releases its media, purged after the spec's retention of
  deleted messages (90 days) unless a forward still shows it;
- a replaced profile picture or cover photo is released for purging at once.
The purge is a periodic job on the clock (`ctx.clock`): due rows are deleted and their stored
objects handed to a deletion job in the same commit, so no object outlives its row for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from server.domain import access, accounts
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.media.intake import spool_dir
from server.domain.media.views import main_urls
from server.errors import NotFound, ValidationFailed
from server.ids import new_id
from server.jobs.queue import enqueue
from server.store import media as store
from server.store import users as users_store
from server.store.db import Row, Transaction

log = logging.getLogger(__name__)

MAX_MESSAGE_MEDIA = 10
PURGE_BATCH = 200
# Infrastructure age (real time, not ctx.clock): a spool file untouched this long is orphaned.
SPOOL_MAX_AGE_S = 6 * 3600
ProfileSlot = Literal["profile_picture", "cover_photo"]


def check_message_media(message_type: str | None, media_ids: Sequence[uuid.UUID]) -> str:
    """The message type of a message with these attachments (`image` or `video`)."""
    if len(set(media_ids)) != len(media_ids):
        raise ValidationFailed.field("media_ids", "lists the same media twice")
    if not 1 <= len(media_ids) <= MAX_MESSAGE_MEDIA:
        raise ValidationFailed.field("media_ids", f"holds 1 to {MAX_MESSAGE_MEDIA} media")
    if message_type not in (None, "image", "video"):
        raise ValidationFailed.field("message_type", "a message with media is image or video")
    return message_type or "image"


async def attach_to_message(
    ctx: Context,
    tx: Transaction,
    actor: Principal,
    message_id: uuid.UUID,
    message_type: str,
    media_ids: Sequence[uuid.UUID],
) -> list[Row]:
    """Attach the actor's own ready media to a new message (in its transaction); returns the
    attachments as message views list them."""
    rows = await store.lock_many(tx, media_ids)
    access.check_attachable(actor, rows, list(media_ids))
    by_id = {row["id"]: row for row in rows}
    ordered = [by_id[media_id] for media_id in media_ids]
    kinds = {row["media_type"] for row in ordered}
    if kinds != {message_type}:
        raise ValidationFailed.field(
            "media_ids", f"an {message_type} message holds {message_type}s only"
        )
    if message_type == "video" and len(ordered) > 1:
        raise ValidationFailed.field("media_ids", "a video message holds one video")
    items = []
    for row in ordered:
        url, thumbnail_url = main_urls(ctx, row)
        items.append(
            {
                "id": new_id(),
                "media_id": row["id"],
                "media_type": row["media_type"],
                "media_url": url,
                "thumbnail_url": thumbnail_url,
                "file_name": row["file_name"],
                "file_size": row["byte_size"],
            }
        )
    attachments = await store.insert_message_media(tx, message_id, items)
    await store.mark_attached(tx, list(media_ids), ctx.clock.now())
    return attachments


async def message_media_ids(tx: Transaction, message_id: uuid.UUID) -> list[uuid.UUID]:
    """The media a message shows (read before its attachments are deleted)."""
    return await store.message_media_ids(tx, message_id)


async def release_message_media(ctx: Context, tx: Transaction, media_ids: list[uuid.UUID]) -> None:
    """A message's attachments are gone (deleted for everyone): purge its media after the
    retention of deleted messages, unless something else still shows them."""
    if media_ids:
        retention = timedelta(seconds=ctx.settings.media.released_message_retention_s)
        await store.release(tx, media_ids, ctx.clock.now() + retention)


async def set_profile_media(
    ctx: Context, actor: Principal, slot: ProfileSlot, media_id: uuid.UUID | None
) -> dict[str, Any]:
    """Show one of your ready images as your profile picture or cover photo (None clears it);
    the one it replaces is released for purging. Returns your profile."""
    async with ctx.db.transaction() as tx:
        url = None
        if media_id is not None:
            rows = await store.lock_many(tx, [media_id])
            access.check_attachable(actor, rows, [media_id])
            row = rows[0]
            if row["media_type"] != "image":
                raise ValidationFailed.field("media_id", "must be an image")
            sizes = (row["variants"] or {}).get("sizes") or {}
            # The picture is shown small, the cover wide.
            url = ctx.storage.url(sizes["medium" if slot == "profile_picture" else "large"]["jpeg"])
            await store.mark_attached(tx, [media_id], ctx.clock.now())
        previous = await store.set_profile_media(tx, actor.user_id, slot, media_id, url)
        if previous is not None and previous != media_id:
            await store.release(tx, [previous], ctx.clock.now())
        user = await users_store.get_by_id(tx, actor.user_id)
        if user is None:
            raise NotFound("No such user.")
    return accounts.profile_view(user, actor.user_id)


# Jobs ---------------------------------------------------------------------------------------


async def purge_job(ctx: Context, payload: dict[str, Any]) -> None:
    """Periodic `media.purge`: delete media due for purging (and expired resumable uploads)."""
    now = ctx.clock.now()
    while True:
        async with ctx.db.transaction() as tx:
            rows = await store.take_due_for_purge(tx, now, PURGE_BATCH)
            keys = [key for row in rows for key in _object_keys(row)]
            if keys:
                await enqueue(tx, "media.delete_objects", {"keys": keys})
        if rows:
            log.info("media purged", extra={"count": len(rows)})
        if len(rows) < PURGE_BATCH:
            break
    async with ctx.db.transaction() as tx:
        expired = await store.take_expired_uploads(tx, now, 1000)
    for upload in expired:
        with contextlib.suppress(FileNotFoundError):
            upload_path(ctx, upload["id"]).unlink()
    await asyncio.to_thread(_sweep_spool, spool_dir(ctx), time.time() - SPOOL_MAX_AGE_S)


def _sweep_spool(spool: Path, older_than: float) -> None:
    """Spool files a crashed process left behind (one-request uploads cut by a restart)."""
    for path in spool.glob("*.part"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_mtime < older_than:
                path.unlink()


def _object_keys(row: Row) -> list[str]:
    keys = list((row["variants"] or {}).get("keys") or [])
    if row["source_key"]:
        keys.append(row["source_key"])
    return keys


async def delete_objects_job(ctx: Context, payload: dict[str, Any]) -> None:
    """`media.delete_objects`: remove stored objects (retried while storage is down)."""
    await ctx.storage.delete(list(payload["keys"]))


def upload_path(ctx: Context, upload_id: uuid.UUID) -> Path:
    """Where the bytes of a resumable upload accumulate."""
    return spool_dir(ctx) / f"tus-{upload_id}"
