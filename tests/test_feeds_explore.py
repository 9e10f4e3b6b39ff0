"""Explore through HTTP: recent public posts of accounts you do not follow, ranked by
engagement and recency, without blocked (either way), muted, hidden, private-account,
followers-only or too old posts; served from a snapshot cached on the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from server.clock import ManualClock
from tests.feeds_support import FEED_SETTINGS, act, contents, feed, settle
from tests.helpers import expect_problem
from tests.notifications_support import ctx_of
from tests.posts_support import block, follow, make_private, post
from tests.search_support import mute_word

pytestmark = pytest.mark.app_settings(**FEED_SETTINGS)
EXPLORE = "/api/posts/explore"


async def test_explore_ranks_and_filters(client, alice, bob, make_user) -> None:
    names = ("carol", "dave", "erin", "frank", "gina", "harry", "ivan", "fan1", "fan2", "fan3")
    carol, dave, erin, frank, gina, harry, ivan, *fans = [await make_user(n) for n in names]
    now = datetime.now(UTC)
    clock = ManualClock(now - timedelta(hours=60))
    ctx_of(client).clock = clock
    await post(client, ivan, content="too old")
    clock.set(now - timedelta(hours=40))
    await post(client, carol, content="quiet")
    clock.set(now - timedelta(hours=2))
    liked = await post(client, dave, content="liked")
    for fan in fans:
        await act(client, fan, "POST", f"/api/posts/{liked['id']}/like")
    clock.set(now)
    await post(client, erin, content="fresh")
    await follow(client, alice, bob)
    await post(client, bob, content="followed already")
    await post(client, alice, content="my own")
    await make_private(client, frank)
    await post(client, frank, content="private account")
    await post(client, gina, content="blocked me")
    await block(client, gina, alice)
    await post(client, harry, content="muted")
    await act(client, alice, "POST", f"/api/users/{harry.id}/mute")
    hidden = await post(client, carol, content="hidden")
    await act(client, alice, "POST", f"/api/posts/{hidden['id']}/hide")
    await post(client, erin, content="friends only", visibility="followers")
    # (likes + 2 comments + 3 reposts + 1) / (age_h + 2) ^ 1.5: 4/8 > 1/2.8 > 1/272.
    assert await contents(client, alice, EXPLORE) == ["liked", "fresh", "quiet"]
    ranked = await feed(client, alice, EXPLORE)
    for limit in (1, 2):
        assert await feed(client, alice, EXPLORE, limit=limit) == ranked
    # bob sees alice's post (he does not follow her) and not his own.
    assert "my own" in await contents(client, bob, EXPLORE)
    assert "followed already" not in await contents(client, bob, EXPLORE)
    # A snapshot, not a query per request: a new post waits for the next snapshot.
    await post(client, ivan, content="brand new")
    assert "brand new" not in await contents(client, alice, EXPLORE)
    clock.advance(seconds=61)
    assert "brand new" in await contents(client, alice, EXPLORE)
    await expect_problem(await client.get(f"{EXPLORE}?cursor=bogus", headers=alice.auth), 422)
    await expect_problem(
        await client.get(f"{EXPLORE}?cursor=WyJ4IiwieSJd", headers=alice.auth), 422
    )


async def test_muted_words_leave_every_feed(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    await follow(client, alice, bob)
    assert await contents(client, alice) == []
    await post(client, bob, content="big #spoiler inside")
    await post(client, bob, content="harmless")
    await post(client, carol, content="another #spoiler here")
    await post(client, carol, content="nothing to see")
    await settle(client)
    await mute_word(client, alice, "spoiler")
    assert await contents(client, alice) == ["harmless"]
    assert await contents(client, alice, EXPLORE) == ["nothing to see"]
    await expect_problem(
        await client.get("/api/hashtags/spoiler/posts?cursor=x", headers=alice.auth), 422
    )
    assert await contents(client, alice, "/api/hashtags/spoiler/posts") == []
    assert len(await contents(client, bob, "/api/hashtags/spoiler/posts")) == 2
