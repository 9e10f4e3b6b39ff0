"""The home feed through HTTP: what it includes (followed accounts' posts and reposts, your own
and co-authored posts, followers-only posts of accounts you follow) and what it leaves out
(blocks either way, mutes, hides, deletions, unfollows, private accounts, private posts), on
the PostgreSQL and the Redis timeline engines, across the fan-out threshold."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from server.clock import ManualClock
from server.domain.feeds.timelines import timelines_of
from server.jobs.queue import enqueue
from tests.feeds_support import FEED_SETTINGS, act, contents, feed, feed_page, settle
from tests.helpers import expect_problem
from tests.notifications_support import ctx_of, run_jobs
from tests.posts_support import block, follow, make_private, post
from tests.search_support import mute_word

pytestmark = pytest.mark.app_settings(**FEED_SETTINGS)


async def test_inclusion_and_exclusion_rules(client, bus_engine, alice, bob, make_user) -> None:
    carol, dave, erin, frank, gina, harry = [
        await make_user(name) for name in ("carol", "dave", "erin", "frank", "gina", "harry")
    ]
    await make_private(client, dave)
    await make_private(client, harry)
    for user in (bob, dave, erin, frank, gina):
        await follow(client, alice, user)
    # A request harry never approves: his posts stay out.
    await act(client, alice, "POST", f"/api/users/{harry.id}/follow")
    assert await contents(client, alice) == []  # builds alice's timeline
    await post(client, bob, content="b1 public")
    await post(client, bob, content="b2 followers", visibility="followers")
    await post(client, bob, content="b3 private", visibility="private")
    await post(client, carol, content="c1 stranger")
    await post(client, carol, content="c2 stranger followers", visibility="followers")
    await post(client, dave, content="d1 private account")
    await post(client, harry, content="h1 not approved")
    await post(client, erin, content="e1")
    await post(client, frank, content="f1")
    await post(client, gina, content="g1")
    await post(client, alice, content="a1 mine")
    await settle(client)
    assert await contents(client, alice) == [
        "a1 mine",
        "g1",
        "f1",
        "e1",
        "d1 private account",
        "b2 followers",
        "b1 public",
    ]
    # Each change takes effect on the next read, whatever the timeline still holds.
    await act(client, alice, "POST", f"/api/users/{erin.id}/mute")
    await block(client, frank, alice)  # blocked by them
    await block(client, alice, gina)  # blocking them
    shown = (await feed_page(client, alice, limit=100))["items"]
    b2 = next(item for item in shown if item["content"] == "b2 followers")
    await act(client, alice, "POST", f"/api/posts/{b2['id']}/hide")
    await act(client, alice, "DELETE", f"/api/users/{dave.id}/unfollow")
    b1 = next(item for item in shown if item["content"] == "b1 public")
    await act(client, bob, "DELETE", f"/api/posts/{b1['id']}")
    assert await contents(client, alice) == ["a1 mine"]
    await settle(client)  # the retraction job runs: still the same
    assert await contents(client, alice) == ["a1 mine"]


async def test_reposts_and_collaborations(client, bus_engine, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    await follow(client, alice, bob)
    assert await contents(client, alice) == []
    original = await post(client, carol, content="by a stranger")
    await act(client, bob, "POST", f"/api/posts/{original['id']}/repost")
    # A stranger's post co-authored by alice: hers too.
    invited = await post(client, carol, content="written together", collaborator_ids=[alice.id])
    await act(client, alice, "POST", f"/api/posts/{invited['id']}/collaboration/accept")
    await settle(client)
    page = (await feed_page(client, alice))["items"]
    assert [p["is_repost"] for p in page] == [False, True]
    assert page[0]["content"] == "written together"
    assert page[1]["original_post"]["content"] == "by a stranger"
    # Muting the original's author hides the repost of it.
    await act(client, alice, "POST", f"/api/users/{carol.id}/mute")
    assert await contents(client, alice) == []


@pytest.mark.parametrize("overrides", [{"feeds": {"fanout_threshold": 3}}])
async def test_hybrid_merge_across_the_threshold(client, bus_engine, alice, bob, make_user) -> None:
    star = await make_user("star")
    fans = [await make_user(f"fan{i}") for i in range(2)]
    for user in (alice, *fans):
        await follow(client, user, star)  # 3 followers: pulled at read time
    await follow(client, alice, bob)  # 1 follower: fanned out on write
    assert await contents(client, alice) == []
    expected = []
    for i in range(7):
        for author in (star, bob):
            expected.append((await post(client, author, content=f"{author.username} {i}"))["id"])
    await settle(client)
    expected.reverse()
    # Every page size walks the merged feed in order, nothing twice, nothing missed.
    for limit in (1, 2, 3, 5, 20):
        assert await feed(client, alice, limit=limit) == expected
    # Only the small author's posts were written into alice's timeline.
    ctx = ctx_of(client)
    user_id = uuid.UUID(alice.id)
    entries = await timelines_of(ctx).page(user_id, None, 100)
    assert entries is not None
    assert {str(post_id) for _, post_id in entries} == set(expected[0::2])  # bob's
    # A lost timeline (cache evicted, Redis restarted) is rebuilt from PostgreSQL.
    await timelines_of(ctx).forget(user_id)
    assert await feed(client, alice, limit=4) == expected


async def test_follow_takes_effect_on_the_next_page(client, bus_engine, alice, bob) -> None:
    await post(client, bob, content="before the follow")
    assert await contents(client, alice) == []
    await follow(client, alice, bob)
    assert await contents(client, alice) == ["before the follow"]


async def test_bad_cursors(client, alice) -> None:
    for bogus in ("nope", "%%%", "WyJ4Il0", "WyJub3QgYSBkYXRlIiwgIngiXQ"):
        await expect_problem(
            await client.get("/api/posts", params={"cursor": bogus}, headers=alice.auth), 422
        )
    await expect_problem(await client.get("/api/posts?limit=0", headers=alice.auth), 422)
    await expect_problem(await client.get("/api/posts"), 401)


async def test_unread_timelines_expire_and_come_back(client, alice, bob) -> None:
    clock = ManualClock(datetime.now(UTC))
    ctx = ctx_of(client)
    ctx.clock = clock
    await follow(client, alice, bob)
    assert await contents(client, alice) == []
    await post(client, bob, content="while you were away")
    await settle(client)
    clock.advance(days=8)  # past feeds.timeline_ttl_s unread
    await enqueue(ctx.db, "feeds.trim_timelines")
    await run_jobs(client)
    assert await ctx.db.fetchval("SELECT count(*) FROM home_timeline_state") == 0
    assert await ctx.db.fetchval("SELECT count(*) FROM home_timeline") == 0
    assert await contents(client, alice) == ["while you were away"]  # rebuilt on read


async def test_home_feed_hides_a_repost_of_a_post_with_a_muted_word(client, bob, make_user) -> None:
    """bob muted "spoiler"; carol (whom he follows) reposts erin's "big spoiler inside": bob's
    home feed leaves the repost out (it would show the original's text), as it leaves out the
    original."""
    carol = await make_user("carol")
    erin = await make_user("erin")
    original = await post(client, erin, content="big spoiler inside")
    await act(client, carol, "POST", f"/api/posts/{original['id']}/repost")
    await post(client, carol, content="carol speaks")
    await mute_word(client, bob, "spoiler")
    await follow(client, bob, carol)
    home = await feed_page(client, bob)
    shown = [
        text
        for item in home["items"]
        for text in (item["content"], (item.get("original_post") or {}).get("content"))
        if text
    ]
    assert shown == ["carol speaks"]
