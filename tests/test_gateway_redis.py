"""The gateway on the Redis engine: in process, and across two real server processes that
share one Redis (events published on one node reach sockets on the other; resume works on
either node; presence and the HTTP fallbacks see the whole cluster)."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from protocol import frames
from protocol.client import GatewayClient
from protocol.codec import JsonCodec
from protocol.constants import Op
from server.app import create_app
from server.bus.redis import RedisBus
from tests.gateway_support import Node, connect, node_env, open_socket, publish
from tests.helpers import free_port, make_settings


@pytest.fixture
def prefix(redis_prefix):
    return redis_prefix


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path, redis_url, prefix):
    settings = make_settings(clean_db, tmp_path, redis={"url": redis_url, "prefix": prefix})
    return await aiohttp_client(create_app(settings))


# in process, Redis engine ------------------------------------------------------------------


async def test_events_and_resume_on_the_redis_engine(client, alice):
    sock = await open_socket(client)
    ready = await sock.identify(alice.token)
    await publish(client, [alice.id], "test.n", {"n": 1})
    event = await sock.expect(Op.EVENT)
    assert (event["s"], event["d"]) == (1, {"n": 1})
    await sock.close()
    await publish(client, [alice.id], "test.n", {"n": 2})
    again = await open_socket(client, "msgpack")
    await again.send(frames.resume(alice.token, ready["session_id"], 1))
    assert (await again.expect(Op.EVENT))["d"] == {"n": 2}
    assert (await again.expect(Op.RESUMED))["d"]["seq"] == 2


async def test_presence_on_the_redis_engine(client, alice, bob):
    watcher = await connect(client, alice.token)
    reply = await watcher.call("presence.query", "p", user_ids=[bob.id])
    assert reply["result"]["presence"] == {bob.id: "offline"}
    bob_sock = await connect(client, bob.token)
    assert (await watcher.expect(Op.EVENT))["d"] == {"user_id": bob.id, "status": "online"}
    await bob_sock.close()
    assert (await watcher.expect(Op.EVENT))["d"] == {"user_id": bob.id, "status": "offline"}


# two real server processes -------------------------------------------------------------------


@pytest.fixture
async def cluster(clean_db, redis_url, prefix, tmp_path):
    env = node_env(clean_db, redis_url, prefix, str(tmp_path / "var"))
    nodes = [Node(free_port(), env, str(tmp_path / f"node{i}.log")) for i in range(2)]
    third = RedisBus(redis_url, prefix=prefix)  # the test process is a third node
    session = aiohttp.ClientSession()
    try:
        for node in nodes:
            await node.wait_ready(session)
        await third.start()
        yield nodes, third, session
    finally:
        await session.close()
        await third.close()
        for node in nodes:
            node.stop()


async def _register(session: aiohttp.ClientSession, node: Node, username: str) -> dict:
    body = {"username": username, "email": f"{username}@example.com", "password": "s3cret-pass"}
    async with session.post(f"{node.url}/api/auth/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
        data = await resp.json()
    return {"id": data["user"]["id"], "token": data["access_token"]}


async def _raw(session: aiohttp.ClientSession, node: Node):
    ws = await session.ws_connect(node.ws_url)
    hello = JsonCodec.decode((await ws.receive(timeout=5)).data)
    assert hello["op"] == Op.HELLO
    return ws


async def _frame(ws, wait_s: float = 5.0) -> dict:
    while True:
        msg = await ws.receive(timeout=wait_s)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        frame = JsonCodec.decode(msg.data)
        if frame["op"] != Op.HEARTBEAT_ACK:
            return frame


async def test_two_processes_deliver_each_others_events_and_resume_across(cluster):
    (node_a, node_b), third, session = cluster
    alice = await _register(session, node_a, "alice")
    alice_id = uuid.UUID(alice["id"])

    # A socket on node B gets an event published by another node, with the user's seq.
    async with GatewayClient(node_b.ws_url, alice["token"]) as on_b:
        await third.publish_user([alice_id], "test.cross", {"n": 1})
        event = await on_b.next_event()
        assert (event.type, event.seq, event.data) == ("test.cross", 1, {"n": 1})

    # Connected to node A, drop, miss events, resume on node B: replayed in order, no gap.
    ws = await _raw(session, node_a)
    await ws.send_str(JsonCodec.encode(frames.identify(alice["token"])).decode())
    ready = await _frame(ws)
    assert ready["op"] == Op.READY and ready["d"]["seq"] == 1
    await third.publish_user([alice_id], "test.cross", {"n": 2})
    assert (await _frame(ws))["s"] == 2
    await ws.close()
    for n in (3, 4, 5):
        await third.publish_user([alice_id], "test.cross", {"n": n})
    ws_b = await _raw(session, node_b)
    await ws_b.send_str(
        JsonCodec.encode(frames.resume(alice["token"], ready["d"]["session_id"], 2)).decode()
    )
    replayed = [await _frame(ws_b) for _ in range(3)]
    assert [(f["op"], f["s"], f["d"]["n"]) for f in replayed] == [
        ("event", 3, 3),
        ("event", 4, 4),
        ("event", 5, 5),
    ]
    resumed = await _frame(ws_b)
    assert resumed["op"] == Op.RESUMED and resumed["d"]["seq"] == 5
    await third.publish_user([alice_id], "test.cross", {"n": 6})
    assert (await _frame(ws_b))["s"] == 6
    await ws_b.close()


async def test_presence_and_long_poll_span_the_cluster(cluster):
    (node_a, node_b), third, session = cluster
    alice = await _register(session, node_a, "alice")
    bob = await _register(session, node_b, "bob")
    async with GatewayClient(node_a.ws_url, alice["token"]) as watcher:
        result = await watcher.call("presence.query", user_ids=[bob["id"]])
        assert result["presence"] == {bob["id"]: "offline"}
        async with GatewayClient(node_b.ws_url, bob["token"]):
            event = await watcher.next_event()
            assert event.data == {"user_id": bob["id"], "status": "online"}
            result = await watcher.call("presence.query", user_ids=[bob["id"]], watch=False)
            assert result["presence"] == {bob["id"]: "online"}
        event = await watcher.next_event()
        assert event.data == {"user_id": bob["id"], "status": "offline"}

    # A long-poll held on node B returns when node A's side of the cluster publishes.
    headers = {"Authorization": f"Bearer {bob['token']}"}

    async def poll():
        url = f"{node_b.url}/api/gateway/events?after=0&timeout=10"
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            return await resp.json()

    waiting = asyncio.create_task(poll())
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await third.publish_user([uuid.UUID(bob["id"])], "test.cross", {"hello": "bob"})
    body = await asyncio.wait_for(waiting, 5)
    assert body.pop("epoch")
    assert body == {
        "events": [{"op": "event", "t": "test.cross", "s": 1, "d": {"hello": "bob"}}],
        "seq": 1,
    }
