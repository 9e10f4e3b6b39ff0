"""Reads of posts: one post, pages of them (profile grids, drafts, versions), and what a page
draws with them (bylines, collaborators, commerce links), each in one query for the page.

Every read on behalf of a user takes the viewer and filters with `visibility.post_visible`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from server.store.db import Queries, Row
from server.store.visibility import post_visible_to

POST_COLUMNS = """p.id, p.author_id, p.author_ids, p.content, p.entities, p.post_type, p.status,
    p.visibility, p.is_collaborative, p.likes_count, p.comments_count, p.reposts_count,
    p.bookmarks_count, p.edit_count, p.edited_at, p.publish_at, p.created_at, p.updated_at,
    p.published_at, p.deleted_at, p.original_post_id, p.is_repost, p.is_quote"""

# A repost whose original is gone (deleted) is not shown anywhere; a quote still is ("post
# unavailable" in place of the original).
_LIVE_REPOST = """NOT (p.is_repost AND NOT EXISTS (
    SELECT 1 FROM posts o WHERE o.id = p.original_post_id AND o.deleted_at IS NULL))"""

Keyset = tuple[datetime, uuid.UUID]


async def get_post(q: Queries, post_id: uuid.UUID, viewer: uuid.UUID) -> Row | None:
    """The post if `viewer` may see it, else None (absent, deleted or not theirs to see)."""
    visible, params = post_visible_to(viewer)
    return await q.fetchrow(
        f"""SELECT {POST_COLUMNS} FROM posts p
            WHERE p.id = %(id)s AND {visible} AND {_LIVE_REPOST}""",
        {"id": post_id, **params},
    )


async def get_posts(q: Queries, post_ids: list[uuid.UUID], viewer: uuid.UUID) -> list[Row]:
    """The posts of `post_ids` that `viewer` may see (any order)."""
    if not post_ids:
        return []
    visible, params = post_visible_to(viewer)
    return await q.fetch(
        f"SELECT {POST_COLUMNS} FROM posts p WHERE p.id = ANY(%(ids)s) AND {visible}",
        {"ids": post_ids, **params},
    )


async def lock_post(q: Queries, post_id: uuid.UUID) -> Row | None:
    """The post's row (any state but purged), locked for an action that writes it."""
    return await q.fetchrow(
        f"SELECT {POST_COLUMNS} FROM posts p WHERE p.id = %s AND p.deleted_at IS NULL FOR UPDATE",
        (post_id,),
    )


async def profile_grid(
    q: Queries, user_id: uuid.UUID, viewer: uuid.UUID, before: Keyset | None, limit: int
) -> list[Row]:
    """Published posts on `user_id`'s profile (theirs and those they co-author), newest first,
    that `viewer` may see: `limit` rows after the keyset `before` (published_at, id). Each
    branch is an index scan stopping at `limit` rows (posts_author_published_idx, and
    post_collaborators_user_idx for the co-authored ones)."""
    visible, params = post_visible_to(viewer)
    after = "AND (p.published_at, p.id) < (%(t)s, %(i)s)" if before else ""
    return await q.fetch(
        f"""SELECT * FROM (
              (SELECT {POST_COLUMNS} FROM posts p
               WHERE p.author_id = %(user)s AND p.status = 'published' AND p.deleted_at IS NULL
                 {after} AND {visible} AND {_LIVE_REPOST}
               ORDER BY p.published_at DESC, p.id DESC LIMIT %(limit)s)
              UNION ALL
              (SELECT {POST_COLUMNS} FROM post_collaborators pc JOIN posts p ON p.id = pc.post_id
               WHERE pc.user_id = %(user)s AND pc.status = 'accepted'
                 AND p.status = 'published' AND p.deleted_at IS NULL {after} AND {visible}
               ORDER BY p.published_at DESC, p.id DESC LIMIT %(limit)s)
            ) grid ORDER BY published_at DESC, id DESC LIMIT %(limit)s""",
        {
            "user": user_id,
            "limit": limit,
            "t": before[0] if before else None,
            "i": before[1] if before else None,
            **params,
        },
    )


async def unpublished_of(
    q: Queries, author_id: uuid.UUID, before: Keyset | None, limit: int
) -> list[Row]:
    """The author's drafts and their posts waiting for co-authors or their time, last touched
    first (posts_author_unpublished_idx)."""
    after = "AND (p.updated_at, p.id) < (%(t)s, %(i)s)" if before else ""
    return await q.fetch(
        f"""SELECT {POST_COLUMNS} FROM posts p
            WHERE p.author_id = %(author)s AND p.status <> 'published' AND p.deleted_at IS NULL
              {after}
            ORDER BY p.updated_at DESC, p.id DESC LIMIT %(limit)s""",
        {
            "author": author_id,
            "limit": limit,
            "t": before[0] if before else None,
            "i": before[1] if before else None,
        },
    )


async def versions(
    q: Queries, post_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[Row]:
    """Earlier versions of a post, the most recently replaced first."""
    return await q.fetch(
        """SELECT id, post_id, content, entities, edited_by, valid_from, replaced_at
           FROM post_versions
           WHERE post_id = %(post)s AND (%(before)s::uuid IS NULL OR id < %(before)s)
           ORDER BY id DESC LIMIT %(limit)s""",
        {"post": post_id, "before": before, "limit": limit},
    )


async def user_briefs(q: Queries, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Row]:
    """Bylines: id, username, display name, picture and badge of each user, in one query."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    rows = await q.fetch(
        """SELECT id, username, display_name, profile_picture_url, is_verified, is_private
           FROM users WHERE id = ANY(%s)""",
        (ids,),
    )
    return {row["id"]: row for row in rows}


async def collaborators_of(q: Queries, post_ids: list[uuid.UUID]) -> list[Row]:
    """Every collaborator row (pending and accepted) of the posts, invitation order."""
    if not post_ids:
        return []
    return await q.fetch(
        """SELECT post_id, user_id, role, status, invited_by, created_at, responded_at
           FROM post_collaborators WHERE post_id = ANY(%s) ORDER BY created_at, user_id""",
        (post_ids,),
    )


async def pending_invitations(
    q: Queries, user_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[Row]:
    """Posts `user_id` is invited to co-author and has not answered, newest first."""
    return await q.fetch(
        f"""SELECT {POST_COLUMNS} FROM post_collaborators pc JOIN posts p ON p.id = pc.post_id
            WHERE pc.user_id = %(user)s AND pc.status = 'pending' AND p.deleted_at IS NULL
              AND p.status <> 'draft' AND (%(before)s::uuid IS NULL OR p.id < %(before)s)
            ORDER BY p.id DESC LIMIT %(limit)s""",
        {"user": user_id, "before": before, "limit": limit},
    )


async def links_of(q: Queries, post_ids: list[uuid.UUID]) -> list[Row]:
    """Every commerce link of the posts, in one query: (post_id, kind, entity_id, product_id,
    display_order, is_featured, mention_type), in display order per kind."""
    if not post_ids:
        return []
    return await q.fetch(
        """SELECT post_id, 'product' AS kind, product_id AS entity_id, product_id,
                  display_order, false AS is_featured, NULL AS mention_type
             FROM post_products WHERE post_id = ANY(%(ids)s)
           UNION ALL
           SELECT post_id, 'shop', shop_id, NULL, display_order, false, mention_type
             FROM post_shops WHERE post_id = ANY(%(ids)s)
           UNION ALL
           SELECT post_id, 'event', event_id, NULL, display_order, false, NULL
             FROM post_events WHERE post_id = ANY(%(ids)s)
           UNION ALL
           SELECT post_id, 'group', group_id, NULL, display_order, false, NULL
             FROM post_groups WHERE post_id = ANY(%(ids)s)
           UNION ALL
           SELECT post_id, 'plan', plan_id, product_id, display_order, is_featured, NULL
             FROM post_plans WHERE post_id = ANY(%(ids)s)
           ORDER BY post_id, kind, display_order""",
        {"ids": post_ids},
    )


async def users_by_usernames(q: Queries, usernames: list[str]) -> list[Row]:
    """Active users by (lower-case) username, for @mentions and collaborator invites."""
    if not usernames:
        return []
    return await q.fetch(
        """SELECT id, lower(username) AS username, is_private FROM users
           WHERE lower(username) = ANY(%s) AND is_active""",
        (usernames,),
    )


async def active_users(q: Queries, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    if not user_ids:
        return set()
    rows = await q.fetch("SELECT id FROM users WHERE id = ANY(%s) AND is_active", (user_ids,))
    return {row["id"] for row in rows}


async def mentioned_users(q: Queries, post_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await q.fetch("SELECT user_id FROM post_mentions WHERE post_id = %s", (post_id,))
    return {row["user_id"] for row in rows}


async def hashtag_ids(q: Queries, post_id: uuid.UUID) -> dict[str, uuid.UUID]:
    rows = await q.fetch(
        """SELECT h.tag, h.id FROM post_hashtags ph JOIN hashtags h ON h.id = ph.hashtag_id
           WHERE ph.post_id = %s""",
        (post_id,),
    )
    return {row["tag"]: row["id"] for row in rows}


async def hashtag(q: Queries, tag: str) -> Row | None:
    return await q.fetchrow(
        "SELECT id, tag, posts_count, created_at FROM hashtags WHERE tag = %s", (tag,)
    )


async def due_scheduled(q: Queries, now: datetime, limit: int = 100) -> list[uuid.UUID]:
    rows = await q.fetch(
        """SELECT id FROM posts WHERE status = 'scheduled' AND deleted_at IS NULL
             AND publish_at <= %s ORDER BY publish_at LIMIT %s""",
        (now, limit),
    )
    return [row["id"] for row in rows]


def keyset_of(row: dict[str, Any], column: str) -> tuple[str, str]:
    return (row[column].isoformat(), str(row["id"]))


async def counters(q: Queries, post_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        """SELECT likes_count, comments_count, reposts_count, bookmarks_count FROM posts
           WHERE id = %s AND deleted_at IS NULL""",
        (post_id,),
    )


async def reposters(
    q: Queries, post_id: uuid.UUID, viewer: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[Row]:
    """Reposts and quotes of a post that the viewer may see, newest first (posts_reposts_idx),
    with their authors."""
    visible, params = post_visible_to(viewer)
    return await q.fetch(
        f"""SELECT p.id, p.is_quote, p.published_at, u.id AS user_id, u.username,
                   u.display_name, u.profile_picture_url, u.is_verified
            FROM posts p JOIN users u ON u.id = p.author_id
            WHERE p.original_post_id = %(post)s AND p.deleted_at IS NULL
              AND (%(before)s::uuid IS NULL OR p.id < %(before)s) AND {visible}
            ORDER BY p.id DESC LIMIT %(limit)s""",
        {"post": post_id, "before": before, "limit": limit, **params},
    )


async def live_repost(q: Queries, author_id: uuid.UUID, original_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        f"""SELECT {POST_COLUMNS} FROM posts p WHERE p.author_id = %s AND p.original_post_id = %s
              AND p.is_repost AND p.deleted_at IS NULL""",
        (author_id, original_id),
    )
