"""Likes, bookmarks (with collections) and hidden posts. Each write moves its counter in the
same statement as its row (a CTE), so counts stay exact under any concurrency: a like that was
already there changes nothing, a new one adds exactly one."""

from __future__ import annotations

import uuid
from datetime import datetime

from server.store.db import Queries, Row
from server.store.visibility import post_visible_to

# Likes ------------------------------------------------------------------------------------


async def has_liked(q: Queries, post_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    return await q.fetchval(
        "SELECT EXISTS (SELECT 1 FROM post_likes WHERE post_id = %s AND user_id = %s)",
        (post_id, user_id),
    )


async def add_like(
    q: Queries, post_id: uuid.UUID, user_id: uuid.UUID, at: datetime, *, authors: list[uuid.UUID]
) -> int | None:
    """Like the post, counting it on the post and in its authors' `likes_received`, in one
    statement; the new likes_count, or None if it was already liked."""
    return await q.fetchval(
        """WITH liked AS (
               INSERT INTO post_likes (post_id, user_id, created_at) VALUES (%(p)s, %(u)s, %(at)s)
               ON CONFLICT DO NOTHING RETURNING post_id),
           received AS (
               UPDATE users SET likes_received = likes_received + 1
               WHERE id = ANY(%(authors)s) AND EXISTS (SELECT 1 FROM liked))
           UPDATE posts SET likes_count = likes_count + 1
           FROM liked WHERE posts.id = liked.post_id RETURNING posts.likes_count""",
        {"p": post_id, "u": user_id, "at": at, "authors": authors},
    )


async def remove_like(
    q: Queries, post_id: uuid.UUID, user_id: uuid.UUID, *, authors: list[uuid.UUID]
) -> int | None:
    """Unlike (uncounting it as `add_like` counted it); the new likes_count, or None if it was
    not liked."""
    return await q.fetchval(
        """WITH gone AS (
               DELETE FROM post_likes WHERE post_id = %(p)s AND user_id = %(u)s
               RETURNING post_id),
           received AS (
               UPDATE users SET likes_received = greatest(likes_received - 1, 0)
               WHERE id = ANY(%(authors)s) AND EXISTS (SELECT 1 FROM gone))
           UPDATE posts SET likes_count = greatest(likes_count - 1, 0)
           FROM gone WHERE posts.id = gone.post_id RETURNING posts.likes_count""",
        {"p": post_id, "u": user_id, "authors": authors},
    )


async def likers(
    q: Queries,
    post_id: uuid.UUID,
    viewer: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Row]:
    """Who liked the post, newest first, without users the viewer and they blocked either way
    (post_likes_list_idx)."""
    return await q.fetch(
        """SELECT l.created_at AS liked_at, u.id, u.username, u.display_name,
                  u.profile_picture_url, u.is_verified
           FROM post_likes l JOIN users u ON u.id = l.user_id
           WHERE l.post_id = %(p)s AND u.is_active
             AND (%(t)s::timestamptz IS NULL OR (l.created_at, l.user_id) < (%(t)s, %(i)s))
             AND NOT EXISTS (SELECT 1 FROM blocks b
                             WHERE (b.blocker_id = %(v)s AND b.blocked_id = l.user_id)
                                OR (b.blocker_id = l.user_id AND b.blocked_id = %(v)s))
           ORDER BY l.created_at DESC, l.user_id DESC LIMIT %(limit)s""",
        {
            "p": post_id,
            "v": viewer,
            "t": before[0] if before else None,
            "i": before[1] if before else None,
            "limit": limit,
        },
    )


async def product_sellers(q: Queries, post_id: uuid.UUID) -> list[uuid.UUID]:
    """The owners of the products the post links (for the product interaction notifications)."""
    rows = await q.fetch(
        """SELECT DISTINCT pr.owner_id FROM post_products pp
           JOIN products pr ON pr.id = pp.product_id WHERE pp.post_id = %s""",
        (post_id,),
    )
    return [row["owner_id"] for row in rows]


async def viewer_marks(
    q: Queries, post_ids: list[uuid.UUID], viewer: uuid.UUID
) -> dict[uuid.UUID, set[str]]:
    """For a page of posts, which the viewer liked / bookmarked (one query)."""
    if not post_ids:
        return {}
    rows = await q.fetch(
        """SELECT post_id, 'liked' AS mark FROM post_likes
           WHERE user_id = %(v)s AND post_id = ANY(%(ids)s)
           UNION ALL
           SELECT post_id, 'bookmarked' FROM bookmarks
           WHERE user_id = %(v)s AND post_id = ANY(%(ids)s)""",
        {"v": viewer, "ids": post_ids},
    )
    marks: dict[uuid.UUID, set[str]] = {}
    for row in rows:
        marks.setdefault(row["post_id"], set()).add(row["mark"])
    return marks


# Bookmarks --------------------------------------------------------------------------------

BOOKMARK_COLUMNS = "b.id, b.user_id, b.post_id, b.collection_id, b.created_at"


async def add_bookmark(
    q: Queries,
    bookmark_id: uuid.UUID,
    user_id: uuid.UUID,
    post_id: uuid.UUID,
    collection_id: uuid.UUID | None,
    at: datetime,
) -> Row | None:
    """Bookmark the post (counting it on the post and its collection); None if already there."""
    return await q.fetchrow(
        f"""WITH b AS (
               INSERT INTO bookmarks (id, user_id, post_id, collection_id, created_at)
               VALUES (%(id)s, %(u)s, %(p)s, %(c)s, %(at)s)
               ON CONFLICT (user_id, post_id) DO NOTHING
               RETURNING id, user_id, post_id, collection_id, created_at),
           counted AS (
               UPDATE posts SET bookmarks_count = bookmarks_count + 1
               FROM b WHERE posts.id = b.post_id),
           filed AS (
               UPDATE bookmark_collections c SET bookmarks_count = c.bookmarks_count + 1
               FROM b WHERE c.id = b.collection_id)
           SELECT {BOOKMARK_COLUMNS} FROM b""",
        {"id": bookmark_id, "u": user_id, "p": post_id, "c": collection_id, "at": at},
    )


async def get_bookmark(q: Queries, user_id: uuid.UUID, post_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        f"SELECT {BOOKMARK_COLUMNS} FROM bookmarks b WHERE b.user_id = %s AND b.post_id = %s",
        (user_id, post_id),
    )


async def remove_bookmark(q: Queries, user_id: uuid.UUID, post_id: uuid.UUID) -> bool:
    return bool(
        await q.fetchval(
            """WITH gone AS (
                   DELETE FROM bookmarks WHERE user_id = %(u)s AND post_id = %(p)s
                   RETURNING post_id, collection_id),
               counted AS (
                   UPDATE posts SET bookmarks_count = greatest(bookmarks_count - 1, 0)
                   FROM gone WHERE posts.id = gone.post_id),
               unfiled AS (
                   UPDATE bookmark_collections c
                   SET bookmarks_count = greatest(c.bookmarks_count - 1, 0)
                   FROM gone WHERE c.id = gone.collection_id)
               SELECT count(*) FROM gone""",
            {"u": user_id, "p": post_id},
        )
    )


async def move_bookmark(
    q: Queries, user_id: uuid.UUID, bookmark_id: uuid.UUID, collection_id: uuid.UUID | None
) -> Row | None:
    """File the bookmark in `collection_id` (None: no collection), moving the counts."""
    return await q.fetchrow(
        f"""WITH old AS (
               SELECT id, collection_id FROM bookmarks
               WHERE id = %(b)s AND user_id = %(u)s FOR UPDATE),
           moved AS (
               UPDATE bookmarks b SET collection_id = %(c)s FROM old WHERE b.id = old.id
               RETURNING {BOOKMARK_COLUMNS}, old.collection_id AS previous),
           unfiled AS (
               UPDATE bookmark_collections c
               SET bookmarks_count = greatest(c.bookmarks_count - 1, 0)
               FROM moved WHERE c.id = moved.previous
                 AND moved.previous IS DISTINCT FROM %(c)s),
           filed AS (
               UPDATE bookmark_collections c SET bookmarks_count = c.bookmarks_count + 1
               FROM moved WHERE c.id = %(c)s AND moved.previous IS DISTINCT FROM %(c)s)
           SELECT id, user_id, post_id, collection_id, created_at FROM moved""",
        {"b": bookmark_id, "u": user_id, "c": collection_id},
    )


async def bookmarks_page(
    q: Queries,
    user_id: uuid.UUID,
    collection_id: uuid.UUID | None,
    before: uuid.UUID | None,
    limit: int,
) -> list[Row]:
    """The user's bookmarks (of one collection, or all), newest first, only of posts they may
    still see (a post deleted or out of reach drops out of the list)."""
    visible, params = post_visible_to(user_id)
    in_collection = "AND b.collection_id = %(c)s" if collection_id is not None else ""
    return await q.fetch(
        f"""SELECT {BOOKMARK_COLUMNS} FROM bookmarks b JOIN posts p ON p.id = b.post_id
            WHERE b.user_id = %(u)s {in_collection}
              AND (%(before)s::uuid IS NULL OR b.id < %(before)s) AND {visible}
            ORDER BY b.id DESC LIMIT %(limit)s""",
        {"u": user_id, "c": collection_id, "before": before, "limit": limit, **params},
    )


# Collections ------------------------------------------------------------------------------

COLLECTION_COLUMNS = "id, user_id, name, bookmarks_count, created_at, updated_at"


async def create_collection(
    q: Queries, collection_id: uuid.UUID, user_id: uuid.UUID, name: str, at: datetime
) -> Row | None:
    """The new collection, or None if the user has one of that name (any case)."""
    return await q.fetchrow(
        f"""INSERT INTO bookmark_collections (id, user_id, name, created_at, updated_at)
            VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING {COLLECTION_COLUMNS}""",
        (collection_id, user_id, name, at, at),
    )


async def get_collection(q: Queries, user_id: uuid.UUID, collection_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        f"SELECT {COLLECTION_COLUMNS} FROM bookmark_collections WHERE id = %s AND user_id = %s",
        (collection_id, user_id),
    )


async def collections(
    q: Queries, user_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[Row]:
    return await q.fetch(
        f"""SELECT {COLLECTION_COLUMNS} FROM bookmark_collections
            WHERE user_id = %(u)s AND (%(before)s::uuid IS NULL OR id < %(before)s)
            ORDER BY id DESC LIMIT %(limit)s""",
        {"u": user_id, "before": before, "limit": limit},
    )


async def rename_collection(
    q: Queries, user_id: uuid.UUID, collection_id: uuid.UUID, name: str, at: datetime
) -> Row | None:
    return await q.fetchrow(
        f"""UPDATE bookmark_collections SET name = %s, updated_at = %s
            WHERE id = %s AND user_id = %s RETURNING {COLLECTION_COLUMNS}""",
        (name, at, collection_id, user_id),
    )


async def delete_collection(
    q: Queries, user_id: uuid.UUID, collection_id: uuid.UUID, *, with_bookmarks: bool
) -> bool:
    """Delete the collection; its bookmarks go too (uncounted on their posts), or stay,
    unfiled."""
    if with_bookmarks:
        await q.execute(
            """WITH gone AS (
                   DELETE FROM bookmarks WHERE collection_id = %s AND user_id = %s
                   RETURNING post_id)
               UPDATE posts SET bookmarks_count = greatest(bookmarks_count - 1, 0)
               FROM gone WHERE posts.id = gone.post_id""",
            (collection_id, user_id),
        )
    deleted = await q.execute(
        "DELETE FROM bookmark_collections WHERE id = %s AND user_id = %s",
        (collection_id, user_id),
    )
    return deleted > 0


# Hidden posts -----------------------------------------------------------------------------


async def hide(q: Queries, user_id: uuid.UUID, post_id: uuid.UUID, at: datetime) -> None:
    await q.execute(
        """INSERT INTO post_hides (user_id, post_id, created_at) VALUES (%s, %s, %s)
           ON CONFLICT DO NOTHING""",
        (user_id, post_id, at),
    )


async def unhide(q: Queries, user_id: uuid.UUID, post_id: uuid.UUID) -> None:
    await q.execute(
        "DELETE FROM post_hides WHERE user_id = %s AND post_id = %s", (user_id, post_id)
    )


# Reconciliation ---------------------------------------------------------------------------


async def reconcile_post_counters(
    q: Queries, after: uuid.UUID | None, batch: int
) -> tuple[uuid.UUID | None, int]:
    """Recount likes, comments, reposts and bookmarks of the next `batch` posts after `after`
    (by id) and fix those that drifted. Returns (the last id seen or None at the end, fixed)."""
    rows = await q.fetch(
        """WITH slice AS (
               SELECT id FROM posts WHERE (%(after)s::uuid IS NULL OR id > %(after)s)
               ORDER BY id LIMIT %(batch)s),
           truth AS (
               SELECT s.id,
                   (SELECT count(*) FROM post_likes l WHERE l.post_id = s.id) AS likes,
                   (SELECT count(*) FROM comments c
                    WHERE c.post_id = s.id AND c.deleted_at IS NULL) AS comments,
                   (SELECT count(*) FROM posts r
                    WHERE r.original_post_id = s.id AND r.deleted_at IS NULL) AS reposts,
                   (SELECT count(*) FROM bookmarks b WHERE b.post_id = s.id) AS bookmarks
               FROM slice s),
           fixed AS (
               UPDATE posts p SET likes_count = t.likes, comments_count = t.comments,
                   reposts_count = t.reposts, bookmarks_count = t.bookmarks
               FROM truth t
               WHERE p.id = t.id AND (p.likes_count, p.comments_count, p.reposts_count,
                   p.bookmarks_count) IS DISTINCT FROM (t.likes, t.comments, t.reposts,
                   t.bookmarks)
               RETURNING p.id)
           SELECT (SELECT max(id::text) FROM slice) AS last,
                  (SELECT count(*) FROM fixed) AS fixed""",
        {"after": after, "batch": batch},
    )
    last = rows[0]["last"]
    return (uuid.UUID(last) if last else None), rows[0]["fixed"]
