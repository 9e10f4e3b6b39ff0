"""Findings of an attacker's probe, each through the public surface:

- a password reset or a detected refresh-token reuse ends the user's live sessions (sockets,
  SSE streams, waiting long-polls), so the old access token's socket neither receives the
  user's DMs nor sends as them;
- `?v=1` (documented) is accepted by the gateway;
- topic ids are UUIDs in canonical form: an upper-case or dashless id subscribes to the topic
  events are published on;
- a validly signed token with claims of the wrong type is 401 / close 4004, never a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import jwt
import orjson
import pytest

from protocol import frames
from protocol.constants import CloseCode, Op
from server.app_keys import SETTINGS
from tests.commerce_support import COMMERCE_SETTINGS
from tests.gateway_support import connect, open_socket, sse_event
from tests.helpers import expect_problem

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)

COOKIE = "nexgate_refresh"


async def _reset_token(client, user, caplog) -> str:
    """Ask for a reset link (public API) and read the token from the logged mail."""
    caplog.set_level("INFO")
    resp = await client.post("/api/auth/forgot-password", json={"email": user.email})
    assert resp.status == 202
    for _ in range(100):  # the mail is a job the in-process worker sends right after commit
        for record in caplog.records:
            body = str(record.__dict__.get("body"))
            if "token=" in body:
                return body.split("token=")[1].split()[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no reset mail")


async def _sse_ends(resp, wait_s: float = 5.0) -> None:
    async with asyncio.timeout(wait_s):
        while await resp.content.readline() != b"":
            pass


async def _messages(client, user, cid: str) -> list[dict]:
    resp = await client.get(f"/api/conversations/{cid}/messages", headers=user.auth)
    assert resp.status == 200
    return (await resp.json())["items"]


# 1. sessions end on a password reset / a refresh-token reuse -------------------------------------


async def test_password_reset_closes_old_sockets_sse_and_long_polls(client, alice, bob, caplog):
    resp = await client.post("/api/conversations", json={"user_id": bob.id}, headers=alice.auth)
    assert resp.status in (200, 201), await resp.text()
    cid = (await resp.json())["id"]
    sock = await connect(client, alice.token)  # opened with the token of the old password
    seq = (await (await client.get("/api/gateway/events", headers=alice.auth)).json())["seq"]
    poll = asyncio.create_task(
        client.get("/api/gateway/events", params={"after": seq}, headers=alice.auth)
    )
    async with client.get("/api/gateway/sse", headers=alice.auth) as stream:
        assert stream.status == 200
        await asyncio.sleep(0.1)  # the long-poll is waiting
        token = await _reset_token(client, alice, caplog)
        ok = await client.post(
            "/api/auth/reset-password", json={"token": token, "new_password": "brand-new-pw"}
        )
        assert ok.status == 204

        code, _ = await sock.closed()
        assert code == CloseCode.AUTHENTICATION_FAILED
        close = await sse_event(stream)
        assert close["event"] == "close"
        assert orjson.loads(close["data"]) == {
            "code": CloseCode.AUTHENTICATION_FAILED,
            "resumable": False,
        }
        await _sse_ends(stream)
    answered = await asyncio.wait_for(poll, 5)
    await expect_problem(answered, 401)

    # The old socket cannot send as alice any more.
    with contextlib.suppress(ConnectionError, RuntimeError):
        await sock.send(
            frames.call("c1", "messages.send", {"conversation_id": cid, "content": "x"})
        )
    await asyncio.sleep(0.2)
    assert [m for m in await _messages(client, bob, cid) if m["content"] == "x"] == []


async def test_refresh_token_reuse_closes_the_users_sockets(client, alice):
    resp = await client.post("/api/auth/login", json={"login": "alice", "password": alice.password})
    first = resp.cookies[COOKIE].value
    access = (await resp.json())["access_token"]
    client.session.cookie_jar.clear()
    sock = await connect(client, access)
    rotated = await client.post("/api/auth/refresh-token", cookies={COOKIE: first})
    assert rotated.status == 200
    client.session.cookie_jar.clear()
    with pytest.raises(TimeoutError):  # a normal rotation leaves the socket alone
        await sock.closed(0.3)

    reused = await client.post("/api/auth/refresh-token", cookies={COOKIE: first})
    await expect_problem(reused, 401)
    code, _ = await sock.closed()
    assert code == CloseCode.AUTHENTICATION_FAILED


# 2. ?v=1 ------------------------------------------------------------------------------------------


async def test_protocol_version_1_in_the_query_is_accepted(client, alice):
    sock = await open_socket(client, v="1")
    assert sock.hello["protocol_version"] == 1
    assert (await sock.identify(alice.token))["user"]["id"] == alice.id
    await sock.close()
    for bad in ("2", "one", "1.0"):
        resp = await client.get("/api/gateway/ws", params={"v": bad})
        await expect_problem(resp, 422)


# 3. canonical topic ids -----------------------------------------------------------------------


async def _group(commerce, owner) -> str:
    shop = await commerce.shop(owner.id, "acme")
    pid = await commerce.product(shop, "iPhone 15", "900.00")
    return await commerce.group(pid, owner.id, spots=3, target="800.00")


async def _topic_event(sock, wait_s: float = 3.0) -> dict:
    deadline = time.monotonic() + wait_s
    while True:
        frame = await sock.recv(max(0.01, deadline - time.monotonic()))
        if frame["op"] == Op.EVENT and frame.get("topic"):
            return frame


async def test_uppercase_and_dashless_topic_ids_receive_group_events(client, commerce, alice, bob):
    group = await _group(commerce, alice)
    canonical = f"group:{group}"
    upper = await connect(client, bob.token)
    dashless = await connect(client, bob.token)
    replies = []
    for sock, topic in (
        (upper, f"group:{group.upper()}"),
        (dashless, f"group:{uuid.UUID(group).hex}"),
    ):
        await sock.send(frames.subscribe(topic, "s1"))
        replies.append(await sock.expect(Op.REPLY))
    headers = bob.auth
    params = {"topics": f"group:{group.upper()}"}
    async with client.get("/api/gateway/sse", params=params, headers=headers) as stream:
        assert stream.status == 200
        await commerce.join(group, bob.id)
        for sock in (upper, dashless):
            event = await _topic_event(sock)
            assert event["t"] == "group.updated" and event["topic"] == canonical
        sse = orjson.loads((await sse_event(stream))["data"])
        assert sse["t"] == "group.updated" and sse["topic"] == canonical
    for reply in replies:  # the reply names the topic as events carry it
        assert reply["d"] == {"ok": True, "result": {"topic": canonical}}

    await upper.send(frames.unsubscribe(f"group:{group.upper()}", "u1"))
    assert (await upper.expect(Op.REPLY))["d"]["result"] == {"topic": canonical, "removed": True}
    # A malformed id is still refused.
    await upper.send(frames.subscribe("group:not-a-uuid", "s2"))
    assert (await upper.expect(Op.REPLY))["d"]["ok"] is False


# 4. claims checked by type ---------------------------------------------------------------------


SID = "0190f0e0-0000-7000-8000-0000000000ff"  # a sign-in session id (never revoked)


def _forged(client, **claims) -> str:
    """An access token signed with the test app's JWT secret, with the claims given."""
    now = int(time.time())
    return jwt.encode(
        {"iat": now, "exp": now + 600, "typ": "access", "username": "x", "sid": SID, **claims},
        client.server.app[SETTINGS].auth.jwt_secret,
        algorithm="HS256",
    )


BAD_CLAIMS = [
    {"user_id": 12345},
    {"user_id": ["0190f0e0-0000-7000-8000-000000000000"]},
    {"user_id": {"id": 1}},
    {"user_id": None},
    {"user_id": "not-a-uuid"},
    {"user_id": "0190f0e0-0000-7000-8000-000000000000", "username": 7},
    {"user_id": "0190f0e0-0000-7000-8000-000000000000", "roles": "admin"},
    {"user_id": "0190f0e0-0000-7000-8000-000000000000", "roles": [1, 2]},
    {"user_id": "0190f0e0-0000-7000-8000-000000000000", "exp": float("inf")},
    {"user_id": "0190f0e0-0000-7000-8000-000000000000", "iat": [1]},
    {"user_id": "0190f0e0-0000-7000-8000-000000000000", "sid": 5},
    {"user_id": "0190f0e0-0000-7000-8000-000000000000", "sid": "not-a-uuid"},
]


@pytest.mark.parametrize("claims", BAD_CLAIMS, ids=lambda c: repr(c)[:60])
async def test_wrongly_typed_claims_are_401_over_http(client, alice, claims):
    headers = {"Authorization": f"Bearer {_forged(client, **claims)}"}
    await expect_problem(await client.get("/api/users/alice", headers=headers), 401)


@pytest.mark.parametrize("claims", BAD_CLAIMS, ids=lambda c: repr(c)[:60])
async def test_wrongly_typed_claims_close_the_socket_4004(client, claims):
    sock = await open_socket(client)
    await sock.send(frames.identify(_forged(client, **claims)))
    code, _ = await sock.closed()
    assert code == CloseCode.AUTHENTICATION_FAILED


async def test_the_forging_helper_signs_like_the_server(client, alice):
    """Guards the tests above: a well-typed forged token of a real user is accepted."""
    headers = {"Authorization": f"Bearer {_forged(client, user_id=alice.id, username='alice')}"}
    assert (await client.get("/api/users/alice", headers=headers)).status == 200
