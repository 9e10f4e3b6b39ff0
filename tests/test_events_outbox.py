"""The event sink's guarantees (server/domain/events.py): nothing leaves a rolled-back write; a
committed write's events arrive even when the process dies between COMMIT and publish (the
transactional outbox, republished by another process's sweeper)."""

from __future__ import annotations

import asyncio

import aiohttp
import psycopg2
import pytest

from protocol.client import GatewayClient
from server.domain.events import CRASH_AFTER_COMMIT_ENV
from tests.gateway_support import Node, node_env
from tests.helpers import free_port
from tests.messaging_support import gateway, next_of, no_event, open_dm
from tests.notifications_support import ctx_of


def outbox_rows(database_url: str, type: str | None = None) -> int:
    """Outbox rows (holding an event of `type`, when given)."""
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            if type is None:
                cur.execute("SELECT count(*) FROM event_outbox")
            else:
                cur.execute(
                    "SELECT count(*) FROM event_outbox WHERE events::jsonb @> %s::jsonb",
                    (f'[{{"t": "{type}"}}]',),
                )
            return cur.fetchone()[0]
    finally:
        conn.close()


async def wait_for(predicate, wait_s: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while not predicate():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# in process ------------------------------------------------------------------------------------


async def test_a_rolled_back_write_publishes_nothing_and_a_committed_one_cleans_up(
    client, alice, bob, clean_db
):
    ctx = ctx_of(client)
    gw = await gateway(client, bob)
    try:
        with pytest.raises(RuntimeError):
            async with ctx.db.transaction() as tx:
                ctx.events.to_users(tx, [bob.id], "test.rolled_back", {"n": 1})
                await tx.execute("SELECT 1")
                raise RuntimeError("the write fails after staging its event")
        await no_event(gw, "test.rolled_back")

        async with ctx.db.transaction() as tx:
            await tx.execute("SELECT 1")
            ctx.events.to_users(tx, [bob.id], "test.first", {"n": 1})
            ctx.events.to_users(tx, [bob.id], "test.second", {"n": 2})
        first = await next_of(gw, "test.first")
        second = await next_of(gw, "test.second")
        assert second.seq == first.seq + 1  # one transaction's events, in staging order
        # Once published, the outbox row is deleted (batched, shortly after).
        await wait_for(lambda: outbox_rows(clean_db) == 0, 5)
    finally:
        await gw.close()


# real processes: killed between COMMIT and publish ------------------------------------------------


def _env(database_url: str, data_dir: str, redis_url: str = "", prefix: str = "") -> dict:
    env = node_env(database_url, redis_url, prefix, data_dir)
    if not redis_url:
        env.pop("REDIS_URL")
        env.pop("NEXGATE_REDIS_PREFIX")
    env.update({"NEXGATE_EVENTS_REPUBLISH_AFTER_S": "1", "NEXGATE_EVENTS_SWEEP_INTERVAL_S": "0.2"})
    return env


async def _register(session: aiohttp.ClientSession, node: Node, username: str) -> dict:
    body = {"username": username, "email": f"{username}@example.com", "password": "s3cret-pass"}
    async with session.post(f"{node.url}/api/auth/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
        data = await resp.json()
    return {"id": data["user"]["id"], "token": data["access_token"]}


async def _send_and_crash(session, node: Node, alice: dict, bob: dict, text: str) -> str:
    """alice opens a conversation with bob and sends `text`; the node dies right after the
    message's COMMIT. Returns the conversation id."""
    headers = {"Authorization": f"Bearer {alice['token']}"}
    async with session.post(
        f"{node.url}/api/conversations", json={"user_id": bob["id"]}, headers=headers
    ) as resp:
        assert resp.status in (200, 201), await resp.text()
        cid = (await resp.json())["id"]
    with pytest.raises(aiohttp.ClientError):
        async with session.post(
            f"{node.url}/api/conversations/{cid}/messages", json={"content": text}, headers=headers
        ) as resp:
            await resp.read()
    assert node.proc.wait(30) == 70  # the fault hook's exit: no graceful shutdown ran
    return cid


async def test_a_node_killed_after_commit_still_delivers_through_the_outbox(clean_db, tmp_path):
    """Embedded engines: the node dies after COMMIT; the next process on the same database
    republishes the message event, and the recipient reads it from the event log."""
    env = _env(clean_db, str(tmp_path / "var"))
    crashing = Node(
        free_port(), {**env, CRASH_AFTER_COMMIT_ENV: "message.created"}, str(tmp_path / "a.log")
    )
    session = aiohttp.ClientSession()
    successor = None
    try:
        await crashing.wait_ready(session, wait_s=90)
        alice = await _register(session, crashing, "alice")
        bob = await _register(session, crashing, "bob")
        cid = await _send_and_crash(session, crashing, alice, bob, "survives the crash")
        # Committed with its message, never published:
        assert outbox_rows(clean_db, "message.created") == 1

        successor = Node(free_port(), env, str(tmp_path / "b.log"))
        await successor.wait_ready(session, wait_s=90)
        headers = {"Authorization": f"Bearer {bob['token']}"}
        found = None
        for _ in range(100):
            async with session.get(
                f"{successor.url}/api/gateway/events?after=0&timeout=1", headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
                events = (await resp.json())["events"]
            found = next((e for e in events if e["t"] == "message.created"), None)
            if found:
                break
        assert found is not None, "the committed message's event never arrived"
        assert found["d"]["message"]["content"] == "survives the crash"
        assert found["d"]["conversation_id"] == cid
        await wait_for(lambda: outbox_rows(clean_db) == 0, 30)
    finally:
        await session.close()
        crashing.stop()
        if successor is not None:
            successor.stop()


async def test_on_redis_the_other_node_republishes_to_the_live_socket(
    clean_db, tmp_path, redis_url, redis_prefix
):
    """Two nodes on one Redis: bob is connected to node B; alice's node A dies right after her
    message commits; B's sweeper republishes and bob's socket gets the message live."""
    env = _env(clean_db, str(tmp_path / "var"), redis_url, redis_prefix)
    node_a = Node(
        free_port(), {**env, CRASH_AFTER_COMMIT_ENV: "message.created"}, str(tmp_path / "a.log")
    )
    node_b = Node(free_port(), env, str(tmp_path / "b.log"))
    session = aiohttp.ClientSession()
    try:
        await node_a.wait_ready(session, wait_s=90)
        await node_b.wait_ready(session, wait_s=90)
        alice = await _register(session, node_a, "alice")
        bob = await _register(session, node_b, "bob")
        gw_b = GatewayClient(node_b.ws_url, bob["token"], session=session)
        await gw_b.connect()
        try:
            await _send_and_crash(session, node_a, alice, bob, "across the crash")
            event = await next_of(gw_b, "message.created", wait_s=45)
            assert event.data["message"]["content"] == "across the crash"
        finally:
            await gw_b.close()
        await wait_for(lambda: outbox_rows(clean_db) == 0, 30)
    finally:
        await session.close()
        node_a.stop()
        node_b.stop()


async def test_open_dm_helper_still_works_over_the_sink(client, alice, bob):
    """A conversation created over HTTP announces itself to the creator's other devices."""
    gw = await gateway(client, alice)
    try:
        await open_dm(client, alice, bob)
        created = await next_of(gw, "conversation.created")
        assert created.data["conversation"]["other_user"]["id"] == bob.id
    finally:
        await gw.close()


async def test_the_sweeper_republishes_stale_rows_and_a_bad_row_does_not_block_the_queue(
    client, alice, bob, clean_db
):
    """Rows left by a dead node are republished oldest first, one per transaction; a row that
    can never be published is dropped (logged) instead of holding back the rows behind it."""
    ctx = ctx_of(client)
    conn = psycopg2.connect(clean_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO event_outbox (id, node_id, events, created_at) VALUES
               (gen_random_uuid(), 'dead-node', 'not json', now() - interval '1 minute'),
               (gen_random_uuid(), 'dead-node', %s, now() - interval '30 seconds')""",
            (f'[{{"k": "u", "to": ["{bob.id}"], "t": "test.left_behind", "d": {{"n": 7}}}}]',),
        )
    conn.close()
    gw = await gateway(client, bob)
    try:
        assert await ctx.events.sweep_once() == 2
        event = await next_of(gw, "test.left_behind")
        assert event.data == {"n": 7}
        assert outbox_rows(clean_db) == 0
        assert await ctx.events.sweep_once() == 0  # nothing left, nothing repeated
        await no_event(gw, "test.left_behind")
    finally:
        await gw.close()
