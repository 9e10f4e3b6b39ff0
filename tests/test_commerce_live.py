"""Live buy-together cards: `group.updated` on topic `group:<id>` through the gateway when
people join or leave, when the commerce service changes the group, and when it expires with
no traffic at all. The tests using `bus_engine` run on both bus engines (on Redis, topic events
cross the Redis bus to the gateway's sockets; skipped without NEXGATE_TEST_REDIS_URL)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from protocol import frames
from protocol.constants import Op
from server.app_keys import CONTEXT
from server.bus.base import TopicEvent
from server.domain.commerce import live as commerce_live
from server.ids import new_id
from tests.commerce_support import (
    COMMERCE_SETTINGS,
    iso,
    now,
)
from tests.gateway_support import connect

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)


async def subscribe(sock, topic: str, call_id: str = "s1") -> dict:
    await sock.send(frames.subscribe(topic, call_id))
    while True:
        frame = await sock.recv()
        if frame["op"] in (Op.REPLY, Op.ERROR) and frame.get("id") == call_id:
            return frame


async def next_topic_event(sock, topic: str, wait_s: float = 3.0) -> dict:
    deadline = time.monotonic() + wait_s
    while True:
        frame = await sock.recv(max(0.01, deadline - time.monotonic()))
        if frame["op"] == Op.EVENT and frame.get("topic") == topic:
            return frame


async def _group(commerce, owner, spots=3, **kw):
    shop = await commerce.shop(owner.id, "acme")
    pid = await commerce.product(shop, "iPhone 15", "900.00")
    return await commerce.group(pid, owner.id, spots=spots, target="800.00", **kw)


@pytest.mark.usefixtures("bus_engine")  # on the memory bus and on the Redis bus
async def test_spots_left_becomes_group_full_live(client, commerce, alice, bob, make_user):
    carol, dave = await make_user("carol"), await make_user("dave")
    group = await _group(commerce, alice, spots=3)
    await commerce.join(group, alice.id)
    topic = f"group:{group}"
    sock = await connect(client, bob.token)
    reply = await subscribe(sock, topic)
    assert reply["op"] == Op.REPLY and reply["d"]["ok"], reply

    started = time.monotonic()
    await commerce.join(group, carol.id)
    event = await next_topic_event(sock, topic)
    assert event["t"] == "group.updated"
    card = event["d"]
    assert card["id"] == group and card["participants"] == 2
    assert card["status"] == "almost_full" and card["spots_left_label"] == "1 spot left"
    assert card["join_enabled"] is True

    await commerce.join(group, dave.id)
    card = (await next_topic_event(sock, topic))["d"]
    assert card["status"] == "full" and card["cta"]["label"] == "Group Full"
    assert card["join_enabled"] is False and card["progress_label"] == "3/3 spots filled"
    assert time.monotonic() - started < 1.0

    # A leave opens a spot again.
    await commerce.leave(group, dave.id)
    card = (await next_topic_event(sock, topic))["d"]
    assert card["status"] == "almost_full" and card["join_enabled"] is True
    await sock.close()


async def test_no_event_for_a_duplicate_or_stale_delivery(client, commerce, alice, bob):
    group = await _group(commerce, alice, spots=5)
    t0 = now()
    await commerce.join(group, bob.id, t0)
    sock = await connect(client, alice.token)
    await subscribe(sock, f"group:{group}")
    await commerce.join(group, bob.id, t0)  # duplicate
    await commerce.join(group, bob.id, t0 - timedelta(seconds=1))  # stale
    await commerce.leave(group, bob.id, t0 + timedelta(seconds=1))  # real change
    card = (await next_topic_event(sock, f"group:{group}"))["d"]
    assert card["participants"] == 0  # the first event seen is the leave
    await sock.close()


@pytest.mark.usefixtures("bus_engine")  # on the memory bus and on the Redis bus
async def test_group_expires_on_time_with_no_traffic(client, commerce, alice, bob):
    deadline = now() + timedelta(seconds=1)
    group = await _group(commerce, alice, spots=5, expires_in=timedelta(seconds=1))
    sock = await connect(client, bob.token)
    await subscribe(sock, f"group:{group}")
    event = await next_topic_event(sock, f"group:{group}", wait_s=4)
    lateness = (now() - deadline).total_seconds()
    card = event["d"]
    assert card["status"] == "expired" and card["grayed_out"] and not card["join_enabled"]
    assert card["cta"]["label"] == "Expired"
    assert -0.05 <= lateness < 1.0, lateness
    await sock.close()


@pytest.mark.usefixtures("bus_engine")  # on the memory bus and on the Redis bus
async def test_service_changes_and_deletes_reach_subscribers(client, commerce, alice, bob):
    group = await _group(commerce, alice, spots=5)
    sock = await connect(client, bob.token)
    await subscribe(sock, f"group:{group}")
    view = await (await client.get(f"/api/buy-together/groups/{group}", headers=bob.auth)).json()
    body = {
        "product_id": view["product_id"],
        "creator_id": alice.id,
        "target_price": "800.00",
        "total_spots": 5,
        "expires_at": iso(now() + timedelta(days=1)),
        "state": "cancelled",
        "updated_at": iso(now()),
    }
    await commerce.put(f"/groups/{group}", body)
    card = (await next_topic_event(sock, f"group:{group}"))["d"]
    assert card["status"] == "cancelled" and card["join_enabled"] is False

    await commerce.delete(f"/groups/{group}")
    gone = await next_topic_event(sock, f"group:{group}")
    assert gone["t"] == "group.deleted" and gone["d"] == {"id": group, "deleted": True}
    await sock.close()


async def test_subscribing_is_checked_like_the_http_read(client, commerce, alice, bob):
    group = await _group(commerce, alice)
    sock = await connect(client, bob.token)
    assert (await client.post("/api/users/bob/block", headers=alice.auth)).status == 204
    for topic in (f"group:{group}", f"group:{new_id()}", "group:not-a-uuid"):
        frame = await subscribe(sock, topic, call_id=topic[-6:])
        assert frame["op"] == Op.ERROR or not frame["d"]["ok"], frame
        body = frame["d"] if frame["op"] == Op.ERROR else frame["d"]["error"]
        assert body["code"] == "not_found", frame
    await sock.close()


async def test_expiry_is_announced_once_across_nodes(client, commerce, alice):
    """Two timers (two nodes) racing over the same past deadlines claim each group once."""
    ctx = client.server.app[CONTEXT]
    seen: list[TopicEvent] = []
    ctx.bus.topic_listeners.append(seen.append)
    timer = ctx.group_expiry
    assert timer is not None
    await timer.stop()  # take the node's own timer out of the race
    groups = [await _group_with_handle(commerce, alice, i) for i in range(6)]
    results = await asyncio.gather(
        commerce_live.announce_expired_groups(ctx),
        commerce_live.announce_expired_groups(ctx),
    )
    claimed = [g for batch in results for g in batch]
    assert sorted(map(str, claimed)) == sorted(groups)
    await asyncio.sleep(0.05)
    expired = [e for e in seen if e.type == "group.updated" and e.data["status"] == "expired"]
    assert sorted(e.topic for e in expired) == sorted(f"group:{g}" for g in groups)


async def _group_with_handle(commerce, owner, i: int) -> str:
    shop = await commerce.shop(owner.id, f"shop_{i}")
    pid = await commerce.product(shop, "Thing", "10.00")
    group_id = str(new_id())
    # Ingested while still open (so the ingest itself does not announce it), then it lapses.
    await commerce.put(
        f"/groups/{group_id}",
        {
            "product_id": pid,
            "creator_id": owner.id,
            "target_price": "8.00",
            "total_spots": 3,
            "expires_at": iso(now() + timedelta(milliseconds=300)),
            "updated_at": iso(now()),
        },
    )
    await asyncio.sleep(0.35)
    return group_id


async def test_a_product_change_refreshes_its_live_group_cards(client, commerce, alice, bob):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "iPhone 15", "900.00")
    group = await commerce.group(pid, alice.id, target="800.00")
    sock = await connect(client, bob.token)
    await subscribe(sock, f"group:{group}")
    await commerce.put(
        f"/products/{pid}",
        {
            "shop_id": shop,
            "name": "iPhone 15 Pro",
            "price": "999.00",
            "currency": "USD",
            "images": ["https://cdn.example.com/pro.jpg"],
            "updated_at": iso(now()),
        },
    )
    card = (await next_topic_event(sock, f"group:{group}"))["d"]
    assert card["product"]["name"] == "iPhone 15 Pro"
    assert card["product"]["image_url"] == "https://cdn.example.com/pro.jpg"
    await sock.close()


@pytest.mark.usefixtures("bus_engine")
@pytest.mark.parametrize("bus_engine", ["redis"], indirect=True)  # the Redis run only
async def test_the_app_runs_on_the_redis_engine(client):
    from server.bus.redis import RedisBus

    assert isinstance(client.server.app[CONTEXT].bus, RedisBus)
