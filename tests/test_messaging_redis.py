"""Direct messaging across nodes: two real server processes sharing one Redis. A message sent
on one node reaches the recipient's socket on the other; receipts, delivery acks and typing
cross too; a recipient who drops and resumes on the OTHER node gets every message once, in
order. Skipped (saying why) without NEXGATE_TEST_REDIS_URL."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from protocol.client import GatewayClient
from server.app import create_app
from tests.gateway_support import Node, node_env
from tests.helpers import free_port, make_settings
from tests.messaging_support import collect, gateway, next_of, open_dm, send


@pytest.fixture
def prefix(redis_prefix):
    return redis_prefix


# in process, Redis engine ------------------------------------------------------------------------


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path, redis_url, prefix):
    settings = make_settings(
        clean_db,
        tmp_path,
        redis={"url": redis_url, "prefix": prefix},
        rate_limits={"message": "10000/3600"},
    )
    return await aiohttp_client(create_app(settings))


async def test_messaging_on_the_redis_engine(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    gw_b = await gateway(client, bob)
    try:
        sent = await send(client, alice, cid, "over redis")
        event = await next_of(gw_b, "message.created")
        assert event.data["message"]["id"] == sent["id"]
        await gw_b.call("typing.start", conversation_id=cid)
        resp = await client.post(f"/api/conversations/{cid}/read", headers=bob.auth)
        assert (await resp.json())["seq"] == sent["seq"]
    finally:
        await gw_b.close()


# two real server processes -----------------------------------------------------------------------


@pytest.fixture
async def cluster(clean_db, redis_url, prefix, tmp_path):
    env = node_env(clean_db, redis_url, prefix, str(tmp_path / "var"))
    env.update(
        {
            "NEXGATE_RATE_LIMITS_MESSAGE": "10000/3600",
            "NEXGATE_GATEWAY_FRAME_BUDGET": "100000",
        }
    )
    nodes = [Node(free_port(), env, str(tmp_path / f"node{i}.log")) for i in range(2)]
    session = aiohttp.ClientSession()
    try:
        for node in nodes:
            await node.wait_ready(session)
        yield nodes, session
    finally:
        await session.close()
        for node in nodes:
            node.stop()


async def _register(session: aiohttp.ClientSession, node: Node, username: str) -> dict:
    body = {"username": username, "email": f"{username}@example.com", "password": "s3cret-pass"}
    async with session.post(f"{node.url}/api/auth/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
        data = await resp.json()
    return {"id": data["user"]["id"], "token": data["access_token"]}


async def _post(session, node: Node, user: dict, path: str, body: dict | None = None) -> dict:
    headers = {"Authorization": f"Bearer {user['token']}"}
    async with session.post(f"{node.url}{path}", json=body or {}, headers=headers) as resp:
        assert resp.status in (200, 201), await resp.text()
        return await resp.json()


async def test_a_message_crosses_nodes_with_receipts_and_typing(cluster):
    (node_a, node_b), session = cluster
    alice = await _register(session, node_a, "alice")
    bob = await _register(session, node_b, "bob")
    cid = (await _post(session, node_a, alice, "/api/conversations", {"user_id": bob["id"]}))["id"]
    gw_a = GatewayClient(node_a.ws_url, alice["token"], session=session)
    gw_b = GatewayClient(node_b.ws_url, bob["token"], session=session)
    await gw_a.connect()
    await gw_b.connect()
    try:
        sent = await gw_a.call("messages.send", conversation_id=cid, content="across", nonce="x1")
        event = await next_of(gw_b, "message.created")
        assert event.data["message"]["id"] == sent["id"]
        assert event.data["conversation"]["unread_count"] == 1
        await gw_b.call("messages.delivered", conversation_id=cid, seq=sent["seq"])
        delivered = await next_of(gw_a, "message.delivered")
        assert delivered.data["user_id"] == bob["id"] and delivered.data["seq"] == sent["seq"]
        await gw_b.call("conversations.read", conversation_id=cid)
        read = await next_of(gw_a, "conversation.read")
        assert read.data["user_id"] == bob["id"] and read.data["seq"] == sent["seq"]
        await gw_a.call("typing.start", conversation_id=cid)
        typing = await next_of(gw_b, "typing")
        assert typing.data["user_id"] == alice["id"] and typing.data["active"] is True
        # A resend with the same nonce on the other node returns the original.
        again = await _post(
            session,
            node_b,
            alice,
            f"/api/conversations/{cid}/messages",
            {"content": "across", "nonce": "x1"},
        )
        assert again["id"] == sent["id"]
    finally:
        await gw_a.close()
        await gw_b.close()


async def test_exactly_once_when_the_recipient_resumes_on_the_other_node(cluster):
    (node_a, node_b), session = cluster
    alice = await _register(session, node_a, "alice")
    bob = await _register(session, node_b, "bob")
    cid = (await _post(session, node_a, alice, "/api/conversations", {"user_id": bob["id"]}))["id"]
    # bob's client reconnects alternately to node B and node A (as a load balancer might).
    urls = [node_b.ws_url, node_a.ws_url]
    gw_b = GatewayClient(urls[0], bob["token"], session=session, backoff_initial_s=0.05)
    await gw_b.connect()
    try:
        sent: list[str] = []
        path = f"/api/conversations/{cid}/messages"
        for n in range(30):
            node = (node_a, node_b)[n % 2]
            sent.append((await _post(session, node, alice, path, {"content": f"m{n}"}))["id"])
            if n in (7, 19):
                gw_b.url = urls[(n // 7) % 2] + "?encoding=json"
                resumes = gw_b.resumes
                await gw_b.drop()
                for extra in range(3):
                    body = {"content": f"away{n}.{extra}"}
                    sent.append((await _post(session, node_a, alice, path, body))["id"])
                async with asyncio.timeout(10):
                    while gw_b.resumes == resumes:  # noqa: ASYNC110
                        await asyncio.sleep(0.01)
        events = await collect(gw_b, "message.created", len(sent), wait_s=15)
        assert [e.data["message"]["id"] for e in events] == sent
        assert gw_b.resumes == 2
    finally:
        await gw_b.close()


async def test_concurrent_sends_from_both_nodes_arrive_once(cluster):
    (node_a, node_b), session = cluster
    alice = await _register(session, node_a, "alice")
    bob = await _register(session, node_b, "bob")
    cid = (await _post(session, node_a, alice, "/api/conversations", {"user_id": bob["id"]}))["id"]
    gw_a = GatewayClient(node_a.ws_url, alice["token"], session=session)
    gw_b = GatewayClient(node_b.ws_url, bob["token"], session=session)
    await gw_a.connect()
    await gw_b.connect()
    try:

        async def burst(gw: GatewayClient, label: str) -> list[dict]:
            return await asyncio.gather(
                *(
                    gw.call("messages.send", conversation_id=cid, content=f"{label}{n}")
                    for n in range(10)
                )
            )

        results = await asyncio.gather(burst(gw_a, "a"), burst(gw_b, "b"))
        ids = {m["id"] for group in results for m in group}
        assert sorted(m["seq"] for group in results for m in group) == list(range(1, 21))
        for gw in (gw_a, gw_b):
            events = await collect(gw, "message.created", 20)
            got = [e.data["message"]["id"] for e in events]
            assert set(got) == ids and len(got) == 20
    finally:
        await gw_a.close()
        await gw_b.close()
