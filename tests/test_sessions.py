"""Sessions that really end (issue 17, finding 1) and the account security endpoints.

A sign-in session (one login on one device) ends by logout (this device or everywhere), a
password change (the others) or reset (all), "revoke this device", a refresh-token reuse or a
deactivation. From then on its access token is refused over HTTP, its sockets and SSE streams
close with 4004 at once, and the account's other sessions carry on unless they were ended too.
Each test runs on the memory and the Redis bus; the last one across two real server processes.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import orjson
import pytest

from protocol.constants import CloseCode
from server.app_keys import CONTEXT
from server.domain.account_security import deactivate_account
from tests.gateway_support import Node, connect, node_env, sse_event
from tests.helpers import User, expect_problem, free_port

COOKIE = "nexgate_refresh"


@pytest.fixture
def engine(bus_engine):
    return bus_engine


async def _login(client, user: User, agent: str = "test-device") -> tuple[str, str]:
    """A new sign-in session of `user`: (access token, refresh cookie)."""
    resp = await client.post(
        "/api/auth/login",
        json={"login": user.username, "password": user.password},
        headers={"User-Agent": agent},
    )
    assert resp.status == 200, await resp.text()
    cookie = resp.cookies[COOKIE].value
    client.session.cookie_jar.clear()
    return (await resp.json())["access_token"], cookie


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _works(client, token: str) -> bool:
    resp = await client.get("/api/users/alice", headers=_bearer(token))
    assert resp.status in (200, 401), await resp.text()
    return resp.status == 200


async def _sse_closed(stream) -> dict:
    event = await sse_event(stream)
    assert event["event"] == "close"
    return orjson.loads(event["data"])


async def test_logout_ends_this_device_on_every_transport_and_keeps_the_others(
    client, alice, engine
):
    phone, phone_cookie = await _login(client, alice, "phone")
    laptop, _ = await _login(client, alice, "laptop")
    phone_sock = await connect(client, phone)
    laptop_sock = await connect(client, laptop)
    async with client.get("/api/gateway/sse", headers=_bearer(phone)) as stream:
        assert stream.status == 200
        resp = await client.post("/api/auth/logout", cookies={COOKIE: phone_cookie})
        assert resp.status == 204
        assert (await phone_sock.closed())[0] == CloseCode.AUTHENTICATION_FAILED
        assert await _sse_closed(stream) == {
            "code": CloseCode.AUTHENTICATION_FAILED,
            "resumable": False,
        }
    assert not await _works(client, phone)  # before: worked until it expired
    assert await _works(client, laptop)
    with pytest.raises(TimeoutError):
        await laptop_sock.closed(0.3)
    # The refresh cookie of the ended session is dead too.
    refused = await client.post("/api/auth/refresh-token", cookies={COOKIE: phone_cookie})
    await expect_problem(refused, 401)
    # And a new socket with the old token is refused at identify.
    again = await connect_refused(client, phone)
    assert again == CloseCode.AUTHENTICATION_FAILED


async def connect_refused(client, token: str) -> int | None:
    from protocol import frames
    from tests.gateway_support import open_socket

    sock = await open_socket(client)
    await sock.send(frames.identify(token))
    return (await sock.closed())[0]


async def test_logout_with_only_the_access_token_and_everywhere(client, alice, engine):
    phone, _ = await _login(client, alice, "phone")
    laptop, _ = await _login(client, alice, "laptop")
    tablet, _ = await _login(client, alice, "tablet")
    # A mobile app holds no cookie: the bearer token names the session to end.
    assert (await client.post("/api/auth/logout", headers=_bearer(phone))).status == 204
    assert not await _works(client, phone)
    assert await _works(client, laptop)

    sock = await connect(client, tablet)
    resp = await client.post(
        "/api/auth/logout", params={"everywhere": "true"}, headers=_bearer(laptop)
    )
    assert resp.status == 204
    assert (await sock.closed())[0] == CloseCode.AUTHENTICATION_FAILED
    for token in (laptop, tablet, alice.token):
        assert not await _works(client, token)


async def test_reset_password_refuses_old_access_tokens_over_http(client, alice, engine, caplog):
    from tests.test_gateway_hardening import _reset_token

    token = await _reset_token(client, alice, caplog)
    ok = await client.post(
        "/api/auth/reset-password", json={"token": token, "new_password": "brand-new-pw"}
    )
    assert ok.status == 204
    assert not await _works(client, alice.token)  # finding 1: it used to work until expiry


async def test_refresh_reuse_refuses_the_familys_access_tokens(client, alice, engine):
    access, first = await _login(client, alice)
    other, _ = await _login(client, alice, "other device")
    rotated = await client.post("/api/auth/refresh-token", cookies={COOKIE: first})
    assert rotated.status == 200
    newer = (await rotated.json())["access_token"]
    client.session.cookie_jar.clear()
    await expect_problem(await client.post("/api/auth/refresh-token", cookies={COOKIE: first}), 401)
    assert not await _works(client, access)
    assert not await _works(client, newer)
    assert await _works(client, other)  # another device is not the stolen family


async def test_change_password_requires_the_current_one_and_ends_the_other_sessions(
    client, alice, engine
):
    here, _ = await _login(client, alice, "here")
    elsewhere, elsewhere_cookie = await _login(client, alice, "elsewhere")
    elsewhere_sock = await connect(client, elsewhere)
    here_sock = await connect(client, here)

    wrong = await client.post(
        "/api/auth/password",
        json={"current_password": "not-it", "new_password": "a-new-password"},
        headers=_bearer(here),
    )
    body = await expect_problem(wrong, 422)
    assert "current_password" in body["errors"]
    assert await _works(client, elsewhere)

    unauthenticated = await client.post(
        "/api/auth/password",
        json={"current_password": alice.password, "new_password": "a-new-password"},
    )
    await expect_problem(unauthenticated, 401)

    ok = await client.post(
        "/api/auth/password",
        json={"current_password": alice.password, "new_password": "a-new-password"},
        headers=_bearer(here),
    )
    assert ok.status == 204, await ok.text()
    assert (await elsewhere_sock.closed())[0] == CloseCode.AUTHENTICATION_FAILED
    assert not await _works(client, elsewhere)
    refused = await client.post("/api/auth/refresh-token", cookies={COOKIE: elsewhere_cookie})
    await expect_problem(refused, 401)
    assert await _works(client, here)
    with pytest.raises(TimeoutError):
        await here_sock.closed(0.3)
    old = await client.post("/api/auth/login", json={"login": "alice", "password": alice.password})
    await expect_problem(old, 401)
    new = await client.post(
        "/api/auth/login", json={"login": "alice", "password": "a-new-password"}
    )
    assert new.status == 200


async def test_list_sessions_and_revoke_one_device(client, alice, bob, engine):
    phone, _ = await _login(client, alice, "Nexgate iOS/3.1")
    laptop, _ = await _login(client, alice, "Firefox/130")
    resp = await client.get("/api/auth/sessions", headers=_bearer(laptop))
    assert resp.status == 200
    items = (await resp.json())["items"]
    agents = {item["user_agent"]: item for item in items}
    assert {"Nexgate iOS/3.1", "Firefox/130"} <= set(agents)
    assert agents["Firefox/130"]["current"] is True
    assert agents["Nexgate iOS/3.1"]["current"] is False
    assert all(item["last_used_at"] and item["ip"] for item in agents.values())
    phone_id = agents["Nexgate iOS/3.1"]["id"]

    # Paginated: one per page, every session once.
    seen, cursor = [], None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = await (
            await client.get("/api/auth/sessions", params=params, headers=_bearer(laptop))
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(item["id"] for item in items)

    # Bob cannot end alice's sessions, nor learn they exist.
    await expect_problem(
        await client.delete(f"/api/auth/sessions/{phone_id}", headers=bob.auth), 404
    )
    assert await _works(client, phone)

    phone_sock = await connect(client, phone)
    resp = await client.delete(f"/api/auth/sessions/{phone_id}", headers=_bearer(laptop))
    assert resp.status == 204
    assert (await phone_sock.closed())[0] == CloseCode.AUTHENTICATION_FAILED
    assert not await _works(client, phone)
    assert await _works(client, laptop)
    listed = await (await client.get("/api/auth/sessions", headers=_bearer(laptop))).json()
    assert phone_id not in [item["id"] for item in listed["items"]]
    await expect_problem(
        await client.delete(f"/api/auth/sessions/{phone_id}", headers=_bearer(laptop)), 404
    )
    await expect_problem(
        await client.delete("/api/auth/sessions/not-an-id", headers=_bearer(laptop)), 422
    )


async def test_deactivation_ends_every_session_at_once(client, alice, engine):
    sock = await connect(client, alice.token)
    ctx = client.server.app[CONTEXT]
    await deactivate_account(ctx, uuid.UUID(alice.id), "account suspended")
    assert (await sock.closed())[0] == CloseCode.AUTHENTICATION_FAILED
    assert not await _works(client, alice.token)
    refused = await client.post(
        "/api/auth/login", json={"login": "alice", "password": alice.password}
    )
    await expect_problem(refused, 401)


async def test_deactivating_ones_own_account_needs_the_password_and_ends_every_session(
    client, alice, bob, engine
):
    phone, _ = await _login(client, alice, "phone")
    sock = await connect(client, phone)
    # A stolen access token alone is not enough: the password is asked for.
    wrong = await client.post(
        "/api/auth/deactivate", json={"password": "not-it"}, headers=alice.auth
    )
    assert (await expect_problem(wrong, 422))["errors"] == {
        "password": ["is not your current password"]
    }
    assert await _works(client, phone)
    resp = await client.post(
        "/api/auth/deactivate", json={"password": alice.password}, headers=alice.auth
    )
    assert resp.status == 204
    # Every session, not just the one asking: the phone's socket closes at once.
    assert (await sock.closed())[0] == CloseCode.AUTHENTICATION_FAILED
    for token in (alice.token, phone):
        assert not await _works(client, token)
    refused = await client.post(
        "/api/auth/login", json={"login": "alice", "password": alice.password}
    )
    await expect_problem(refused, 401)
    await expect_problem(await client.get("/api/users/alice", headers=bob.auth), 404)


async def test_a_restarted_process_still_refuses_revoked_tokens(
    aiohttp_client, settings, alice, client
):
    """The memory bus forgets on restart; the revocations of the last access-token lifetime are
    recorded again from the database when a process starts."""
    from server.app import create_app

    access, cookie = await _login(client, alice)
    assert (await client.post("/api/auth/logout", cookies={COOKIE: cookie})).status == 204
    restarted = await aiohttp_client(create_app(settings))
    resp = await restarted.get("/api/users/alice", headers=_bearer(access))
    await expect_problem(resp, 401)
    assert (await restarted.get("/api/users/alice", headers=alice.auth)).status == 200


async def test_logout_on_one_node_ends_the_session_on_another(
    clean_db, redis_url, redis_prefix, tmp_path
):
    env = node_env(clean_db, redis_url, redis_prefix, str(tmp_path / "var"))
    nodes = [Node(free_port(), env, str(tmp_path / f"node{i}.log")) for i in range(2)]
    session = aiohttp.ClientSession()
    try:
        for node in nodes:
            await node.wait_ready(session)
        a, b = nodes
        body = {"username": "alice", "email": "alice@example.com", "password": "s3cret-pass"}
        async with session.post(f"{a.url}/api/auth/register", json=body) as resp:
            assert resp.status == 201
            token = (await resp.json())["access_token"]
        headers = _bearer(token)
        async with session.get(f"{b.url}/api/users/alice", headers=headers) as resp:
            assert resp.status == 200  # node b has now cached "nothing revoked" for alice
        ws = await session.ws_connect(b.ws_url)
        await ws.receive(timeout=5)  # hello
        await ws.send_str(orjson.dumps({"op": "identify", "d": {"token": token}}).decode())
        assert orjson.loads((await ws.receive(timeout=5)).data)["op"] == "ready"
        async with session.post(f"{a.url}/api/auth/logout", headers=headers) as resp:
            assert resp.status == 204
        msg = await ws.receive(timeout=5)
        while msg.type == aiohttp.WSMsgType.TEXT:  # a heartbeat ack or event may come first
            msg = await ws.receive(timeout=5)
        assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, CloseCode.AUTHENTICATION_FAILED)
        await asyncio.sleep(0.05)
        async with session.get(f"{b.url}/api/users/alice", headers=headers) as resp:
            assert resp.status == 401  # at once, not after the cache's few seconds
    finally:
        await session.close()
        for node in nodes:
            node.stop()
