"""Registration that does not tell who has an account (issue 17, finding 4): with
`auth.registration = "verify_email"` (the default) a fresh and a taken email get the same 202,
the new account is mailed a single-use, expiring link and signs in only through it; the owner of
a taken email is mailed about the attempt instead."""

from __future__ import annotations

import asyncio
import re
import statistics
import time
from datetime import UTC, datetime, timedelta

from server.app import create_app
from server.clock import ManualClock
from server.jobs.queue import enqueue
from tests.helpers import expect_problem, make_settings
from tests.notifications_support import app_client, body_of, ctx_of, run_jobs

PASSWORD = "s3cret-pass"


async def _client(aiohttp_client, clean_db, tmp_path, smtp_server, **overrides):
    settings = make_settings(
        clean_db,
        tmp_path,
        smtp={"host": smtp_server.host, "port": smtp_server.port},
        auth={"registration": "verify_email"},
        **overrides,
    )
    return await aiohttp_client(create_app(settings))


async def _register(client, username: str, email: str | None = None):
    body = {"username": username, "email": email or f"{username}@example.com", "password": PASSWORD}
    started = time.perf_counter()
    resp = await client.post("/api/auth/register", json=body)
    return resp.status, await resp.json(), time.perf_counter() - started


def _token_in(message) -> str:
    match = re.search(r"/verify-email\?token=(\S+)", body_of(message))
    assert match, body_of(message)
    return match.group(1)


async def _mails_to(smtp_server, address: str, count: int = 1) -> list:
    """Wait until `address` received `count` mails; return them (oldest first)."""
    deadline = time.monotonic() + 10
    while True:
        mails = [m for m in smtp_server.messages if m["To"] == address]
        if len(mails) >= count or time.monotonic() > deadline:
            assert len(mails) >= count, [m["To"] for m in smtp_server.messages]
            return mails
        await smtp_server.wait_for(len(smtp_server.messages) + 1, timeout_s=10)


async def _login(client, login: str, password: str = PASSWORD):
    return await client.post("/api/auth/login", json={"login": login, "password": password})


async def test_fresh_and_taken_emails_get_the_same_answer_and_only_mails_differ(
    aiohttp_client, clean_db, tmp_path, smtp_server
):
    client = await _client(aiohttp_client, clean_db, tmp_path, smtp_server)
    status, fresh, _ = await _register(client, "owner")
    assert status == 202 and fresh["status"] == "verification_sent"
    assert "access_token" not in fresh and "user" not in fresh
    [welcome] = await _mails_to(smtp_server, "owner@example.com")
    owner_token = _token_in(welcome)

    # Someone else tries the same email (any case): the very same answer...
    status, taken, _ = await _register(client, "intruder", "OWNER@example.com")
    assert (status, taken) == (202, fresh)
    # ...and the owner hears of it; no account, no link for the intruder.
    _, warning = await _mails_to(smtp_server, "owner@example.com", 2)
    assert "tried to create a Nexgate account" in body_of(warning)
    assert "token=" not in body_of(warning)
    assert (await _login(client, "intruder")).status == 401

    # A taken username is still 409: usernames are public, that reveals nothing.
    status, problem, _ = await _register(client, "owner", "other@example.com")
    assert status == 409 and problem["errors"] == {"username": ["is taken"]}

    # Unverified: the right password says to verify; a wrong one says nothing more than 401.
    assert (await _login(client, "owner", "wrong-password")).status == 401
    problem = await expect_problem(await _login(client, "owner"), 403)
    assert problem["type"].endswith("email_not_verified")
    assert "resend-verification" in problem["detail"]

    # The mailed link verifies and signs in, like an open registration.
    resp = await client.post("/api/auth/verify-email", json={"token": owner_token})
    assert resp.status == 201, await resp.text()
    session = await resp.json()
    assert session["user"]["username"] == "owner" and session["access_token"]
    assert client.session.cookie_jar.filter_cookies(client.make_url("/api/auth"))
    me = await client.get(
        "/api/users/owner", headers={"Authorization": "Bearer " + session["access_token"]}
    )
    assert me.status == 200 and (await me.json())["email"] == "owner@example.com"
    # Once only.
    resp = await client.post("/api/auth/verify-email", json={"token": owner_token})
    assert (await expect_problem(resp, 422))["errors"] == {
        "token": ["is invalid, expired or already used"]
    }
    assert (await _login(client, "owner@example.com")).status == 200


async def test_fresh_and_taken_registrations_take_the_same_time(
    aiohttp_client, clean_db, tmp_path, smtp_server
):
    client = await _client(aiohttp_client, clean_db, tmp_path, smtp_server)
    await _register(client, "known")
    fresh, taken = [], []
    for i in range(5):
        status_f, body_f, t_f = await _register(client, f"new_{i}")
        status_t, body_t, t_t = await _register(client, f"again_{i}", "known@example.com")
        assert (status_f, body_f) == (status_t, body_t)
        fresh.append(t_f)
        taken.append(t_t)
    # Both hash the password and queue one mail job: no systematic gap. Generous bound: the box
    # is shared and single requests are noisy.
    assert abs(statistics.median(fresh) - statistics.median(taken)) < 0.05


async def test_a_link_expires_and_a_resend_mails_a_fresh_one(
    aiohttp_client, clean_db, tmp_path, smtp_server
):
    client = await _client(aiohttp_client, clean_db, tmp_path, smtp_server)
    clock = ManualClock(datetime.now(UTC))
    ctx_of(client).clock = clock
    await _register(client, "slow")
    [first] = await _mails_to(smtp_server, "slow@example.com")
    clock.advance(timedelta(seconds=ctx_of(client).settings.auth.email_verification_ttl_s + 1))
    resp = await client.post("/api/auth/verify-email", json={"token": _token_in(first)})
    await expect_problem(resp, 422)

    # A resend answers the same for an unknown email, a verified one and a waiting one; only the
    # waiting account gets mail.
    await _register(client, "done")
    [done_mail] = await _mails_to(smtp_server, "done@example.com")
    assert (
        await client.post("/api/auth/verify-email", json={"token": _token_in(done_mail)})
    ).status == 201
    answers = []
    for email in ("nobody@example.com", "done@example.com", "SLOW@example.com"):
        resp = await client.post("/api/auth/resend-verification", json={"email": email})
        answers.append((resp.status, await resp.json()))
    assert answers[0] == answers[1] == answers[2] and answers[0][0] == 202
    _, second = await _mails_to(smtp_server, "slow@example.com", 2)
    resp = await client.post("/api/auth/verify-email", json={"token": _token_in(second)})
    assert resp.status == 201
    assert {m["To"] for m in smtp_server.messages} == {"slow@example.com", "done@example.com"}
    assert len([m for m in smtp_server.messages if m["To"] == "done@example.com"]) == 1


async def test_resends_are_limited_per_email(aiohttp_client, clean_db, tmp_path, smtp_server):
    client = await _client(
        aiohttp_client,
        clean_db,
        tmp_path,
        smtp_server,
        rate_limits={"resend_verification_per_email": "2/3600"},
    )
    ctx_of(client).clock = ManualClock(datetime.now(UTC))
    for _ in range(2):
        resp = await client.post("/api/auth/resend-verification", json={"email": "v@example.com"})
        assert resp.status == 202
    resp = await client.post("/api/auth/resend-verification", json={"email": "V@example.com"})
    problem = await expect_problem(resp, 429)
    assert int(resp.headers["Retry-After"]) > 0 and problem["detail"]
    # Another email has its own budget.
    resp = await client.post("/api/auth/resend-verification", json={"email": "w@example.com"})
    assert resp.status == 202


async def test_a_password_reset_also_verifies_the_email(
    aiohttp_client, clean_db, tmp_path, smtp_server
):
    client = await _client(aiohttp_client, clean_db, tmp_path, smtp_server)
    await _register(client, "forgetful")
    await _mails_to(smtp_server, "forgetful@example.com")
    await client.post("/api/auth/forgot-password", json={"email": "forgetful@example.com"})
    _, reset = await _mails_to(smtp_server, "forgetful@example.com", 2)
    token = re.search(r"token=(\S+)", body_of(reset)).group(1)
    resp = await client.post(
        "/api/auth/reset-password", json={"token": token, "new_password": "n3w-password"}
    )
    assert resp.status == 204
    # The reset link came through the mailbox: that proves the email too.
    assert (await _login(client, "forgetful", "n3w-password")).status == 200


async def test_the_default_configuration_verifies_emails(tmp_path):
    from server.config import load_settings

    assert load_settings(env={}).auth.registration == "verify_email"


async def test_the_api_document_shows_both_answers_of_register(client):
    doc = await (await client.get("/api/openapi.json")).json()
    responses = doc["paths"]["/api/auth/register"]["post"]["responses"]
    assert {"201", "202", "409"} <= set(responses)
    ref = responses["202"]["content"]["application/json"]["schema"]["$ref"]
    sent = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"status", "detail"} <= set(sent["properties"])
    assert "/api/auth/verify-email" in doc["paths"]
    assert "/api/auth/resend-verification" in doc["paths"]


async def test_without_smtp_the_link_is_in_the_log(aiohttp_client, clean_db, tmp_path, caplog):
    """`make run` with no configuration has no mail transport: the verification mail is logged
    (server/mail.py LogMailer), so a developer can still sign up by following it."""
    settings = make_settings(clean_db, tmp_path, auth={"registration": "verify_email"})
    client = await aiohttp_client(create_app(settings))
    caplog.set_level("INFO", logger="server.mail")
    status, _, _ = await _register(client, "local")
    assert status == 202
    deadline = time.monotonic() + 10
    while not any("verify-email?token=" in str(getattr(r, "body", "")) for r in caplog.records):
        assert time.monotonic() < deadline, "no verification mail was logged"
        await asyncio.sleep(0.05)
    [body] = [
        r.body for r in caplog.records if "verify-email?token=" in str(getattr(r, "body", ""))
    ]
    token = re.search(r"token=(\S+)", body).group(1)
    resp = await client.post("/api/auth/verify-email", json={"token": token})
    assert resp.status == 201


async def test_an_account_never_verified_is_deleted_after_a_week_and_frees_its_names(
    aiohttp_client, clean_db, tmp_path, smtp_server
):
    client = await _client(aiohttp_client, clean_db, tmp_path, smtp_server)
    clock = ManualClock(datetime.now(UTC))
    ctx_of(client).clock = clock
    db = ctx_of(client).db
    # Someone signs up with another person's email and never verifies; a real user verifies.
    await _register(client, "squatter", "victim@example.com")
    await _mails_to(smtp_server, "victim@example.com")
    await _register(client, "keeper")
    [keeper_mail] = await _mails_to(smtp_server, "keeper@example.com")
    verified = await client.post("/api/auth/verify-email", json={"token": _token_in(keeper_mail)})
    assert verified.status == 201

    async def purge() -> None:
        await enqueue(db, "auth.purge_unverified")
        await run_jobs(client)

    clock.advance(timedelta(days=6))
    await purge()
    status, _, _ = await _register(client, "squatter", "someone@example.com")
    assert status == 409  # still held within the week

    clock.advance(timedelta(days=2))
    await purge()
    # The victim can now register with their own email and the username is free again: the
    # mail they get is a verification link, not "someone tried to register with your email".
    status, _, _ = await _register(client, "squatter", "victim@example.com")
    assert status == 202
    _, link_mail = await _mails_to(smtp_server, "victim@example.com", 2)
    resp = await client.post("/api/auth/verify-email", json={"token": _token_in(link_mail)})
    assert resp.status == 201 and (await resp.json())["user"]["username"] == "squatter"
    # The verified account of the same age is untouched.
    assert (await _login(client, "keeper")).status == 200


async def test_accounts_of_open_registration_are_never_purged(aiohttp_client, clean_db, tmp_path):
    # "open" mode verifies nobody: its accounts (signed in at once) must survive the purge.
    client = await app_client(aiohttp_client, clean_db, tmp_path, auth={"registration": "open"})
    clock = ManualClock(datetime.now(UTC))
    ctx_of(client).clock = clock
    resp = await client.post(
        "/api/auth/register",
        json={"username": "opener", "email": "opener@example.com", "password": PASSWORD},
    )
    assert resp.status == 201
    clock.advance(timedelta(days=30))
    await enqueue(ctx_of(client).db, "auth.purge_unverified")
    await run_jobs(client)
    assert (await _login(client, "opener")).status == 200
