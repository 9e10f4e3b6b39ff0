"""Collaborative posts (the spec's consent flow), commerce cards on posts (batched, a fixed
number of queries per page), and the live `post:<id>` topic over the gateway."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.commerce_support import COMMERCE_SETTINGS
from tests.gateway_support import connect
from tests.helpers import expect_problem
from tests.notifications_support import ctx_of
from tests.posts_support import block, get_post, grid, notification_types, post

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)


async def test_collaboration_flow(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    dave = await make_user("dave")
    created = await post(client, alice, content="Our launch", collaborator_ids=[bob.id, carol.id])
    assert created["status"] == "pending_collaboration"
    assert {u["username"] for u in created["pending_collaborators"]} == {"bob", "carol"}
    await get_post(client, dave, created["id"], expect=404)  # not out yet
    assert "collaboration_invite" in await notification_types(client, bob)
    invites = await (await client.get("/api/posts/invitations", headers=bob.auth)).json()
    assert [p["id"] for p in invites["items"]] == [created["id"]]

    resp = await client.post(f"/api/posts/{created['id']}/collaboration/accept", headers=bob.auth)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "pending_collaboration"  # carol has not answered
    resp = await client.post(
        f"/api/posts/{created['id']}/collaboration/decline", headers=carol.auth
    )
    assert resp.status == 204
    types = await notification_types(client, alice)
    assert "collaboration_accepted" in types and "collaboration_declined" in types

    seen = await get_post(client, dave, created["id"])  # everyone answered: published
    assert seen["status"] == "published" and seen["is_collaborative"]
    assert seen["byline"] == "By @alice and @bob"
    assert seen["pending_collaborators"] == []
    assert [p["id"] for p in (await grid(client, dave, bob))["items"]] == [created["id"]]
    assert (await grid(client, dave, carol))["items"] == []

    # A co-author edits: the others are told. Then leaves: off their profile, byline shrinks.
    resp = await client.patch(
        f"/api/posts/{created['id']}", json={"content": "Our launch!"}, headers=bob.auth
    )
    assert resp.status == 200
    assert "collaborator_edited_post" in await notification_types(client, alice)
    resp = await client.delete(
        f"/api/posts/{created['id']}/collaborators/{bob.id}", headers=bob.auth
    )
    assert resp.status == 204
    assert (await grid(client, dave, bob))["items"] == []
    assert (await get_post(client, dave, created["id"]))["byline"] == "By @alice"
    # The creator cannot be removed; only the creator removes others.
    resp = await client.delete(
        f"/api/posts/{created['id']}/collaborators/{alice.id}", headers=alice.auth
    )
    await expect_problem(resp, 403)


async def test_deleting_a_collaborative_post_removes_it_from_all_profiles(
    client, alice, bob
) -> None:
    created = await post(client, alice, content="together", collaborator_ids=[bob.id])
    await client.post(f"/api/posts/{created['id']}/collaboration/accept", headers=bob.auth)
    assert len((await grid(client, alice, bob))["items"]) == 1
    profile = await (await client.get("/api/users/bob", headers=bob.auth)).json()
    assert profile["posts_count"] == 1
    resp = await client.delete(f"/api/posts/{created['id']}", headers=bob.auth)  # co-author
    assert resp.status == 204
    assert (await grid(client, alice, bob))["items"] == []
    assert (await grid(client, bob, alice))["items"] == []
    profile = await (await client.get("/api/users/bob", headers=bob.auth)).json()
    assert profile["posts_count"] == 0


async def test_collaboration_refusals(client, alice, bob, make_user) -> None:
    await block(client, bob, alice)
    resp = await client.post(
        "/api/posts", json={"content": "x", "collaborator_ids": [bob.id]}, headers=alice.auth
    )
    await expect_problem(resp, 422)
    others = [(await make_user(f"co{i}")).id for i in range(11)]
    resp = await client.post(
        "/api/posts", json={"content": "x", "collaborator_ids": others}, headers=alice.auth
    )
    await expect_problem(resp, 422)
    mine = await post(client, alice, content="solo")
    resp = await client.post(f"/api/posts/{mine['id']}/collaboration/accept", headers=alice.auth)
    await expect_problem(resp, 404)


async def test_commerce_cards_on_a_post(client, commerce, alice, bob) -> None:
    shop = await commerce.shop(alice.id, "acme_store")
    product = await commerce.product(shop, "Gaming Laptop", "1200.00")
    product2 = await commerce.product(shop, "Mouse", "25.00")
    group = await commerce.group(product, alice.id, spots=5, target="1100.00")
    plan6 = await commerce.plan(product, 6, "200.00", "1200.00")
    plan12 = await commerce.plan(product, 12, "100.00", "1200.00")
    event = await commerce.event("Launch party")
    created = await post(
        client,
        alice,
        content="Get it at $acme_store #deal",
        product_ids=[product, product2],
        group_ids=[group],
        event_ids=[event],
        plans=[{"plan_id": plan6}, {"plan_id": plan12, "is_featured": True}],
    )
    seen = await get_post(client, bob, created["id"])
    assert [c["id"] for c in seen["products"]] == [product, product2]
    assert seen["products"][0]["price"]["amount"] == "1200.00"
    assert seen["groups"][0]["status"] == "open" and seen["groups"][0]["viewer_joined"] is False
    assert [(c["id"], c["is_featured"]) for c in seen["installment_plans"]] == [
        (plan6, False),
        (plan12, True),
    ]
    assert seen["events"][0]["id"] == event
    assert [(s["handle"], s["mention_type"]) for s in seen["shops"]] == [("acme_store", "mention")]
    shop_entity = next(e for e in seen["entities"] if e["type"] == "shop")
    assert shop_entity["shop_id"] == shop
    # The group card is live: it fills, the post shows it.
    for _ in range(5):
        await commerce.join(group, (await _user(client)).id)
    seen = await get_post(client, bob, created["id"])
    assert seen["groups"][0]["status"] == "full"
    # A blocked seller's cards are left out for the blocker.
    await block(client, bob, alice)
    await get_post(client, bob, created["id"], expect=404)


async def _user(client):
    import uuid

    from tests.helpers import register

    return await register(client, f"u_{uuid.uuid4().hex[:8]}")


async def test_linking_an_expired_group_is_refused(client, commerce, alice) -> None:
    shop = await commerce.shop(alice.id, "old_shop")
    product = await commerce.product(shop, "Thing")
    group = await commerce.group(product, alice.id, expires_in=timedelta(seconds=-60))
    resp = await client.post(
        "/api/posts", json={"content": "join!", "group_ids": [group]}, headers=alice.auth
    )
    problem = await expect_problem(resp, 422)
    assert "expired" in problem["detail"]


async def test_a_page_costs_a_fixed_number_of_queries(client, commerce, alice, bob) -> None:
    shop = await commerce.shop(alice.id, "many_shop")
    products = [await commerce.product(shop, f"P{i}") for i in range(3)]
    plan = await commerce.plan(products[0], 6, "20.00", "120.00")
    group = await commerce.group(products[0], alice.id)
    for i in range(12):
        await post(
            client,
            alice,
            content=f"post {i} $many_shop",
            product_ids=products,
            plans=[{"plan_id": plan}],
            group_ids=[group],
        )
    counts = {}
    db = ctx_of(client).db
    original = db._run

    await grid(client, bob, alice, limit=1)  # warm: per-process caches (auth) filled
    for size in (2, 12):
        calls = 0

        async def counting(sql, params, mode):
            nonlocal calls
            calls += 1
            return await original(sql, params, mode)

        db._run = counting  # type: ignore[method-assign]
        try:
            page = await grid(client, bob, alice, limit=size)
        finally:
            db._run = original  # type: ignore[method-assign]
        assert len(page["items"]) == size
        counts[size] = calls
    assert counts[2] == counts[12], counts


async def test_live_topic_updates_and_deletion(client, alice, bob) -> None:
    created = await post(client, alice, content="live one")
    sock = await connect(client, bob.token)
    await sock.send({"op": "subscribe", "id": "s1", "d": {"topic": f"post:{created['id']}"}})
    reply = await sock.expect("reply")
    assert reply["d"]["ok"], reply
    await client.patch(
        f"/api/posts/{created['id']}", json={"content": "live two"}, headers=alice.auth
    )
    event = await sock.expect("event")
    assert event["t"] == "post.updated" and event["d"]["edit_count"] == 1
    assert "content" in event["d"]["changed"] and "live two" not in str(event["d"])
    await client.delete(f"/api/posts/{created['id']}", headers=alice.auth)
    event = await sock.expect("event")
    assert event["t"] == "post.deleted" and event["d"]["post_id"] == created["id"]
    # A post you may not see cannot be subscribed to.
    hidden = await post(client, alice, content="mine", visibility="private")
    await sock.send({"op": "subscribe", "id": "s2", "d": {"topic": f"post:{hidden['id']}"}})
    reply = await sock.expect("reply")
    assert not reply["d"]["ok"] and reply["d"]["error"]["code"] == "not_found"
    await sock.close()


async def test_gateway_calls_create_and_get(client, alice, bob) -> None:
    sock = await connect(client, alice.token)
    created = await sock.call("posts.create", content="from the socket #ws")
    assert created["ok"], created
    post_id = created["result"]["id"]
    await sock.close()
    sock = await connect(client, bob.token)
    got = await sock.call("posts.get", post_id=post_id)
    assert got["result"]["content"] == "from the socket #ws"
    await sock.close()
