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
from server.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from server.ids import new_id, parse_uuid
from server.jobs.queue import enqueue
from server.store import graph as graph_store
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
    return url


URL_FIELDS = ("website", "profile_picture_url", "cover_photo_url")


async def _start_session(
    ctx: Context, q: Queries, user: Row, family: uuid.UUID | None = None
) -> Session:
    refresh = new_opaque_token()
    family = family or new_id()
    await users_store.insert_refresh_token(
        q,
        id=new_id(),
        user_id=user["id"],
        family_id=family,
        token_hash=token_digest(refresh),
        expires_at=ctx.clock.now() + timedelta(seconds=ctx.settings.auth.refresh_token_ttl_s),
    )
    access = ctx.signer.issue(user["id"], user["username"], user["roles"])
    return Session(user, access, refresh, ctx.signer.access_ttl_s, family)


async def register(
    ctx: Context, *, username: str, email: str, password: str, display_name: str | None = None
) -> Session:
    username = normalize_username(username)
    email = email.strip().lower()
    password_hash = await ctx.passwords.hash(password)
    try:
        async with ctx.db.transaction() as tx:
            user = await users_store.insert_user(
                tx,
                id=new_id(),
                username=username,
                email=email,
                password_hash=password_hash,
                display_name=(display_name or "").strip() or username,
            )
            return await _start_session(ctx, tx, user)
    except UniqueViolation:
        taken = await users_store.username_or_email_taken(ctx.db, username, email)
        if taken and taken["username_taken"]:
            raise Conflict("That username is taken.", errors={"username": ["is taken"]}) from None
        # Say no more than that: whether an email has an account is not ours to reveal.
        raise Conflict("An account could not be created with these details.") from None


async def login(ctx: Context, *, login: str, password: str, ip: str) -> Session:
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
    async with ctx.db.transaction() as tx:
        user = await users_store.get_by_id(tx, creds["id"])
        if user is None:  # deactivated since the credentials were read
            raise Unauthorized("Invalid username or password.")
        return await _start_session(ctx, tx, user)


async def refresh(ctx: Context, refresh_token: str | None) -> Session:
    if not refresh_token:
        raise Unauthorized("No refresh token.")
    async with ctx.db.transaction() as tx:
        token = await users_store.claim_refresh_token(tx, token_digest(refresh_token))
        if token is None or token["revoked_at"] is not None:
            raise Unauthorized("The refresh token is not valid.")
        if token["rotated_at"] is not None:
            # A rotated token came back: someone holds a copy. End the whole family.
            await users_store.revoke_family(tx, token["family_id"])
            # Whoever holds the copy may also hold a live socket or SSE stream opened with an
            # access token of this family: close every live session of the user (4004).
            ctx.events.end_sessions(tx, token["user_id"], "refresh token reuse detected")
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
            session = await _start_session(ctx, tx, user, family=token["family_id"])
    if reused:
        raise Unauthorized("The refresh token was already used; please log in again.")
    return session


async def logout(ctx: Context, refresh_token: str | None) -> None:
    if not refresh_token:
        return
    async with ctx.db.transaction() as tx:
        token = await users_store.claim_refresh_token(tx, token_digest(refresh_token))
        if token is not None:
            await users_store.revoke_family(tx, token["family_id"])


async def forgot_password(ctx: Context, *, email: str, ip: str) -> None:
    """Always succeeds from the caller's view, so it never tells whether an email is known."""
    await ctx.limit(
        f"forgot:ip:{ip}", ctx.settings.rate_limits.forgot_password_per_ip, "reset requests"
    )
    user = await users_store.get_by_email(ctx.db, email.strip())
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
        await users_store.revoke_all_for_user(tx, user_id)
        # Sockets and SSE streams opened with the old credentials end too (close 4004).
        ctx.events.end_sessions(tx, user_id, "password reset")


async def authenticate(ctx: Context, token: str) -> Principal:
    """The principal an access token names, if its account is still active."""
    principal = ctx.signer.verify(token)
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
        changes["display_name"] = changes["display_name"].strip()
        if not changes["display_name"]:
            raise ValidationFailed.field("display_name", "cannot be blank")
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
