"""Media rows (uploads, their variants and lifecycle) and resumable uploads in flight."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from server.store.db import Queries, Row, jsonb

COLUMNS = """id, owner_id, media_type, status, failure_reason, content_type, byte_size,
    file_name, width, height, duration_s, blurhash, variants, source_key, attached_at,
    purge_after, created_at, updated_at"""

# Somewhere a media is shown from: a message attachment, a profile picture or cover photo.
_REFERENCED = """(EXISTS (SELECT 1 FROM message_media mm WHERE mm.media_id = media.id)
    OR EXISTS (SELECT 1 FROM users u WHERE u.profile_picture_media_id = media.id)
    OR EXISTS (SELECT 1 FROM users u WHERE u.cover_photo_media_id = media.id)
    OR EXISTS (SELECT 1 FROM post_media pm JOIN posts p ON p.id = pm.post_id
               WHERE pm.media_id = media.id AND p.deleted_at IS NULL))"""


async def lock_owner_quota(q: Queries, owner_id: uuid.UUID) -> None:
    """Serialise one owner's quota checks until the transaction ends."""
    await q.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('media-quota:' || %s::text, 0))",
        (owner_id,),
    )


async def bytes_used(q: Queries, owner_id: uuid.UUID) -> int:
    """What counts against the quota: media kept (not failed) and uploads in flight."""
    value = await q.fetchval(
        """SELECT (SELECT coalesce(sum(byte_size), 0) FROM media
                   WHERE owner_id = %(o)s AND status <> 'failed')
                + (SELECT coalesce(sum(upload_length), 0) FROM media_uploads
                   WHERE owner_id = %(o)s)""",
        {"o": owner_id},
    )
    return int(value or 0)


async def insert(q: Queries, **fields: Any) -> Row:
    return await q.fetchrow_one(
        f"""INSERT INTO media (id, owner_id, media_type, status, content_type, byte_size,
                file_name, width, height, duration_s, source_key, purge_after, created_at,
                updated_at)
            VALUES (%(id)s, %(owner_id)s, %(media_type)s, 'processing', %(content_type)s,
                %(byte_size)s, %(file_name)s, %(width)s, %(height)s, %(duration_s)s,
                %(source_key)s, %(purge_after)s, %(now)s, %(now)s)
            RETURNING {COLUMNS}""",
        fields,
    )


async def get(q: Queries, media_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(f"SELECT {COLUMNS} FROM media WHERE id = %s", (media_id,))


async def lock(q: Queries, media_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(f"SELECT {COLUMNS} FROM media WHERE id = %s FOR UPDATE", (media_id,))


async def lock_many(q: Queries, media_ids: Sequence[uuid.UUID]) -> list[Row]:
    return await q.fetch(
        f"SELECT {COLUMNS} FROM media WHERE id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE",
        (list(media_ids),),
    )


async def mark_ready(
    q: Queries,
    media_id: uuid.UUID,
    *,
    variants: dict[str, Any],
    width: int | None,
    height: int | None,
    duration_s: float | None,
    blurhash: str | None,
    now: datetime,
) -> Row | None:
    """processing -> ready (None when it is not processing any more: a rerun, or purged)."""
    return await q.fetchrow(
        f"""UPDATE media SET status = 'ready', variants = %(v)s, width = %(w)s, height = %(h)s,
                duration_s = coalesce(%(d)s, duration_s), blurhash = %(b)s, source_key = NULL,
                updated_at = %(now)s
            WHERE id = %(id)s AND status = 'processing' RETURNING {COLUMNS}""",
        {
            "id": media_id,
            "v": jsonb(variants),
            "w": width,
            "h": height,
            "d": duration_s,
            "b": blurhash,
            "now": now,
        },
    )


async def mark_failed(q: Queries, media_id: uuid.UUID, reason: str, now: datetime) -> Row | None:
    """processing -> failed (nothing of it is served; purged like an unattached upload)."""
    return await q.fetchrow(
        f"""UPDATE media SET status = 'failed', failure_reason = %(r)s, source_key = NULL,
                variants = '{{}}'::jsonb, updated_at = %(now)s
            WHERE id = %(id)s AND status = 'processing' RETURNING {COLUMNS}""",
        {"id": media_id, "r": reason[:500], "now": now},
    )


async def mark_attached(q: Queries, media_ids: Sequence[uuid.UUID], now: datetime) -> None:
    await q.execute(
        """UPDATE media SET attached_at = coalesce(attached_at, %(now)s), purge_after = NULL,
               updated_at = %(now)s
           WHERE id = ANY(%(ids)s::uuid[])""",
        {"ids": list(media_ids), "now": now},
    )


async def release(q: Queries, media_ids: Sequence[uuid.UUID], purge_after: datetime) -> int:
    """Schedule the purge of these media where nothing shows them any more."""
    return await q.execute(
        f"""UPDATE media SET purge_after = %(at)s, updated_at = %(at)s
            WHERE id = ANY(%(ids)s::uuid[]) AND NOT {_REFERENCED}""",
        {"ids": list(media_ids), "at": purge_after},
    )


async def take_due_for_purge(q: Queries, now: datetime, limit: int) -> list[Row]:
    """Delete up to `limit` media due for purging that nothing refers to; returns them (their
    stored objects are the caller's to delete)."""
    return await q.fetch(
        f"""DELETE FROM media WHERE id IN (
              SELECT id FROM media
              WHERE purge_after <= %(now)s AND NOT {_REFERENCED}
              ORDER BY purge_after LIMIT %(n)s FOR UPDATE SKIP LOCKED)
            RETURNING {COLUMNS}""",
        {"now": now, "n": limit},
    )


async def message_media_ids(q: Queries, message_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await q.fetch(
        "SELECT media_id FROM message_media WHERE message_id = %s AND media_id IS NOT NULL",
        (message_id,),
    )
    return [r["media_id"] for r in rows]


async def insert_message_media(
    q: Queries, message_id: uuid.UUID, items: Sequence[dict[str, Any]]
) -> list[Row]:
    """A message's attachments, in order; returns them as message views list them."""
    rows = []
    for position, item in enumerate(items):
        rows.append(
            await q.fetchrow_one(
                """INSERT INTO message_media (id, message_id, media_id, media_type, media_url,
                       thumbnail_url, file_name, file_size, position)
                   VALUES (%(id)s, %(m)s, %(media_id)s, %(media_type)s, %(media_url)s,
                       %(thumbnail_url)s, %(file_name)s, %(file_size)s, %(p)s)
                   RETURNING id, media_id, media_type, media_url, thumbnail_url, file_name,
                       file_size""",
                {**item, "m": message_id, "p": position},
            )
        )
    await q.execute("UPDATE messages SET media_count = %s WHERE id = %s", (len(rows), message_id))
    return rows


async def set_profile_media(
    q: Queries, user_id: uuid.UUID, field: str, media_id: uuid.UUID | None, url: str | None
) -> uuid.UUID | None:
    """Point the profile picture or cover photo at a media; returns the media it replaced."""
    columns = {
        "profile_picture": ("profile_picture_media_id", "profile_picture_url"),
        "cover_photo": ("cover_photo_media_id", "cover_photo_url"),
    }[field]
    media_col, url_col = columns
    return await q.fetchval(
        f"""UPDATE users u SET {media_col} = %(m)s, {url_col} = %(url)s, updated_at = now()
            FROM (SELECT {media_col} AS old FROM users WHERE id = %(u)s FOR UPDATE) prev
            WHERE u.id = %(u)s RETURNING prev.old""",
        {"u": user_id, "m": media_id, "url": url},
    )


# Resumable uploads ------------------------------------------------------------------------


async def insert_upload(q: Queries, **fields: Any) -> Row:
    return await q.fetchrow_one(
        """INSERT INTO media_uploads (id, owner_id, upload_length, file_name, created_at,
               expires_at)
           VALUES (%(id)s, %(owner_id)s, %(upload_length)s, %(file_name)s, %(now)s,
               %(expires_at)s)
           RETURNING *""",
        fields,
    )


async def get_upload(q: Queries, upload_id: uuid.UUID) -> Row | None:
    return await q.fetchrow("SELECT * FROM media_uploads WHERE id = %s", (upload_id,))


async def delete_upload(q: Queries, upload_id: uuid.UUID) -> bool:
    return bool(await q.execute("DELETE FROM media_uploads WHERE id = %s", (upload_id,)))


async def take_expired_uploads(q: Queries, now: datetime, limit: int) -> list[Row]:
    return await q.fetch(
        """DELETE FROM media_uploads WHERE id IN (
             SELECT id FROM media_uploads WHERE expires_at <= %(now)s
             ORDER BY expires_at LIMIT %(n)s FOR UPDATE SKIP LOCKED)
           RETURNING id""",
        {"now": now, "n": limit},
    )
