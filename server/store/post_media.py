"""Media on posts, in order, and the image tags on them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from server.ids import new_id
from server.store.db import Queries, Row
from server.store.media import COLUMNS as MEDIA_COLUMNS

TAG_COLUMNS = """t.id, t.post_id, t.media_id, t.tag_type, t.user_id, t.product_id, t.shop_id,
    t.x_position, t.y_position, t.created_by, t.created_at"""


async def replace(
    q: Queries, post_id: uuid.UUID, media_ids: Sequence[uuid.UUID], at: datetime
) -> list[uuid.UUID]:
    """The post shows `media_ids`, in this order; returns the media it no longer shows (their
    tags go with them)."""
    gone = await q.fetch(
        """DELETE FROM post_media WHERE post_id = %(post)s AND NOT (media_id = ANY(%(ids)s))
           RETURNING media_id""",
        {"post": post_id, "ids": list(media_ids)},
    )
    # Orders are unique per post: park the kept rows out of the way, then set them.
    await q.execute(
        "UPDATE post_media SET media_order = media_order + 1000 WHERE post_id = %s", (post_id,)
    )
    await q.execute(
        """INSERT INTO post_media (post_id, media_id, media_order, created_at)
           SELECT %(post)s, m.id, m.n - 1, %(at)s
           FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS m (id, n)
           ON CONFLICT (post_id, media_id) DO UPDATE SET media_order = EXCLUDED.media_order""",
        {"post": post_id, "ids": list(media_ids), "at": at},
    )
    return [row["media_id"] for row in gone]


async def media_ids(q: Queries, post_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await q.fetch(
        "SELECT media_id FROM post_media WHERE post_id = %s ORDER BY media_order", (post_id,)
    )
    return [row["media_id"] for row in rows]


async def of_posts(q: Queries, post_ids: list[uuid.UUID]) -> list[Row]:
    """The media of a page of posts, in order, with the columns a post draws of them (one
    query; not the whole media row: its timestamps and ids cost a page more to decode than
    anything it shows)."""
    if not post_ids:
        return []
    return await q.fetch(
        """SELECT pm.post_id, pm.media_order, m.id, m.media_type, m.status, m.width, m.height,
                  m.duration_s, m.blurhash, m.variants
            FROM post_media pm JOIN media m ON m.id = pm.media_id
            WHERE pm.post_id = ANY(%s) ORDER BY pm.post_id, pm.media_order""",
        (post_ids,),
    )


async def post_media(q: Queries, post_id: uuid.UUID, media_id: uuid.UUID) -> Row | None:
    columns = ", ".join(f"m.{c.strip()}" for c in MEDIA_COLUMNS.split(","))
    return await q.fetchrow(
        f"""SELECT {columns} FROM post_media pm JOIN media m ON m.id = pm.media_id
            WHERE pm.post_id = %s AND pm.media_id = %s""",
        (post_id, media_id),
    )


# Tags -------------------------------------------------------------------------------------


async def add_tag(
    q: Queries,
    *,
    post_id: uuid.UUID,
    media_id: uuid.UUID,
    tag_type: str,
    target: uuid.UUID,
    x: Decimal,
    y: Decimal,
    created_by: uuid.UUID,
    at: datetime,
) -> Row:
    column = {"user": "user_id", "product": "product_id", "shop": "shop_id"}[tag_type]
    return await q.fetchrow_one(
        f"""INSERT INTO image_tags AS t (id, post_id, media_id, tag_type, {column}, x_position,
                y_position, created_by, created_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING {TAG_COLUMNS}""",
        (new_id(), post_id, media_id, tag_type, target, x, y, created_by, at),
    )


async def count_tags(q: Queries, post_id: uuid.UUID, media_id: uuid.UUID) -> int:
    return await q.fetchval(
        "SELECT count(*) FROM image_tags WHERE post_id = %s AND media_id = %s",
        (post_id, media_id),
    )


async def tags_of(q: Queries, post_ids: list[uuid.UUID], viewer: uuid.UUID) -> list[Row]:
    """The tags on a page of posts' images, without users the viewer and they blocked either
    way (one query)."""
    if not post_ids:
        return []
    return await q.fetch(
        f"""SELECT {TAG_COLUMNS}, u.username AS user_username, p.name AS product_name,
                   s.handle AS shop_handle
            FROM image_tags t
            LEFT JOIN users u ON u.id = t.user_id
            LEFT JOIN products p ON p.id = t.product_id
            LEFT JOIN shops s ON s.id = t.shop_id
            WHERE t.post_id = ANY(%(ids)s)
              AND (t.user_id IS NULL OR NOT EXISTS (
                  SELECT 1 FROM blocks b
                  WHERE (b.blocker_id = %(v)s AND b.blocked_id = t.user_id)
                     OR (b.blocker_id = t.user_id AND b.blocked_id = %(v)s)))
            ORDER BY t.post_id, t.media_id, t.id""",
        {"ids": post_ids, "v": viewer},
    )


async def get_tag(q: Queries, tag_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(f"SELECT {TAG_COLUMNS} FROM image_tags t WHERE t.id = %s", (tag_id,))


async def delete_tag(q: Queries, tag_id: uuid.UUID) -> bool:
    return await q.execute("DELETE FROM image_tags WHERE id = %s", (tag_id,)) > 0
