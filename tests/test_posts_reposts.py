"""Reposts and quote posts through HTTP: one repost per user, counts, notifications, refusals
for non-public posts, the original's deletion hiding reposts and leaving quotes unavailable."""

from __future__ import annotations

from tests.helpers import expect_problem
from tests.posts_support import get_post, grid, make_private, notification_types, post


async def test_repost_and_quote(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    original = await post(client, alice, content="original #news")
    first = await client.post(f"/api/posts/{original['id']}/repost", headers=bob.auth)
    assert first.status == 201
    repost = await first.json()
    assert repost["is_repost"] and repost["original_post"]["content"] == "original #news"
    again = await (
        await client.post(f"/api/posts/{original['id']}/repost", headers=bob.auth)
    ).json()
    assert again["id"] == repost["id"]  # one repost per user
    # Reposting a repost reposts the original.
    via = await (await client.post(f"/api/posts/{repost['id']}/repost", headers=carol.auth)).json()
    assert via["original_post"]["id"] == original["id"]
    resp = await client.post(
        f"/api/posts/{original['id']}/quote", json={"content": "so true @alice"}, headers=carol.auth
    )
    assert resp.status == 201
    quote = await resp.json()
    assert quote["is_quote"] and quote["content"] == "so true @alice"
    assert quote["original_post"]["id"] == original["id"]
    assert (await get_post(client, alice, original["id"]))["reposts_count"] == 3
    types = await notification_types(client, alice)
    assert "repost" in types and "quote_post" in types
    listed = await (
        await client.get(f"/api/posts/{original['id']}/reposts", headers=alice.auth)
    ).json()
    assert [(r["user"]["username"], r["is_quote"]) for r in listed["items"]] == [
        ("carol", True),
        ("carol", False),
        ("bob", False),
    ]
    assert [p["id"] for p in (await grid(client, alice, bob))["items"]] == [repost["id"]]
    # Unrepost (twice is harmless).
    for _ in range(2):
        resp = await client.delete(f"/api/posts/{original['id']}/unrepost", headers=bob.auth)
        assert resp.status == 204
    assert (await get_post(client, alice, original["id"]))["reposts_count"] == 2
    assert (await grid(client, alice, bob))["items"] == []


async def test_deleting_the_original(client, alice, bob) -> None:
    original = await post(client, alice, content="soon gone")
    repost = await (
        await client.post(f"/api/posts/{original['id']}/repost", headers=bob.auth)
    ).json()
    quote = await (
        await client.post(
            f"/api/posts/{original['id']}/quote", json={"content": "look"}, headers=bob.auth
        )
    ).json()
    await client.delete(f"/api/posts/{original['id']}", headers=alice.auth)
    await get_post(client, bob, repost["id"], expect=404)
    seen = await get_post(client, bob, quote["id"])
    assert seen["original_post"] is None and seen["original_unavailable"] is True
    assert [p["id"] for p in (await grid(client, bob, bob))["items"]] == [quote["id"]]


async def test_only_public_posts_can_be_reposted(client, alice, bob) -> None:
    followers = await post(client, alice, content="friends only", visibility="followers")
    await expect_problem(
        await client.post(f"/api/posts/{followers['id']}/repost", headers=alice.auth), 403
    )
    public = await post(client, alice, content="public")
    await make_private(client, alice)
    await expect_problem(
        await client.post(f"/api/posts/{public['id']}/repost", headers=alice.auth), 403
    )
    await expect_problem(
        await client.post(f"/api/posts/{public['id']}/repost", headers=bob.auth), 404
    )
    resp = await client.post(
        f"/api/posts/{public['id']}/quote", json={"content": ""}, headers=alice.auth
    )
    await expect_problem(resp, 422)
