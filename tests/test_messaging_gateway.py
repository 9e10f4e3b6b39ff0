"""Direct messaging over the gateway: events to every device, receipts, delivery acks, typing,
ordering under concurrent sends, exactly-once delivery across a dropped connection, and every
call method."""

from __future__ import annotations

import asyncio
import uuid

import psycopg2
import pytest

from protocol.client import CallError
from server.app_keys import CONTEXT
from tests.messaging_support import (
    MESSAGING_SETTINGS,
    block,
    collect,
    gateway,
    messages,
    next_of,
    no_event,
    nonce,
    open_dm,
    send,
    wait_resumed,
)

pytestmark = pytest.mark.app_settings(**MESSAGING_SETTINGS)


@pytest.fixture
async def pair(client, alice, bob):
    """alice and bob with a conversation and one gateway client each (closed afterwards)."""
    cid = await open_dm(client, alice, bob)
    gw_a = await gateway(client, alice)
    gw_b = await gateway(client, bob)
    yield cid, gw_a, gw_b
    await gw_a.close()
    await gw_b.close()


async def test_a_message_reaches_the_recipient_and_the_senders_other_devices(
    client, alice, bob, pair
):
    cid, gw_a, gw_b = pair
    phone = await gateway(client, alice)
    try:
        sent = await gw_a.call("messages.send", conversation_id=cid, content="hi bob", nonce="n1")
        assert sent["content"] == "hi bob" and sent["status"] == "sent"
        for gw, unread in ((gw_b, 1), (phone, 0), (gw_a, 0)):
            event = await next_of(gw, "message.created")
            assert event.seq is not None
            assert event.data["conversation_id"] == cid and event.data["seq"] == 1
            assert event.data["message"]["id"] == sent["id"]
            assert event.data["message"]["content"] == "hi bob"
            assert event.data["conversation"]["unread_count"] == unread
    finally:
        await phone.close()


async def test_recipient_event_hides_the_senders_nonce(client, alice, bob, pair):
    cid, gw_a, gw_b = pair
    await gw_a.call("messages.send", conversation_id=cid, content="x", nonce="secret-nonce")
    mine = await next_of(gw_a, "message.created")
    theirs = await next_of(gw_b, "message.created")
    assert mine.data["message"]["client_nonce"] == "secret-nonce"
    assert theirs.data["message"]["client_nonce"] is None


async def test_read_receipt_goes_to_the_sender_and_the_readers_other_devices(
    client, alice, bob, pair
):
    cid, gw_a, gw_b = pair
    tablet = await gateway(client, bob)
    try:
        m = await send(client, alice, cid, "read me")
        await next_of(gw_b, "message.created")
        result = await gw_b.call("conversations.read", conversation_id=cid)
        assert result["seq"] == m["seq"] and result["unread_count"] == 0
        receipt = await next_of(gw_a, "conversation.read")
        assert receipt.data["user_id"] == bob.id and receipt.data["seq"] == m["seq"]
        assert "unread_count" not in receipt.data
        synced = await next_of(tablet, "conversation.read")
        assert synced.data["unread_count"] == 0
        # Reading again changes nothing and says nothing.
        await gw_b.call("conversations.read", conversation_id=cid)
        await no_event(gw_a, "conversation.read")
    finally:
        await tablet.close()


async def test_delivery_ack_tells_the_sender(client, alice, bob, pair):
    cid, gw_a, gw_b = pair
    m = await send(client, alice, cid, "did you get it?")
    event = await next_of(gw_b, "message.created")
    ack = await gw_b.call(
        "messages.delivered", conversation_id=cid, message_id=event.data["message"]["id"]
    )
    assert ack["delivered_seq"] == m["seq"]
    delivered = await next_of(gw_a, "message.delivered")
    assert delivered.data == {
        "conversation_id": cid,
        "user_id": bob.id,
        "seq": m["seq"],
        "delivered_at": delivered.data["delivered_at"],
    }
    assert (await messages(client, alice, cid))["items"][0]["status"] == "delivered"
    # Acks are idempotent: no second event.
    await gw_b.call("messages.delivered", conversation_id=cid, seq=m["seq"])
    await no_event(gw_a, "message.delivered")
    # A seq past the last message is capped; a foreign conversation is not found.
    assert (await gw_b.call("messages.delivered", conversation_id=cid, seq=99))[
        "delivered_seq"
    ] >= m["seq"]
    with pytest.raises(CallError) as err:
        await gw_b.call("messages.delivered", conversation_id=str(uuid.uuid4()), seq=1)
    assert err.value.code == "not_found"


async def test_typing_lapses_and_renewals_are_throttled(client, alice, bob, pair):
    cid, gw_a, gw_b = pair
    result = await gw_a.call("typing.start", conversation_id=cid)
    assert result["expires_in_ms"] == 6000
    event = await next_of(gw_b, "typing")
    assert event.data["conversation_id"] == cid and event.data["user_id"] == alice.id
    assert event.data["active"] is True and event.data["expires_in_ms"] == 6000
    assert event.data["expires_at"] > 0
    await gw_a.call("typing.start", conversation_id=cid)  # too soon: dropped
    await no_event(gw_b, "typing")
    await gw_a.call("typing.stop", conversation_id=cid)
    stop = await next_of(gw_b, "typing")
    assert stop.data["active"] is False and stop.data["expires_in_ms"] == 0
    await no_event(gw_a, "typing")  # never to the typist


async def test_typing_is_silent_across_a_block(client, alice, bob, pair):
    cid, gw_a, gw_b = pair
    await block(client, bob, alice)
    await gw_a.call("typing.start", conversation_id=cid)
    await no_event(gw_b, "typing")


async def test_muted_conversation_still_delivers_live_without_notification(
    client, alice, bob, pair
):
    cid, _gw_a, gw_b = pair
    await gw_b.call("conversations.mute", conversation_id=cid)
    update = await next_of(gw_b, "conversation.updated")
    assert update.data["is_muted"] is True
    await send(client, alice, cid, "quiet")
    event = await next_of(gw_b, "message.created")
    assert event.data["conversation"]["is_muted"] is True
    await no_event(gw_b, "notification.created")
    await gw_b.call("conversations.unmute", conversation_id=cid)
    await send(client, alice, cid, "loud")
    await next_of(gw_b, "message.created")
    note = await next_of(gw_b, "notification.created")
    assert note.data["notification"]["type"] == "new_message"


async def test_push_only_when_the_recipient_has_no_live_session(client, alice, bob, clean_db):
    cid = await open_dm(client, alice, bob)

    def pushes() -> int:
        conn = psycopg2.connect(clean_db)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM jobs WHERE kind = 'push.send'")
            count = cur.fetchone()[0]
        conn.close()
        return count

    await send(client, alice, cid, "are you there?")
    assert pushes() == 1
    gw_b = await gateway(client, bob)
    try:
        await client.post(f"/api/conversations/{cid}/read", headers=bob.auth)
        await asyncio.sleep(0.1)
        await send(client, alice, cid, "now you are")
        await next_of(gw_b, "message.created")
        assert pushes() == 1
    finally:
        await gw_b.close()


async def test_edit_delete_and_reactions_reach_both(client, alice, bob, pair):
    cid, gw_a, gw_b = pair
    m = await gw_a.call("messages.send", conversation_id=cid, content="typo")
    edited = await gw_a.call("messages.edit", message_id=m["id"], content="fixed")
    assert edited["is_edited"] is True
    for gw in (gw_a, gw_b):
        event = await next_of(gw, "message.updated")
        assert event.data["message"]["content"] == "fixed"
    reactions = await gw_b.call("messages.react", message_id=m["id"], emoji="❤️")
    assert reactions["reactions"][0]["emoji"] == "❤️" and reactions["reactions"][0]["me"]
    for gw, me in ((gw_a, False), (gw_b, True)):
        event = await next_of(gw, "reaction.added")
        assert event.data["user_id"] == bob.id and event.data["emoji"] == "❤️"
        assert event.data["reactions"][0]["me"] is me
    await gw_b.call("messages.unreact", message_id=m["id"], emoji="❤️")
    assert (await next_of(gw_a, "reaction.removed")).data["reactions"] == []
    await gw_b.call("messages.delete", message_id=m["id"])  # for self: only bob's devices
    assert (await next_of(gw_b, "message.deleted")).data["scope"] == "self"
    await no_event(gw_a, "message.deleted")
    await gw_a.call("messages.delete", message_id=m["id"], scope="everyone")
    tomb = await next_of(gw_a, "message.deleted")
    assert tomb.data["scope"] == "everyone" and tomb.data["message"]["is_deleted"] is True
    assert (await next_of(gw_b, "message.deleted")).data["scope"] == "everyone"


async def test_every_call_method_works_over_the_gateway(client, alice, bob, make_user):
    carol = await make_user("carol")
    gw = await gateway(client, alice)
    try:
        conv = await gw.call("conversations.create", username="bob")
        assert conv["created"] is True
        cid = conv["id"]
        again = await gw.call("conversations.create", user_id=bob.id)
        assert again["id"] == cid and again["created"] is False
        other = (await gw.call("conversations.create", user_id=carol.id))["id"]
        m = await gw.call("messages.send", conversation_id=cid, content="find the walrus")
        r = await gw.call(
            "messages.send", conversation_id=cid, content="reply", reply_to_message_id=m["id"]
        )
        assert r["reply_to"]["id"] == m["id"]
        fwd = await gw.call("messages.forward", message_id=m["id"], conversation_id=other)
        assert fwd["is_forwarded"] is True
        listed = await gw.call("messages.list", conversation_id=cid, limit=1)
        assert listed["items"][0]["id"] == r["id"] and listed["next_cursor"]
        convs = await gw.call("conversations.list")
        assert [c["id"] for c in convs["items"]] == [other, cid]
        assert (await gw.call("conversations.get", conversation_id=cid))["id"] == cid
        hits = await gw.call("messages.search", q="walrus")
        assert len(hits["items"]) == 2
        assert (await gw.call("conversations.mark_unread", conversation_id=cid))["marked_unread"]
        assert (await gw.call("conversations.read", conversation_id=cid))["unread_count"] == 0
        deleted = await gw.call("conversations.delete", conversation_id=other)
        assert deleted["deleted"] is True
        assert [c["id"] for c in (await gw.call("conversations.list"))["items"]] == [cid]
        with pytest.raises(CallError) as err:
            await gw.call("messages.send", conversation_id=str(uuid.uuid4()), content="x")
        assert err.value.code == "not_found"
        with pytest.raises(CallError) as err:
            await gw.call("messages.send", conversation_id=cid, content="")
        assert err.value.code == "validation_failed" and "content" in err.value.errors
        with pytest.raises(CallError) as err:
            await gw.call("messages.send", conversation_id=cid, content="a\x00b")
        assert err.value.code == "validation_failed"
        with pytest.raises(CallError) as err:
            await gw.call("messages.send", conversation_id="nope", content="x")
        assert err.value.code == "validation_failed"
        with pytest.raises(CallError) as err:
            await gw.call("messages.product_context", message_id=m["id"])
        assert err.value.code == "not_found"
        await block(client, bob, alice)
        with pytest.raises(CallError) as err:
            await gw.call("messages.send", conversation_id=cid, content="hello?")
        assert err.value.code == "forbidden" and err.value.message == (
            "You cannot message this account."
        )
    finally:
        await gw.close()


async def test_idempotent_send_over_the_gateway_delivers_once(client, alice, bob, pair):
    cid, gw_a, gw_b = pair
    key = nonce()
    first = await gw_a.call("messages.send", conversation_id=cid, content="once", nonce=key)
    again = await gw_a.call("messages.send", conversation_id=cid, content="once", nonce=key)
    assert again["id"] == first["id"]
    assert (await next_of(gw_b, "message.created")).data["message"]["id"] == first["id"]
    await no_event(gw_b, "message.created")


# Ordering and exactly-once ----------------------------------------------------------------------


async def test_concurrent_sends_arrive_in_the_order_of_the_list(client, alice, bob, pair):
    cid, gw_a, gw_b = pair
    per_user = 15

    async def burst(user, gw, label):
        async def one(n):
            if n % 2:
                return await gw.call("messages.send", conversation_id=cid, content=f"{label}{n}")
            return await send(client, user, cid, f"{label}{n}")

        return await asyncio.gather(*(one(n) for n in range(per_user)))

    sent = await asyncio.gather(burst(alice, gw_a, "a"), burst(bob, gw_b, "b"))
    total = 2 * per_user
    assert sorted(m["seq"] for group in sent for m in group) == list(range(1, total + 1))
    listed = []
    page = await messages(client, alice, cid, limit=100)
    listed = list(reversed(page["items"]))
    assert [m["seq"] for m in listed] == list(range(1, total + 1))
    times = [m["created_at"] for m in listed]
    assert times == sorted(times)
    for gw in (gw_a, gw_b):
        events = await collect(gw, "message.created", total)
        assert [e.data["message"]["id"] for e in events] == [m["id"] for m in listed]
        assert [e.seq for e in events] == sorted(e.seq for e in events)


async def test_exactly_once_in_order_across_dropped_connections(client, alice, bob, pair):
    cid, _gw_a, gw_b = pair
    total = 40
    drops = {8, 20, 31}
    sent_ids: list[str] = []

    async def one() -> None:
        sent_ids.append((await send(client, alice, cid, f"m{len(sent_ids)}"))["id"])

    while len(sent_ids) < total:
        await one()
        if len(sent_ids) in drops:
            resumes = gw_b.resumes
            await gw_b.drop()
            for _ in range(3):  # sent while bob is away (or reconnecting)
                await one()
            await wait_resumed(gw_b, resumes)
    events = await collect(gw_b, "message.created", total)
    got = [e.data["message"]["id"] for e in events]
    assert got == sent_ids
    assert len(set(got)) == total
    assert gw_b.resumes == len(drops)
    await no_event(gw_b, "message.created")


async def test_messages_sent_while_offline_are_replayed_on_resume(client, alice, bob, pair):
    cid, _gw_a, gw_b = pair
    await send(client, alice, cid, "before")
    await next_of(gw_b, "message.created")
    # Drop, and keep bob from reconnecting until the messages are in.
    gw_b.backoff_initial_s = 0.5
    resumes = gw_b.resumes
    await gw_b.drop()
    sent = [(await send(client, alice, cid, f"while away {n}"))["id"] for n in range(5)]
    await wait_resumed(gw_b, resumes, 10)
    events = await collect(gw_b, "message.created", 5)
    assert [e.data["message"]["id"] for e in events] == sent


async def test_a_transient_bus_failure_does_not_lose_the_live_delivery(client, alice, bob, pair):
    cid, _gw_a, gw_b = pair
    bus = client.server.app[CONTEXT].bus
    real = bus.publish_user
    failures = {"left": 2}

    async def flaky(user_ids, type, data):
        if type == "message.created" and failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("bus unavailable")
        return await real(user_ids, type, data)

    bus.publish_user = flaky
    try:
        sent = await send(client, alice, cid, "still arrives")
    finally:
        bus.publish_user = real
    assert failures["left"] == 0
    event = await next_of(gw_b, "message.created")
    assert event.data["message"]["id"] == sent["id"]


async def test_conversation_lifecycle_events_reach_your_other_devices(client, alice, bob):
    phone = await gateway(client, alice)
    try:
        created = await client.post(
            "/api/conversations", json={"user_id": bob.id}, headers=alice.auth
        )
        cid = (await created.json())["id"]
        event = await next_of(phone, "conversation.created")
        assert event.data["conversation_id"] == cid
        assert event.data["conversation"]["other_user"]["username"] == "bob"
        await client.post(f"/api/conversations/{cid}/unread", headers=alice.auth)
        assert (await next_of(phone, "conversation.updated")).data["marked_unread"] is True
        await client.delete(f"/api/conversations/{cid}", headers=alice.auth)
        assert (await next_of(phone, "conversation.deleted")).data["conversation_id"] == cid
    finally:
        await phone.close()


async def test_delivery_ack_over_http(client, alice, bob, pair):
    cid, gw_a, _gw_b = pair
    m = await send(client, alice, cid, "ack me over http")
    resp = await client.post(
        f"/api/conversations/{cid}/delivered", json={"message_id": m["id"]}, headers=bob.auth
    )
    assert resp.status == 200 and (await resp.json())["delivered_seq"] == m["seq"]
    assert (await next_of(gw_a, "message.delivered")).data["seq"] == m["seq"]
