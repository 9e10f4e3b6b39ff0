"""Users, refresh tokens and password resets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from server.store.db import Queries, Row

PROFILE_COLUMNS = """
    u.id, u.username, u.email, u.display_name, u.bio, u.profile_picture_url,
    u.cover_photo_url, u.location, u.website, u.is_private, u.is_verified, u.roles,
    u.followers_count, u.following_count, u.posts_count, u.likes_received,
    u.created_at, u.updated_at
"""

EDITABLE = (
    "display_name",
    "bio",
    "profile_picture_url",
    "cover_photo_url",
    "location",
    "website",
    "is_private",
)


async def insert_user(
    q: Queries,
    *,
    id: uuid.UUID,
    username: str,
    email: str,
    password_hash: str,
    display_name: str,
    email_verified_at: datetime | None = None,
) -> Row:
    return await q.fetchrow_one(
        f"""INSERT INTO users AS u
              (id, username, email, password_hash, display_name, email_verified_at)
            VALUES (%(id)s, %(username)s, %(email)s, %(password_hash)s, %(display_name)s,
                    %(email_verified_at)s)
            RETURNING {PROFILE_COLUMNS}""",
        locals(),
    )


async def get_by_id(q: Queries, user_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        f"SELECT {PROFILE_COLUMNS} FROM users u WHERE u.id = %s AND u.is_active", (user_id,)
    )


async def get_by_username(q: Queries, username: str) -> Row | None:
    return await q.fetchrow(
        f"""SELECT {PROFILE_COLUMNS} FROM users u
            WHERE lower(u.username) = lower(%s) AND u.is_active""",
        (username,),
    )


async def get_credentials(q: Queries, login: str) -> Row | None:
    """The account a login names, by username or email (case-insensitive)."""
    return await q.fetchrow(
        """SELECT id, username, roles, password_hash, is_active, email_verified_at FROM users
           WHERE lower(username) = lower(%(login)s) OR lower(email) = lower(%(login)s)
           LIMIT 1""",
        {"login": login},
    )


async def get_credentials_by_id(q: Queries, user_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        "SELECT id, password_hash FROM users WHERE id = %s AND is_active", (user_id,)
    )


async def set_active(q: Queries, user_id: uuid.UUID, active: bool) -> None:
    await q.execute(
        "UPDATE users SET is_active = %s, updated_at = now() WHERE id = %s", (active, user_id)
    )


async def get_auth_state(q: Queries, user_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        "SELECT id, username, email, roles, is_active FROM users WHERE id = %s", (user_id,)
    )


async def session_family_live(q: Queries, user_id: uuid.UUID, family_id: uuid.UUID) -> bool:
    """The account is active and the refresh token family still has an unrevoked token."""
    return await q.fetchval(
        """SELECT EXISTS (
             SELECT 1 FROM refresh_tokens t JOIN users u ON u.id = t.user_id
             WHERE t.family_id = %s AND t.user_id = %s AND t.revoked_at IS NULL AND u.is_active)""",
        (family_id, user_id),
    )


async def is_private(q: Queries, user_id: uuid.UUID) -> bool:
    return bool(await q.fetchval("SELECT is_private FROM users WHERE id = %s", (user_id,)))


async def get_by_email(q: Queries, email: str) -> Row | None:
    return await q.fetchrow(
        "SELECT id, username, email FROM users WHERE lower(email) = lower(%s) AND is_active",
        (email,),
    )


async def username_or_email_taken(q: Queries, username: str, email: str) -> Row | None:
    return await q.fetchrow(
        """SELECT lower(username) = lower(%(username)s) AS username_taken,
                  lower(email) = lower(%(email)s) AS email_taken
           FROM users WHERE lower(username) = lower(%(username)s) OR lower(email) = lower(%(email)s)
           LIMIT 1""",
        {"username": username, "email": email},
    )


async def update_profile(q: Queries, user_id: uuid.UUID, changes: dict[str, Any]) -> Row | None:
    fields = [name for name in EDITABLE if name in changes]
    assignments = ", ".join(f"{name} = %({name})s" for name in fields)
    return await q.fetchrow(
        f"""UPDATE users u SET {assignments}{", " if fields else ""}updated_at = now()
            WHERE u.id = %(user_id)s RETURNING {PROFILE_COLUMNS}""",
        {**{name: changes[name] for name in fields}, "user_id": user_id},
    )


async def set_password(q: Queries, user_id: uuid.UUID, password_hash: str) -> None:
    await q.execute(
        "UPDATE users SET password_hash = %s, updated_at = now() WHERE id = %s",
        (password_hash, user_id),
    )


async def bulk_insert_users(q: Queries, rows: list[tuple[Any, ...]]) -> int:
    """(id, username, email, password_hash, display_name) tuples in one statement; accounts an
    operator creates (demo, load test) count as email-verified."""
    if not rows:
        return 0
    return await q.execute(
        """INSERT INTO users (id, username, email, password_hash, display_name, email_verified_at)
           SELECT *, now()
           FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[])
           ON CONFLICT DO NOTHING""",
        [list(col) for col in zip(*rows, strict=True)],
    )


# Refresh tokens ---------------------------------------------------------------------------


async def insert_refresh_token(
    q: Queries,
    *,
    id: uuid.UUID,
    user_id: uuid.UUID,
    family_id: uuid.UUID,
    token_hash: bytes,
    expires_at: datetime,
) -> None:
    await q.execute(
        """INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)
           VALUES (%(id)s, %(user_id)s, %(family_id)s, %(token_hash)s, %(expires_at)s)""",
        locals(),
    )


async def claim_refresh_token(q: Queries, token_hash: bytes) -> Row | None:
    """Lock the token row (FOR UPDATE) so two concurrent rotations cannot both succeed."""
    return await q.fetchrow(
        """SELECT t.id, t.user_id, t.family_id, t.expires_at, t.rotated_at, t.revoked_at
           FROM refresh_tokens t WHERE t.token_hash = %s FOR UPDATE""",
        (token_hash,),
    )


async def mark_rotated(q: Queries, token_id: uuid.UUID) -> None:
    await q.execute("UPDATE refresh_tokens SET rotated_at = now() WHERE id = %s", (token_id,))


# Password resets --------------------------------------------------------------------------


async def insert_password_reset(
    q: Queries, *, id: uuid.UUID, user_id: uuid.UUID, token_hash: bytes, expires_at: datetime
) -> None:
    await q.execute(
        """INSERT INTO password_resets (id, user_id, token_hash, expires_at)
           VALUES (%(id)s, %(user_id)s, %(token_hash)s, %(expires_at)s)""",
        locals(),
    )


async def consume_password_reset(q: Queries, token_hash: bytes, now: datetime) -> uuid.UUID | None:
    """Mark a reset token unexpired at `now` and unused as used; return its user, or None."""
    return await q.fetchval(
        """UPDATE password_resets SET used_at = %(now)s
           WHERE token_hash = %(h)s AND used_at IS NULL AND expires_at > %(now)s
           RETURNING user_id""",
        {"h": token_hash, "now": now},
    )


async def set_email_verified(q: Queries, user_id: uuid.UUID, now: datetime) -> None:
    """Mark the account's email verified (kept as the first time, if it already was)."""
    await q.execute(
        """UPDATE users SET email_verified_at = coalesce(email_verified_at, %s) WHERE id = %s""",
        (now, user_id),
    )


# Email verification -----------------------------------------------------------------------


async def get_unverified(
    q: Queries, *, user_id: uuid.UUID | None = None, email: str | None = None
) -> Row | None:
    """The active account (by id or by email) whose email is not verified yet, or None."""
    return await q.fetchrow(
        """SELECT id, username, email FROM users
           WHERE (id = %(user_id)s OR lower(email) = lower(%(email)s))
             AND is_active AND email_verified_at IS NULL
           LIMIT 1""",
        {"user_id": user_id, "email": email},
    )


async def purge_unverified(q: Queries, created_before: datetime, batch: int = 500) -> int:
    """Delete up to `batch` accounts created before `created_before` whose email was never
    verified and that never signed in (no refresh token ever: nothing else hangs on them; an
    account made in "open" registration mode signed in at once and is never taken); returns
    how many."""
    return int(
        await q.fetchval(
            """WITH gone AS (
                 DELETE FROM users WHERE id IN (
                   SELECT u.id FROM users u
                   WHERE u.email_verified_at IS NULL AND u.created_at < %s
                     AND NOT EXISTS (SELECT 1 FROM refresh_tokens rt WHERE rt.user_id = u.id)
                   LIMIT %s)
                 RETURNING 1)
               SELECT count(*) FROM gone""",
            (created_before, batch),
        )
    )


async def insert_email_verification(
    q: Queries, *, id: uuid.UUID, user_id: uuid.UUID, token_hash: bytes, expires_at: datetime
) -> None:
    await q.execute(
        """INSERT INTO email_verifications (id, user_id, token_hash, expires_at)
           VALUES (%(id)s, %(user_id)s, %(token_hash)s, %(expires_at)s)""",
        locals(),
    )


async def consume_email_verification(
    q: Queries, token_hash: bytes, now: datetime
) -> uuid.UUID | None:
    """Mark an unexpired, unused verification token used and the account's email verified;
    return the account, or None. The account's other pending links stop working too."""
    user_id = await q.fetchval(
        """UPDATE email_verifications SET used_at = %(now)s
           WHERE token_hash = %(h)s AND used_at IS NULL AND expires_at > %(now)s
           RETURNING user_id""",
        {"h": token_hash, "now": now},
    )
    if user_id is None:
        return None
    await q.execute(
        "UPDATE email_verifications SET used_at = %s WHERE user_id = %s AND used_at IS NULL",
        (now, user_id),
    )
    await set_email_verified(q, user_id, now)
    return user_id
