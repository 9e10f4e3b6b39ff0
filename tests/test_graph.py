"""Follow, private accounts and requests, block and mute semantics, counters."""

from __future__ import annotations

import asyncio

from tests.helpers import expect_problem


async def _counts(client, user, viewer):
    body = await (await client.get(f"/api/users/{user.id}", headers=viewer.auth)).json()
    return body["followers_count"], body["following_count"]


async def test_follow_public_account_is_immediate_and_idempotent(client, alice, bob):
    first = await client.post("/api/users/alice/follow", headers=bob.auth)
    assert (await first.json())["status"] == "accepted"
    second = await client.post(f"/api/users/{alice.id}/follow", headers=bob.auth)
    assert (await second.json()) == {"status": "accepted", "created": False}
    assert await _counts(client, alice, bob) == (1, 0)
    assert await _counts(client, bob, bob) == (0, 1)
    followers = await (
        await client.get(f"/api/users/{alice.id}/followers", headers=bob.auth)
    ).json()
    assert [u["username"] for u in followers["items"]] == ["bob"]
    following = await (await client.get("/api/users/bob/following", headers=alice.auth)).json()
    assert [u["username"] for u in following["items"]] == ["alice"]


async def test_unfollow_decrements_and_never_goes_negative(client, alice, bob):
    await client.post("/api/users/alice/follow", headers=bob.auth)
    for _ in range(2):
        resp = await client.delete("/api/users/alice/unfollow", headers=bob.auth)
        assert resp.status == 204
    assert await _counts(client, alice, alice) == (0, 0)
    assert await _counts(client, bob, bob) == (0, 0)


async def test_following_yourself_is_422(client, alice):
    await expect_problem(await client.post("/api/users/alice/follow", headers=alice.auth), 422)


async def test_concurrent_follows_count_once(client, alice, bob):
    results = await asyncio.gather(
        *[client.post("/api/users/alice/follow", headers=bob.auth) for _ in range(8)]
    )
    assert all(r.status == 200 for r in results)
    bodies = [await r.json() for r in results]
    assert sum(body["created"] for body in bodies) == 1
    assert await _counts(client, alice, alice) == (1, 0)


async def test_private_account_requests_accept_and_decline(client, alice, bob, make_user):
    cy = await make_user("cyd")
    await client.patch(f"/api/users/{alice.id}", headers=alice.auth, json={"is_private": True})

    req = await (await client.post("/api/users/alice/follow", headers=bob.auth)).json()
    assert req["status"] == "pending"
    await client.post("/api/users/alice/follow", headers=cy.auth)
    assert await _counts(client, alice, alice) == (0, 0)
    # Bob is not a follower yet: the private list is closed to him.
    await expect_problem(await client.get("/api/users/alice/followers", headers=bob.auth), 403)

    pending = await (await client.get("/api/follows/requests", headers=alice.auth)).json()
    by_name = {item["username"]: item["follow_id"] for item in pending["items"]}
    assert set(by_name) == {"bob", "cyd"}

    # Only the account owner can act on its requests.
    await expect_problem(
        await client.post(f"/api/follows/{by_name['bob']}/accept", headers=bob.auth), 404
    )
    ok = await client.post(f"/api/follows/{by_name['bob']}/accept", headers=alice.auth)
    assert ok.status == 200
    declined = await client.post(f"/api/follows/{by_name['cyd']}/decline", headers=alice.auth)
    assert declined.status == 204

    assert await _counts(client, alice, alice) == (1, 0)
    rel = (await (await client.get("/api/users/alice", headers=cy.auth)).json())["relationship"]
    assert rel["following"] is None  # a declined request is deleted
    followers = await (await client.get("/api/users/alice/followers", headers=bob.auth)).json()
    assert [u["username"] for u in followers["items"]] == ["bob"]
    assert (await (await client.get("/api/follows/requests", headers=alice.auth)).json())[
        "items"
    ] == []


async def test_going_public_accepts_pending_requests(client, alice, bob):
    await client.patch(f"/api/users/{alice.id}", headers=alice.auth, json={"is_private": True})
    await client.post("/api/users/alice/follow", headers=bob.auth)
    resp = await client.patch(
        f"/api/users/{alice.id}", headers=alice.auth, json={"is_private": False}
    )
    assert (await resp.json())["followers_count"] == 1


async def test_block_removes_follows_both_ways_and_hides_the_blocker(client, alice, bob):
    await client.post("/api/users/alice/follow", headers=bob.auth)
    await client.post("/api/users/bob/follow", headers=alice.auth)
    assert await _counts(client, alice, alice) == (1, 1)

    assert (await client.post("/api/users/bob/block", headers=alice.auth)).status == 204
    assert await _counts(client, alice, alice) == (0, 0)
    assert await _counts(client, bob, bob) == (0, 0)

    # To bob, alice no longer exists: same 404 as an unknown user.
    missing = await expect_problem(await client.get("/api/users/nobody_x", headers=bob.auth), 404)
    hidden = await expect_problem(await client.get("/api/users/alice", headers=bob.auth), 404)
    assert hidden["detail"] == missing["detail"]
    await expect_problem(await client.get(f"/api/users/{alice.id}", headers=bob.auth), 404)
    await expect_problem(await client.post("/api/users/alice/follow", headers=bob.auth), 404)
    await expect_problem(await client.get("/api/users/alice/followers", headers=bob.auth), 404)

    # Alice sees bob, knows she blocked him, and must unblock before following.
    rel = (await (await client.get("/api/users/bob", headers=alice.auth)).json())["relationship"]
    assert rel["blocking"] is True
    await expect_problem(await client.post("/api/users/bob/follow", headers=alice.auth), 403)

    blocked = await (await client.get("/api/users/blocked", headers=alice.auth)).json()
    assert [u["username"] for u in blocked["items"]] == ["bob"]

    assert (await client.delete("/api/users/bob/unblock", headers=alice.auth)).status == 204
    assert (await client.get("/api/users/alice", headers=bob.auth)).status == 200
    # Unblocking does not restore the old follows.
    assert await _counts(client, alice, alice) == (0, 0)


async def test_a_blocker_is_absent_from_the_blocked_users_follow_lists(
    client, alice, bob, make_user
):
    carol = await make_user("carol")
    await client.post("/api/users/carol/follow", headers=alice.auth)
    await client.post("/api/users/alice/follow", headers=carol.auth)
    await client.post("/api/users/bob/block", headers=alice.auth)

    async def names(path: str, who) -> list[str]:
        resp = await client.get(path, headers=who.auth)
        assert resp.status == 200, await resp.text()
        return [u["username"] for u in (await resp.json())["items"]]

    # Bob cannot see alice's profile, so he does not see her in carol's lists either.
    assert await names("/api/users/carol/followers", bob) == []
    assert await names("/api/users/carol/following", bob) == []
    # Everyone else (and alice herself) still does.
    assert await names("/api/users/carol/followers", carol) == ["alice"]
    assert await names("/api/users/carol/following", alice) == ["alice"]


async def test_mute_is_silent_and_listed_only_for_the_muter(client, alice, bob):
    assert (await client.post("/api/users/bob/mute", headers=alice.auth)).status == 204
    assert (await client.post("/api/users/bob/mute", headers=alice.auth)).status == 204
    muted = await (await client.get("/api/users/muted", headers=alice.auth)).json()
    assert [u["username"] for u in muted["items"]] == ["bob"]
    # Bob sees nothing different.
    rel = (await (await client.get("/api/users/alice", headers=bob.auth)).json())["relationship"]
    assert rel == {"following": None, "followed_by": None, "blocking": False, "muting": False}
    assert (await client.post("/api/users/alice/follow", headers=bob.auth)).status == 200
    assert (await client.delete("/api/users/bob/unmute", headers=alice.auth)).status == 204
    assert (await (await client.get("/api/users/muted", headers=alice.auth)).json())["items"] == []


async def test_follower_lists_are_keyset_paginated(client, alice, make_user):
    names = []
    for i in range(5):
        user = await make_user(f"fan_{i}")
        await client.post("/api/users/alice/follow", headers=user.auth)
        names.append(user.username)
    seen, cursor = [], None
    while True:
        url = "/api/users/alice/followers?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = await (await client.get(url, headers=alice.auth)).json()
        assert len(body["items"]) <= 2
        seen += [u["username"] for u in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(names))  # newest first, nobody twice, nobody missed
    bad = await client.get("/api/users/alice/followers?cursor=%%%garbage", headers=alice.auth)
    await expect_problem(bad, 422)
    await expect_problem(
        await client.get("/api/users/alice/followers?limit=1000", headers=alice.auth), 422
    )


async def test_follow_rate_limit(client, settings, alice, make_user):
    targets = [await make_user(f"t_{i}") for i in range(3)]
    ctx_limit = settings.rate_limits.follow.count
    assert ctx_limit == 50
    statuses = []
    for i in range(52):
        target = targets[i % 3]
        verb = client.post if i % 2 == 0 else client.delete
        path = f"/api/users/{target.username}/" + ("follow" if i % 2 == 0 else "unfollow")
        statuses.append((await verb(path, headers=alice.auth)).status)
    assert 429 not in statuses[:50]
    assert statuses[50] == 429
