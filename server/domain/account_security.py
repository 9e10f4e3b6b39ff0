"""Account security a user manages: change the password, see where they are signed in, end one
session or all; and deactivation, which ends every session."""

from __future__ import annotations

import uuid
from typing import Any

from server.domain.accounts import end_sessions_of
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.errors import NotFound, ValidationFailed
from server.pagination import decode_id_cursor, page
from server.store import sessions as sessions_store
from server.store import users as users_store


async def _check_password(ctx: Context, principal: Principal, password: str, field: str) -> None:
    """The account's current password, or 422 naming `field`. Each try counts as a login attempt:
    guessing it from a stolen session is no cheaper than guessing it at login."""
    limits = ctx.settings.rate_limits
    await ctx.limit(
        f"login:acct:{principal.user_id}", limits.login_per_account, "password attempts"
    )
    creds = await users_store.get_credentials_by_id(ctx.db, principal.user_id)
    ok = await ctx.passwords.verify(creds["password_hash"] if creds else None, password)
    if not ok or creds is None:
        raise ValidationFailed.field(field, "is not your current password")


async def change_password(
    ctx: Context, principal: Principal, *, current_password: str, new_password: str
) -> None:
    """Set a new password; the current one is required. Every other session ends (refresh and
    access tokens refused, sockets closed 4004); this one stays signed in."""
    await _check_password(ctx, principal, current_password, "current_password")
    if new_password == current_password:
        raise ValidationFailed.field("new_password", "must differ from the current password")
    password_hash = await ctx.passwords.hash(new_password)
    async with ctx.db.transaction() as tx:
        await users_store.set_password(tx, principal.user_id, password_hash)
        ended = await sessions_store.revoke_sessions(
            tx, principal.user_id, keep=principal.session_id
        )
        end_sessions_of(ctx, tx, principal.user_id, ended, "password changed")


def _session_view(row: dict[str, Any], current: uuid.UUID | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "created_at": row["created_at"],
        "last_used_at": row["last_used_at"],
        "expires_at": row["expires_at"],
        "user_agent": row["user_agent"],
        "ip": row["ip"],
        "current": row["id"] == current,
    }


async def list_sessions(
    ctx: Context, principal: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """The user's live sign-in sessions (devices), newest first; `current` marks this one."""
    before = decode_id_cursor(cursor)
    rows = await sessions_store.live_sessions(
        ctx.db, principal.user_id, ctx.clock.now(), before, limit + 1
    )
    rows, next_cursor = page(rows, limit, lambda row: str(row["id"]))
    return {
        "items": [_session_view(row, principal.session_id) for row in rows],
        "next_cursor": next_cursor,
    }


async def revoke_session(ctx: Context, principal: Principal, session_id: uuid.UUID) -> None:
    """End one of the user's sessions (possibly this one). 404 if it is not theirs or ended."""
    async with ctx.db.transaction() as tx:
        if not await sessions_store.revoke_session(tx, principal.user_id, session_id):
            raise NotFound("No such session.")
        end_sessions_of(ctx, tx, principal.user_id, [session_id], "session revoked")


async def deactivate_account(ctx: Context, user_id: uuid.UUID, reason: str) -> None:
    """Switch an account off (moderation, or the user leaving): it can no longer sign in and
    every session ends at once on every transport."""
    async with ctx.db.transaction() as tx:
        await users_store.set_active(tx, user_id, False)
        ended = await sessions_store.revoke_sessions(tx, user_id)
        end_sessions_of(ctx, tx, user_id, ended, reason)


async def deactivate(ctx: Context, principal: Principal, *, password: str) -> None:
    """The user leaves: with their password (a stolen access token alone cannot do it), the
    account is switched off and every session ends on every transport (sockets close 4004)."""
    await _check_password(ctx, principal, password, "password")
    await deactivate_account(ctx, principal.user_id, "account deactivated")
