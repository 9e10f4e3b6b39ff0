"""Hashtags through HTTP: a tag's info and follow, its feed (visibility rules, paging), followed
tags in the home feed, trending over time on a controlled clock, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.clock import ManualClock
from tests.feeds_support import FEED_SETTINGS, act, contents, feed, settle
from tests.helpers import expect_problem
from tests.notifications_support import ctx_of
from tests.posts_support import block, make_private, post
from tests.search_support import search

pytestmark = pytest.mark.app_settings(**FEED_SETTINGS)


async def test_hashtag_feed_and_follow(client, alice, bob, make_user) -> None:
    carol, dave = await make_user("carol"), await make_user("dave")
    await make_private(client, dave)
    ids = []
    for i in range(5):
        ids.append((await post(client, bob, content=f"#Cats number {i}"))["id"])
    await post(client, carol, content="#cats from carol")
    await post(client, dave, content="#cats private account")
    await post(client, bob, content="#cats friends only", visibility="followers")
    hidden = await post(client, bob, content="#cats hidden by alice")
    await act(client, alice, "POST", f"/api/posts/{hidden['id']}/hide")
    await block(client, carol, alice)
    path = "/api/hashtags/%23CATS/posts"
    assert await contents(client, alice, path) == [f"#Cats number {i}" for i in range(4, -1, -1)]
    for limit in (1, 2, 4):
        assert await feed(client, alice, path, limit=limit) == list(reversed(ids))
    info = await (await client.get("/api/hashtags/Cats", headers=alice.auth)).json()
    # posts_count: public posts of public accounts only (dave is private, one is followers-only).
    assert info["tag"] == "cats" and info["posts_count"] == 7
    assert info["following"] is False and info["followers_count"] == 0
    # Following the tag brings its posts (that alice may see) into her home feed.
    assert await contents(client, alice) == []
    resp = await client.post("/api/hashtags/cats/follow", headers=alice.auth)
    assert resp.status == 200 and (await resp.json())["following"] is True
    await client.post("/api/hashtags/cats/follow", headers=alice.auth)  # twice: harmless
    info = await (await client.get("/api/hashtags/cats", headers=alice.auth)).json()
    assert info["following"] is True and info["followers_count"] == 1
    assert await feed(client, alice) == list(reversed(ids))
    await act(client, alice, "DELETE", "/api/hashtags/cats/unfollow")
    assert await contents(client, alice) == []


async def test_bad_tags_and_cursors(client, alice, bob) -> None:
    await post(client, bob, content="#known")
    await expect_problem(await client.get("/api/hashtags/unknown", headers=alice.auth), 404)
    await expect_problem(await client.get("/api/hashtags/unknown/posts", headers=alice.auth), 404)
    await expect_problem(await client.post("/api/hashtags/unknown/follow", headers=alice.auth), 404)
    overlong = "a" * 101
    for path in (f"/api/hashtags/{overlong}", f"/api/hashtags/{overlong}/posts"):
        await expect_problem(await client.get(path, headers=alice.auth), 422)
    await expect_problem(
        await client.post(f"/api/hashtags/{overlong}/follow", headers=alice.auth), 422
    )
    for bad in ("%23", "no%20spaces", "12345", "a-b"):
        await expect_problem(await client.get(f"/api/hashtags/{bad}", headers=alice.auth), 422)
    resp = await client.get("/api/hashtags/known/posts?cursor=garbage", headers=alice.auth)
    await expect_problem(resp, 422)
    await expect_problem(
        await client.get("/api/hashtags/trending?limit=500", headers=alice.auth), 422
    )


async def test_trending_over_time(client, alice, bob, make_user) -> None:
    start = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    clock = ManualClock(start - timedelta(days=3))
    ctx_of(client).clock = clock
    authors = [alice, bob, *[await make_user(f"writer{i}") for i in range(3)]]

    async def use(tag: str, times: int) -> list[str]:
        return [
            (await post(client, authors[i % len(authors)], content=f"#{tag} {i}"))["id"]
            for i in range(times)
        ]

    # Three days ago: a steady tag and one that has faded since.
    await use("steady", 10)
    await use("faded", 10)
    clock.set(start)
    await use("steady", 4)
    fresh = await use("fresh", 4)
    await use("barely", 2)  # under trending_min_uses

    async def trending() -> list[str]:
        resp = await client.get("/api/hashtags/trending", headers=alice.auth)
        assert resp.status == 200, await resp.text()
        return [item["tag"] for item in (await resp.json())["items"]]

    # A new burst beats a tag as busy now that has a history; all-time counts do not matter.
    assert await trending() == ["fresh", "steady"]
    # Read from cache for a minute: a new burst shows after that.
    await use("late", 5)
    assert await trending() == ["fresh", "steady"]
    clock.advance(seconds=61)
    assert await trending() == ["late", "fresh", "steady"]
    # A deleted post takes its use back.
    for post_id in fresh[:2]:
        await act(client, fresh_author(authors, fresh, post_id), "DELETE", f"/api/posts/{post_id}")
    clock.advance(seconds=61)
    assert await trending() == ["late", "steady"]
    # Hours later the window has moved past every burst.
    clock.advance(hours=7)
    assert await trending() == []
    await settle(client)


def fresh_author(authors, ids, post_id):
    return authors[ids.index(post_id) % len(authors)]


async def test_followed_tag_respects_blocks(client, alice, bob) -> None:
    await post(client, bob, content="#news from bob")
    await act(client, alice, "POST", "/api/hashtags/news/follow")
    assert await contents(client, alice) == ["#news from bob"]
    await block(client, bob, alice)
    assert await contents(client, alice) == []


async def test_trending_leaves_out_tags_of_private_accounts_and_only_me_posts(
    client, alice, bob, make_user
) -> None:
    """A tag used only by a private account, or only in "only me" posts, does not trend for
    bob: trending counts a use only for a post everyone may see, and re-checks that on read
    (an account that turns private takes its tags out of trending at once)."""
    carol, dave = await make_user("carol"), await make_user("dave")
    await make_private(client, alice)
    for i in range(6):
        await post(client, alice, content=f"#zzprivtrend {i}")
        await post(client, carol, content=f"#zzselftrend {i}", visibility="private")
        await post(client, dave, content=f"#zzlatertrend {i}")
    await make_private(client, dave)
    await post(client, carol, content="#zzpubtrend once")
    for i in range(5):
        await post(client, carol, content=f"#zzpubtrend {i}")
    resp = await client.get("/api/hashtags/trending", headers=bob.auth)
    assert resp.status == 200, await resp.text()
    trending = [item["tag"] for item in (await resp.json())["items"]]
    assert "zzpubtrend" in trending, trending
    assert {"zzprivtrend", "zzselftrend", "zzlatertrend"} & set(trending) == set(), trending


async def test_hashtags_of_posts_a_stranger_cannot_see_are_not_found_by_them(
    client, alice, bob, make_user
) -> None:
    """Hashtag search (`GET /api/search/hashtags`) and the hashtag page (`GET
    /api/hashtags/{tag}`): a tag used only where bob may not look (a private account's posts,
    an "only me" post, a followers-only post) is not found by him and is a 404 to him, so a
    stranger learns neither a private account's tags nor how often they are used. The author
    still finds their own tag; its posts_count counts only posts everyone may see (0 here)."""
    carol = await make_user("carol")
    await make_private(client, alice)
    await post(client, alice, content="meeting #zzsecretplan tonight")
    await post(client, carol, content="note to self #zzselfonly", visibility="private")
    await post(client, carol, content="friends only #zzfriendsonly", visibility="followers")
    for tag in ("zzsecretplan", "zzselfonly", "zzfriendsonly"):
        found = await search(client, bob, "hashtags", tag[:8])
        assert [i["tag"] for i in found["items"] if i["tag"] == tag] == [], (tag, found)
        info = await client.get(f"/api/hashtags/{tag}", headers=bob.auth)
        assert info.status == 404, (tag, await info.text())
        follow = await client.post(f"/api/hashtags/{tag}/follow", headers=bob.auth)
        assert follow.status == 404, (tag, await follow.text())
    own = await client.get("/api/hashtags/zzselfonly", headers=carol.auth)
    assert own.status == 200, await own.text()
    assert (await own.json())["posts_count"] == 0
    await post(client, carol, content="for everyone #zzselfonly")
    info = await client.get("/api/hashtags/zzselfonly", headers=bob.auth)
    assert info.status == 200, await info.text()
    assert (await info.json())["posts_count"] == 1
