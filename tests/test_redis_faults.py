"""Redis faults under live traffic, on a redis-server of the test's own (killed with -9 and
restarted without persistence: every key gone, as after a crash, a flush or a failover to an
empty replica).

What a user would notice: a DM answered 201 that never shows up (neither live nor after the
client's documented resync), a request answered 500 during the outage, a load balancer that
keeps routing to a node that cannot serve."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from protocol import frames
from protocol.client import INVALID_SESSION_EVENT, GatewayClient
from protocol.constants import CloseCode, Op
from server.app import create_app
from tests.fixtures.own_redis import OwnRedis
from tests.gateway_support import connect, open_socket
from tests.helpers import User, expect_problem, make_settings, register
from tests.messaging_support import MESSAGING_SETTINGS, open_dm


def _settings(clean_db: str, tmp_path, redis_url: str, **more: dict[str, Any]):
    sections: dict[str, dict[str, Any]] = {
        **MESSAGING_SETTINGS,
        "redis": {"url": redis_url, "prefix": f"t{uuid.uuid4().hex[:6]}:"},
        # The outbox sweeper republishes what the writing node could not publish during the
        # outage: soon, so the test does not wait the production 10 s.
        "events": {"republish_after_s": 1.5, "sweep_interval_s": 0.3},
    }
    for section, values in more.items():
        sections.setdefault(section, {}).update(values)
    return make_settings(clean_db, tmp_path, **sections)


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path, own_redis: OwnRedis):
    return await aiohttp_client(create_app(_settings(clean_db, tmp_path, own_redis.url)))


async def _all_message_ids(client, user: User, conversation_id: str) -> set[str]:
    """What a client's resync reads: the conversation's messages over HTTP, every page."""
    ids: set[str] = set()
    cursor = None
    while True:
        params = {"limit": "100", **({"cursor": cursor} if cursor else {})}
        resp = await client.get(
            f"/api/conversations/{conversation_id}/messages", params=params, headers=user.auth
        )
        assert resp.status == 200, await resp.text()
        page = await resp.json()
        ids.update(m["id"] for m in page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return ids


class Recipient:
    """A phone on the reference client: shows live DMs, and on invalid_session refetches the
    conversation over HTTP (the documented resync)."""

    def __init__(self, client, user: User, conversation_id: str) -> None:
        self.client = client
        self.user = user
        self.conversation_id = conversation_id
        self.live: set[str] = set()
        self.refetched: set[str] = set()
        self.resyncs = 0
        self.gw = GatewayClient(
            str(client.make_url("/api/gateway/ws")),
            user.token,
            backoff_initial_s=0.05,
            backoff_max_s=0.5,
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.gw.connect()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            event = await self.gw.next_event(3600)
            if event.type == "message.created":
                self.live.add(event.data["message"]["id"])
            elif event.type == INVALID_SESSION_EVENT:
                self.resyncs += 1
                self.refetched |= await _all_message_ids(
                    self.client, self.user, self.conversation_id
                )

    @property
    def seen(self) -> set[str]:
        return self.live | self.refetched

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.gw.close()


async def test_a_redis_restart_under_a_dm_stream_loses_no_message_silently(
    client, own_redis: OwnRedis
):
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    cid = await open_dm(client, alice, bob)
    phone = Recipient(client, bob, cid)
    await phone.start()
    committed: list[str] = []
    statuses: list[int] = []
    try:
        for n in range(60):
            if n == 20:
                own_redis.kill()
            if n == 30:
                own_redis.start()
                await own_redis.wait_up()
            resp = await client.post(
                f"/api/conversations/{cid}/messages", json={"content": f"m{n}"}, headers=alice.auth
            )
            statuses.append(resp.status)
            if resp.status == 201:
                committed.append((await resp.json())["id"])
            await asyncio.sleep(0.05)
        # Every send was answered, none with a 500: the rate limiter fails open on Redis faults.
        assert set(statuses) == {201}, statuses
        for _ in range(300):
            if set(committed) <= phone.seen:
                break
            await asyncio.sleep(0.1)
    finally:
        await phone.stop()
    missing = set(committed) - phone.seen
    assert not missing, (
        f"{len(missing)} committed DMs never reached the recipient "
        f"(positions {sorted(committed.index(m) for m in missing)}, {phone.resyncs} resyncs, "
        f"last close {phone.gw.last_close})"
    )
    # The log lost its history: the client was told (and resynced), not left with reused seqs.
    assert phone.resyncs >= 1
    # Nothing delivered twice under one id on the socket, and the log restarted at a new epoch.
    assert phone.gw.epoch is not None


async def _wait_status(client, path: str, status: int, wait_s: float = 15) -> dict:
    async with asyncio.timeout(wait_s):
        while True:
            resp = await client.get(path)
            if resp.status == status:
                return await resp.json()
            await asyncio.sleep(0.1)


async def test_readiness_reports_the_bus_and_the_database_and_follows_redis(
    client, own_redis: OwnRedis
):
    body = await _wait_status(client, "/readyz", 200)
    assert (body["status"], body["database"], body["bus"]) == ("ready", "ok", "ok")
    own_redis.kill()
    body = await _wait_status(client, "/readyz", 503)
    # A load balancer stops routing here, and the operator sees which dependency is down.
    assert body["status"] == "unavailable" and body["database"] == "ok"
    assert body["bus"].startswith("unavailable")
    # Kubernetes asks whether the node can serve at all (every node loses Redis at once; an
    # empty Service would answer nobody): yes, degraded.
    resp = await client.get("/readyz", params={"degraded": "ok"})
    assert resp.status == 200 and (await resp.json())["status"] == "degraded"
    # Reads that do not need Redis keep working meanwhile (the rate limiter fails open).
    own_redis.start()
    await own_redis.wait_up()
    body = await _wait_status(client, "/readyz", 200)
    assert body["bus"] == "ok"


async def test_rate_limits_can_refuse_with_503_and_retry_after_while_redis_is_down(
    aiohttp_client, clean_db, tmp_path, own_redis: OwnRedis
):
    settings = _settings(
        clean_db, tmp_path, own_redis.url, redis={"rate_limit_on_failure": "unavailable"}
    )
    client = await aiohttp_client(create_app(settings))
    alice = await register(client, "alice")
    own_redis.kill()
    resp = await client.get("/api/conversations", headers=alice.auth)
    body = await expect_problem(resp, 503)
    assert body["type"].endswith("rate_limiter_unavailable")
    assert int(resp.headers["Retry-After"]) >= 1
    await own_redis.restart(0)
    resp = await client.get("/api/conversations", headers=alice.auth)
    assert resp.status == 200, await resp.text()


async def test_cursors_from_before_a_redis_restart_are_told_the_log_was_reset(
    client, own_redis: OwnRedis
):
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    cid = await open_dm(client, alice, bob)
    sock = await connect(client, bob.token)
    for n in range(3):
        resp = await client.post(
            f"/api/conversations/{cid}/messages", json={"content": f"m{n}"}, headers=alice.auth
        )
        assert resp.status == 201
    poll = await (await client.get("/api/gateway/events", headers=bob.auth)).json()
    old_epoch, old_seq = poll["epoch"], poll["seq"]
    assert old_epoch == sock.ready["epoch"] and old_seq >= 3
    await sock.close()

    await own_redis.restart(0.2)
    for n in range(5):  # the new epoch counts from 1 again: seqs 1..5 exist, all new events
        resp = await client.post(
            f"/api/conversations/{cid}/messages", json={"content": f"n{n}"}, headers=alice.auth
        )
        assert resp.status == 201

    # Resume with the old cursor: not "resumed" with other events under old numbers.
    again = await open_socket(client)
    await again.send(frames.resume(bob.token, sock.ready["session_id"], 2, old_epoch))
    invalid = (await again.expect(Op.INVALID_SESSION))["d"]
    assert invalid["resumable"] is False and invalid["code"] in ("log_reset", "session_unknown")
    ready = await again.identify(bob.token)
    assert ready["epoch"] != old_epoch

    # Long-poll and SSE cursors of the old epoch: 410 log_reset, never events of the new one.
    params = {"after": "2", "epoch": old_epoch, "timeout": "0"}
    resp = await client.get("/api/gateway/events", params=params, headers=bob.auth)
    assert (await expect_problem(resp, 410))["type"].endswith("/log_reset")
    headers = {**bob.auth, "Last-Event-ID": f"{old_epoch}:2"}
    resp = await client.get("/api/gateway/sse", headers=headers)
    assert (await expect_problem(resp, 410))["type"].endswith("/log_reset")
    fresh = await (await client.get("/api/gateway/events", headers=bob.auth)).json()
    assert fresh["epoch"] == ready["epoch"]


async def test_a_live_socket_is_told_when_its_log_is_reset(client, own_redis: OwnRedis):
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    cid = await open_dm(client, alice, bob)
    sock = await connect(client, bob.token)
    await own_redis.restart(0.2)
    resp = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "after"}, headers=alice.auth
    )
    assert resp.status == 201
    # Told, then closed 4014: the message is not skipped silently behind a reused seq.
    while True:
        frame = await sock.recv(15)
        if frame["op"] == Op.INVALID_SESSION:
            break
    assert frame["d"]["code"] == "log_reset" and frame["d"]["epoch"] != sock.ready["epoch"]
    closing = await sock.ws.receive(5)
    assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, CloseCode.LOG_RESET)


async def test_during_a_redis_outage_reads_work_and_the_gateway_says_what_it_cannot(
    client, own_redis: OwnRedis
):
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    cid = await open_dm(client, alice, bob)
    own_redis.kill()
    # HTTP reads need only PostgreSQL: served (the rate limiter fails open).
    resp = await client.get(f"/api/conversations/{cid}/messages", headers=bob.auth)
    assert resp.status == 200
    # A socket cannot be identified without the bus: told so (4000, retry), not a bare drop.
    sock = await open_socket(client)
    await sock.send(frames.identify(bob.token))
    code, reason = await sock.closed(15)
    assert code == CloseCode.UNKNOWN_ERROR and "bus unavailable" in reason
    await own_redis.restart(0)
    again = await open_socket(client)
    async with asyncio.timeout(15):  # stale pooled connections are replaced, not surfaced
        ready = await again.identify(bob.token)
    assert ready["epoch"]
