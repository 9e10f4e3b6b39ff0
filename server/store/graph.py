"""Follows, blocks and mutes. Counters move in the same transaction as the rows."""

from __future__ import annotations

import uuid

from server.store import visibility
from server.store.db import Queries, Row
from server.store.users import PROFILE_COLUMNS


async def relationship(q: Queries, viewer: uuid.UUID, other: uuid.UUID) -> Row:
    """How `viewer` and `other` relate: follow states both ways, blocks both ways, mute."""
    return await q.fetchrow_one(
        f"""SELECT
             (SELECT status FROM follows WHERE follower_id = %(v)s AND following_id = %(o)s)
                AS following,
             (SELECT status FROM follows WHERE follower_id = %(o)s AND following_id = %(v)s)
                AS followed_by,
             {visibility.blocks("%(v)s", "%(o)s")} AS blocking,
             {visibility.blocks("%(o)s", "%(v)s")} AS blocked_by,
             EXISTS (SELECT 1 FROM mutes WHERE muter_id = %(v)s AND muted_id = %(o)s)
                AS muting""",
        {"v": viewer, "o": other},
    )


async def has_blocked(q: Queries, blocker: uuid.UUID, blocked: uuid.UUID) -> bool:
    return await q.fetchval(
        f"SELECT {visibility.blocks('%(blocker)s', '%(blocked)s')}",
        {"blocker": blocker, "blocked": blocked},
    )


async def is_blocked_either_way(q: Queries, a: uuid.UUID, b: uuid.UUID) -> bool:
    return await q.fetchval(
        f"SELECT {visibility.blocked_either_way('%(a)s', '%(b)s')}", {"a": a, "b": b}
    )


async def blocked_either_way_among(
    q: Queries, user: uuid.UUID, others: list[uuid.UUID]
) -> set[uuid.UUID]:
    rows = await q.fetch(
        visibility.blocked_either_way_among("%(u)s", "%(o)s"), {"u": user, "o": others}
    )
    return {row["other"] for row in rows}


async def is_muting(q: Queries, muter: uuid.UUID, muted: uuid.UUID) -> bool:
    return await q.fetchval(
        "SELECT EXISTS (SELECT 1 FROM mutes WHERE muter_id = %s AND muted_id = %s)", (muter, muted)
    )


async def is_accepted_follower(q: Queries, follower: uuid.UUID, following: uuid.UUID) -> bool:
    return await q.fetchval(
        """SELECT EXISTS (SELECT 1 FROM follows WHERE follower_id = %s AND following_id = %s
                          AND status = 'accepted')""",
        (follower, following),
    )


async def _adjust_counts(q: Queries, follower: uuid.UUID, following: uuid.UUID, delta: int) -> None:
    await q.execute(
        """UPDATE users SET
             following_count = following_count + CASE WHEN id = %(f)s THEN %(d)s ELSE 0 END,
             followers_count = followers_count + CASE WHEN id = %(g)s THEN %(d)s ELSE 0 END
           WHERE id IN (%(f)s, %(g)s)""",
        {"f": follower, "g": following, "d": delta},
    )


async def insert_follow(
    q: Queries, *, id: uuid.UUID, follower: uuid.UUID, following: uuid.UUID, status: str
) -> Row | None:
    """Create the follow unless one exists; None when it already did (following is idempotent)."""
    row = await q.fetchrow(
        """INSERT INTO follows (id, follower_id, following_id, status, accepted_at)
           VALUES (%(id)s, %(f)s, %(g)s, %(s)s, CASE WHEN %(s)s = 'accepted' THEN now() END)
           ON CONFLICT (follower_id, following_id) DO NOTHING
           RETURNING id, follower_id, following_id, status, created_at""",
        {"id": id, "f": follower, "g": following, "s": status},
    )
    if row is not None and status == "accepted":
        await _adjust_counts(q, follower, following, +1)
    return row


async def get_follow(q: Queries, follower: uuid.UUID, following: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        """SELECT id, follower_id, following_id, status, created_at FROM follows
           WHERE follower_id = %s AND following_id = %s""",
        (follower, following),
    )


async def delete_follow(q: Queries, follower: uuid.UUID, following: uuid.UUID) -> Row | None:
    row = await q.fetchrow(
        """DELETE FROM follows WHERE follower_id = %s AND following_id = %s
           RETURNING id, status""",
        (follower, following),
    )
    if row is not None and row["status"] == "accepted":
        await _adjust_counts(q, follower, following, -1)
    return row


async def accept_request(q: Queries, follow_id: uuid.UUID, following: uuid.UUID) -> Row | None:
    row = await q.fetchrow(
        """UPDATE follows SET status = 'accepted', accepted_at = now()
           WHERE id = %s AND following_id = %s AND status = 'pending'
           RETURNING id, follower_id, following_id, status, created_at""",
        (follow_id, following),
    )
    if row is not None:
        await _adjust_counts(q, row["follower_id"], following, +1)
    return row


async def delete_request(q: Queries, follow_id: uuid.UUID, following: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        """DELETE FROM follows WHERE id = %s AND following_id = %s AND status = 'pending'
           RETURNING id, follower_id""",
        (follow_id, following),
    )


async def accept_all_requests(q: Queries, following: uuid.UUID) -> list[Row]:
    rows = await q.fetch(
        """UPDATE follows SET status = 'accepted', accepted_at = now()
           WHERE following_id = %s AND status = 'pending' RETURNING id, follower_id""",
        (following,),
    )
    if rows:
        await q.execute(
            "UPDATE users SET following_count = following_count + 1 WHERE id = ANY(%s)",
            ([row["follower_id"] for row in rows],),
        )
        await q.execute(
            "UPDATE users SET followers_count = followers_count + %s WHERE id = %s",
            (len(rows), following),
        )
    return rows


def _after(after: uuid.UUID | None, column: str) -> tuple[str, dict]:
    if after is None:
        return "", {}
    return f" AND {column} < %(after)s", {"after": after}


async def _follow_list(
    q: Queries,
    *,
    user: uuid.UUID,
    user_side: str,
    status: str,
    limit: int,
    after: uuid.UUID | None,
    viewer: uuid.UUID,
) -> list[Row]:
    """Profiles on the other side of `user`'s follows (`user_side` is the column naming
    `user`), newest first by follow id; index-backed by follows_(follower|following)_idx.
    Whoever blocked `viewer` is left out: for the viewer such a user does not exist."""
    other_side = "follower_id" if user_side == "following_id" else "following_id"
    extra, params = _after(after, "f.id")
    shown, shown_params = visibility.shown_to(viewer, "u.id")
    return await q.fetch(
        f"""SELECT f.id AS follow_id, f.created_at AS followed_at, {PROFILE_COLUMNS}
            FROM follows f JOIN users u ON u.id = f.{other_side}
            WHERE f.{user_side} = %(user)s AND f.status = %(status)s AND u.is_active{extra}
              AND {shown}
            ORDER BY f.id DESC LIMIT %(limit)s""",
        {"user": user, "status": status, "limit": limit + 1, **params, **shown_params},
    )


async def list_followers(
    q: Queries, user: uuid.UUID, limit: int, after: uuid.UUID | None, viewer: uuid.UUID
) -> list[Row]:
    return await _follow_list(
        q,
        user=user,
        user_side="following_id",
        status="accepted",
        limit=limit,
        after=after,
        viewer=viewer,
    )


async def list_following(
    q: Queries, user: uuid.UUID, limit: int, after: uuid.UUID | None, viewer: uuid.UUID
) -> list[Row]:
    return await _follow_list(
        q,
        user=user,
        user_side="follower_id",
        status="accepted",
        limit=limit,
        after=after,
        viewer=viewer,
    )


async def list_requests(
    q: Queries, user: uuid.UUID, limit: int, after: uuid.UUID | None
) -> list[Row]:
    """`user`'s pending follow requests, read by `user` (a block deletes requests both ways)."""
    return await _follow_list(
        q,
        user=user,
        user_side="following_id",
        status="pending",
        limit=limit,
        after=after,
        viewer=user,
    )


async def insert_block(q: Queries, id: uuid.UUID, blocker: uuid.UUID, blocked: uuid.UUID) -> bool:
    return (
        await q.execute(
            """INSERT INTO blocks (id, blocker_id, blocked_id) VALUES (%s, %s, %s)
               ON CONFLICT (blocker_id, blocked_id) DO NOTHING""",
            (id, blocker, blocked),
        )
        == 1
    )


async def delete_block(q: Queries, blocker: uuid.UUID, blocked: uuid.UUID) -> bool:
    return (
        await q.execute(
            "DELETE FROM blocks WHERE blocker_id = %s AND blocked_id = %s", (blocker, blocked)
        )
        == 1
    )


async def insert_mute(q: Queries, id: uuid.UUID, muter: uuid.UUID, muted: uuid.UUID) -> bool:
    return (
        await q.execute(
            """INSERT INTO mutes (id, muter_id, muted_id) VALUES (%s, %s, %s)
               ON CONFLICT (muter_id, muted_id) DO NOTHING""",
            (id, muter, muted),
        )
        == 1
    )


async def delete_mute(q: Queries, muter: uuid.UUID, muted: uuid.UUID) -> bool:
    return (
        await q.execute("DELETE FROM mutes WHERE muter_id = %s AND muted_id = %s", (muter, muted))
        == 1
    )


async def list_blocked(
    q: Queries, user: uuid.UUID, limit: int, after: uuid.UUID | None
) -> list[Row]:
    extra, params = _after(after, "b.id")
    return await q.fetch(
        f"""SELECT b.id AS entry_id, b.created_at AS since, {PROFILE_COLUMNS}
            FROM blocks b JOIN users u ON u.id = b.blocked_id
            WHERE b.blocker_id = %(user)s{extra} ORDER BY b.id DESC LIMIT %(limit)s""",
        {"user": user, "limit": limit + 1, **params},
    )


async def list_muted(q: Queries, user: uuid.UUID, limit: int, after: uuid.UUID | None) -> list[Row]:
    extra, params = _after(after, "m.id")
    return await q.fetch(
        f"""SELECT m.id AS entry_id, m.created_at AS since, {PROFILE_COLUMNS}
            FROM mutes m JOIN users u ON u.id = m.muted_id
            WHERE m.muter_id = %(user)s{extra} ORDER BY m.id DESC LIMIT %(limit)s""",
        {"user": user, "limit": limit + 1, **params},
    )


async def lock_users(q: Queries, *user_ids: uuid.UUID) -> None:
    """Row-lock users in id order, so concurrent graph changes on the pair serialise."""
    await q.execute(
        "SELECT 1 FROM users WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (sorted(user_ids),)
    )
