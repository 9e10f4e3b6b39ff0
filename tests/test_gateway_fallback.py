"""HTTP fallbacks: long-poll and SSE carry the same events with the same `s` as the socket."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from protocol.constants import Op
from server.app import create_app
from server.ws.calls import topic_authorizer
from tests.gateway_support import connect, publish, publish_topic, sse_event
from tests.helpers import expect_problem, make_settings


@topic_authorizer("fbroom")
async def _can_view(ctx, principal, entity_id: str) -> bool:
    return entity_id != "secret"


@pytest.fixture
def gateway_overrides() -> dict:
    return {"longpoll_timeout_s": 2, "heartbeat_interval_ms": 1000}


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path, gateway_overrides):
    settings = make_settings(clean_db, tmp_path, gateway=gateway_overrides)
    return await aiohttp_client(create_app(settings))


async def _poll(client, user, **params):
    resp = await client.get("/api/gateway/events", params=params, headers=user.auth)
    return resp


# long-poll --------------------------------------------------------------------------------------


async def test_long_poll_without_after_tells_the_current_seq(client, alice):
    await publish(client, [alice.id], "test.n", {"n": 1})
    sock = await connect(client, alice.token)
    resp = await _poll(client, alice)
    assert resp.status == 200
    # The cursor counts in the same epoch as the socket's
    assert await resp.json() == {"events": [], "seq": 1, "epoch": sock.ready["epoch"]}


async def test_long_poll_returns_waiting_events_at_once_with_socket_seqs(client, alice):
    sock = await connect(client, alice.token)
    for n in (1, 2, 3):
        await publish(client, [alice.id], "test.n", {"n": n})
    socket_events = [await sock.expect(Op.EVENT) for _ in range(3)]
    started = time.monotonic()
    body = await (await _poll(client, alice, after=1)).json()
    assert time.monotonic() - started < 0.5
    assert body["events"] == socket_events[1:]
    assert body["seq"] == 3
    body = await (await _poll(client, alice, after=0, limit=2)).json()
    assert [e["s"] for e in body["events"]] == [1, 2] and body["seq"] == 2


async def test_long_poll_waits_for_the_next_event(client, alice):
    waiting = asyncio.create_task(_poll(client, alice, after=0))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await publish(client, [alice.id], "test.late", {"ok": True})
    resp = await asyncio.wait_for(waiting, 2)
    body = await resp.json()
    assert body.pop("epoch")
    assert body == {
        "events": [{"op": "event", "t": "test.late", "s": 1, "d": {"ok": True}}],
        "seq": 1,
    }


async def test_long_poll_times_out_empty_within_the_bound(client, alice):
    started = time.monotonic()
    body = await (await _poll(client, alice, after=0, timeout=0.3)).json()
    assert body.pop("epoch")
    assert body == {"events": [], "seq": 0}
    assert 0.25 < time.monotonic() - started < 1.5
    started = time.monotonic()
    body = await (await _poll(client, alice, after=0, timeout=60)).json()  # capped at 2 s
    assert body["events"] == [] and time.monotonic() - started < 3


@pytest.mark.parametrize("gateway_overrides", [{"resume_log_depth": 2}])
async def test_long_poll_beyond_the_log_or_ahead_is_410(client, alice):
    for n in range(1, 6):
        await publish(client, [alice.id], "test.n", {"n": n})
    body = await expect_problem(await _poll(client, alice, after=1), 410)
    assert "no longer kept" in body["detail"]
    await expect_problem(await _poll(client, alice, after=9), 410)
    assert len((await (await _poll(client, alice, after=3)).json())["events"]) == 2


async def test_long_poll_needs_auth_and_valid_params(client, alice):
    await expect_problem(await client.get("/api/gateway/events"), 401)
    await expect_problem(await _poll(client, alice, after=-1), 422)
    await expect_problem(await _poll(client, alice, after="x"), 422)
    await expect_problem(await _poll(client, alice, limit=0), 422)


async def test_long_poll_only_sees_its_own_users_events(client, alice, bob):
    await publish(client, [bob.id], "test.bob", {})
    body = await (await _poll(client, alice, after=0, timeout=0.2)).json()
    assert body["events"] == []


# SSE -------------------------------------------------------------------------------------------


async def test_sse_replays_from_last_event_id_then_goes_live(client, alice):
    sock = await connect(client, alice.token)
    for n in (1, 2, 3):
        await publish(client, [alice.id], "test.n", {"n": n})
    socket_events = [await sock.expect(Op.EVENT) for _ in range(3)]
    epoch = sock.ready["epoch"]
    headers = {**alice.auth, "Last-Event-ID": f"{epoch}:1"}
    async with client.get("/api/gateway/sse", headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        for expected in socket_events[1:]:
            event = await sse_event(resp)
            assert event["id"] == f"{epoch}:{expected['s']}"
            assert orjson.loads(event["data"]) == expected
        await publish(client, [alice.id], "test.n", {"n": 4})
        live = await sse_event(resp)
        assert live["id"] == f"{epoch}:4"
        assert orjson.loads(live["data"]) == await sock.expect(Op.EVENT)


async def test_sse_without_a_cursor_starts_live_and_keeps_alive(client, alice):
    await publish(client, [alice.id], "test.old", {})
    async with client.get("/api/gateway/sse", headers=alice.auth) as resp:
        first = (await resp.content.readline()).decode()
        assert first.startswith("retry: ")
        comment = (await resp.content.readline()).decode().strip()
        assert comment.startswith(": seq 1 epoch ")
        epoch = comment.rsplit(" ", 1)[1]
        await asyncio.sleep(1.2)  # past one heartbeat interval: a keepalive comment arrived
        await publish(client, [alice.id], "test.new", {"n": 2})
        event = await sse_event(resp)
        assert event["id"] == f"{epoch}:2" and orjson.loads(event["data"])["t"] == "test.new"


async def test_sse_carries_live_topics_without_ids(client, alice):
    params = {"topics": "fbroom:lobby"}
    async with client.get("/api/gateway/sse", params=params, headers=alice.auth) as resp:
        await asyncio.sleep(0.1)
        await publish_topic(client, "fbroom:lobby", "room.updated", {"count": 3})
        event = await sse_event(resp)
        assert "id" not in event
        assert orjson.loads(event["data"]) == {
            "op": "event",
            "t": "room.updated",
            "topic": "fbroom:lobby",
            "d": {"count": 3},
        }


async def test_sse_refuses_bad_cursors_and_topics(client, alice):
    headers = {**alice.auth, "Last-Event-ID": "abc"}
    await expect_problem(await client.get("/api/gateway/sse", headers=headers), 422)
    headers = {**alice.auth, "Last-Event-ID": "7"}
    await expect_problem(await client.get("/api/gateway/sse", headers=headers), 410)
    for topic in ("fbroom:secret", "nosuch:1"):
        resp = await client.get("/api/gateway/sse", params={"topics": topic}, headers=alice.auth)
        await expect_problem(resp, 404)
    await expect_problem(await client.get("/api/gateway/sse"), 401)


async def test_an_sse_stream_counts_as_online(client, alice, bob):
    watcher = await connect(client, alice.token)
    await watcher.call("presence.query", "p", user_ids=[bob.id])
    async with client.get("/api/gateway/sse", headers=bob.auth) as resp:
        assert resp.status == 200
        event = await watcher.expect(Op.EVENT)
        assert event["d"] == {"user_id": bob.id, "status": "online"}
    event = await watcher.expect(Op.EVENT)
    assert event["d"] == {"user_id": bob.id, "status": "offline"}


async def test_openapi_documents_the_gateway_routes(client):
    doc = await (await client.get("/api/openapi.json")).json()
    for path in ("/api/gateway/ws", "/api/gateway/events", "/api/gateway/sse"):
        assert path in doc["paths"], path
    ws = doc["paths"]["/api/gateway/ws"]["get"]
    assert {p["name"] for p in ws["parameters"]} >= {"encoding"}
