"""Live feed pushes over the gateway, on the memory and the Redis bus: followers of an author
below the fan-out threshold get `feed.post` in their own event log from the fan-out job;
followers of an author past it subscribe to `feed:<author_id>` (listed in the home feed's
`live_topics`) and get one topic event per post; deletions retract with `feed.post_removed`.
Private posts are never pushed; strangers cannot subscribe."""

from __future__ import annotations

import pytest

from tests.feeds_support import FEED_SETTINGS, act, feed_page, settle
from tests.gateway_support import connect
from tests.posts_support import follow, post

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
