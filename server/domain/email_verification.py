"""Email verification (`auth.registration = "verify_email"`, the default): a new account signs
in once its owner follows the single-use, expiring link mailed to it. Registration then answers
the same for a fresh and a taken email, so it does not tell who has an account."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from server.domain.accounts import (
    NO_DEVICE,
    Device,
    Session,
    send_email_after_commit,
    start_session,
)
from server.domain.auth_tokens import new_opaque_token, token_digest
from server.domain.context import Context
from server.errors import Unauthorized, ValidationFailed
from server.ids import new_id, parse_uuid
from server.jobs.queue import enqueue
from server.store import users as users_store


async def verify_email(ctx: Context, *, token: str, device: Device = NO_DEVICE) -> Session:
    """Verify the email of the link's account and sign it in. 422 naming `token` when the
    link is unknown, expired or already used."""
    async with ctx.db.transaction() as tx:
        user_id = await users_store.consume_email_verification(
            tx, token_digest(token), ctx.clock.now()
        )
        if user_id is None:
            raise ValidationFailed.field("token", "is invalid, expired or already used")
        user = await users_store.get_by_id(tx, user_id)
        if user is None:  # deactivated while the link was on its way
            raise Unauthorized("The account is not active.")
        return await start_session(ctx, tx, user, device=device)


async def resend_verification(ctx: Context, *, email: str, ip: str) -> None:
    """Always succeeds from the caller's view (whether or not the email has an account waiting
    for verification); the mail follows only if one does. Limited per address and per email."""
    limits = ctx.settings.rate_limits
    email = email.strip().lower()
    await ctx.limit(f"resend:ip:{ip}", limits.resend_verification_per_ip, "verification mails")
    await ctx.limit(
        f"resend:email:{email}", limits.resend_verification_per_email, "verification mails"
    )
    # The lookup runs in the job, so the answer takes the same time either way.
    async with ctx.db.transaction() as tx:
        await enqueue(tx, "auth.email_verification", {"email": email}, sensitive=True)


async def purge_unverified_accounts(ctx: Context, payload: dict[str, Any]) -> None:
    """Job `auth.purge_unverified` (daily): delete accounts whose email was not verified within
    `auth.unverified_account_ttl_s`, freeing their username and email, in batches."""
    if ctx.settings.auth.registration != "verify_email":
        return  # "open" registration verifies nobody: its accounts are not waiting for a link
    cutoff = ctx.clock.now() - timedelta(seconds=ctx.settings.auth.unverified_account_ttl_s)
    while await users_store.purge_unverified(ctx.db, cutoff) >= 500:
        pass


async def email_verification_job(ctx: Context, payload: dict[str, Any]) -> None:
    """The `auth.email_verification` job: mail a fresh verification link to the account named
    by `user_id` (just registered) or `email` (a resend) if it is still unverified."""
    user_id: uuid.UUID | None = parse_uuid(str(payload.get("user_id") or ""))
    email = str(payload.get("email") or "") or None
    if user_id is None and email is None:
        return
    user = await users_store.get_unverified(ctx.db, user_id=user_id, email=email)
    if user is None:
        return
    token = new_opaque_token()
    ttl_s = ctx.settings.auth.email_verification_ttl_s
    async with ctx.db.transaction() as tx:
        await users_store.insert_email_verification(
            tx,
            id=new_id(),
            user_id=user["id"],
            token_hash=token_digest(token),
            expires_at=ctx.clock.now() + timedelta(seconds=ttl_s),
        )
        link = f"{ctx.settings.server.public_url}/verify-email?token={token}"
        hours = max(1, ttl_s // 3600)
        text = (
            f"Hi @{user['username']},\n\nWelcome to Nexgate. Confirm this is your email address "
            f"to finish creating your account (the link works once, within {hours} hours):"
            f"\n\n{link}\n\nIf you did not sign up, ignore this email: no account is created "
            "without it."
        )
        await send_email_after_commit(ctx, tx, user["email"], "Verify your Nexgate email", text)
