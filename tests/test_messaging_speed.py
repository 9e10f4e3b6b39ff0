"""Issue 15 (messaging-first speed), through the public surface: the coalesced NEW_MESSAGE
notification (durable with the message, batched per conversation, never missing from the
recipient's own reads), admission control of identify / resume, and the gateway process's
event-loop delay and GC pause metrics on /metrics."""

from __future__ import annotations

import asyncio
import gc
import re

import psycopg2
import pytest

from protocol.client import GatewayClient
from server.app import create_app
from tests.messaging_support import (
    MESSAGING_SETTINGS,
    gateway,
    next_of,
    no_event,
    notifications_of,
    open_dm,
    send,
)

pytestmark = pytest.mark.app_settings(**MESSAGING_SETTINGS)

# The app's own writer never runs within a test: what these tests see was written by a read,
# by an offline send, or by another node's writer.
SLOW_WRITER = {"messaging": {"notify_coalesce_ms": 600_000}}


def _pending(database_url: str, user_id: str) -> list[tuple[int, bool]]:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT notify_count, notify_message_id IS NOT NULL FROM conversation_participants"
                " WHERE user_id = %s",
                (user_id,),
            )
            return cur.fetchall()
    finally:
        conn.close()


async def test_an_online_recipients_burst_becomes_one_notification_written_by_the_writer(
    client, alice, bob
):
    cid = await open_dm(client, alice, bob)
    gw_b = await gateway(client, bob)
    try:
        for n in range(3):
            await send(client, alice, cid, f"burst {n}")
        # Nobody reads: the writer alone turns the burst into the conversation's notification
        # (one, or one updated if the burst straddled two passes).
        received, notes = 0, []
        while received < 3 or not notes or notes[-1]["event_count"] < 3:
            event = await next_of(gw_b, lambda e: e.type.startswith(("message.", "notif")))
            if event.type == "message.created":
                received += 1
            else:
                assert event.type in ("notification.created", "notification.updated")
                notes.append(event.data["notification"])
        assert notes[0]["type"] == "new_message" and notes[0]["entity_id"] == cid
        assert {n["id"] for n in notes} == {notes[0]["id"]}
        assert notes[-1]["event_count"] == 3
        [listed] = await notifications_of(client, bob)
        assert listed["content"] == "3 new messages from @alice"
        assert listed["data"]["message_preview"] == "burst 2"
    finally:
        await gw_b.close()


@pytest.mark.parametrize("overrides", [SLOW_WRITER])
async def test_the_count_is_durable_with_the_message_and_another_node_writes_it(
    aiohttp_client, client, settings, clean_db, alice, bob
):
    cid = await open_dm(client, alice, bob)
    gw_b = await gateway(client, bob)  # online: nothing is written in the send
    try:
        await send(client, alice, cid, "one")
        await send(client, alice, cid, "two")
        await next_of(gw_b, "message.created")
        # Committed with the messages (this node's writer has not run, and need never run).
        assert _pending(clean_db, bob.id) == [(2, True)]
        # Another node (its own writer every 20 ms), as after this node died.
        fast = settings.model_copy(
            update={"messaging": settings.messaging.model_copy(update={"notify_coalesce_ms": 20})}
        )
        other = await aiohttp_client(create_app(fast))
        gw_other = GatewayClient(
            str(other.make_url("/api/gateway/ws")), bob.token, backoff_initial_s=0.05
        )
        await gw_other.connect()
        try:
            note = await next_of(gw_other, "notification.created")
            assert note.data["notification"]["event_count"] == 2
            assert note.data["notification"]["content"] == "2 new messages from @alice"
        finally:
            await gw_other.close()
        assert _pending(clean_db, bob.id) == [(0, False)]
        assert [n["event_count"] for n in await notifications_of(client, bob)] == [2]
    finally:
        await gw_b.close()


@pytest.mark.parametrize("overrides", [SLOW_WRITER])
async def test_the_recipients_own_read_never_misses_a_pending_notification(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    gw_b = await gateway(client, bob)
    try:
        await send(client, alice, cid, "are you there?")
        await next_of(gw_b, "message.created")
        count = await (await client.get("/api/notifications/unread-count", headers=bob.auth)).json()
        assert count["unread_count"] == 1
        [note] = await notifications_of(client, bob)
        assert note["type"] == "new_message" and note["event_count"] == 1
        await send(client, alice, cid, "hello?")
        assert [n["event_count"] for n in await notifications_of(client, bob)] == [2]
        # The sender's own list stays empty.
        assert await notifications_of(client, alice) == []
    finally:
        await gw_b.close()


@pytest.mark.parametrize("overrides", [SLOW_WRITER])
async def test_reading_or_muting_within_the_window_leaves_no_unread_notification(
    client, alice, bob, clean_db
):
    cid = await open_dm(client, alice, bob)
    gw_b = await gateway(client, bob)
    try:
        await send(client, alice, cid, "read me")
        await next_of(gw_b, "message.created")
        resp = await client.post(f"/api/conversations/{cid}/read", headers=bob.auth)
        assert resp.status == 200
        assert _pending(clean_db, bob.id) == [(0, False)]
        assert await notifications_of(client, bob) == []
        # Counted, then muted before the writer ran: the writer stays silent.
        await send(client, alice, cid, "after the read")
        await next_of(gw_b, "message.created")
        await client.post(f"/api/conversations/{cid}/mute", headers=bob.auth)
        assert await notifications_of(client, bob) == []
        await no_event(gw_b, "notification.created")
    finally:
        await gw_b.close()


async def test_an_offline_recipient_is_notified_and_pushed_in_the_send(
    client, alice, bob, clean_db
):
    cid = await open_dm(client, alice, bob)
    await send(client, alice, cid, "you are offline")
    conn = psycopg2.connect(clean_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM notifications WHERE recipient_id = %s", (bob.id,))
            assert cur.fetchone()[0] == 1
            cur.execute("SELECT count(*) FROM jobs WHERE kind = 'push.send'")
            assert cur.fetchone()[0] == 1
    finally:
        conn.close()
    assert _pending(clean_db, bob.id) == [(0, False)]


# Admission control of identify / resume --------------------------------------------------


@pytest.mark.parametrize("overrides", [{"gateway": {"max_concurrent_syncs": 1}}])
async def test_a_storm_of_handshakes_takes_turns_and_every_socket_gets_in(
    client, alice, bob, make_user
):
    cid = await open_dm(client, alice, bob)
    gw_a = await gateway(client, alice)
    gw_b = await gateway(client, bob)
    users = [await make_user() for _ in range(6)]
    storm: list[GatewayClient] = []
    try:
        # Twelve handshakes at once on a node that admits one at a time, plus a resume.
        connects = [gateway(client, u) for u in users for _ in range(2)]
        await gw_b.drop()
        results = await asyncio.gather(*connects, alice_sends(client, alice, cid))
        storm = [r for r in results if isinstance(r, GatewayClient)]
        assert len(storm) == 12
        for gw in storm:
            assert (await gw.call("notifications.unread_count"))["unread_count"] == 0
        # The sends during the storm were delivered to the resumed socket, in order.
        seqs = [(await next_of(gw_b, "message.created")).data["seq"] for _ in range(3)]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3
        metrics = await (await client.get("/metrics")).text()
        assert _value(metrics, "nexgate_gateway_syncs_running") == 0
        assert _value(metrics, "nexgate_gateway_syncs_queued") == 0
        assert _value(metrics, "nexgate_gateway_sync_admission_wait_seconds_count") >= 14
    finally:
        for gw in (*storm, gw_a, gw_b):
            await gw.close()


async def alice_sends(client, alice, cid: str) -> None:
    for n in range(3):
        await send(client, alice, cid, f"during the storm {n}")


# Metrics -----------------------------------------------------------------------------------


def _value(metrics: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", metrics, re.MULTILINE)
    assert found, f"{series} not on /metrics"
    return float(found.group(1))


async def test_loop_delay_and_gc_pauses_are_on_metrics_and_move(client):
    before = await (await client.get("/metrics")).text()
    delay0 = _value(before, "nexgate_event_loop_delay_seconds_count")
    gc0 = _value(before, 'nexgate_gc_pause_seconds_count{generation="2"}')
    gc.collect()  # a full collection in the serving process (tests run it in-process)
    await asyncio.sleep(0.35)  # the delay sampler runs every 0.1 s
    after = await (await client.get("/metrics")).text()
    assert _value(after, "nexgate_event_loop_delay_seconds_count") > delay0
    assert _value(after, 'nexgate_gc_pause_seconds_count{generation="2"}') > gc0
    assert 'nexgate_gc_pause_seconds_bucket{generation="0",le="0.0001"}' in after
    assert "nexgate_gc_frozen_objects" in after
