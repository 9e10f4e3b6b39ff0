"""Accounts: registration, login, refresh rotation and reuse, logout, password reset."""

from __future__ import annotations

import asyncio

import jwt
import pytest

from server.app import create_app
from tests.helpers import expect_problem, make_settings, register
from tests.notifications_support import body_of

COOKIE = "nexgate_refresh"


async def test_register_returns_access_token_with_spec_claims(client):
    resp = await client.post(
        "/api/auth/register",
        json={"username": "Ana_1", "email": "Ana@Example.com", "password": "longenough"},
    )
    assert resp.status == 201
    body = await resp.json()
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert set(claims) >= {"user_id", "username", "roles", "iat", "exp"}
    assert claims["exp"] - claims["iat"] == 900
    assert claims["username"] == "ana_1" and claims["roles"] == ["user"]
    assert body["user"]["email"] == "ana@example.com"
    cookie = resp.cookies[COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"


async def test_username_is_unique_case_insensitively(client, alice):
    resp = await client.post(
        "/api/auth/register",
        json={"username": "ALICE", "email": "other@example.com", "password": "longenough"},
    )
    body = await expect_problem(resp, 409)
    assert "username" in body["errors"]


async def test_duplicate_email_does_not_say_which_account_exists(client, alice):
    resp = await client.post(
        "/api/auth/register",
        json={"username": "someone", "email": alice.email, "password": "longenough"},
    )
    body = await expect_problem(resp, 409)
    assert "email" not in str(body).lower().replace("details", "")


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"username": "ab", "email": "x@example.com", "password": "longenough"}, "username"),
        ({"username": "bad name", "email": "x@example.com", "password": "longenough"}, "username"),
        ({"username": "okname", "email": "not-an-email", "password": "longenough"}, "email"),
        ({"username": "okname", "email": "x@example.com", "password": "short"}, "password"),
        ({"username": "okname", "email": "x@example.com", "password": 12345678}, "password"),
    ],
)
async def test_register_validation_errors_name_the_field(client, payload, field):
    body = await expect_problem(await client.post("/api/auth/register", json=payload), 422)
    assert field in body["errors"] or field in body["detail"]


async def test_login_by_username_or_email_and_wrong_password_is_generic(client, alice):
    for login in (alice.username, alice.email.upper()):
        resp = await client.post(
            "/api/auth/login", json={"login": login, "password": alice.password}
        )
        assert resp.status == 200
    wrong = await client.post("/api/auth/login", json={"login": "alice", "password": "nope-nope"})
    missing = await client.post("/api/auth/login", json={"login": "ghost", "password": "nope-nope"})
    a = await expect_problem(wrong, 401)
    b = await expect_problem(missing, 401)
    assert a["detail"] == b["detail"]


async def test_refresh_rotates_and_reuse_revokes_the_family(client, alice):
    resp = await client.post("/api/auth/login", json={"login": "alice", "password": alice.password})
    first = resp.cookies[COOKIE].value
    client.session.cookie_jar.clear()

    rotated = await client.post("/api/auth/refresh-token", cookies={COOKIE: first})
    assert rotated.status == 200
    second = rotated.cookies[COOKIE].value
    assert second != first
    assert (await rotated.json())["access_token"]
    client.session.cookie_jar.clear()

    # The first token comes back: a thief has a copy. The whole family dies.
    await expect_problem(await client.post("/api/auth/refresh-token", cookies={COOKIE: first}), 401)
    client.session.cookie_jar.clear()
    await expect_problem(
        await client.post("/api/auth/refresh-token", cookies={COOKIE: second}), 401
    )


async def test_logout_revokes_refresh_token(client, alice):
    resp = await client.post("/api/auth/login", json={"login": "alice", "password": alice.password})
    token = resp.cookies[COOKIE].value
    out = await client.post("/api/auth/logout", cookies={COOKIE: token})
    assert out.status == 204
    client.session.cookie_jar.clear()
    await expect_problem(await client.post("/api/auth/refresh-token", cookies={COOKIE: token}), 401)


async def test_protected_routes_need_a_valid_token(client, alice):
    await expect_problem(await client.get("/api/users/alice"), 401)
    await expect_problem(
        await client.get("/api/users/alice", headers={"Authorization": "Bearer junk"}), 401
    )
    assert (await client.get("/api/users/alice", headers=alice.auth)).status == 200


async def test_web_session_cookie_authenticates_browser_clients(client):
    resp = await client.post(
        "/api/auth/register",
        json={"username": "webby", "email": "webby@example.com", "password": "longenough"},
    )
    assert resp.status == 201
    # The cookie jar now holds the aiohttp-session cookie; no bearer header is sent.
    me = await client.get("/api/users/webby")
    assert me.status == 200
    assert (await me.json())["email"] == "webby@example.com"
    await client.post("/api/auth/logout")
    await expect_problem(await client.get("/api/users/webby"), 401)


async def test_a_copied_session_cookie_dies_with_logout_and_never_locks_out_login(client):
    resp = await client.post(
        "/api/auth/register",
        json={"username": "webby", "email": "webby@example.com", "password": "longenough"},
    )
    assert resp.status == 201
    copied = {c.key: c.value for c in client.session.cookie_jar if c.key == "nexgate_session"}
    assert (await client.get("/api/users/webby", cookies=copied)).status == 200
    assert (await client.post("/api/auth/logout")).status == 204
    client.session.cookie_jar.clear()
    # Whoever kept a copy of the cookie is logged out too, and the stale cookie is dropped.
    stale = await client.get("/api/users/webby", cookies=copied)
    await expect_problem(stale, 401)
    client.session.cookie_jar.clear()
    login = await client.post(
        "/api/auth/login", json={"login": "webby", "password": "longenough"}, cookies=copied
    )
    assert login.status == 200
    assert (await client.get("/api/users/webby")).status == 200


async def test_password_reset_is_single_use_and_logs_in_with_new_password(client, alice, caplog):
    caplog.set_level("INFO")
    await client.post("/api/auth/login", json={"login": "alice", "password": alice.password})
    browser = {c.key: c.value for c in client.session.cookie_jar if c.key == "nexgate_session"}
    client.session.cookie_jar.clear()
    assert (await client.get("/api/users/alice", cookies=browser)).status == 200
    resp = await client.post("/api/auth/forgot-password", json={"email": alice.email})
    assert resp.status == 202
    unknown = await client.post("/api/auth/forgot-password", json={"email": "nobody@example.com"})
    assert unknown.status == 202
    assert await unknown.json() == await resp.json()
    bodies: list[str] = []
    for _ in range(100):  # the mail is a job: the in-process worker sends it right after commit
        bodies = [
            str(r.__dict__["body"])
            for r in caplog.records
            if "token=" in str(r.__dict__.get("body"))
        ]
        if bodies:
            break
        await asyncio.sleep(0.05)
    assert len(bodies) == 1
    token = bodies[0].split("token=")[1].split()[0]

    ok = await client.post(
        "/api/auth/reset-password", json={"token": token, "new_password": "brand-new-pw"}
    )
    assert ok.status == 204
    again = await client.post(
        "/api/auth/reset-password", json={"token": token, "new_password": "another-pw1"}
    )
    await expect_problem(again, 422)
    # A reset ends the sessions opened with the old password, browser cookies included.
    await expect_problem(await client.get("/api/users/alice", cookies=browser), 401)
    client.session.cookie_jar.clear()
    login = await client.post(
        "/api/auth/login", json={"login": "alice", "password": "brand-new-pw"}
    )
    assert login.status == 200
    old = await client.post("/api/auth/login", json={"login": "alice", "password": alice.password})
    await expect_problem(old, 401)


async def test_login_attempts_are_rate_limited_per_account(client, alice):
    for _ in range(10):
        await client.post("/api/auth/login", json={"login": "alice", "password": "wrong-pass"})
    resp = await client.post("/api/auth/login", json={"login": "alice", "password": alice.password})
    await expect_problem(resp, 429)
    assert int(resp.headers["Retry-After"]) > 0


async def test_username_and_email_share_one_login_bucket(client, alice):
    for i in range(10):
        login = alice.username if i % 2 else alice.email
        await client.post("/api/auth/login", json={"login": login, "password": "wrong-pass"})
    resp = await client.post("/api/auth/login", json={"login": alice.email, "password": "wrong"})
    await expect_problem(resp, 429)


async def test_register_helper_users_are_distinct(client):
    a = await register(client, "first_user")
    b = await register(client, "second_user")
    assert a.id != b.id


async def test_reset_link_arrives_by_smtp_when_configured(
    aiohttp_client,
    clean_db,
    tmp_path,
    smtp_server,
):
    settings = make_settings(
        clean_db, tmp_path, smtp={"host": smtp_server.host, "port": smtp_server.port}
    )
    client = await aiohttp_client(create_app(settings))
    user = await register(client, "mailme")
    resp = await client.post("/api/auth/forgot-password", json={"email": "MAILME@example.com"})
    assert resp.status == 202
    (message,) = await smtp_server.wait_for(1)
    assert message["To"] == user.email
    assert "reset" in message["Subject"].lower()
    token = body_of(message).split("token=")[1].split()[0]
    ok = await client.post(
        "/api/auth/reset-password", json={"token": token, "new_password": "from-the-mail-1"}
    )
    assert ok.status == 204
