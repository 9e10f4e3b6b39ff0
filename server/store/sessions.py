"""Sign-in sessions (refresh-token families) as a user sees them: devices, last use, revocation."""

from __future__ import annotations

import uuid
from datetime import datetime

from server.store.db import Queries, Row


async def insert_session(
    q: Queries,
    *,
    id: uuid.UUID,
    user_id: uuid.UUID,
    expires_at: datetime,
    user_agent: str,
    ip: str,
    now: datetime,
) -> None:
    await q.execute(
        """INSERT INTO auth_sessions (id, user_id, created_at, last_used_at, expires_at,
                                      user_agent, ip)
           VALUES (%(id)s, %(user_id)s, %(now)s, %(now)s, %(expires_at)s, %(user_agent)s, %(ip)s)
           ON CONFLICT (id) DO NOTHING""",
        locals(),
    )


async def touch_session(
    q: Queries, session_id: uuid.UUID, *, now: datetime, expires_at: datetime, ip: str | None
) -> None:
    """A refresh: the session was used now and lives on until `expires_at`."""
    await q.execute(
        """UPDATE auth_sessions SET last_used_at = %(now)s, expires_at = %(expires_at)s,
                                    ip = coalesce(%(ip)s, ip)
           WHERE id = %(id)s AND revoked_at IS NULL""",
        {"id": session_id, "now": now, "expires_at": expires_at, "ip": ip},
    )


async def live_sessions(
    q: Queries, user_id: uuid.UUID, now: datetime, before: uuid.UUID | None, limit: int
) -> list[Row]:
    """The user's unrevoked, unexpired sessions, newest first, `limit` of them after `before`."""
    return await q.fetch(
        """SELECT id, created_at, last_used_at, expires_at, user_agent, ip
           FROM auth_sessions
           WHERE user_id = %(user_id)s AND revoked_at IS NULL AND expires_at > %(now)s
             AND (%(before)s::uuid IS NULL OR id < %(before)s)
           ORDER BY id DESC LIMIT %(limit)s""",
        {"user_id": user_id, "now": now, "before": before, "limit": limit},
    )


async def revoke_session(q: Queries, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
    """Revoke one of the user's sessions and its refresh tokens; False if it is not theirs or
    was already revoked."""
    return bool(
        await q.fetchval(
            """WITH s AS (
                 UPDATE auth_sessions SET revoked_at = now()
                 WHERE id = %(id)s AND user_id = %(user_id)s AND revoked_at IS NULL
                 RETURNING id),
               t AS (
                 UPDATE refresh_tokens SET revoked_at = now()
                 WHERE family_id = %(id)s AND user_id = %(user_id)s AND revoked_at IS NULL
                 RETURNING family_id)
               SELECT (SELECT count(*) FROM s) + (SELECT count(*) FROM t) > 0""",
            {"id": session_id, "user_id": user_id},
        )
    )


async def revoke_sessions(
    q: Queries, user_id: uuid.UUID, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Revoke every session of the user but `keep` (and their refresh tokens); return the ids
    of the sessions that were live, so their access tokens can be refused too."""
    rows = await q.fetch(
        """WITH s AS (
             UPDATE auth_sessions SET revoked_at = now()
             WHERE user_id = %(user_id)s AND revoked_at IS NULL
               AND id IS DISTINCT FROM %(keep)s::uuid
             RETURNING id),
           t AS (
             UPDATE refresh_tokens SET revoked_at = now()
             WHERE user_id = %(user_id)s AND revoked_at IS NULL
               AND family_id IS DISTINCT FROM %(keep)s::uuid
             RETURNING family_id)
           SELECT id FROM s UNION SELECT family_id FROM t""",
        {"user_id": user_id, "keep": keep},
    )
    return [row["id"] for row in rows]


async def recently_revoked(q: Queries, since: datetime) -> list[Row]:
    """(user_id, id) of sessions revoked after `since`: their access tokens may still be live."""
    return await q.fetch(
        "SELECT user_id, id FROM auth_sessions WHERE revoked_at > %s ORDER BY user_id",
        (since,),
    )


async def revoked_for_user(q: Queries, user_id: uuid.UUID, since: datetime) -> list[uuid.UUID]:
    """The user's sessions revoked after `since` (auth_sessions_user index)."""
    rows = await q.fetch(
        "SELECT id FROM auth_sessions WHERE user_id = %s AND revoked_at > %s", (user_id, since)
    )
    return [row["id"] for row in rows]
