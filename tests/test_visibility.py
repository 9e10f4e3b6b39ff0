"""Blocks hide commerce items both ways (README: "A seller or group creator and the viewer who
blocked each other do not see each other's items (404)"), through the public HTTP and gateway
surface; and the SQL fragment library refuses to build a rule without a viewer.

What tests/test_commerce_lookups.py and test_commerce_live.py already cover is not repeated
here: the viewer blocking a seller (product, shop, search) and a group creator blocking the
viewer (`subscribe group:<id>`)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from protocol import frames
from protocol.constants import Op
from server.app_keys import CONTEXT
from server.store import visibility
from server.store.commerce import reads
from server.store.visibility import SYSTEM, MissingViewer
from tests.commerce_support import COMMERCE_SETTINGS
from tests.gateway_support import connect, sse_event
from tests.helpers import expect_problem
from tests.test_commerce_live import next_topic_event

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)


async def block(client, blocker, blocked) -> None:
    resp = await client.post(f"/api/users/{blocked.username}/block", headers=blocker.auth)
    assert resp.status == 204, await resp.text()


async def status_of(client, who, path: str, **params) -> int:
    resp = await client.get(path, headers=who.auth, params=params or None)
    await resp.read()
    return resp.status


async def items(client, who, path: str, **params) -> list[dict]:
    resp = await client.get(path, headers=who.auth, params=params or None)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]


async def subscribe(sock, topic: str, call_id: str) -> dict:
    await sock.send(frames.subscribe(topic, call_id))
    while True:
        frame = await sock.recv()
        if frame["op"] in (Op.REPLY, Op.ERROR) and frame.get("id") == call_id:
            return frame


def refused_as_absent(frame: dict) -> bool:
    body = frame["d"] if frame["op"] == Op.ERROR else frame["d"].get("error")
    return body is not None and body.get("code") == "not_found"


# Sellers, shops, plans and events ---------------------------------------------------------


async def test_a_seller_who_blocked_the_viewer_is_absent_to_them(client, commerce, alice, bob):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Laptop")
    plan = await commerce.plan(pid, 3, "33.34", "100.00")
    event = await commerce.event("Laptop launch", organizer_id=alice.id)
    reads_ = [
        f"/api/products/{pid}",
        f"/api/products/{pid}/installment-plans",
        f"/api/installment-plans/{plan}",
        "/api/shops/acme",
        "/api/shops/$acme",
        f"/api/shops/{shop}",
        f"/api/events/{event}",
    ]
    for path in reads_:
        assert await status_of(client, bob, path) == 200, path
    assert len(await items(client, bob, "/api/products/search", q="laptop")) == 1

    await block(client, alice, bob)  # the seller blocks the viewer
    for path in reads_:
        await expect_problem(await client.get(path, headers=bob.auth), 404)
    compare = f"/api/products/{pid}/installment-plans/compare"
    await expect_problem(await client.get(compare, params={"plans": plan}, headers=bob.auth), 404)
    assert await items(client, bob, "/api/products/search", q="laptop") == []
    assert await items(client, bob, "/api/products/search") == []
    assert await items(client, bob, "/api/shops/search", q="acme") == []
    assert await items(client, bob, "/api/events/search", q="launch") == []
    for path in reads_:  # the seller still sees their own items
        assert await status_of(client, alice, path) == 200, path


async def test_plans_and_events_of_a_seller_the_viewer_blocked_are_absent(
    client, commerce, alice, bob
):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Laptop")
    plan = await commerce.plan(pid, 3, "33.34", "100.00")
    event = await commerce.event("Laptop launch", organizer_id=alice.id)
    await block(client, bob, alice)  # the viewer blocks the seller
    for path in (f"/api/installment-plans/{plan}", f"/api/events/{event}"):
        await expect_problem(await client.get(path, headers=bob.auth), 404)
    assert await items(client, bob, "/api/events/search", q="launch") == []
    assert await status_of(client, alice, f"/api/events/{event}") == 200


# Buy-together groups ----------------------------------------------------------------------


@pytest.mark.parametrize("who_blocks", ["creator", "viewer"])
async def test_a_group_is_absent_across_a_block_either_way(
    client, commerce, alice, bob, make_user, who_blocks
):
    """The rule is the group creator's (here not the seller): blocked either way, the group
    reads 404, exactly as a group that does not exist; others still see it."""
    carol = await make_user("carol")
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "iPhone 15", "900.00")
    group = await commerce.group(pid, carol.id, spots=3, target="800.00")
    path = f"/api/buy-together/groups/{group}"
    assert await status_of(client, bob, path) == 200

    if who_blocks == "creator":
        await block(client, carol, bob)
    else:
        await block(client, bob, carol)
    await expect_problem(await client.get(path, headers=bob.auth), 404)
    assert await status_of(client, alice, path) == 200
    assert await status_of(client, carol, path) == 200


async def test_subscribing_is_refused_when_the_viewer_blocked_the_creator(
    client, commerce, alice, bob
):
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "iPhone 15", "900.00")
    group = await commerce.group(pid, alice.id, spots=3, target="800.00")
    sock = await connect(client, bob.token)
    before = await subscribe(sock, f"group:{group}", "before")
    assert not refused_as_absent(before), before
    await sock.close()

    await block(client, bob, alice)
    sock = await connect(client, bob.token)
    after = await subscribe(sock, f"group:{group}", "after")
    assert refused_as_absent(after), after
    await sock.close()


# The fragment library ---------------------------------------------------------------------


@pytest.mark.parametrize("missing", [None, "", "not a name", 42])
def test_fragments_refuse_a_missing_viewer_parameter(missing):
    with pytest.raises(MissingViewer):
        visibility.not_blocked(missing, "p.owner_id")
    with pytest.raises(MissingViewer):
        visibility.not_blocked_by("u.id", missing)


@pytest.mark.parametrize("missing", [None, "", "0190a1b2-0000-7000-8000-000000000001", 42])
def test_fragments_refuse_a_missing_viewer(missing):
    with pytest.raises(MissingViewer):
        visibility.visible_to(missing, "p.owner_id")
    with pytest.raises(MissingViewer):
        visibility.shown_to(missing, "u.id")
    with pytest.raises(MissingViewer):
        visibility.require_viewer(missing)


def test_fragments_refuse_a_missing_user_expression():
    for build in (visibility.blocks, visibility.blocked_either_way):
        with pytest.raises(MissingViewer):
            build("", "p.owner_id")
        with pytest.raises(MissingViewer):
            build("%(viewer)s", None)


def test_a_server_read_says_so_and_a_user_read_binds_the_viewer():
    viewer = uuid.uuid4()
    sql, params = visibility.visible_to(viewer, "p.owner_id")
    assert params == {"viewer": viewer}
    assert "%(viewer)s::uuid IS NOT NULL" in sql and "p.owner_id" in sql
    assert visibility.visible_to(SYSTEM, "p.owner_id") == ("TRUE", {})


async def test_store_reads_refuse_a_missing_viewer_before_any_sql():
    unused_connection = object()  # the refusal comes before the query is sent
    with pytest.raises(MissingViewer):
        await reads.get_product(unused_connection, uuid.uuid4(), None)  # type: ignore[arg-type]
    with pytest.raises(MissingViewer):
        await reads.get_groups(unused_connection, [uuid.uuid4()], None)  # type: ignore[arg-type]
    with pytest.raises(MissingViewer):
        await reads.search_products(
            unused_connection,  # type: ignore[arg-type]
            query=None,
            viewer=None,  # type: ignore[arg-type]
            limit=10,
            after=None,
        )


async def test_a_null_viewer_in_sql_sees_nothing(client, alice):
    """Fail closed: if a NULL viewer ever reached the database, the rule would hide the row
    rather than skip the filter."""
    db = client.server.app[CONTEXT].db
    other = uuid.UUID(alice.id)
    rule = visibility.not_blocked("viewer", "%(other)s::uuid")
    assert await db.fetchval(f"SELECT {rule}", {"viewer": None, "other": other}) is False
    assert await db.fetchval(f"SELECT {rule}", {"viewer": uuid.uuid4(), "other": other}) is True


# Live topics across a block made while subscribed ------------------------------------------


async def _toggle_until(commerce, group, joiner, watcher_sock, topic, stopped, deadline_s=5.0):
    """Join / leave `joiner` (each a group.updated) until `stopped()` says the blocked side no
    longer gets them; the control subscriber (`watcher_sock`) must get every one."""
    base = datetime.now(UTC)
    deadline = time.monotonic() + deadline_s
    step = 0
    while True:
        step += 1
        version = base + timedelta(seconds=step)
        if step % 2:  # `joiner` starts in the group
            await commerce.leave(group, joiner.id, version)
        else:
            await commerce.join(group, joiner.id, version)
        assert (await next_topic_event(watcher_sock, topic))["t"] == "group.updated"
        if await stopped():
            return
        assert time.monotonic() < deadline, "the blocked side still gets the group's updates"


@pytest.mark.usefixtures("bus_engine")  # the re-check travels the memory and the Redis bus
@pytest.mark.parametrize("transport", ["socket", "sse"])
@pytest.mark.parametrize("who_blocks", ["creator", "viewer"])
async def test_a_block_ends_a_group_subscription_made_before_it(
    client, commerce, alice, bob, make_user, who_blocks, transport
):
    """Bob watches carol's buy-together group live; then one of them blocks the other. From then
    on bob gets none of its updates on that subscription (a socket's or an SSE stream's), while
    others still do; a new subscription and the HTTP read are refused as if the group were gone.
    """

    carol, dave, erin = [await make_user(name) for name in ("carol", "dave", "erin")]
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "iPhone 15", "900.00")
    group = await commerce.group(pid, carol.id, spots=5, target="800.00")
    topic = f"group:{group}"
    watcher = await connect(client, dave.token)  # a bystander who stays subscribed
    assert not refused_as_absent(await subscribe(watcher, topic, "w"))

    async def received_by_bob(wait_s: float) -> bool:
        try:
            if transport == "socket":
                await next_topic_event(sock, topic, wait_s)
            else:
                while True:
                    event = await sse_event(stream, wait_s)
                    if "id" not in event:  # topic events carry no id
                        return True
            return True
        except TimeoutError:
            return False

    stream_cm = None
    if transport == "socket":
        sock = await connect(client, bob.token)
        assert not refused_as_absent(await subscribe(sock, topic, "b"))
    else:
        stream_cm = client.get("/api/gateway/sse", params={"topics": topic}, headers=bob.auth)
        stream = await stream_cm.__aenter__()
        assert stream.status == 200
    try:
        await commerce.join(group, erin.id)
        assert (await next_topic_event(watcher, topic))["t"] == "group.updated"
        assert await received_by_bob(3.0), "bob does not get the group's updates before the block"

        if who_blocks == "creator":
            await block(client, carol, bob)
        else:
            await block(client, bob, carol)

        async def stopped() -> bool:
            return not await received_by_bob(0.3)

        await _toggle_until(commerce, group, erin, watcher, topic, stopped)
        # And it stays stopped.
        await commerce.join(group, dave.id)
        assert (await next_topic_event(watcher, topic))["t"] == "group.updated"
        assert not await received_by_bob(0.3)
    finally:
        if stream_cm is not None:
            await stream_cm.__aexit__(None, None, None)

    # New subscriptions and the HTTP read: as if the group did not exist.
    again = await connect(client, bob.token)
    assert refused_as_absent(await subscribe(again, topic, "again"))
    resp = await client.get("/api/gateway/sse", params={"topics": topic}, headers=bob.auth)
    await expect_problem(resp, 404)
    path = f"/api/buy-together/groups/{group}"
    await expect_problem(await client.get(path, headers=bob.auth), 404)
    # The bystander still sees it.
    assert await status_of(client, dave, path) == 200


# The whole matrix: every commerce read, both directions, HTTP + socket + SSE ---------------


@pytest.mark.parametrize("who_blocks", ["owner", "viewer"])
async def test_every_commerce_read_hides_items_across_a_block_either_way(
    client, commerce, alice, bob, make_user, who_blocks
):
    """Alice owns a shop, a product with an installment plan, an event and a buy-together group
    bob joined. After a block either way every read of them is 404 to bob and every search and
    list leaves them out, over HTTP, `subscribe group:<id>` and SSE `topics`; alice and a
    bystander (carol) still see everything."""
    carol = await make_user("carol")
    shop = await commerce.shop(alice.id, "acme")
    pid = await commerce.product(shop, "Laptop", "900.00")
    plan = await commerce.plan(pid, 3, "33.34", "100.00")
    event = await commerce.event("Laptop launch", organizer_id=alice.id)
    group = await commerce.group(pid, alice.id, spots=3, target="800.00")
    await commerce.join(group, bob.id)
    reads_ = [
        f"/api/products/{pid}",
        f"/api/products/{pid}/installment-plans",
        f"/api/installment-plans/{plan}",
        f"/api/shops/{shop}",
        "/api/shops/acme",
        f"/api/events/{event}",
        f"/api/buy-together/groups/{group}",
    ]
    compare = (f"/api/products/{pid}/installment-plans/compare", {"plans": plan})
    searches = [
        ("/api/products/search", {"q": "laptop"}),
        ("/api/shops/search", {"q": "acme"}),
        ("/api/events/search", {"q": "launch"}),
    ]
    topic = f"group:{group}"

    async def bob_sees_everything() -> None:
        for path in reads_:
            assert await status_of(client, bob, path) == 200, path
        assert await status_of(client, bob, compare[0], **compare[1]) == 200
        for path, params in searches:
            assert len(await items(client, bob, path, **params)) == 1, path
        mine = await items(client, bob, "/api/buy-together/groups", status="any")
        assert [g["id"] for g in mine] == [group]

    await bob_sees_everything()
    if who_blocks == "owner":
        await block(client, alice, bob)
    else:
        await block(client, bob, alice)

    for path in reads_:
        await expect_problem(await client.get(path, headers=bob.auth), 404)
    await expect_problem(await client.get(compare[0], params=compare[1], headers=bob.auth), 404)
    for path, params in searches:
        assert await items(client, bob, path, **params) == [], path
    assert await items(client, bob, "/api/buy-together/groups", status="any") == []
    sock = await connect(client, bob.token)
    assert refused_as_absent(await subscribe(sock, topic, "after"))
    await sock.close()
    resp = await client.get("/api/gateway/sse", params={"topics": topic}, headers=bob.auth)
    await expect_problem(resp, 404)

    for who in (alice, carol):
        for path in reads_:
            assert await status_of(client, who, path) == 200, (who.username, path)
        for path, params in searches:
            assert len(await items(client, who, path, **params)) == 1, (who.username, path)
        sock = await connect(client, who.token)
        assert not refused_as_absent(await subscribe(sock, topic, "ok"))
        await sock.close()

    # Unblocked: everything is back.
    unblocker, other = (alice, bob) if who_blocks == "owner" else (bob, alice)
    resp = await client.delete(f"/api/users/{other.username}/unblock", headers=unblocker.auth)
    assert resp.status == 204, await resp.text()
    await bob_sees_everything()
