"""Live feed pushes over the gateway, on the memory and the Redis bus: followers of an author
below the fan-out threshold get `feed.post` in their own event log from the fan-out job;
followers of an author past it subscribe to `feed:<author_id>` (listed in the home feed's
`live_topics`) and get one topic event per post; deletions retract with `feed.post_removed`.
Private posts are never pushed; strangers cannot subscribe."""

from __future__ import annotations

import pytest

from tests.feeds_support import FEED_SETTINGS, act, contents, feed_page, settle
from tests.gateway_support import connect
from tests.posts_support import block, follow, make_private, post

pytestmark = pytest.mark.app_settings(**FEED_SETTINGS)


async def events_of(sock, wait_s: float = 1.0) -> list[dict]:
    """Every event frame that arrives until the socket stays quiet for `wait_s`."""
    frames = []
    while True:
        try:
            frame = await sock.expect("event", wait_s=wait_s)
        except TimeoutError:
            return frames
        if frame["t"].startswith("feed."):
            frames.append(frame)


async def test_pushes_to_followers_of_a_small_author(
    client, bus_engine, alice, bob, make_user
) -> None:
    carol = await make_user("carol")
    await follow(client, alice, bob)
    sock = await connect(client, alice.token)
    other = await connect(client, carol.token)  # online, not a follower
    created = await post(client, bob, content="hello followers")
    await post(client, bob, content="just me", visibility="private")
    await settle(client)
    [event] = await events_of(sock)
    assert event["t"] == "feed.post" and event["d"]["post_id"] == created["id"]
    assert event["d"]["author_id"] == bob.id and "s" in event  # in alice's ordered log
    assert "hello" not in str(event["d"])  # ids only: the client fetches the post
    assert await events_of(other, wait_s=0.3) == []
    await act(client, bob, "DELETE", f"/api/posts/{created['id']}")
    await settle(client)
    [removed] = await events_of(sock)
    assert removed["t"] == "feed.post_removed" and removed["d"]["post_id"] == created["id"]
    await sock.close()
    await other.close()


async def test_one_topic_event_for_an_author_past_the_threshold(
    client, bus_engine, alice, bob, make_user
) -> None:
    star = await make_user("star")
    stranger = await make_user("stranger")
    for user in (alice, bob, await make_user("fan")):
        await follow(client, user, star)
    topics = (await feed_page(client, alice))["live_topics"]
    assert topics == [f"feed:{star.id}"]
    sock = await connect(client, alice.token)
    await sock.send({"op": "subscribe", "id": "s1", "d": {"topic": topics[0]}})
    assert (await sock.expect("reply"))["d"]["ok"]
    # Only followers (and the author) may listen.
    spy = await connect(client, stranger.token)
    await spy.send({"op": "subscribe", "id": "s1", "d": {"topic": topics[0]}})
    assert not (await spy.expect("reply"))["d"]["ok"]
    created = await post(client, star, content="to everyone at once")
    # No job needed: the topic event was staged with the post.
    [event] = await events_of(sock)
    assert event["t"] == "feed.post" and event["d"]["post_id"] == created["id"]
    assert "s" not in event  # a topic event, not one per follower
    await act(client, star, "DELETE", f"/api/posts/{created['id']}")
    [removed] = await events_of(sock)
    assert removed["t"] == "feed.post_removed" and removed["d"]["post_id"] == created["id"]
    await settle(client)
    await sock.close()
    await spy.close()


async def test_feed_post_event_skips_a_follower_blocked_by_a_co_author(
    client, bus_engine, alice, bob, make_user
) -> None:
    """bob follows alice; carol blocked bob; alice publishes a post co-authored by carol (alice
    below the fan-out threshold). bob may not see the post (404), and his live session gets no
    `feed.post` naming it (nor carol) either: the fan-out leaves out followers blocked either
    way by any of the post's authors, timeline included."""
    carol = await make_user("carol")
    await follow(client, bob, alice)
    await block(client, carol, bob)
    assert await contents(client, bob) == []  # builds bob's timeline
    sock = await connect(client, bob.token)
    created = await post(client, alice, content="together", collaborator_ids=[carol.id])
    await act(client, carol, "POST", f"/api/posts/{created['id']}/collaboration/accept")
    await settle(client)
    got = await client.get(f"/api/posts/{created['id']}", headers=bob.auth)
    events = await events_of(sock)
    await sock.close()
    assert got.status == 404
    assert [e for e in events if e["d"]["post_id"] == created["id"]] == []
    assert await contents(client, bob) == []


async def test_feed_topic_event_skips_a_subscriber_blocked_by_a_co_author(
    client, bus_engine, alice, bob, make_user
) -> None:
    """bob follows star (past the threshold) and listens to feed:<star>; carol blocked bob;
    star publishes a post co-authored by carol. bob's session gets no `feed.post` for it: a
    co-authored post is not pushed on a big author's topic (a topic cannot leave one
    subscriber out); followers who may see it get it on their next feed read."""
    star = await make_user("star")
    carol = await make_user("carol")
    for user in (bob, alice, await make_user("fan2")):
        await follow(client, user, star)
    await block(client, carol, bob)
    sock = await connect(client, bob.token)
    await sock.send({"op": "subscribe", "id": "s1", "d": {"topic": f"feed:{star.id}"}})
    assert (await sock.expect("reply"))["d"]["ok"]
    created = await post(client, star, content="together", collaborator_ids=[carol.id])
    await act(client, carol, "POST", f"/api/posts/{created['id']}/collaboration/accept")
    await settle(client)
    events = await events_of(sock)
    await sock.close()
    assert [e for e in events if e["d"]["post_id"] == created["id"]] == []
    assert "together" in await contents(client, alice)  # a follower not blocked: by the pull


async def test_unfollowing_ends_the_feed_topic_subscription(
    client, bus_engine, bob, make_user
) -> None:
    """bob follows a private star past the threshold, listens to feed:<star>, then unfollows:
    star's next followers-only post (404 to bob) does not reach bob's session as `feed.post`
    (unfollowing re-checks the user's live topics, as a block does)."""
    star = await make_user("star")
    await make_private(client, star)
    fans = [await make_user(f"fan{i}") for i in range(3)]
    for user in (bob, *fans):  # still past the threshold after bob leaves
        await follow(client, user, star)
    sock = await connect(client, bob.token)
    await sock.send({"op": "subscribe", "id": "s1", "d": {"topic": f"feed:{star.id}"}})
    assert (await sock.expect("reply"))["d"]["ok"]
    resp = await client.delete(f"/api/users/{star.id}/unfollow", headers=bob.auth)
    assert resp.status in (200, 204), await resp.text()
    created = await post(client, star, content="for my followers", visibility="followers")
    await settle(client)
    got = await client.get(f"/api/posts/{created['id']}", headers=bob.auth)
    events = await events_of(sock)
    await sock.close()
    assert got.status == 404
    assert [e for e in events if e["d"]["post_id"] == created["id"]] == []
