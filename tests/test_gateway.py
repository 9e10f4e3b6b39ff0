"""The gateway socket: lifecycle, every op and close code, events and resume, calls, topics,
presence, slow consumers. Single node (memory bus); see test_gateway_redis.py for Redis."""

from __future__ import annotations

import asyncio
import time
import uuid

import jwt
import msgpack
import psycopg2
import pytest
from pydantic import BaseModel

from protocol import frames
from protocol.client import CallError, GatewayClient
from protocol.codec import JsonCodec
from protocol.constants import CloseCode, Op
from server.app import create_app
from server.app_keys import CONTEXT
from server.errors import Forbidden, NotFound
from server.ws.calls import call, topic_authorizer
from tests.gateway_support import connect, open_socket, publish, publish_topic
from tests.helpers import expect_problem, make_settings

# Test-only registrations (the registry is how capabilities plug in; these stand in for them).
ROOMS_DENIED = {"secret"}


@topic_authorizer("testroom")
async def _can_view_room(ctx, principal, entity_id: str) -> bool:
    if entity_id == "forbidden":
        raise Forbidden("Members only.")
    return entity_id not in ROOMS_DENIED


class EchoParams(BaseModel):
    text: str
    times: int = 1


@call("tests.echo", params=EchoParams)
async def _echo(ctx, principal, params: EchoParams) -> dict:
    return {"echo": params.text * params.times, "user": principal.user_id}


@call("tests.missing")
async def _missing(ctx, principal, params) -> dict:
    raise NotFound("No such thing.")


@call("tests.crash")
async def _crash(ctx, principal, params) -> dict:
    raise RuntimeError("boom")


@pytest.fixture
def gateway_overrides() -> dict:
    return {}


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path, gateway_overrides):
    settings = make_settings(clean_db, tmp_path, gateway=gateway_overrides)
    return await aiohttp_client(create_app(settings))


# connection lifecycle -----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_hello_identify_ready(client, alice, encoding):
    sock = await open_socket(client, encoding)
    assert sock.hello["heartbeat_interval_ms"] == 30000
    assert sock.hello["protocol_version"] == 1
    assert sock.hello["encoding"] == encoding
    ready = await sock.identify(alice.token)
    assert ready["user"] == {"id": alice.id, "username": "alice", "roles": ["user"]}
    assert ready["seq"] == 0 and len(ready["session_id"]) >= 16


async def test_msgpack_frames_are_binary_and_carry_the_same_values(client, alice):
    sock = await connect(client, alice.token, "msgpack")
    await publish(client, [alice.id], "test.thing", {"id": uuid.UUID(alice.id), "n": 1.5})
    msg = await sock.ws.receive(timeout=5)
    assert msg.type.name == "BINARY"
    event = msgpack.unpackb(msg.data)
    assert event == {"op": "event", "t": "test.thing", "s": 1, "d": {"id": alice.id, "n": 1.5}}


async def test_unknown_encoding_and_plain_http_are_refused(client, alice):
    resp = await client.get("/api/gateway/ws", params={"encoding": "xml"})
    await expect_problem(resp, 422)
    resp = await client.get("/api/gateway/ws")
    await expect_problem(resp, 426)
    resp = await client.get("/api/gateway/ws", params={"v": "2"})
    await expect_problem(resp, 422)


@pytest.mark.parametrize("gateway_overrides", [{"hello_timeout_s": 0.3}])
async def test_identify_timeout_closes_4003(client):
    sock = await open_socket(client)
    started = time.monotonic()
    code, _ = await sock.closed()
    assert code == CloseCode.NOT_AUTHENTICATED
    assert 0.25 < time.monotonic() - started < 2


async def test_frames_before_identify_close_4003(client):
    sock = await open_socket(client)
    await sock.send(frames.call("c1", "presence.query", {"user_ids": []}))
    assert (await sock.closed())[0] == CloseCode.NOT_AUTHENTICATED


async def test_heartbeat_before_identify_is_acked(client, alice):
    sock = await open_socket(client)
    await sock.send(frames.heartbeat())
    await sock.expect(Op.HEARTBEAT_ACK)
    await sock.identify(alice.token)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "",
        jwt.encode({"user_id": str(uuid.uuid4()), "iat": 1, "exp": 2, "typ": "access"}, "k"),
    ],
)
async def test_bad_token_closes_4004(client, token):
    sock = await open_socket(client)
    await sock.send(frames.identify(token))
    code, reason = await sock.closed()
    assert code == CloseCode.AUTHENTICATION_FAILED and reason


async def test_expired_token_closes_4004(client, alice):
    claims = jwt.decode(alice.token, options={"verify_signature": False})
    claims.update(iat=int(time.time()) - 100, exp=int(time.time()) - 10)
    expired = jwt.encode(claims, "test-secret-" + "x" * 32, algorithm="HS256")
    sock = await open_socket(client)
    await sock.send(frames.identify(expired))
    code, reason = await sock.closed()
    assert code == CloseCode.AUTHENTICATION_FAILED and "expired" in reason


async def test_deactivated_account_closes_4004(client, alice, clean_db):
    conn = psycopg2.connect(clean_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("UPDATE users SET is_active = false WHERE id = %s", (alice.id,))
    conn.close()
    sock = await open_socket(client)
    await sock.send(frames.identify(alice.token))
    assert (await sock.closed())[0] == CloseCode.AUTHENTICATION_FAILED


async def test_identify_twice_closes_4005(client, alice):
    sock = await connect(client, alice.token)
    await sock.send(frames.identify(alice.token))
    assert (await sock.closed())[0] == CloseCode.ALREADY_AUTHENTICATED


@pytest.mark.parametrize("op", ["dance", "ready", "event"])
async def test_unknown_or_server_only_op_closes_4001(client, alice, op):
    sock = await connect(client, alice.token)
    await sock.send({"op": op, "d": {}})
    assert (await sock.closed())[0] == CloseCode.UNKNOWN_OP


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [
        ("json", "{not json"),
        ("json", '["op", "identify"]'),
        ("json", '{"d": {}}'),
        ("json", '{"op": "call", "d": [1]}'),
        ("msgpack", b"\xc1\xc1"),
        ("msgpack", "{}"),
    ],
)
async def test_undecodable_frame_closes_4002(client, alice, encoding, payload):
    sock = await connect(client, alice.token, encoding)
    if isinstance(payload, bytes):
        await sock.send_bytes(payload)
    else:
        await sock.send_str(payload)
    assert (await sock.closed())[0] == CloseCode.DECODE_ERROR


@pytest.mark.parametrize("gateway_overrides", [{"max_frame_bytes": 1024}])
async def test_frame_over_the_limit_closes_4011(client, alice):
    sock = await connect(client, alice.token)
    assert sock.hello["max_frame_bytes"] == 1024
    await sock.send(frames.call("c1", "tests.echo", {"text": "x" * 2000}))
    assert (await sock.closed())[0] == CloseCode.FRAME_TOO_LARGE


@pytest.mark.parametrize("gateway_overrides", [{"frame_budget": 5, "frame_budget_window_s": 60}])
async def test_frame_flood_closes_4008_without_hurting_others(client, alice, bob):
    flooder = await connect(client, alice.token)
    calm = await connect(client, bob.token)
    for i in range(10):
        await flooder.send(frames.heartbeat())
        if i < 4:
            await flooder.expect(Op.HEARTBEAT_ACK)
    assert (await flooder.closed())[0] == CloseCode.RATE_LIMITED
    await publish(client, [bob.id], "test.ping", {})
    assert (await calm.expect(Op.EVENT))["t"] == "test.ping"
    assert (await calm.call("tests.echo", text="hi"))["ok"]


async def test_bad_frame_from_one_client_does_not_affect_another(client, alice, bob):
    bad = await connect(client, alice.token)
    good = await connect(client, bob.token)
    await bad.send_str("\x00garbage")
    assert (await bad.closed())[0] == CloseCode.DECODE_ERROR
    await publish(client, [bob.id], "test.ping", {"n": 1})
    assert (await good.expect(Op.EVENT))["d"] == {"n": 1}


@pytest.mark.parametrize("gateway_overrides", [{"heartbeat_interval_ms": 200}])
async def test_heartbeats_keep_the_session_and_silence_closes_4009(client, alice):
    sock = await connect(client, alice.token)
    for _ in range(4):  # 0.6 s of regular heartbeats: still open
        await asyncio.sleep(0.15)
        await sock.send(frames.heartbeat(0))
        await sock.expect(Op.HEARTBEAT_ACK)
    started = time.monotonic()
    code, _ = await sock.closed()
    assert code == CloseCode.SESSION_TIMEOUT
    assert 0.3 < time.monotonic() - started < 1.5


async def test_shutdown_tells_clients_to_reconnect(aiohttp_client, clean_db, tmp_path, alice):
    app = create_app(make_settings(clean_db, tmp_path))
    other = await aiohttp_client(app)
    sock = await open_socket(other)
    await sock.identify(alice.token)
    closing = asyncio.create_task(other.server.close())
    frame = await sock.recv()
    assert frame["op"] == Op.RECONNECT
    assert (await sock.closed())[0] == CloseCode.SERVER_RESTART
    await closing


async def test_ending_a_users_sessions_closes_every_one_of_their_sockets(client, alice, bob):
    a1 = await connect(client, alice.token)
    a2 = await connect(client, alice.token, "msgpack")
    b = await connect(client, bob.token)
    ctx = client.server.app[CONTEXT]
    async with ctx.db.transaction() as tx:
        ctx.events.end_sessions(tx, uuid.UUID(alice.id), "password changed")
    for sock in (a1, a2):
        code, reason = await sock.closed()
        assert code == CloseCode.AUTHENTICATION_FAILED and reason == "password changed"
    assert (await b.call("tests.echo", text="still here"))["ok"]


# events and resume -------------------------------------------------------------------------


async def test_events_have_one_sequence_across_devices(client, alice, bob):
    phone = await connect(client, alice.token)
    tablet = await connect(client, alice.token, "msgpack")
    other = await connect(client, bob.token)
    await publish(client, [alice.id, bob.id], "test.hello", {"n": 1})
    await publish(client, [alice.id], "test.hello", {"n": 2})
    for sock in (phone, tablet):
        first, second = await sock.expect(Op.EVENT), await sock.expect(Op.EVENT)
        assert (first["s"], first["d"], second["s"], second["d"]) == (1, {"n": 1}, 2, {"n": 2})
    assert (await other.expect(Op.EVENT))["s"] == 1


async def test_ready_seq_is_the_users_latest(client, alice):
    await publish(client, [alice.id], "test.a", {})
    await publish(client, [alice.id], "test.b", {})
    sock = await open_socket(client)
    assert (await sock.identify(alice.token))["seq"] == 2
    await publish(client, [alice.id], "test.c", {})
    assert (await sock.expect(Op.EVENT))["s"] == 3


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
async def test_resume_replays_missed_events_in_order(client, alice, encoding):
    sock = await connect(client, alice.token, encoding)
    await publish(client, [alice.id], "test.n", {"n": 1})
    assert (await sock.expect(Op.EVENT))["s"] == 1
    session_id = (sock.hello, None)[1]
    ready_session = None
    await sock.close()
    # the first socket's session id comes from ready; reconnect with a fresh socket to read it
    sock = await open_socket(client, encoding)
    ready_session = (await sock.identify(alice.token))["session_id"]
    await sock.close()
    for n in range(2, 6):
        await publish(client, [alice.id], "test.n", {"n": n})
    again = await open_socket(client, encoding)
    await again.send(frames.resume(alice.token, ready_session, 1))
    replayed = [await again.expect(Op.EVENT) for _ in range(4)]
    assert [e["s"] for e in replayed] == [2, 3, 4, 5]
    assert [e["d"]["n"] for e in replayed] == [2, 3, 4, 5]
    resumed = await again.expect(Op.RESUMED)
    assert resumed["d"]["seq"] == 5 and resumed["d"]["replayed"] == 4
    assert resumed["d"]["session_id"] == ready_session and session_id is None
    await publish(client, [alice.id], "test.n", {"n": 6})
    assert (await again.expect(Op.EVENT))["s"] == 6
    assert (await again.call("tests.echo", text="ok"))["ok"]


async def test_reference_client_resumes_after_a_dropped_link(client, alice):
    url = str(client.make_url("/api/gateway/ws"))
    gw = GatewayClient(url, alice.token, backoff_initial_s=0.05)
    await gw.connect()
    try:
        await publish(client, [alice.id], "test.n", {"n": 1})
        assert (await gw.next_event()).seq == 1
        await gw.drop()
        for n in range(2, 5):
            await publish(client, [alice.id], "test.n", {"n": n})
        got = [await gw.next_event() for _ in range(3)]
        assert [e.seq for e in got] == [2, 3, 4]
        assert gw.resumes == 1
        await publish(client, [alice.id], "test.n", {"n": 5})
        assert (await gw.next_event()).data == {"n": 5}
    finally:
        await gw.close()


@pytest.mark.parametrize("gateway_overrides", [{"resume_log_depth": 3}])
async def test_resume_beyond_the_log_is_invalid_session_then_identify(client, alice):
    sock = await connect(client, alice.token)
    session_id = (await (await open_socket(client)).identify(alice.token))["session_id"]
    for n in range(1, 8):
        await publish(client, [alice.id], "test.n", {"n": n})
    again = await open_socket(client)
    await again.send(frames.resume(alice.token, session_id, 1))
    invalid = await again.expect(Op.INVALID_SESSION)
    assert invalid["d"]["resumable"] is False
    ready = await again.identify(alice.token)  # same socket: identify afresh
    assert ready["seq"] == 7 and ready["session_id"] != session_id
    await sock.close()


async def test_resume_of_unknown_or_foreign_session_is_invalid(client, alice, bob):
    bob_session = (await (await open_socket(client)).identify(bob.token))["session_id"]
    for session_id in ("nope", bob_session):
        sock = await open_socket(client)
        await sock.send(frames.resume(alice.token, session_id, 0))
        assert (await sock.expect(Op.INVALID_SESSION))["d"]["resumable"] is False


async def test_resume_with_a_seq_never_issued_closes_4007(client, alice):
    session_id = (await (await open_socket(client)).identify(alice.token))["session_id"]
    sock = await open_socket(client)
    await sock.send(frames.resume(alice.token, session_id, 99))
    assert (await sock.closed())[0] == CloseCode.INVALID_SEQ


async def test_malformed_resume_closes_4002(client, alice):
    sock = await open_socket(client)
    await sock.send({"op": "resume", "d": {"token": alice.token, "session_id": 5, "seq": "x"}})
    assert (await sock.closed())[0] == CloseCode.DECODE_ERROR


async def test_resuming_a_live_session_replaces_the_old_socket(client, alice):
    old = await open_socket(client)
    session_id = (await old.identify(alice.token))["session_id"]
    new = await open_socket(client)
    await new.send(frames.resume(alice.token, session_id, 0))
    await new.expect(Op.RESUMED)
    assert (await old.closed())[0] == CloseCode.SESSION_REPLACED
    await publish(client, [alice.id], "test.n", {})
    assert (await new.expect(Op.EVENT))["s"] == 1


# calls ----------------------------------------------------------------------------------------


async def test_call_reply_ok_and_errors(client, alice):
    sock = await connect(client, alice.token)
    assert await sock.call("tests.echo", "a", text="ab", times=2) == {
        "ok": True,
        "result": {"echo": "abab", "user": alice.id},
    }
    bad = await sock.call("tests.echo", "b", times="many")
    assert bad["ok"] is False and bad["error"]["code"] == "validation_failed"
    assert set(bad["error"]["errors"]) == {"text", "times"}
    missing = await sock.call("tests.missing", "c")
    assert missing == {"ok": False, "error": {"code": "not_found", "message": "No such thing."}}
    unknown = await sock.call("no.such.method", "d")
    assert unknown["error"]["code"] == "unknown_method"
    crash = await sock.call("tests.crash", "e")
    assert crash["error"] == {"code": "internal_error", "message": "Something went wrong."}
    await sock.send({"op": "call", "id": "f", "d": {"method": "tests.echo", "params": [1]}})
    assert (await sock.expect(Op.REPLY))["d"]["error"]["code"] == "validation_failed"


async def test_call_without_an_id_gets_an_error_frame(client, alice):
    sock = await connect(client, alice.token)
    await sock.send({"op": "call", "d": {"method": "tests.echo", "params": {"text": "x"}}})
    error = await sock.expect(Op.ERROR)
    assert error["d"]["code"] == "bad_request"


async def test_reference_client_call_raises_call_error(client, alice):
    async with GatewayClient(str(client.make_url("/api/gateway/ws")), alice.token) as gw:
        assert (await gw.call("tests.echo", text="hi"))["echo"] == "hi"
        with pytest.raises(CallError) as info:
            await gw.call("tests.missing")
        assert info.value.code == "not_found"


# topics ----------------------------------------------------------------------------------------


async def test_subscribe_delivers_topic_events_without_seq(client, alice, bob):
    a = await connect(client, alice.token)
    b = await connect(client, bob.token, "msgpack")
    for sock in (a, b):
        await sock.send(frames.subscribe("testroom:lobby", "s1"))
        assert (await sock.expect(Op.REPLY))["d"] == {
            "ok": True,
            "result": {"topic": "testroom:lobby"},
        }
    await publish_topic(client, "testroom:lobby", "room.updated", {"count": 2})
    await publish_topic(client, "testroom:other", "room.updated", {"count": 9})
    for sock in (a, b):
        event = await sock.expect(Op.EVENT)
        assert event == {
            "op": "event",
            "t": "room.updated",
            "topic": "testroom:lobby",
            "d": {"count": 2},
        }
    await a.send(frames.unsubscribe("testroom:lobby", "u1"))
    assert (await a.expect(Op.REPLY))["d"]["result"]["removed"] is True
    await publish_topic(client, "testroom:lobby", "room.updated", {"count": 1})
    assert (await b.expect(Op.EVENT))["d"] == {"count": 1}
    assert (await a.call("tests.echo", "x", text="quiet"))["ok"]  # no event queued before it


@pytest.mark.parametrize(
    ("topic", "code"),
    [
        ("nosuch:1", "unknown_topic"),
        ("testroom", "unknown_topic"),
        ("testroom:", "unknown_topic"),
        ("presence:" + str(uuid.uuid4()), "unknown_topic"),
        ("gateway:" + str(uuid.uuid4()), "unknown_topic"),
        ("testroom:secret", "not_found"),
        ("testroom:forbidden", "forbidden"),
    ],
)
async def test_subscribe_is_access_checked(client, alice, topic, code):
    sock = await connect(client, alice.token)
    await sock.send(frames.subscribe(topic, "s1"))
    reply = await sock.expect(Op.REPLY)
    assert reply["d"]["ok"] is False and reply["d"]["error"]["code"] == code
    await publish_topic(client, topic, "room.updated", {})
    assert (await sock.call("tests.echo", "x", text="nothing came"))["ok"]


async def test_subscribe_without_id_reports_errors_as_error_frames(client, alice):
    sock = await connect(client, alice.token)
    await sock.send(frames.subscribe("nosuch:1"))
    error = await sock.expect(Op.ERROR)
    assert error["d"]["code"] == "unknown_topic" and error["d"]["topic"] == "nosuch:1"


async def test_resume_restores_subscriptions(client, alice):
    sock = await open_socket(client)
    session_id = (await sock.identify(alice.token))["session_id"]
    await sock.send(frames.subscribe("testroom:lobby", "s"))
    await sock.expect(Op.REPLY)
    await sock.close()
    again = await open_socket(client)
    await again.send(frames.resume(alice.token, session_id, 0))
    resumed = await again.expect(Op.RESUMED)
    assert resumed["d"]["topics"] == ["testroom:lobby"]
    await publish_topic(client, "testroom:lobby", "room.updated", {"n": 1})
    assert (await again.expect(Op.EVENT))["topic"] == "testroom:lobby"


# presence --------------------------------------------------------------------------------------


async def test_presence_query_and_events_are_multi_device_aware(client, alice, bob):
    watcher = await connect(client, alice.token)
    reply = await watcher.call("presence.query", "p", user_ids=[bob.id, alice.id])
    assert reply["result"]["presence"] == {bob.id: "offline", alice.id: "online"}
    phone = await connect(client, bob.token)
    event = await watcher.expect(Op.EVENT)
    assert event["t"] == "presence.updated" and "s" not in event
    assert event["d"] == {"user_id": bob.id, "status": "online"}
    laptop = await connect(client, bob.token)  # a second device: no new event
    await phone.close()  # one device left: still online
    reply = await watcher.call("presence.query", "q", user_ids=[bob.id], watch=False)
    assert reply["result"]["presence"] == {bob.id: "online"}
    await laptop.close()
    event = await watcher.expect(Op.EVENT)
    assert event["d"] == {"user_id": bob.id, "status": "offline"}


async def test_presence_is_hidden_between_blocked_users(client, alice, bob, make_user):
    carol = await make_user("carol")
    resp = await client.post(f"/api/users/{alice.id}/block", headers=bob.auth)
    assert resp.status in (200, 201, 204), await resp.text()
    bob_sock = await connect(client, bob.token)
    watcher = await connect(client, alice.token)
    reply = await watcher.call("presence.query", "p", user_ids=[bob.id, carol.id])
    assert reply["result"]["presence"] == {bob.id: "offline", carol.id: "offline"}
    carol_sock = await connect(client, carol.token)
    event = await watcher.expect(Op.EVENT)
    assert event["d"] == {"user_id": carol.id, "status": "online"}
    await bob_sock.close()
    await carol_sock.close()
    event = await watcher.expect(Op.EVENT)  # carol's offline; nothing ever about bob
    assert event["d"] == {"user_id": carol.id, "status": "offline"}


async def test_presence_query_validates(client, alice):
    sock = await connect(client, alice.token)
    reply = await sock.call("presence.query", "p", user_ids=["not-a-uuid"])
    assert reply["error"]["code"] == "validation_failed"
    reply = await sock.call("presence.query", "q", user_ids=[])
    assert reply["error"]["code"] == "validation_failed"


# slow consumers --------------------------------------------------------------------------------


def _slow_consumer_count() -> float:
    from server.ws.metrics import SLOW_CONSUMERS

    return SLOW_CONSUMERS._value.get()


async def _raw_identified_socket(client, token: str):
    """A hand-made WebSocket client that identifies and then never reads again."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        b"GET /api/gateway/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    await reader.readuntil(b"\r\n\r\n")
    body = JsonCodec.encode(frames.identify(token))
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(body))
    if len(body) < 126:
        header = bytes([0x81, 0x80 | len(body)])
    else:
        header = bytes([0x81, 0x80 | 126]) + len(body).to_bytes(2, "big")
    writer.write(header + mask + masked)
    await writer.drain()
    return reader, writer


@pytest.mark.parametrize("gateway_overrides", [{"outbound_queue": 8}])
async def test_slow_consumer_is_dropped_with_4010_and_others_keep_up(client, alice, bob):
    from server.ws.metrics import CLOSES

    before = _slow_consumer_count()
    closes_before = CLOSES.labels("4010")._value.get()
    reader, writer = await _raw_identified_socket(client, alice.token)
    fast = await connect(client, bob.token)
    await asyncio.sleep(0.2)
    big = {"blob": "x" * 60_000}
    started = time.monotonic()
    for n in range(1, 301):
        await publish(client, [alice.id, bob.id], "test.big", big)
        if n % 20 == 0:
            for expected in range(n - 19, n + 1):
                assert (await fast.expect(Op.EVENT))["s"] == expected
    assert time.monotonic() - started < 15
    assert _slow_consumer_count() == before + 1
    assert CLOSES.labels("4010")._value.get() == closes_before + 1
    # The slow socket is closed (after a short grace, even though it never reads).
    async with asyncio.timeout(10):
        while await reader.read(1 << 20):
            pass
    writer.close()
    # It can come back and resume: everything it missed is still in the log.
    sock = await open_socket(client)
    session = await sock.identify(alice.token)
    assert session["seq"] == 300


# metrics ---------------------------------------------------------------------------------------


async def test_metrics_expose_gateway_counters(client, alice):
    sock = await connect(client, alice.token)
    await sock.send(frames.heartbeat())
    await sock.expect(Op.HEARTBEAT_ACK)
    text = await (await client.get("/metrics")).text()
    for name in (
        'nexgate_gateway_connections{encoding="json",transport="websocket"}',
        'nexgate_gateway_frames_in_total{op="identify"}',
        'nexgate_gateway_frames_out_total{op="ready"}',
        "nexgate_gateway_delivery_seconds_bucket",
        "nexgate_gateway_resumes_total",
        "nexgate_gateway_slow_consumer_disconnects_total",
    ):
        assert name in text, name


# failures and recovery ---------------------------------------------------------------------------


async def test_server_failure_during_identify_closes_4000(client, alice, monkeypatch):
    bus = client.server.app[CONTEXT].bus

    async def broken(user_id):
        raise ConnectionError("bus down")

    monkeypatch.setattr(bus, "log_position", broken)
    sock = await open_socket(client)
    await sock.send(frames.identify(alice.token))
    assert (await sock.closed())[0] == CloseCode.UNKNOWN_ERROR


async def test_a_missed_live_delivery_is_filled_from_the_log(client, alice):
    sock = await connect(client, alice.token)
    bus = client.server.app[CONTEXT].bus
    listeners = list(bus.user_listeners)
    bus.user_listeners.clear()  # this node misses event 1 (as if its subscription dropped)
    await publish(client, [alice.id], "test.n", {"n": 1})
    bus.user_listeners.extend(listeners)
    await publish(client, [alice.id], "test.n", {"n": 2})
    first, second = await sock.expect(Op.EVENT), await sock.expect(Op.EVENT)
    assert [(first["s"], first["d"]), (second["s"], second["d"])] == [(1, {"n": 1}), (2, {"n": 2})]
