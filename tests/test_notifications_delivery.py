"""Delivery: live events to every device over the gateway, push to a real local relay for an
offline recipient, and emails (per batch and daily / weekly digests) through a real local SMTP
server."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from protocol.client import GatewayClient
from server.clock import ManualClock
from server.domain.notifications import NotificationType
from server.jobs.worker import Worker
from tests.helpers import drop_redis_prefix, register
from tests.notifications_support import (
    app_client,
    body_of,
    ctx_of,
    jobs,
    make_due,
    notify,
    run_jobs,
)

SECRET = "relay-secret"


async def follow(client, who, target) -> None:
    resp = await client.post(f"/api/users/{target.id}/follow", headers=who.auth)
    assert resp.status in (200, 201), await resp.text()


async def next_of(device: GatewayClient, type: str, wait_s: float = 5):
    while True:
        event = await device.next_event(wait_s)
        if event.type == type:
            return event


# -- live, to two devices --------------------------------------------------------------------


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path):
    return await app_client(aiohttp_client, clean_db, tmp_path)


@pytest.fixture
async def engine_client(bus_engine, request, aiohttp_client, clean_db, tmp_path):
    """The app on the memory bus, and on the Redis bus (presence and fan-out through Redis)."""
    if bus_engine == "memory":
        yield await app_client(aiohttp_client, clean_db, tmp_path)
        return
    url = request.getfixturevalue("redis_url")
    prefix = f"test:{uuid.uuid4().hex[:10]}:"
    yield await app_client(aiohttp_client, clean_db, tmp_path, redis={"url": url, "prefix": prefix})
    await drop_redis_prefix(url, prefix)


async def test_every_device_of_the_recipient_gets_the_live_events(engine_client):
    client = engine_client
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    carol = await register(client, "carol")
    url = str(client.make_url("/api/gateway/ws"))
    phone = GatewayClient(url, alice.token, reconnect=False)
    laptop = GatewayClient(url, alice.token, reconnect=False, encoding="msgpack")
    await phone.connect()
    await laptop.connect()
    try:
        await follow(client, bob, alice)
        got = [await next_of(d, "notification.created") for d in (phone, laptop)]
        for event in got:
            assert event.data["unread_count"] == 1
            assert event.data["notification"]["content"] == "@bob started following you"
        assert got[0].seq == got[1].seq  # one per-user sequence across devices

        await follow(client, carol, alice)
        for device in (phone, laptop):
            event = await next_of(device, "notification.updated")
            assert event.data["notification"]["content"] == "@carol and @bob started following you"
            assert event.data["unread_count"] == 1

        nid = got[0].data["notification"]["id"]
        await client.patch(f"/api/notifications/{nid}/read", headers=alice.auth)
        for device in (phone, laptop):
            event = await next_of(device, "notification.read")
            assert event.data == {"id": nid, "unread_count": 0}
        # Online on some device: no push.
        assert await jobs(client, "push.send") == []
    finally:
        await phone.close()
        await laptop.close()

    for _ in range(250):  # the gateway notices the closed sockets
        if not await ctx_of(client).bus.online_users([uuid.UUID(alice.id)]):
            break
        await asyncio.sleep(0.02)
    dave = await register(client, "dave")
    await follow(client, dave, alice)
    assert len(await jobs(client, "push.send")) == 1  # offline now: a push is queued


# -- push to a relay -------------------------------------------------------------------------


@pytest.fixture
async def push_client(aiohttp_client, clean_db, tmp_path, relay):
    return await app_client(
        aiohttp_client,
        clean_db,
        tmp_path,
        push={"webhook_url": relay.url, "webhook_secret": SECRET, "webhook_timeout_s": 5},
    )


async def test_an_offline_recipient_gets_a_push_through_the_relay(push_client, relay):
    client = push_client
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    carol = await register(client, "carol")
    await follow(client, bob, alice)
    await follow(client, carol, alice)  # batches while the push waits: one push, latest text
    assert await run_jobs(client) == 1
    [push] = relay.requests
    assert push["user_id"] == alice.id and push["type"] == "follow"
    assert push["body"] == "@carol and @bob started following you"
    assert push["badge"] == 1
    assert push["collapse_key"] == f"notification:{push['notification_id']}"
    assert push["data"]["action"]["kind"] == "view_followers"
    signature = relay.headers[0]["X-Nexgate-Signature"]
    expected = hmac.new(SECRET.encode(), relay.raw[0], hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    [job] = await jobs(client, "push.send")
    assert job["status"] == "done" and job["attempts"] == 1


async def test_no_push_once_the_notification_was_read(push_client, relay):
    client = push_client
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    await follow(client, bob, alice)
    await client.patch("/api/notifications/read-all", headers=alice.auth)
    await run_jobs(client)
    assert relay.requests == []


async def test_a_failing_relay_is_retried_with_backoff_then_delivered(push_client, relay):
    client = push_client
    relay.statuses = [503, 500]
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    await follow(client, bob, alice)
    await run_jobs(client)
    [job] = await jobs(client, "push.send")
    assert job["status"] == "queued" and job["attempts"] == 1 and "503" in job["last_error"]
    delay = (job["run_at"] - job["updated_at"]).total_seconds()
    assert 0.9 <= delay <= 1.3  # retry_base_s = 1 in these tests
    await make_due(client)
    await run_jobs(client)
    [job] = await jobs(client, "push.send")
    delay = (job["run_at"] - job["updated_at"]).total_seconds()
    assert job["attempts"] == 2 and 1.9 <= delay <= 2.6  # doubled
    await make_due(client)
    await run_jobs(client)
    [job] = await jobs(client, "push.send")
    assert job["status"] == "done" and job["attempts"] == 3
    assert len(relay.requests) == 3
    assert {r["notification_id"] for r in relay.requests} == {relay.requests[0]["notification_id"]}


async def test_a_push_the_relay_rejects_is_dead_lettered_at_once(push_client, relay):
    client = push_client
    relay.statuses = [400]
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    await follow(client, bob, alice)
    await run_jobs(client)
    [job] = await jobs(client, "push.send")
    assert job["status"] == "dead" and job["attempts"] == 1
    assert "400" in job["last_error"]


# -- email -----------------------------------------------------------------------------------


@pytest.fixture
async def mail_client(aiohttp_client, clean_db, tmp_path, smtp_server):
    return await app_client(
        aiohttp_client,
        clean_db,
        tmp_path,
        smtp={"host": smtp_server.host, "port": smtp_server.port},
        server={"public_url": "https://nexgate.example"},
    )


# A Wednesday noon, far from the default digest slots (daily 08:00, weekly Monday 08:00 UTC):
# with the clock pinned here, which periods open when is the same on any real date.
WEDNESDAY_NOON = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)


def pin_clock(client, at: datetime = WEDNESDAY_NOON) -> ManualClock:
    clock = ManualClock(at)
    ctx_of(client).clock = clock
    return clock


async def schedule_periodic_at(client, when) -> list[str]:
    ctx_of(client).clock.set(when)
    return await Worker(ctx_of(client), listen=False).schedule_periodic()


async def test_the_daily_digest_reaches_the_inbox_once(mail_client, smtp_server):
    client = mail_client
    clock = pin_clock(client)
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    carol = await register(client, "carol")
    await follow(client, bob, alice)
    await follow(client, carol, alice)
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.LIKE_POST)
    read = await notify(
        client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.REPOST
    )
    await client.patch(f"/api/notifications/{read['id']}/read", headers=alice.auth)

    tomorrow = clock.now() + timedelta(days=1)
    scheduled = await schedule_periodic_at(client, tomorrow)
    assert "notifications.digest.daily" in scheduled
    await run_jobs(client)
    [mail] = await smtp_server.wait_for(1)
    assert mail["X-Envelope-To"] == alice.email
    assert mail["Subject"] == "Your daily Nexgate digest: 2 new notifications"
    text = body_of(mail)
    assert "@carol and @bob started following you" in text
    assert "@bob liked your post" in text
    assert "reposted" not in text  # already read
    assert "https://nexgate.example/notifications" in text

    # Another worker scheduling the same period does nothing; a duplicated digest job neither.
    assert "notifications.digest.daily" not in await schedule_periodic_at(client, tomorrow)
    since = (tomorrow - timedelta(days=2)).isoformat()
    async with ctx_of(client).db.transaction() as tx:
        from server.jobs import enqueue

        [job] = await jobs(client, "notifications.digest")
        await enqueue(tx, "notifications.digest", {**job["payload"], "since": since})
    await run_jobs(client)
    await asyncio.sleep(0.2)
    assert len(smtp_server.messages) == 1


async def test_weekly_digest_and_email_off_follow_the_preferences(mail_client, smtp_server):
    client = mail_client
    clock = pin_clock(client)
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    resp = await client.patch(
        "/api/notifications/settings",
        json={
            "categories": {
                "likes": {"email": "weekly"},
                "follows": {"email": "off"},
                "mentions": {"email": "weekly"},
            }
        },
        headers=alice.auth,
    )
    assert resp.status == 200
    await follow(client, bob, alice)
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.LIKE_POST)
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.MENTION_POST)
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.REPOST)

    await schedule_periodic_at(client, clock.now() + timedelta(days=1))
    await run_jobs(client)
    [daily] = await smtp_server.wait_for(1)
    assert daily["Subject"] == "Your daily Nexgate digest: 1 new notification"
    assert "@bob reposted your post" in body_of(daily)
    assert "liked" not in body_of(daily) and "following" not in body_of(daily)

    await schedule_periodic_at(client, clock.now() + timedelta(days=6))
    await run_jobs(client)
    weekly = (await smtp_server.wait_for(2))[1]
    assert weekly["Subject"] == "Your weekly Nexgate digest: 2 new notifications"
    assert "@bob liked your post" in body_of(weekly)
    assert "@bob mentioned you in a post" in body_of(weekly)
    assert "following" not in body_of(weekly)
    assert [m["X-Envelope-To"] for m in smtp_server.messages] == [alice.email, alice.email]


async def test_email_on_sends_one_mail_per_batch_unless_read(mail_client, smtp_server):
    client = mail_client
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    carol = await register(client, "carol")
    await client.patch(
        "/api/notifications/settings",
        json={"categories": {"likes": {"email": "on"}, "comments": {"email": "on"}}},
        headers=alice.auth,
    )
    post = uuid.uuid4()
    await notify(
        client,
        recipient_id=alice.id,
        actor_id=bob.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    await notify(
        client,
        recipient_id=alice.id,
        actor_id=carol.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    seen = await notify(
        client,
        recipient_id=alice.id,
        actor_id=bob.id,
        type=NotificationType.COMMENT_POST,
        data={"comment_preview": "wow"},
    )
    await client.patch(f"/api/notifications/{seen['id']}/read", headers=alice.auth)
    await run_jobs(client)  # (the pushes)
    emails = await jobs(client, "notifications.email")
    assert [j["status"] for j in emails] == ["queued", "queued"]  # not before the window closes
    assert smtp_server.messages == []
    await make_due(client)
    await run_jobs(client)
    [mail] = await smtp_server.wait_for(1)
    assert mail["Subject"] == "@carol and @bob liked your post"
    assert "Hi @alice" in body_of(mail)
    await asyncio.sleep(0.2)
    assert len(smtp_server.messages) == 1  # the read comment was not mailed


async def test_password_reset_mail_survives_an_smtp_outage(
    aiohttp_client,
    clean_db,
    tmp_path,
    smtp_server,
):
    from tests.helpers import free_port

    down = free_port()  # nothing listens here
    client = await app_client(
        aiohttp_client, clean_db, tmp_path, smtp={"host": "127.0.0.1", "port": down}
    )
    alice = await register(client, "alice")
    resp = await client.post("/api/auth/forgot-password", json={"email": alice.email})
    assert resp.status == 202
    # The request only queued the work (same either way: no lookup, no SMTP on its path).
    [job] = await jobs(client, "auth.password_reset")
    assert job["status"] == "queued" and job["attempts"] == 0
    assert await jobs(client, "email.send") == []
    await run_jobs(client)
    [job] = await jobs(client, "email.send")
    assert job["status"] == "queued" and job["attempts"] == 1 and job["last_error"]
    # The SMTP server comes back (same settings, now pointing at a live server).
    ctx = ctx_of(client)
    ctx.settings.smtp.port = smtp_server.port
    await make_due(client)
    await run_jobs(client)
    [mail] = await smtp_server.wait_for(1)
    assert mail["Subject"] == "Reset your Nexgate password"
    assert "token=" in body_of(mail)
    [job] = await jobs(client, "email.send")
    assert job["status"] == "done" and job["payload"] == {}  # the reset link is not kept


async def test_the_notification_center_over_the_socket(client):
    from protocol.client import CallError

    alice = await register(client, "alice")
    bob = await register(client, "bob")
    url = str(client.make_url("/api/gateway/ws"))
    phone = GatewayClient(url, alice.token, reconnect=False)
    laptop = GatewayClient(url, alice.token, reconnect=False)
    await phone.connect()
    await laptop.connect()
    try:
        await follow(client, bob, alice)
        await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.REPOST)
        assert await phone.call("notifications.unread_count") == {"unread_count": 2}
        page = await phone.call("notifications.list", limit=1, types=["follow", "repost"])
        assert len(page["items"]) == 1 and page["next_cursor"] and page["unread_count"] == 2
        first = page["items"][0]["id"]
        result = await phone.call("notifications.read", id=first)
        assert result["unread_count"] == 1
        event = await next_of(laptop, "notification.read")
        assert event.data["id"] == first
        settings = await phone.call(
            "notifications.settings.update", categories={"likes": {"push": False}}
        )
        assert settings["categories"]["likes"]["push"] is False
        assert (await laptop.call("notifications.settings.get"))["categories"]["likes"][
            "push"
        ] is False
        assert await laptop.call("notifications.read_all") == {"marked": 1, "unread_count": 0}
        with pytest.raises(CallError) as err:
            await phone.call("notifications.read", id="nope")
        assert err.value.code == "validation_failed"
        with pytest.raises(CallError) as err:
            await phone.call("notifications.delete", id=str(uuid.uuid4()))
        assert err.value.code == "not_found"
    finally:
        await phone.close()
        await laptop.close()


async def test_a_day_that_ends_on_the_weekly_slot_sends_both_digests_once(mail_client, smtp_server):
    """Sunday 08:30 (a day before the default weekly slot): the next day's schedule opens the
    daily and the weekly period together; each mails its own categories, once."""
    client = mail_client
    clock = pin_clock(client, WEDNESDAY_NOON + timedelta(days=4, hours=-3, minutes=-30))
    assert clock.now().weekday() == 6 and clock.now().hour == 8
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    resp = await client.patch(
        "/api/notifications/settings",
        json={"categories": {"likes": {"email": "weekly"}, "follows": {"email": "off"}}},
        headers=alice.auth,
    )
    assert resp.status == 200
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.LIKE_POST)
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.REPOST)

    scheduled = await schedule_periodic_at(client, clock.now() + timedelta(days=1))
    assert {"notifications.digest.daily", "notifications.digest.weekly"} <= set(scheduled)
    await run_jobs(client)
    mails = await smtp_server.wait_for(2)
    by_subject = {m["Subject"]: body_of(m) for m in mails}
    assert "@bob reposted your post" in by_subject["Your daily Nexgate digest: 1 new notification"]
    assert "@bob liked your post" in by_subject["Your weekly Nexgate digest: 1 new notification"]

    await schedule_periodic_at(client, clock.now() + timedelta(days=7))
    await run_jobs(client)
    await asyncio.sleep(0.2)
    assert len(smtp_server.messages) == 2  # nothing mailed twice
