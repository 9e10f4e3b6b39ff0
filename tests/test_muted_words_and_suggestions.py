"""Muted words (keyword filters) and suggested users through HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from server.clock import ManualClock
from tests.helpers import expect_problem
from tests.notifications_support import ctx_of
from tests.posts_support import block, follow, post
from tests.search_support import found_posts, mute_word


async def test_muted_words_are_whole_words_any_case_and_nfc(client, alice, bob) -> None:
    await post(client, alice, content="Big SPOILER inside")
    await post(client, alice, content="spoilers are fine")
    await post(client, alice, content="a #Spoiler tag")
    await post(client, alice, content="season finale tonight")
    await post(client, alice, content="the season and the finale")
    await post(client, alice, content="Cafe\u0301 culture")  # decomposed é
    await mute_word(client, bob, "spoiler")
    await mute_word(client, bob, "Season Finale")
    word = await mute_word(client, bob, "CAFÉ")
    assert word["phrase"] == "café" and word["created"] is True
    remaining = await found_posts(client, bob, "spoiler season cafe a", history="false")
    assert remaining == []
    assert sorted(
        [*await found_posts(client, bob, "spoilers"), *await found_posts(client, bob, "season")]
    ) == ["spoilers are fine", "the season and the finale"]
    # The author still finds their own posts.
    assert len(await found_posts(client, alice, "spoiler")) == 3


async def test_muted_words_crud_and_expiry(client, alice, bob) -> None:
    clock = ManualClock(datetime.now(UTC))
    ctx_of(client).clock = clock
    await post(client, alice, content="election results")
    week = await mute_word(
        client, bob, "election", expires_at=(clock.now() + timedelta(days=7)).isoformat()
    )
    again = await mute_word(client, bob, "ELECTION")  # same phrase: expiry updated, not doubled
    assert again["created"] is False and again["id"] == week["id"] and again["expires_at"] is None
    resp = await client.patch(
        f"/api/users/me/muted-words/{week['id']}",
        json={"expires_at": (clock.now() + timedelta(hours=1)).isoformat()},
        headers=bob.auth,
    )
    assert resp.status == 200
    assert await found_posts(client, bob, "results") == []
    clock.advance(timedelta(hours=2))  # expired: the post shows again, the word is not listed
    assert await found_posts(client, bob, "results") == ["election results"]
    listed = await (await client.get("/api/users/me/muted-words", headers=bob.auth)).json()
    assert listed["items"] == []
    other = await mute_word(client, bob, "results")
    listed = await (await client.get("/api/users/me/muted-words", headers=bob.auth)).json()
    assert [w["phrase"] for w in listed["items"]] == ["results"]
    resp = await client.delete(f"/api/users/me/muted-words/{other['id']}", headers=alice.auth)
    await expect_problem(resp, 404)  # not alice's
    resp = await client.delete(f"/api/users/me/muted-words/{other['id']}", headers=bob.auth)
    assert resp.status == 204
    assert await found_posts(client, bob, "results") == ["election results"]


async def test_bad_muted_words_are_problems(client, bob) -> None:
    for body in (
        {"phrase": ""},
        {"phrase": "!!!"},
        {"phrase": "x" * 101},
        {"phrase": "ok", "expires_at": "2000-01-01T00:00:00Z"},
        {"phrase": "ok", "expires_at": "2000-01-01T00:00:00"},  # no zone: UTC, in the past
        {"phrase": "ok", "extra": 1},
    ):
        resp = await client.post("/api/users/me/muted-words", json=body, headers=bob.auth)
        await expect_problem(resp, 422)
    resp = await client.delete(f"/api/users/me/muted-words/{uuid.uuid4()}", headers=bob.auth)
    await expect_problem(resp, 404)


async def _suggested(client, user) -> list[tuple[str, int]]:
    resp = await client.get("/api/users/suggestions", headers=user.auth)
    data = await resp.json()
    assert resp.status == 200, data
    return [(item["username"], item["mutuals"]) for item in data["items"]]


async def test_suggestions_friends_of_friends_first_with_exclusions(
    client, alice, bob, make_user
) -> None:
    carol, dave, erin, frank, gina = [
        await make_user(n) for n in ("carol", "dave", "erin", "frank", "gina")
    ]
    # alice follows bob and carol; both follow dave, bob follows erin.
    for follower, followed in (
        (alice, bob),
        (alice, carol),
        (bob, dave),
        (carol, dave),
        (bob, erin),
        (bob, frank),
        (bob, gina),
    ):
        await follow(client, follower, followed)
    resp = await client.post(f"/api/users/{frank.id}/mute", headers=alice.auth)
    assert resp.status in (200, 204)
    await block(client, gina, alice)
    got = await _suggested(client, alice)
    names = [name for name, _ in got]
    assert got[:2] == [("dave", 2), ("erin", 1)]
    for excluded in ("alice", "bob", "carol", "frank", "gina"):
        assert excluded not in names, excluded
    # Following a suggestion takes it out at once, despite the cache.
    await follow(client, alice, dave)
    assert "dave" not in [name for name, _ in await _suggested(client, alice)]
    # A newcomer with no network is offered popular public accounts (dave: 3 followers).
    newcomer = await make_user("newcomer")
    assert (await _suggested(client, newcomer))[0] == ("dave", 0)


async def test_muted_word_expiry_past_year_9999_in_utc_is_a_422_not_a_500(client, bob) -> None:
    """POST /api/users/me/muted-words with expires_at 9999-12-31T23:59:59-14:00 (valid ISO;
    its UTC instant is in year 10000, which PostgreSQL stores and Python cannot read back):
    a clear 422 naming the field, not a 500 that would also break bob's muted-word list; the
    same for PATCH."""
    body = {"phrase": "spoilers", "expires_at": "9999-12-31T23:59:59-14:00"}
    resp = await client.post("/api/users/me/muted-words", json=body, headers=bob.auth)
    assert resp.status == 422, await resp.text()
    assert "expires_at" in await resp.text()
    created = await client.post(
        "/api/users/me/muted-words", json={"phrase": "spoilers"}, headers=bob.auth
    )
    assert created.status == 201, await created.text()
    word_id = (await created.json())["id"]
    patch = await client.patch(
        f"/api/users/me/muted-words/{word_id}",
        json={"expires_at": "9999-12-31T23:59:59-14:00"},
        headers=bob.auth,
    )
    assert patch.status == 422, await patch.text()
    listed = await client.get("/api/users/me/muted-words", headers=bob.auth)
    assert listed.status == 200, await listed.text()
