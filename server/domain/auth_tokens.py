"""Access tokens (JWT), opaque refresh / reset tokens and password hashing."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is making a request, as the access token says."""

    user_id: uuid.UUID
    username: str
    roles: tuple[str, ...] = ("user",)
    # The sign-in session (refresh-token family) the token belongs to: the unit a logout or a
    # "revoke this device" ends. None for principals not built from a token (demo seeding).
    session_id: uuid.UUID | None = None

    @property
    def is_moderator(self) -> bool:
        return bool({"admin", "moderator"} & set(self.roles))


class TokenSigner:
    def __init__(self, secret: str, access_ttl_s: int) -> None:
        self._secret = secret
        self.access_ttl_s = access_ttl_s

    def issue(
        self,
        user_id: uuid.UUID,
        username: str,
        roles: list[str] | tuple[str, ...],
        session_id: uuid.UUID,
    ) -> str:
        now = int(time.time())
        claims = {
            "user_id": str(user_id),
            "sid": str(session_id),
            "username": username,
            "roles": list(roles),
            "iat": now,
            "exp": now + self.access_ttl_s,
            "typ": "access",
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify(self, token: str) -> Principal:
        """The principal a valid access token names; any problem with it is Unauthorized."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "iat", "user_id", "sid"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired.") from None
        except (jwt.InvalidTokenError, ValueError, TypeError, KeyError, OverflowError):
            # PyJWT lets some malformed numeric claims through as TypeError / OverflowError.
            raise Unauthorized("The access token is not valid.") from None
        if claims.get("typ") != "access":
            raise Unauthorized("Not an access token.")
        return _principal(claims)


def _principal(claims: dict[str, Any]) -> Principal:
    """Claims checked by type (a signature proves who signed, not what they put in it)."""
    invalid = Unauthorized("The access token is not valid.")
    user_id, username = claims.get("user_id"), claims.get("username", "")
    session_id = claims.get("sid")
    roles = claims.get("roles") or ["user"]
    if not isinstance(user_id, str) or not isinstance(username, str):
        raise invalid
    if not isinstance(session_id, str):
        raise invalid
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise invalid
    try:
        parsed, sid = uuid.UUID(user_id), uuid.UUID(session_id)
    except ValueError:
        raise invalid from None
    return Principal(parsed, username, tuple(roles), sid)


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Passwords:
    """argon2id; hashing runs in a thread so it never stalls the event loop."""

    def __init__(self, time_cost: int = 3, memory_cost_kib: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost_kib)
        self._dummy = self._hasher.hash(secrets.token_hex(8))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Constant work whether or not the account exists (pass None for a missing one)."""

        def check() -> bool:
            try:
                return self._hasher.verify(password_hash or self._dummy, password) and bool(
                    password_hash
                )
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)
