"""Comments on posts and their likes. A comment row is kept when deleted (`deleted_at`): with
replies it stays as a placeholder, without it is left out of every list. Counters (the post's
`comments_count`, a comment's `replies_count` and `likes_count`) move with their rows.

Lists leave out comments whose author and the viewer blocked each other (either way)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from server.store.db import Queries, Row, jsonb

COLUMNS = """c.id, c.post_id, c.author_id, c.parent_id, c.depth, c.content, c.entities,
    c.likes_count, c.replies_count, c.edited_at, c.created_at, c.deleted_at"""

# Shown: not deleted, or deleted but with replies to hold together (a placeholder).
_SHOWN = "(c.deleted_at IS NULL OR c.replies_count > 0)"


def _unblocked(viewer_param: str = "v") -> str:
    return f"""NOT EXISTS (SELECT 1 FROM blocks b
                WHERE (b.blocker_id = %({viewer_param})s AND b.blocked_id = c.author_id)
                   OR (b.blocker_id = c.author_id AND b.blocked_id = %({viewer_param})s))"""


async def insert(q: Queries, values: dict[str, Any]) -> Row:
    """The new comment; the post's comments_count and the parent's replies_count move too."""
    return await q.fetchrow_one(
        f"""WITH c AS (
               INSERT INTO comments (id, post_id, author_id, parent_id, depth, content, entities,
                                     created_at)
               VALUES (%(id)s, %(post_id)s, %(author_id)s, %(parent_id)s, %(depth)s, %(content)s,
                       %(entities)s, %(at)s)
               RETURNING *),
           counted AS (
               UPDATE posts SET comments_count = comments_count + 1
               WHERE id = %(post_id)s),
           replied AS (
               UPDATE comments SET replies_count = replies_count + 1
               WHERE id = %(parent_id)s)
           SELECT {COLUMNS} FROM c""",
        {**values, "entities": jsonb(values["entities"])},
    )


async def get(q: Queries, comment_id: uuid.UUID, *, for_update: bool = False) -> Row | None:
    lock = "FOR UPDATE" if for_update else ""
    return await q.fetchrow(
        f"SELECT {COLUMNS} FROM comments c WHERE c.id = %s AND {_SHOWN} {lock}", (comment_id,)
    )


async def edit(
    q: Queries, comment_id: uuid.UUID, content: str, entities: list[Any], at: datetime
) -> Row:
    return await q.fetchrow_one(
        f"""UPDATE comments c SET content = %s, entities = %s, edited_at = %s
            WHERE c.id = %s RETURNING {COLUMNS}""",
        (content, jsonb(entities), at, comment_id),
    )


async def soft_delete(q: Queries, comment: Row, at: datetime) -> None:
    """Mark it deleted; the post's count drops, and so does the parent's reply count."""
    await q.execute(
        """WITH gone AS (
               UPDATE comments SET deleted_at = %(at)s, content = '', entities = '[]'
               WHERE id = %(id)s AND deleted_at IS NULL RETURNING post_id, parent_id),
           counted AS (
               UPDATE posts SET comments_count = greatest(comments_count - 1, 0)
               FROM gone WHERE posts.id = gone.post_id)
           UPDATE comments p SET replies_count = greatest(p.replies_count - 1, 0)
           FROM gone WHERE p.id = gone.parent_id""",
        {"id": comment["id"], "at": at},
    )


async def top_level(
    q: Queries, post_id: uuid.UUID, viewer: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[Row]:
    """A post's top-level comments, oldest first (comments_top_idx)."""
    return await q.fetch(
        f"""SELECT {COLUMNS} FROM comments c
            WHERE c.post_id = %(p)s AND c.parent_id IS NULL AND {_SHOWN}
              AND (%(after)s::uuid IS NULL OR c.id > %(after)s) AND {_unblocked()}
            ORDER BY c.id LIMIT %(limit)s""",
        {"p": post_id, "v": viewer, "after": after, "limit": limit},
    )


async def first_replies(
    q: Queries, parent_ids: list[uuid.UUID], viewer: uuid.UUID, per_parent: int
) -> list[Row]:
    """The first `per_parent` replies of each comment, in one query (a LATERAL index scan per
    parent on comments_replies_idx)."""
    if not parent_ids or per_parent <= 0:
        return []
    return await q.fetch(
        f"""SELECT r.* FROM unnest(%(ids)s::uuid[]) AS parent (id)
            CROSS JOIN LATERAL (
                SELECT {COLUMNS} FROM comments c
                WHERE c.parent_id = parent.id AND {_SHOWN} AND {_unblocked()}
                ORDER BY c.id LIMIT %(n)s) r""",
        {"ids": parent_ids, "v": viewer, "n": per_parent},
    )


async def replies(
    q: Queries, parent_id: uuid.UUID, viewer: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[Row]:
    return await q.fetch(
        f"""SELECT {COLUMNS} FROM comments c
            WHERE c.parent_id = %(p)s AND {_SHOWN}
              AND (%(after)s::uuid IS NULL OR c.id > %(after)s) AND {_unblocked()}
            ORDER BY c.id LIMIT %(limit)s""",
        {"p": parent_id, "v": viewer, "after": after, "limit": limit},
    )


async def liked_by(q: Queries, comment_ids: list[uuid.UUID], viewer: uuid.UUID) -> set[uuid.UUID]:
    if not comment_ids:
        return set()
    rows = await q.fetch(
        "SELECT comment_id FROM comment_likes WHERE user_id = %s AND comment_id = ANY(%s)",
        (viewer, comment_ids),
    )
    return {row["comment_id"] for row in rows}


async def add_like(
    q: Queries, comment_id: uuid.UUID, user_id: uuid.UUID, at: datetime
) -> int | None:
    return await q.fetchval(
        """WITH liked AS (
               INSERT INTO comment_likes (comment_id, user_id, created_at)
               VALUES (%(c)s, %(u)s, %(at)s) ON CONFLICT DO NOTHING RETURNING comment_id)
           UPDATE comments SET likes_count = likes_count + 1
           FROM liked WHERE comments.id = liked.comment_id RETURNING comments.likes_count""",
        {"c": comment_id, "u": user_id, "at": at},
    )


async def remove_like(q: Queries, comment_id: uuid.UUID, user_id: uuid.UUID) -> int | None:
    return await q.fetchval(
        """WITH gone AS (
               DELETE FROM comment_likes WHERE comment_id = %(c)s AND user_id = %(u)s
               RETURNING comment_id)
           UPDATE comments SET likes_count = greatest(likes_count - 1, 0)
           FROM gone WHERE comments.id = gone.comment_id RETURNING comments.likes_count""",
        {"c": comment_id, "u": user_id},
    )


async def live_comments_by(q: Queries, post_id: uuid.UUID, author_id: uuid.UUID) -> int:
    """How many undeleted comments `author_id` has on the post."""
    return await q.fetchval(
        """SELECT count(*) FROM comments
           WHERE post_id = %s AND author_id = %s AND deleted_at IS NULL""",
        (post_id, author_id),
    )
