"""/api/auth: register, login, logout, refresh-token, forgot-password, reset-password; and the
account's security: password (change), sessions (list, revoke one)."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session, new_session
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from server.app_keys import CONTEXT, PRINCIPAL
from server.domain import account_security, accounts, email_verification
from server.http.endpoint import client_ip, context, endpoint, json_response, path_id, principal
from server.http.schemas import UserOut
from server.pagination import PageQuery

routes = web.RouteTableDef()

TAGS = ("auth",)


class RegisterIn(BaseModel):
    """A new account: unique username and email, and a password of 8 characters or more."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "username": "ada",
                    "email": "ada@example.com",
                    "password": "correct horse battery",
                    "display_name": "Ada Lovelace",
                }
            ]
        }
    )

    username: str = Field(min_length=3, max_length=30)
    email: EmailStr
    password: str = Field(min_length=8, max_length=256)
    display_name: str | None = Field(None, max_length=50)


class LoginIn(BaseModel):
    """Credentials: the username or the email, and the password."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"login": "ada", "password": "correct horse battery"}]}
    )

    login: str = Field(min_length=1, max_length=254, description="Username or email")
    password: str = Field(min_length=1, max_length=256)


class ForgotIn(BaseModel):
    """The email of the account whose password was forgotten."""

    email: EmailStr


class ResetIn(BaseModel):
    """The token from the reset email and the new password."""

    token: str = Field(min_length=10, max_length=200)
    new_password: str = Field(min_length=8, max_length=256)


class SessionOut(BaseModel):
    """A signed-in session: the short-lived access token (send it as `Authorization: Bearer`)
    and the signed-in user. The refresh token travels in an HTTP-only cookie, never here."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    user: UserOut


def _session_response(request: web.Request, session: accounts.Session, status: int) -> web.Response:
    settings = request.app[CONTEXT].settings.auth
    body = {
        "access_token": session.access_token,
        "token_type": "Bearer",
        "expires_in": session.expires_in,
        "user": accounts.profile_view(session.user, session.user["id"]),
    }
    response = json_response(body, status)
    response.set_cookie(
        settings.refresh_cookie_name,
        session.refresh_token,
        max_age=settings.refresh_token_ttl_s,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="Strict",
        path="/api/auth",
    )
    return response


def _device(request: web.Request) -> accounts.Device:
    return accounts.Device(request.headers.get("User-Agent", ""), client_ip(request))


async def _remember_web_session(request: web.Request, session: accounts.Session) -> None:
    web_session = await new_session(request)
    web_session["user_id"] = str(session.user["id"])
    web_session["username"] = session.user["username"]
    web_session["roles"] = list(session.user["roles"])
    web_session["family_id"] = str(session.family_id)


class VerificationSentOut(BaseModel):
    """Registration accepted: a verification link is on its way to the email (with
    `auth.registration = "verify_email"`, the default). The same answer whether or not the email
    already had an account: its owner is mailed instead."""

    status: str = Field(description='Always "verification_sent"')
    detail: str


class VerifyEmailIn(BaseModel):
    """The token from the verification email."""

    token: str = Field(min_length=10, max_length=200)


class ResendVerificationIn(BaseModel):
    """The email of an account waiting for verification."""

    email: EmailStr


VERIFICATION_SENT = {
    "status": "verification_sent",
    "detail": "Check your email: follow the link we sent to finish creating the account.",
}


@routes.post("/api/auth/register")
@endpoint(
    "Register a new account",
    body=RegisterIn,
    response=SessionOut,
    status=201,
    also={202: VerificationSentOut},
    public=True,
    tags=TAGS,
    errors=(409, 422, 429),
    operation_id="auth.register",
)
async def register(request: web.Request, body: RegisterIn) -> web.Response:
    """By default (`auth.registration = "verify_email"`) 202 `verification_sent`, the same for a
    fresh and a taken email: the new account signs in once it follows the link mailed to it
    (POST /api/auth/verify-email); the owner of a taken email is mailed about the attempt. With
    "open", creates the account and signs it in at once (201 with an access token, the
    refresh-token cookie and a web session), 409 when the username or email is taken. 409 on a
    taken username either way (usernames are public)."""
    session = await accounts.register(
        request.app[CONTEXT],
        username=body.username,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        device=_device(request),
    )
    if session is None:
        return json_response(VERIFICATION_SENT, 202)
    await _remember_web_session(request, session)
    return _session_response(request, session, 201)


@routes.post("/api/auth/verify-email")
@endpoint(
    "Verify the email with the mailed token and sign in",
    body=VerifyEmailIn,
    response=SessionOut,
    status=201,
    public=True,
    tags=TAGS,
    errors=(422,),
    operation_id="auth.verify_email",
)
async def verify_email(request: web.Request, body: VerifyEmailIn) -> web.Response:
    """Marks the account's email verified and signs it in (201 as registration does in open
    mode: access token, refresh-token cookie, web session). The token works once, within
    `auth.email_verification_ttl_s`; 422 naming `token` otherwise."""
    session = await email_verification.verify_email(
        request.app[CONTEXT], token=body.token, device=_device(request)
    )
    await _remember_web_session(request, session)
    return _session_response(request, session, 201)


@routes.post("/api/auth/resend-verification")
@endpoint(
    "Mail a new verification link (answers the same whether or not the email is known)",
    body=ResendVerificationIn,
    response=VerificationSentOut,
    status=202,
    public=True,
    tags=TAGS,
    errors=(429,),
    operation_id="auth.resend_verification",
)
async def resend_verification(request: web.Request, body: ResendVerificationIn) -> dict:
    """Always 202; the mail follows only if an account with this email waits for
    verification. Limited per address and per email (429 with Retry-After)."""
    await email_verification.resend_verification(
        request.app[CONTEXT], email=body.email, ip=client_ip(request)
    )
    return VERIFICATION_SENT


@routes.post("/api/auth/login")
@endpoint(
    "Log in with username or email",
    body=LoginIn,
    response=SessionOut,
    public=True,
    tags=TAGS,
    errors=(401, 403, 429),
    operation_id="auth.login",
)
async def login(request: web.Request, body: LoginIn) -> web.Response:
    """Answers an access token (15 minutes) and sets the refresh-token cookie (7 days) and a web
    session. Attempts are rate limited per address and per account (429 with Retry-After). 403
    `email_not_verified` for the right password of an account whose email is not verified."""
    session = await accounts.login(
        request.app[CONTEXT],
        login=body.login,
        password=body.password,
        ip=client_ip(request),
        device=_device(request),
    )
    await _remember_web_session(request, session)
    return _session_response(request, session, 200)


@routes.post("/api/auth/refresh-token")
@endpoint(
    "Rotate the refresh cookie and get a new access token",
    response=SessionOut,
    public=True,
    tags=TAGS,
    errors=(401,),
    operation_id="auth.refresh_token",
)
async def refresh_token(request: web.Request) -> web.Response:
    """Reads the refresh-token cookie, replaces it with a new one and answers a new access token.
    A refresh token works once: reusing one revokes its whole family (401, log in again)."""
    ctx = request.app[CONTEXT]
    session = await accounts.refresh(
        ctx, request.cookies.get(ctx.settings.auth.refresh_cookie_name), _device(request)
    )
    return _session_response(request, session, 200)


class LogoutQuery(BaseModel):
    """Which sessions to end."""

    everywhere: bool = Field(
        False, description="End every session of the account (all devices), not just this one"
    )


@routes.post("/api/auth/logout")
@endpoint(
    "Log out this device (or every device): the session ends on every transport",
    query=LogoutQuery,
    public=True,
    status=204,
    tags=TAGS,
    operation_id="auth.logout",
)
async def logout(request: web.Request, query: LogoutQuery) -> web.Response:
    """Ends the sign-in session of the refresh cookie (else of the bearer access token), or
    with `everywhere=true` every session of the account: refresh tokens revoked, access tokens
    refused from then on, sockets and SSE streams closed (4004). Clears the cookie and the web
    session. Always 204, also without a session."""
    ctx = request.app[CONTEXT]
    await accounts.logout(
        ctx,
        request.cookies.get(ctx.settings.auth.refresh_cookie_name),
        request.get(PRINCIPAL),
        everywhere=query.everywhere,
    )
    (await get_session(request)).invalidate()
    response = web.Response(status=204)
    response.del_cookie(ctx.settings.auth.refresh_cookie_name, path="/api/auth")
    return response


@routes.post("/api/auth/forgot-password")
@endpoint(
    "Email a password reset link (answers the same whether or not the email is known)",
    body=ForgotIn,
    status=202,
    public=True,
    tags=TAGS,
    errors=(429,),
    operation_id="auth.forgot_password",
)
async def forgot_password(request: web.Request, body: ForgotIn) -> dict:
    """Always 202, whether or not an account has this email, so the answer does not tell who has
    an account; the email with a single-use reset token follows if one does."""
    await accounts.forgot_password(request.app[CONTEXT], email=body.email, ip=client_ip(request))
    return {"detail": "If that email has an account, a reset link is on its way."}


@routes.post("/api/auth/reset-password")
@endpoint(
    "Set a new password with a reset token (single use, 1 hour)",
    body=ResetIn,
    status=204,
    public=True,
    tags=TAGS,
    errors=(422,),
    operation_id="auth.reset_password",
)
async def reset_password(request: web.Request, body: ResetIn) -> None:
    """Sets the new password and signs every device out (the refresh tokens are revoked). 422
    when the token is invalid, expired or already used."""
    await accounts.reset_password(
        request.app[CONTEXT], token=body.token, new_password=body.new_password
    )


# Account security ------------------------------------------------------------------------------


class ChangePasswordIn(BaseModel):
    """The current password (required) and the new one."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"current_password": "correct horse battery", "new_password": "tr0ub4dor&3 x"}
            ]
        }
    )

    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=8, max_length=256)


class SessionInfo(BaseModel):
    """A sign-in session: one login on one device, renewed by each refresh."""

    id: str = Field(description="Session id (the `sid` claim of its access tokens)")
    created_at: str
    last_used_at: str = Field(description="Last sign-in or token refresh (not each request)")
    expires_at: str
    user_agent: str
    ip: str
    current: bool = Field(description="The session making this request")


class SessionsPage(BaseModel):
    """Live sessions, newest first."""

    items: list[SessionInfo]
    next_cursor: str | None


@routes.post("/api/auth/password")
@endpoint(
    "Change the password (current password required); other sessions end",
    body=ChangePasswordIn,
    status=204,
    tags=TAGS,
    errors=(401, 422, 429),
    operation_id="auth.change_password",
)
async def change_password(request: web.Request, body: ChangePasswordIn) -> None:
    """Sets the new password. Every other session of the account ends at once (refresh and
    access tokens refused, sockets and SSE streams closed 4004); this one stays signed in. 422
    naming `current_password` when it is wrong; attempts count as login attempts (429)."""
    await account_security.change_password(
        context(request),
        principal(request),
        current_password=body.current_password,
        new_password=body.new_password,
    )


@routes.get("/api/auth/sessions")
@endpoint(
    "List the account's active sessions (devices) with their last use",
    query=PageQuery,
    response=SessionsPage,
    tags=TAGS,
    errors=(401, 422),
    operation_id="auth.list_sessions",
)
async def list_sessions(request: web.Request, query: PageQuery) -> dict:
    """Where the account is signed in: device (user agent), address, when it signed in and
    last refreshed its token. `current` marks the session of this request."""
    return await account_security.list_sessions(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.delete("/api/auth/sessions/{id}")
@endpoint(
    "Revoke one session (sign a device out)",
    status=204,
    tags=TAGS,
    errors=(401, 404, 422),
    operation_id="auth.revoke_session",
)
async def revoke_session(request: web.Request) -> None:
    """Ends that session on every transport at once (its sockets and SSE streams close with
    4004, its tokens are refused). 404 when it is not one of the account's live sessions."""
    await account_security.revoke_session(context(request), principal(request), path_id(request))


class DeactivateIn(BaseModel):
    """The account's password, to confirm."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"password": "correct horse battery"}]}
    )

    password: str = Field(min_length=1, max_length=256)


@routes.post("/api/auth/deactivate")
@endpoint(
    "Deactivate the account (password required); every session ends",
    body=DeactivateIn,
    status=204,
    tags=TAGS,
    errors=(401, 422, 429),
    operation_id="auth.deactivate",
)
async def deactivate(request: web.Request, body: DeactivateIn) -> web.Response:
    """Switches the account off: it can no longer log in, its profile is gone for everyone, and
    every session ends at once on every transport (tokens refused, sockets and SSE streams closed
    4004). 422 naming `password` when it is wrong; attempts count as login attempts (429). Clears
    the refresh cookie and the web session of this client."""
    ctx = context(request)
    await account_security.deactivate(ctx, principal(request), password=body.password)
    (await get_session(request)).invalidate()
    response = web.Response(status=204)
    response.del_cookie(ctx.settings.auth.refresh_cookie_name, path="/api/auth")
    return response
