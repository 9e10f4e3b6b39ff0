"""Accounts: registration, login, token rotation, password reset, profiles."""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from server.domain.auth_tokens import Principal, new_opaque_token, token_digest
from server.domain.context import Context
from server.domain.sessions import end_sessions
from server.domain.text import has_control_characters, normalize_display_name, require_visible
from server.errors import (
    Conflict,
    EmailNotVerified,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from server.ids import new_id, parse_uuid
from server.jobs.queue import enqueue
from server.store import graph as graph_store
from server.store import sessions as sessions_store
from server.store import users as users_store
from server.store.db import Queries, Row, UniqueViolation

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[a-z0-9_]{3,30}$")
RESERVED_USERNAMES = frozenset({"blocked", "muted", "me", "admin", "api", "settings"})


@dataclass(frozen=True, slots=True)
class Session:
    """What a successful login, registration or refresh hands back."""

    user: Row
    access_token: str
    refresh_token: str
    expires_in: int
    family_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Device:
    """Where a sign-in comes from, as shown in the user's list of sessions."""

    user_agent: str = ""
    ip: str = ""


NO_DEVICE = Device()


def display_name_or(display_name: str | None, username: str) -> str:
    """The display name given at registration, normalised (server/domain/text.py); the
    username when none is given. A given name with nothing visible in it is 422."""
    if display_name is None or not display_name.strip():
        return username
    return normalize_display_name(display_name)


def normalize_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME_RE.match(name):
        raise ValidationFailed.field("username", "must be 3-30 characters of a-z, 0-9 and _")
    if name in RESERVED_USERNAMES:
        raise ValidationFailed.field("username", "is reserved")
    return name


def check_http_url(url: str | None, field: str) -> str | None:
    """An http(s) URL, or None for an empty value; anything else (javascript:, data:...) is 422."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 literal
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or " " in url:
        raise ValidationFailed.field(field, "must be an http(s) URL")
    if has_control_characters(url):
        raise ValidationFailed.field(field, "may not contain control characters (CR, LF, ...)")
    return url


URL_FIELDS = ("website", "profile_picture_url", "cover_photo_url")


async def start_session(
    ctx: Context,
    q: Queries,
    user: Row,
    family: uuid.UUID | None = None,
    device: Device = NO_DEVICE,
) -> Session:
    """A new refresh token: of a new sign-in session (`family` None), or the next of `family`
    (a refresh, which also marks the session used now)."""
    refresh = new_opaque_token()
    now = ctx.clock.now()
    expires_at = now + timedelta(seconds=ctx.settings.auth.refresh_token_ttl_s)
    if family is None:
        family = new_id()
        await sessions_store.insert_session(
            q,
            id=family,
            user_id=user["id"],
            expires_at=expires_at,
            user_agent=device.user_agent[:300],
            ip=device.ip[:64],
            now=now,
        )
    else:
        await sessions_store.touch_session(
            q, family, now=now, expires_at=expires_at, ip=device.ip[:64] or None
        )
    await users_store.insert_refresh_token(
        q,
        id=new_id(),
        user_id=user["id"],
        family_id=family,
        token_hash=token_digest(refresh),
        expires_at=expires_at,
    )
    access = ctx.signer.issue(user["id"], user["username"], user["roles"], family)
    return Session(user, access, refresh, ctx.signer.access_ttl_s, family)


def end_sessions_of(
    ctx: Context, tx: Any, user_id: uuid.UUID, session_ids: list[uuid.UUID], reason: str
) -> None:
    """Once `tx` commits, refuse these sessions' access tokens and close their sockets."""
    end_sessions(
        ctx.events, tx, user_id, session_ids, access_ttl_s=ctx.signer.access_ttl_s, reason=reason
    )


async def register(
    ctx: Context,
    *,
    username: str,
    email: str,
    password: str,
    display_name: str | None = None,
    device: Device = NO_DEVICE,
) -> Session | None:
    """A new account. With `auth.registration = "verify_email"` (the default) None: the
    account waits for its email to be verified and the answer is the same whether or not the
    email already had an account (its owner is mailed instead). With "open" the new account's
    session, or 409 when the username or the email is taken."""
    limits = ctx.settings.rate_limits
    # Each registration costs an argon2 hash (tens of MiB, tens of ms): bounded per address,
    # and overall so that many addresses together cannot starve other users either.
    await ctx.limit(f"register:ip:{device.ip}", limits.register_per_ip, "registrations")
    await ctx.limit("register:global", limits.register_global, "registrations")
    username = normalize_username(username)
    email = email.strip().lower()
    name = display_name_or(display_name, username)
    # Hashed whether or not the email is taken: the same work, the same time, either way.
    password_hash = await ctx.passwords.hash(password)
    verify = ctx.settings.auth.registration == "verify_email"
    try:
        async with ctx.db.transaction() as tx:
            user = await users_store.insert_user(
                tx,
                id=new_id(),
                username=username,
                email=email,
                password_hash=password_hash,
                display_name=name,
            )
            if verify:
                # The token and the mail are made in the job; the request only queues it,
                # as the taken-email path below queues the owner's mail.
                await enqueue(tx, "auth.email_verification", {"user_id": str(user["id"])})
                return None
            return await start_session(ctx, tx, user, device=device)
    except UniqueViolation:
        taken = await users_store.username_or_email_taken(ctx.db, username, email)
        if taken and taken["username_taken"]:
            # Usernames are public (every profile shows one): saying so reveals nothing.
            raise Conflict("That username is taken.", errors={"username": ["is taken"]}) from None
        # Whether an email has an account is not ours to reveal. Its owner hears of the
        # attempt instead (it may be them, having forgotten the account).
        async with ctx.db.transaction() as tx:
            await send_email_after_commit(
                ctx,
                tx,
                email,
                "Someone tried to register with your email",
                "Someone just tried to create a Nexgate account with this email address, "
                "which already has one. If it was you, log in, or reset your password at "
                f"{ctx.settings.server.public_url}/forgot-password. If not, ignore this email.",
            )
        if verify:
            return None
        raise Conflict("An account could not be created with these details.") from None


async def login(
    ctx: Context, *, login: str, password: str, ip: str, device: Device = NO_DEVICE
) -> Session:
    limits = ctx.settings.rate_limits
    await ctx.limit(f"login:ip:{ip}", limits.login_per_ip, "login attempts from this address")
    creds = await users_store.get_credentials(ctx.db, login.strip())
    # One bucket per account, whichever of username or email was typed.
    account_key = f"login:acct:{creds['id'] if creds else login.strip().lower()}"
    await ctx.limit(account_key, limits.login_per_account, "login attempts for this account")
    ok = await ctx.passwords.verify(creds["password_hash"] if creds else None, password)
    if not ok or creds is None or not creds["is_active"]:
        raise Unauthorized("Invalid username or password.")
    await ctx.limiter.reset(account_key)
    if creds["email_verified_at"] is None and ctx.settings.auth.registration == "verify_email":
        # Only after the right password: whoever reads this already knows the account.
        raise EmailNotVerified(
            "Verify your email address first: follow the link we sent to it, or ask for a new "
            "one with POST /api/auth/resend-verification."
        )
    async with ctx.db.transaction() as tx:
        user = await users_store.get_by_id(tx, creds["id"])
        if user is None:  # deactivated since the credentials were read
            raise Unauthorized("Invalid username or password.")
        return await start_session(ctx, tx, user, device=device)


async def refresh(ctx: Context, refresh_token: str | None, device: Device = NO_DEVICE) -> Session:
    if not refresh_token:
        raise Unauthorized("No refresh token.")
    async with ctx.db.transaction() as tx:
        token = await users_store.claim_refresh_token(tx, token_digest(refresh_token))
        if token is None or token["revoked_at"] is not None:
            raise Unauthorized("The refresh token is not valid.")
        if token["rotated_at"] is not None:
            # A rotated token came back: someone holds a copy. End the whole family: its
            # refresh tokens, its access tokens (whoever holds the copy may hold one of those
            # too) and its live sockets and SSE streams (4004). Other devices stay signed in.
            await sessions_store.revoke_session(tx, token["user_id"], token["family_id"])
            end_sessions_of(
                ctx, tx, token["user_id"], [token["family_id"]], "refresh token reuse detected"
            )
            log.warning("refresh token reuse detected", extra={"user_id": str(token["user_id"])})
            reused = True
        else:
            reused = False
            if token["expires_at"] <= ctx.clock.now():
                raise Unauthorized("The refresh token has expired.")
            user = await users_store.get_by_id(tx, token["user_id"])
            if user is None:
                raise Unauthorized("The account is not active.")
            await users_store.mark_rotated(tx, token["id"])
            session = await start_session(ctx, tx, user, family=token["family_id"], device=device)
    if reused:
        raise Unauthorized("The refresh token was already used; please log in again.")
    return session


async def logout(
    ctx: Context,
    refresh_token: str | None,
    principal: Principal | None = None,
    *,
    everywhere: bool = False,
) -> None:
    """End the sign-in session of the refresh cookie or of the access token (`principal`), or
    with `everywhere` every session of that user: refresh tokens revoked, access tokens refused
    from then on, sockets and SSE streams closed (4004)."""
    async with ctx.db.transaction() as tx:
        user_id: uuid.UUID | None = None
        session_id: uuid.UUID | None = None
        if refresh_token:
            token = await users_store.claim_refresh_token(tx, token_digest(refresh_token))
            if token is not None:
                user_id, session_id = token["user_id"], token["family_id"]
        if user_id is None and principal is not None:
            user_id, session_id = principal.user_id, principal.session_id
        if user_id is None:
            return
        if everywhere:
            ended = await sessions_store.revoke_sessions(tx, user_id)
        elif session_id is not None:
            await sessions_store.revoke_session(tx, user_id, session_id)
            ended = [session_id]
        else:
            return
        end_sessions_of(ctx, tx, user_id, ended, "logged out")


async def forgot_password(ctx: Context, *, email: str, ip: str) -> None:
    """Always succeeds from the caller's view, so it never tells whether an email is known."""
    limits = ctx.settings.rate_limits
    await ctx.limit(f"forgot:ip:{ip}", limits.forgot_password_per_ip, "reset requests")
    await ctx.limit("forgot:global", limits.forgot_password_global, "reset requests")
    # The same work whether or not the email has an account (one job row): the lookup, the
    # token and the mail happen in the job, so response time tells nothing.
    async with ctx.db.transaction() as tx:
        await enqueue(tx, "auth.password_reset", {"email": email.strip()}, sensitive=True)


async def password_reset_job(ctx: Context, payload: dict[str, Any]) -> None:
    """The `auth.password_reset` job: mail a single-use reset link if the email has an
    account; nothing otherwise."""
    user = await users_store.get_by_email(ctx.db, str(payload.get("email", "")))
    if user is None:
        return
    token = new_opaque_token()
    async with ctx.db.transaction() as tx:
        await users_store.insert_password_reset(
            tx,
            id=new_id(),
            user_id=user["id"],
            token_hash=token_digest(token),
            expires_at=ctx.clock.now() + timedelta(seconds=ctx.settings.auth.password_reset_ttl_s),
        )
        link = f"{ctx.settings.server.public_url}/reset-password?token={token}"
        text = (
            f"Hi @{user['username']},\n\nSomeone asked to reset your Nexgate password. "
            f"Use this link within the hour:\n\n{link}\n\nIf it was not you, ignore this email."
        )
        await send_email_after_commit(ctx, tx, user["email"], "Reset your Nexgate password", text)


async def send_email_after_commit(ctx: Context, tx: Any, to: str, subject: str, text: str) -> None:
    """Durable outgoing mail: an `email.send` job enqueued in `tx`, picked up by a worker as soon
    as `tx` commits (LISTEN/NOTIFY) and retried with backoff if SMTP fails. The request never
    waits for SMTP, so response time does not reveal whether an address has an account."""
    await enqueue(tx, "email.send", {"to": to, "subject": subject, "text": text}, sensitive=True)


async def reset_password(ctx: Context, *, token: str, new_password: str) -> None:
    password_hash = await ctx.passwords.hash(new_password)
    async with ctx.db.transaction() as tx:
        user_id = await users_store.consume_password_reset(tx, token_digest(token), ctx.clock.now())
        if user_id is None:
            raise ValidationFailed.field("token", "is invalid, expired or already used")
        await users_store.set_password(tx, user_id, password_hash)
        # The reset link was read from the mailbox: that verifies the email as well.
        await users_store.set_email_verified(tx, user_id, ctx.clock.now())
        # Every session ends: refresh tokens, access tokens, sockets and SSE streams (4004).
        ended = await sessions_store.revoke_sessions(tx, user_id)
        end_sessions_of(ctx, tx, user_id, ended, "password reset")


async def authenticate(ctx: Context, token: str, *, check_account: bool = False) -> Principal:
    """The principal an access token names, unless its sign-in session was revoked (a cached
    bus read, no database round trip: this runs on every request and gateway call). With
    `check_account` (once per socket, at identify / resume) the account is also read from the
    database: a deactivation revokes every session anyway, this also catches an account
    switched off by hand in SQL."""
    principal = ctx.signer.verify(token)
    if await ctx.revocations.is_revoked(principal.user_id, principal.session_id):
        raise Unauthorized("The session has ended; log in again.")
    if check_account:
        await ensure_active(ctx, principal)
    return principal


async def ensure_active(ctx: Context, principal: Principal) -> None:
    account = await users_store.get_auth_state(ctx.db, principal.user_id)
    if not account or not account["is_active"]:
        raise Unauthorized("The account is not active.")


async def web_session_alive(ctx: Context, principal: Principal, family_id: Any) -> bool:
    """A browser's session cookie lives as long as the refresh token family it was issued with:
    logout, a password reset or a detected token reuse revoke the family and end it too."""
    family = parse_uuid(family_id) if isinstance(family_id, str) else None
    return family is not None and await users_store.session_family_live(
        ctx.db, principal.user_id, family
    )


# Profiles ----------------------------------------------------------------------------------


def profile_view(user: Row, viewer: uuid.UUID | None, rel: Row | None = None) -> dict[str, Any]:
    """The profile as `viewer` may see it: the email only for its owner."""
    view = {
        k: v for k, v in user.items() if k not in ("email", "roles", "follow_id", "followed_at")
    }
    is_self = viewer is not None and viewer == user["id"]
    if is_self:
        view["email"] = user["email"]
    if rel is not None and not is_self:
        view["relationship"] = {
            "following": rel["following"],
            "followed_by": rel["followed_by"],
            "blocking": rel["blocking"],
            "muting": rel["muting"],
        }
    return view


async def find_user(ctx: Context, ref: str) -> Row:
    """The active user `ref` names (a UUID is an id, anything else a username), or NotFound."""
    user_id = parse_uuid(ref)
    user = (
        await users_store.get_by_id(ctx.db, user_id)
        if user_id
        else await users_store.get_by_username(ctx.db, ref)
    )
    if user is None:
        raise NotFound("No such user.")
    return user


async def find_visible_user(ctx: Context, viewer: Principal, ref: str) -> Row:
    """The user `ref` (id or username) names; NotFound if missing or if they blocked the viewer."""
    user = await find_user(ctx, ref)
    # Whoever blocked the viewer does not exist for them; the blocker still sees whom they blocked.
    if user["id"] != viewer.user_id and await graph_store.has_blocked(
        ctx.db, user["id"], viewer.user_id
    ):
        raise NotFound("No such user.")
    return user


async def get_profile(ctx: Context, viewer: Principal, ref: str) -> dict[str, Any]:
    user = await find_visible_user(ctx, viewer, ref)
    rel = None
    if user["id"] != viewer.user_id:
        rel = await graph_store.relationship(ctx.db, viewer.user_id, user["id"])
    return profile_view(user, viewer.user_id, rel)


async def update_profile(
    ctx: Context, viewer: Principal, user_id: uuid.UUID, changes: dict[str, Any]
) -> dict[str, Any]:
    if user_id != viewer.user_id:
        raise Forbidden("You can only edit your own profile.")
    for field in URL_FIELDS:
        if field in changes:
            changes[field] = check_http_url(changes[field], field)
    if "display_name" in changes:
        changes["display_name"] = normalize_display_name(changes["display_name"] or "")
    for field in ("bio", "location"):
        if changes.get(field):  # optional, but when given it must show something
            changes[field] = require_visible(changes[field], field)
    async with ctx.db.transaction() as tx:
        await graph_store.lock_users(tx, user_id)
        user = await users_store.update_profile(tx, user_id, changes)
        if user is None:
            raise NotFound("No such user.")
        if changes.get("is_private") is False:
            accepted = await graph_store.accept_all_requests(tx, user_id)
            if accepted:
                user = await users_store.get_by_id(tx, user_id)
                if user is None:
                    raise NotFound("No such user.")
    return profile_view(user, viewer.user_id)


async def get_stats(ctx: Context, viewer: Principal, ref: str) -> dict[str, Any]:
    user = await find_visible_user(ctx, viewer, ref)
    return {
        "user_id": user["id"],
        "posts_count": user["posts_count"],
        "followers_count": user["followers_count"],
        "following_count": user["following_count"],
        "likes_received": user["likes_received"],
    }
