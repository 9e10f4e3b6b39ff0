"""Lists (curated feeds): the lists, their members and the list feed.

A list is seen by its owner, and, when public, by anyone the owner and they have not blocked
either way (`get_list_for`). The feed is the members' posts as the viewer may see them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from server.store.db import Queries, Row
from server.store.feeds import repost_original_shown
from server.store.keyword_filters import passes_keyword_filters
from server.store.posts.reads import POST_COLUMNS
from server.store.users import PROFILE_COLUMNS
from server.store.visibility import (
    not_blocked,
    post_not_muted_or_hidden,
    post_visible,
    require_viewer,
    user_listed_for,
)

LIST_COLUMNS = """l.id, l.owner_id, l.name, l.description, l.is_private, l.members_count,
    l.created_at, l.updated_at"""

Keyset = tuple[datetime, uuid.UUID]


async def create_list(
    q: Queries,
    id: uuid.UUID,
    owner: uuid.UUID,
    name: str,
    description: str | None,
    is_private: bool,
    now: datetime,
) -> Row:
    return await q.fetchrow_one(
        f"""INSERT INTO lists AS l (id, owner_id, name, description, is_private, created_at,
                                    updated_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {LIST_COLUMNS}""",
        (id, owner, name, description, is_private, now, now),
    )


async def get_list_for(q: Queries, list_id: uuid.UUID, viewer: uuid.UUID) -> Row | None:
    """The list if `viewer` may see it: theirs, or public with no block between the owner and
    the viewer (either way) and the owner's account active. None otherwise."""
    shown = not_blocked("viewer", "l.owner_id")
    return await q.fetchrow(
        f"""SELECT {LIST_COLUMNS} FROM lists l JOIN users o ON o.id = l.owner_id
            WHERE l.id = %(id)s AND (l.owner_id = %(viewer)s
                  OR (NOT l.is_private AND o.is_active AND {shown}))""",
        {"id": list_id, "viewer": require_viewer(viewer)},
    )


async def lock_own_list(q: Queries, list_id: uuid.UUID, owner: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        f"SELECT {LIST_COLUMNS} FROM lists l WHERE l.id = %s AND l.owner_id = %s FOR UPDATE",
        (list_id, owner),
    )


async def count_lists(q: Queries, owner: uuid.UUID) -> int:
    return int(await q.fetchval("SELECT count(*) FROM lists WHERE owner_id = %s", (owner,)))


async def lists_of(q: Queries, owner: uuid.UUID, before: uuid.UUID | None, limit: int) -> list[Row]:
    """The owner's lists, newest first (lists_owner_idx)."""
    return await q.fetch(
        f"""SELECT {LIST_COLUMNS} FROM lists l
            WHERE l.owner_id = %(owner)s AND (%(before)s::uuid IS NULL OR l.id < %(before)s)
            ORDER BY l.id DESC LIMIT %(limit)s""",
        {"owner": owner, "before": before, "limit": limit},
    )


async def update_list(
    q: Queries, list_id: uuid.UUID, changes: dict[str, Any], now: datetime
) -> Row:
    allowed = {k: v for k, v in changes.items() if k in ("name", "description", "is_private")}
    sets = ", ".join(f"{k} = %({k})s" for k in allowed)
    return await q.fetchrow_one(
        f"""UPDATE lists l SET {sets + ", " if sets else ""}updated_at = %(now)s
            WHERE l.id = %(id)s RETURNING {LIST_COLUMNS}""",
        {**allowed, "now": now, "id": list_id},
    )


async def delete_list(q: Queries, list_id: uuid.UUID) -> None:
    await q.execute("DELETE FROM lists WHERE id = %s", (list_id,))


async def add_member(
    q: Queries, id: uuid.UUID, list_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> bool:
    """Add `user_id` (idempotent); True when added now. Keeps members_count."""
    added = await q.execute(
        """INSERT INTO list_members (id, list_id, user_id, added_at) VALUES (%s, %s, %s, %s)
           ON CONFLICT (list_id, user_id) DO NOTHING""",
        (id, list_id, user_id, now),
    )
    if added:
        await q.execute(
            "UPDATE lists SET members_count = members_count + 1, updated_at = %s WHERE id = %s",
            (now, list_id),
        )
    return bool(added)


async def remove_member(q: Queries, list_id: uuid.UUID, user_id: uuid.UUID, now: datetime) -> bool:
    removed = await q.execute(
        "DELETE FROM list_members WHERE list_id = %s AND user_id = %s", (list_id, user_id)
    )
    if removed:
        await q.execute(
            """UPDATE lists SET members_count = greatest(members_count - 1, 0), updated_at = %s
               WHERE id = %s""",
            (now, list_id),
        )
    return bool(removed)


async def members_page(
    q: Queries, list_id: uuid.UUID, viewer: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[Row]:
    """Members newest first (list_members_page_idx) as the viewer may see them: accounts
    blocked either way with the viewer or deactivated are left out."""
    listed = user_listed_for("viewer", "u")
    return await q.fetch(
        f"""SELECT lm.id AS member_id, lm.added_at, {PROFILE_COLUMNS}
            FROM list_members lm JOIN users u ON u.id = lm.user_id
            WHERE lm.list_id = %(list)s AND (%(before)s::uuid IS NULL OR lm.id < %(before)s)
              AND {listed}
            ORDER BY lm.id DESC LIMIT %(limit)s""",
        {"list": list_id, "viewer": require_viewer(viewer), "before": before, "limit": limit},
    )


async def feed(
    q: Queries,
    list_id: uuid.UUID,
    viewer: uuid.UUID,
    now: datetime,
    before: Keyset | None,
    limit: int,
    per_member: int,
) -> list[Row]:
    """The members' published posts (and reposts) newest first by (published_at, id), as the
    viewer may see them: every rule of visibility.post_visible, no muted author, no hidden post,
    no post matching the viewer's muted words, and a repost only when its original passes the
    same rules (the home feed's `repost_original_shown`).

    Plan: per member, an index scan of posts_author_published_idx from the keyset that stops at
    `per_member` visible rows (LATERAL), merged and cut to `limit`: at most members x
    per_member rows read, whatever the members' history. Members the viewer cannot see at all
    (blocked either way, muted, deactivated, private and not followed) are dropped before
    their posts are read. With
    `per_member` < `limit` the page is exact only if no member has `per_member` rows in it (the
    caller checks, and asks again with more)."""
    after = "AND (p.published_at, p.id) < (%(t)s, %(i)s)" if before else ""
    shown = user_listed_for("viewer", "u")
    return await q.fetch(
        f"""SELECT f.* FROM list_members lm
            JOIN users u ON u.id = lm.user_id
            CROSS JOIN LATERAL (
                SELECT {POST_COLUMNS} FROM posts p
                WHERE p.author_id = lm.user_id AND p.status = 'published'
                  AND p.deleted_at IS NULL {after}
                  AND {post_visible("viewer", "p")}
                  AND {post_not_muted_or_hidden("viewer", "p")}
                  AND {passes_keyword_filters("p", "viewer", "now")}
                  AND {repost_original_shown()}
                ORDER BY p.published_at DESC, p.id DESC LIMIT %(per_member)s) f
            WHERE lm.list_id = %(list)s AND {shown}
              AND NOT EXISTS (SELECT 1 FROM mutes mu
                              WHERE mu.muter_id = %(viewer)s AND mu.muted_id = u.id)
              -- A private account the viewer does not follow shows them nothing of its own:
              -- skip it rather than reading its whole history through the rule above (this
              -- also leaves out its rare posts co-authored with a public account).
              AND (NOT u.is_private OR u.id = %(viewer)s OR EXISTS (
                  SELECT 1 FROM follows pf WHERE pf.follower_id = %(viewer)s
                    AND pf.following_id = u.id AND pf.status = 'accepted'))
            ORDER BY f.published_at DESC, f.id DESC LIMIT %(limit)s""",
        {
            "list": list_id,
            "viewer": require_viewer(viewer),
            "now": now,
            "limit": limit,
            "per_member": per_member,
            "t": before[0] if before else None,
            "i": before[1] if before else None,
        },
    )


async def visible_user(q: Queries, user_id: uuid.UUID, viewer: uuid.UUID) -> Row | None:
    """`user_id` if `viewer` may see the account (active, no block either way), else None."""
    listed = user_listed_for("viewer", "u")
    return await q.fetchrow(
        f"SELECT u.id, u.username FROM users u WHERE u.id = %(id)s AND {listed}",
        {"id": user_id, "viewer": require_viewer(viewer)},
    )
