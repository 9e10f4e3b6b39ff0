"""Likes, bookmarks with collections and hiding, through HTTP (and the live counters over the
gateway): idempotence, exact counts under concurrency, notifications that batch and retract,
blocks and audiences, privacy of bookmarks, every bad input."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.commerce_support import COMMERCE_SETTINGS
from tests.gateway_support import connect
from tests.helpers import expect_problem, register
from tests.notifications_support import ctx_of, insert_users
from tests.posts_support import block, follow, get_post, post

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)


async def _notifications(client, user) -> list[dict]:
    return (await (await client.get("/api/notifications", headers=user.auth)).json())["items"]


async def test_like_unlike_is_idempotent_and_counted(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    created = await post(client, alice, content="like me")
    for _ in range(2):
        resp = await client.post(f"/api/posts/{created['id']}/like", headers=bob.auth)
        assert resp.status == 200
        assert await resp.json() == {"post_id": created["id"], "liked": True, "likes_count": 1}
    await client.post(f"/api/posts/{created['id']}/like", headers=carol.auth)
    seen = await get_post(client, bob, created["id"])
    assert seen["likes_count"] == 2 and seen["liked"] is True
    assert (await get_post(client, alice, created["id"]))["liked"] is False
    profile = await (await client.get("/api/users/alice", headers=bob.auth)).json()
    assert profile["likes_received"] == 2
    [note] = [n for n in await _notifications(client, alice) if n["type"] == "like_post"]
    assert note["actor_count"] == 2 and "liked your post" in note["content"]
    likers = await (
        await client.get(f"/api/posts/{created['id']}/likes", headers=alice.auth)
    ).json()
    assert [u["username"] for u in likers["items"]] == ["carol", "bob"]
    # An unlike takes the actor back out; twice is harmless.
    for _ in range(2):
        resp = await client.delete(f"/api/posts/{created['id']}/unlike", headers=carol.auth)
        assert (await resp.json())["likes_count"] == 1
    [note] = [n for n in await _notifications(client, alice) if n["type"] == "like_post"]
    assert note["actor_count"] == 1
    await client.delete(f"/api/posts/{created['id']}/unlike", headers=bob.auth)
    assert [n for n in await _notifications(client, alice) if n["type"] == "like_post"] == []
    profile = await (await client.get("/api/users/alice", headers=bob.auth)).json()
    assert profile["likes_received"] == 0


async def test_concurrent_likes_are_exact(client, alice) -> None:
    created = await post(client, alice, content="viral")
    ctx = ctx_of(client)
    from server.domain.auth_tokens import Principal
    from server.domain.posts import likes

    fans = await insert_users(client, 100)
    await asyncio.gather(
        *(
            likes.like_post(ctx, Principal(f, "fan", ("user",)), uuid.UUID(created["id"]))
            for f in fans
        )
    )
    seen = await get_post(client, alice, created["id"])
    assert seen["likes_count"] == 100
    notes = [n for n in await _notifications(client, alice) if n["type"] == "like_post"]
    assert len(notes) == 1 and notes[0]["actor_count"] == 100


async def test_likes_notify_the_seller_of_a_linked_product(client, commerce, alice, bob) -> None:
    seller = await register(client, "seller")
    shop = await commerce.shop(seller.id, "seller_shop")
    product = await commerce.product(shop, "Lamp")
    created = await post(client, alice, content="my new lamp", product_ids=[product])
    await client.post(f"/api/posts/{created['id']}/like", headers=bob.auth)
    assert "product_post_like" in [n["type"] for n in await _notifications(client, seller)]


async def test_interactions_follow_visibility(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    followers_only = await post(client, alice, content="friends", visibility="followers")
    for path in ("like", "bookmark", "hide"):
        resp = await client.post(f"/api/posts/{followers_only['id']}/{path}", headers=carol.auth)
        await expect_problem(resp, 404)
    await follow(client, carol, alice)
    resp = await client.post(f"/api/posts/{followers_only['id']}/like", headers=carol.auth)
    assert resp.status == 200
    public = await post(client, alice, content="public")
    await block(client, alice, bob)
    for path in ("like", "bookmark"):
        resp = await client.post(f"/api/posts/{public['id']}/{path}", headers=bob.auth)
        await expect_problem(resp, 404)
    draft = await post(client, alice, content="draft", status="draft")
    resp = await client.post(f"/api/posts/{draft['id']}/like", headers=alice.auth)
    await expect_problem(resp, 409)


async def test_likers_leave_out_blocked_users(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    created = await post(client, alice, content="x")
    await client.post(f"/api/posts/{created['id']}/like", headers=bob.auth)
    await client.post(f"/api/posts/{created['id']}/like", headers=carol.auth)
    await block(client, carol, bob)
    likers = await (
        await client.get(f"/api/posts/{created['id']}/likes", headers=carol.auth)
    ).json()
    assert [u["username"] for u in likers["items"]] == ["carol"]


@pytest.mark.app_settings(rate_limits={"like": {"count": 2, "window_s": 3600}})
async def test_likes_are_rate_limited(client, alice, bob) -> None:
    posts = [await post(client, alice, content=f"p{i}") for i in range(3)]
    for p in posts[:2]:
        assert (await client.post(f"/api/posts/{p['id']}/like", headers=bob.auth)).status == 200
    resp = await client.post(f"/api/posts/{posts[2]['id']}/like", headers=bob.auth)
    await expect_problem(resp, 429)


async def test_bookmarks_and_collections(client, alice, bob) -> None:
    first = await post(client, alice, content="first")
    second = await post(client, alice, content="second")
    resp = await client.post(
        "/api/bookmarks/collections", json={"name": "  Gift   ideas "}, headers=bob.auth
    )
    assert resp.status == 201
    gifts = await resp.json()
    assert gifts["name"] == "Gift ideas"
    dup = await client.post(
        "/api/bookmarks/collections", json={"name": "gift IDEAS"}, headers=bob.auth
    )
    await expect_problem(dup, 409)
    resp = await client.post(
        f"/api/posts/{first['id']}/bookmark", json={"collection_id": gifts["id"]}, headers=bob.auth
    )
    mark = await resp.json()
    assert resp.status == 200 and mark["created"] and mark["collection_id"] == gifts["id"]
    again = await (
        await client.post(f"/api/posts/{first['id']}/bookmark", json={}, headers=bob.auth)
    ).json()
    assert again["id"] == mark["id"] and not again["created"]
    await client.post(f"/api/posts/{second['id']}/bookmark", json={}, headers=bob.auth)
    everything = await (await client.get("/api/bookmarks", headers=bob.auth)).json()
    assert [b["post"]["content"] for b in everything["items"]] == ["second", "first"]
    assert everything["items"][0]["post"]["bookmarked"] is True
    in_gifts = await (
        await client.get(f"/api/bookmarks/collections/{gifts['id']}", headers=bob.auth)
    ).json()
    assert [b["post_id"] for b in in_gifts["items"]] == [first["id"]]
    assert (await get_post(client, alice, first["id"]))["bookmarks_count"] == 1
    # Private to their owner.
    resp = await client.get(f"/api/bookmarks/collections/{gifts['id']}", headers=alice.auth)
    await expect_problem(resp, 404)
    resp = await client.post(
        f"/api/bookmarks/{mark['id']}/move", json={"collection_id": None}, headers=alice.auth
    )
    await expect_problem(resp, 404)
    assert (await (await client.get("/api/bookmarks", headers=alice.auth)).json())["items"] == []
    # Move out and back; counts follow.
    resp = await client.post(
        f"/api/bookmarks/{mark['id']}/move", json={"collection_id": None}, headers=bob.auth
    )
    assert (await resp.json())["collection_id"] is None
    listed = await (await client.get("/api/bookmarks/collections", headers=bob.auth)).json()
    assert listed["items"][0]["bookmarks_count"] == 0
    await client.post(
        f"/api/bookmarks/{mark['id']}/move", json={"collection_id": gifts["id"]}, headers=bob.auth
    )
    renamed = await client.patch(
        f"/api/bookmarks/collections/{gifts['id']}", json={"name": "Gifts"}, headers=bob.auth
    )
    assert (await renamed.json())["name"] == "Gifts"
    # Delete the collection with its bookmarks: the post loses the bookmark.
    resp = await client.delete(
        f"/api/bookmarks/collections/{gifts['id']}?with_bookmarks=true", headers=bob.auth
    )
    assert resp.status == 204
    remaining = await (await client.get("/api/bookmarks", headers=bob.auth)).json()
    assert [b["post_id"] for b in remaining["items"]] == [second["id"]]
    assert (await get_post(client, alice, first["id"]))["bookmarks_count"] == 0
    # A deleted post drops out of bookmarks.
    await client.delete(f"/api/posts/{second['id']}", headers=alice.auth)
    assert (await (await client.get("/api/bookmarks", headers=bob.auth)).json())["items"] == []
    resp = await client.delete(f"/api/posts/{second['id']}/unbookmark", headers=bob.auth)
    assert resp.status == 204


async def test_bookmark_into_someone_elses_collection_is_refused(client, alice, bob) -> None:
    created = await post(client, alice, content="x")
    theirs = await (
        await client.post("/api/bookmarks/collections", json={"name": "mine"}, headers=alice.auth)
    ).json()
    resp = await client.post(
        f"/api/posts/{created['id']}/bookmark",
        json={"collection_id": theirs["id"]},
        headers=bob.auth,
    )
    await expect_problem(resp, 404)
    resp = await client.post("/api/bookmarks/collections", json={"name": "   "}, headers=bob.auth)
    await expect_problem(resp, 422)


async def test_live_counters_are_coalesced(client, alice) -> None:
    created = await post(client, alice, content="watch the counter")
    watcher = await register(client, "watcher")
    sock = await connect(client, watcher.token)
    await sock.send({"op": "subscribe", "id": "s1", "d": {"topic": f"post:{created['id']}"}})
    assert (await sock.expect("reply"))["d"]["ok"]
    ctx = ctx_of(client)
    from server.domain.auth_tokens import Principal
    from server.domain.posts import likes

    fans = await insert_users(client, 60)
    await asyncio.gather(
        *(
            likes.like_post(ctx, Principal(f, "fan", ("user",)), uuid.UUID(created["id"]))
            for f in fans
        )
    )
    events = []
    while True:
        try:
            events.append(await sock.expect("event", wait_s=2.5))
        except TimeoutError:
            break
    counts = [e["d"]["likes_count"] for e in events if e["t"] == "post.updated"]
    assert 1 <= len(counts) <= 4, counts  # 60 likes, at most one event per second
    assert counts[-1] == 60  # the last one carries the final count
    await sock.close()


@pytest.mark.app_settings(jobs={"in_process_worker": False})  # the test runs the jobs
async def test_nightly_reconciliation_repairs_drifted_counters(client, alice, bob) -> None:
    from server.jobs.queue import enqueue
    from tests.notifications_support import run_jobs

    created = await post(client, alice, content="counted")
    await client.post(f"/api/posts/{created['id']}/like", headers=bob.auth)
    await client.post(f"/api/posts/{created['id']}/bookmark", json={}, headers=bob.auth)
    db = ctx_of(client).db
    await db.execute(
        "UPDATE posts SET likes_count = 42, bookmarks_count = 0, comments_count = 7 WHERE id = %s",
        (created["id"],),
    )
    await enqueue(db, "posts.reconcile_counters")
    await run_jobs(client)
    seen = await get_post(client, alice, created["id"])
    assert (seen["likes_count"], seen["bookmarks_count"], seen["comments_count"]) == (1, 1, 0)
