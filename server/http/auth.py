"""/api/auth: register, login, logout, refresh-token, forgot-password, reset-password."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session, new_session
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from server.app_keys import CONTEXT
from server.domain import accounts
from server.http.endpoint import client_ip, endpoint, json_response
from server.http.schemas import UserOut

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


async def _remember_web_session(request: web.Request, session: accounts.Session) -> None:
    web_session = await new_session(request)
    web_session["user_id"] = str(session.user["id"])
    web_session["username"] = session.user["username"]
    web_session["roles"] = list(session.user["roles"])
    web_session["family_id"] = str(session.family_id)


@routes.post("/api/auth/register")
@endpoint(
    "Register a new account",
    body=RegisterIn,
    response=SessionOut,
    status=201,
    public=True,
    tags=TAGS,
    errors=(409, 422),
    operation_id="auth.register",
)
async def register(request: web.Request, body: RegisterIn) -> web.Response:
    """Creates the account and signs it in at once: the answer carries an access token, and the
    refresh-token cookie and a web session are set. 409 when the username (or email) is taken."""
    session = await accounts.register(
        request.app[CONTEXT],
        username=body.username,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
    )
    await _remember_web_session(request, session)
    return _session_response(request, session, 201)


@routes.post("/api/auth/login")
@endpoint(
    "Log in with username or email",
    body=LoginIn,
    response=SessionOut,
    public=True,
    tags=TAGS,
    errors=(401, 429),
    operation_id="auth.login",
)
async def login(request: web.Request, body: LoginIn) -> web.Response:
    """Answers an access token (15 minutes) and sets the refresh-token cookie (7 days) and a web
    session. Attempts are rate limited per address and per account (429 with Retry-After)."""
    session = await accounts.login(
        request.app[CONTEXT], login=body.login, password=body.password, ip=client_ip(request)
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
        ctx, request.cookies.get(ctx.settings.auth.refresh_cookie_name)
    )
    return _session_response(request, session, 200)


@routes.post("/api/auth/logout")
@endpoint(
    "Log out: revoke the refresh token family and end the web session",
    public=True,
    status=204,
    tags=TAGS,
    operation_id="auth.logout",
)
async def logout(request: web.Request) -> web.Response:
    """Revokes the refresh token family of the cookie, clears the cookie and ends the web
    session. Access tokens already issued stay valid until they expire."""
    ctx = request.app[CONTEXT]
    await accounts.logout(ctx, request.cookies.get(ctx.settings.auth.refresh_cookie_name))
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
