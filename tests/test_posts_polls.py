"""Polls through HTTP and the gateway: create with a post, vote and change, multiple choice,
results, close early, expiry through the job queue, live results coalesced, every bad input."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from server.clock import ManualClock
from server.domain.auth_tokens import Principal
from server.domain.posts import polls
from server.domain.posts.commands import VoteIn
from tests.gateway_support import connect
from tests.helpers import expect_problem
from tests.notifications_support import ctx_of, insert_users, run_jobs
from tests.posts_support import block, get_post, post


async def poll_post(client, user, **poll) -> dict:
    poll.setdefault("options", ["Red", "Blue", "Green"])
    return await post(client, user, content="Which colour?", poll=poll)


async def test_vote_change_and_results(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    created = await poll_post(client, alice)
    assert created["post_type"] == "poll"
    poll = created["poll"]
    assert poll["status"] == "active" and [o["text"] for o in poll["options"]] == [
        "Red",
        "Blue",
        "Green",
    ]
    red, blue, _ = (o["id"] for o in poll["options"])
    resp = await client.post(
        f"/api/polls/{poll['id']}/vote", json={"option_ids": [red]}, headers=bob.auth
    )
    assert resp.status == 200
    voted = await resp.json()
    assert voted["voted"] and voted["my_votes"] == [red] and voted["options"][0]["votes"] == 1
    again = await client.post(
        f"/api/polls/{poll['id']}/vote", json={"option_ids": [blue]}, headers=bob.auth
    )
    await expect_problem(again, 409)
    changed = await client.patch(
        f"/api/polls/{poll['id']}/vote", json={"option_ids": [blue]}, headers=bob.auth
    )
    assert (await changed.json())["my_votes"] == [blue]
    await client.post(
        f"/api/polls/{poll['id']}/vote", json={"option_ids": [blue]}, headers=carol.auth
    )
    results = await (
        await client.get(f"/api/polls/{poll['id']}/results", headers=alice.auth)
    ).json()
    assert [o["votes"] for o in results["options"]] == [0, 2, 0]
    assert results["options"][1]["percentage"] == 100.0
    assert results["total_votes"] == 2 and results["voters_count"] == 2 and not results["voted"]
    seen = await get_post(client, bob, created["id"])
    assert seen["poll"]["my_votes"] == [blue]


async def test_multiple_choice(client, alice, bob) -> None:
    created = await poll_post(client, alice, allow_multiple=True)
    ids = [o["id"] for o in created["poll"]["options"]]
    resp = await client.post(
        f"/api/polls/{created['poll']['id']}/vote", json={"option_ids": ids[:2]}, headers=bob.auth
    )
    body = await resp.json()
    assert body["total_votes"] == 2 and body["voters_count"] == 1
    assert [o["percentage"] for o in body["options"]] == [100.0, 100.0, 0.0]


async def test_bad_votes(client, alice, bob) -> None:
    first = await poll_post(client, alice)
    other = await poll_post(client, alice)
    poll_id = first["poll"]["id"]
    foreign = other["poll"]["options"][0]["id"]
    mine = [o["id"] for o in first["poll"]["options"]]
    for body in ({"option_ids": [foreign]}, {"option_ids": mine[:2]}, {"option_ids": []}, {}):
        resp = await client.post(f"/api/polls/{poll_id}/vote", json=body, headers=bob.auth)
        await expect_problem(resp, 422)
    resp = await client.post(
        f"/api/polls/{uuid.uuid4()}/vote", json={"option_ids": mine[:1]}, headers=bob.auth
    )
    await expect_problem(resp, 404)
    await block(client, alice, bob)
    resp = await client.post(
        f"/api/polls/{poll_id}/vote", json={"option_ids": mine[:1]}, headers=bob.auth
    )
    await expect_problem(resp, 404)


@pytest.mark.parametrize(
    "poll",
    [
        {"options": ["only one"]},
        {"options": [str(i) for i in range(11)]},
        {"options": ["Same", "same"]},
        {"options": ["a", ""]},
        {"options": ["a", "b"], "duration_s": 10},
    ],
)
async def test_bad_polls(client, alice, poll) -> None:
    resp = await client.post("/api/posts", json={"content": "q?", "poll": poll}, headers=alice.auth)
    await expect_problem(resp, 422)


async def test_close_early_and_no_votes_after(client, alice, bob) -> None:
    created = await poll_post(client, alice)
    poll_id = created["poll"]["id"]
    option = created["poll"]["options"][0]["id"]
    sock = await connect(client, bob.token)
    await sock.send({"op": "subscribe", "id": "s1", "d": {"topic": f"poll:{poll_id}"}})
    assert (await sock.expect("reply"))["d"]["ok"]
    await expect_problem(await client.post(f"/api/polls/{poll_id}/close", headers=bob.auth), 403)
    resp = await client.post(f"/api/polls/{poll_id}/close", headers=alice.auth)
    assert resp.status == 200 and (await resp.json())["status"] == "closed"
    event = await sock.expect("event")
    assert event["t"] == "poll.closed" and event["d"]["status"] == "closed"
    resp = await client.post(
        f"/api/polls/{poll_id}/vote", json={"option_ids": [option]}, headers=bob.auth
    )
    await expect_problem(resp, 409)
    await sock.close()


@pytest.mark.app_settings(jobs={"in_process_worker": False})  # the test runs the jobs
async def test_expiry_is_announced_once(client, alice, bob) -> None:
    clock = ManualClock(datetime.now(UTC))
    ctx_of(client).clock = clock
    created = await poll_post(client, alice, duration_s=300)
    poll = created["poll"]
    assert poll["seconds_remaining"] == 300
    sock = await connect(client, bob.token)
    await sock.send({"op": "subscribe", "id": "s1", "d": {"topic": f"poll:{poll['id']}"}})
    assert (await sock.expect("reply"))["d"]["ok"]
    clock.advance(timedelta(seconds=301))
    results = await (await client.get(f"/api/polls/{poll['id']}/results", headers=bob.auth)).json()
    assert results["status"] == "expired"
    resp = await client.post(
        f"/api/polls/{poll['id']}/vote",
        json={"option_ids": [poll["options"][0]["id"]]},
        headers=bob.auth,
    )
    await expect_problem(resp, 409)
    db = ctx_of(client).db
    await db.execute("UPDATE jobs SET run_at = now() WHERE kind = 'polls.close_expired'")
    await run_jobs(client)
    event = await sock.expect("event")
    assert event["t"] == "poll.closed"
    await db.execute(
        "INSERT INTO jobs (id, kind, payload, run_at) SELECT gen_random_uuid(), kind, payload, "
        "now() FROM jobs WHERE kind = 'polls.close_expired'"
    )
    await run_jobs(client)  # a second run announces nothing
    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        await sock.expect("event", wait_s=0.5)
    await sock.close()


async def test_concurrent_votes_are_exact_and_live_updates_coalesced(client, alice) -> None:
    created = await poll_post(client, alice)
    poll_id = uuid.UUID(created["poll"]["id"])
    options = [uuid.UUID(o["id"]) for o in created["poll"]["options"]]
    watcher_sock = await connect(client, alice.token)
    await watcher_sock.send({"op": "subscribe", "id": "s1", "d": {"topic": f"poll:{poll_id}"}})
    assert (await watcher_sock.expect("reply"))["d"]["ok"]
    ctx = ctx_of(client)
    voters = await insert_users(client, 90)
    await asyncio.gather(
        *(
            polls.vote(
                ctx,
                Principal(v, "v", ("user",)),
                poll_id,
                VoteIn(option_ids=[options[i % 3]]),
                change=False,
            )
            for i, v in enumerate(voters)
        )
    )
    events = []
    while True:
        try:
            events.append(await watcher_sock.expect("event", wait_s=2.5))
        except TimeoutError:
            break
    updates = [e for e in events if e["t"] == "poll.updated"]
    assert 1 <= len(updates) <= 4
    assert [o["votes"] for o in updates[-1]["d"]["options"]] == [30, 30, 30]
    results = await (await client.get(f"/api/polls/{poll_id}/results", headers=alice.auth)).json()
    assert results["voters_count"] == 90
    await watcher_sock.close()


async def test_gateway_vote(client, alice, bob) -> None:
    created = await poll_post(client, alice)
    sock = await connect(client, bob.token)
    reply = await sock.call(
        "polls.vote",
        poll_id=created["poll"]["id"],
        option_ids=[created["poll"]["options"][2]["id"]],
    )
    assert reply["ok"] and reply["result"]["options"][2]["votes"] == 1
    await sock.close()


async def test_expiry_is_announced_once_across_two_nodes_on_redis(
    aiohttp_client, clean_db, tmp_path, redis_url, redis_prefix
) -> None:
    """Two nodes on one database and one Redis: the poll is made on A, a voter watches it on
    B; both nodes run workers; `poll.closed` reaches B's socket exactly once."""
    from server.app import create_app
    from tests.helpers import make_settings, register

    nodes = []
    for name in ("a", "b"):
        settings = make_settings(
            clean_db,
            tmp_path / name,
            redis={"url": redis_url, "prefix": redis_prefix},
            jobs={"in_process_worker": False},
        )
        nodes.append(await aiohttp_client(create_app(settings)))
    node_a, node_b = nodes
    clock = ManualClock(datetime.now(UTC))
    for node in nodes:
        ctx_of(node).clock = clock
    author = await register(node_a, "pollster")
    voter = await register(node_b, "watcher")
    created = await poll_post(node_a, author, duration_s=300)
    poll_id = created["poll"]["id"]
    sock = await connect(node_b, voter.token)
    await sock.send({"op": "subscribe", "id": "s1", "d": {"topic": f"poll:{poll_id}"}})
    assert (await sock.expect("reply"))["d"]["ok"]
    clock.advance(timedelta(seconds=301))
    await ctx_of(node_a).db.execute("UPDATE jobs SET run_at = now() WHERE status = 'queued'")
    await asyncio.gather(run_jobs(node_a), run_jobs(node_b))
    event = await sock.expect("event")
    assert event["t"] == "poll.closed" and event["d"]["id"] == poll_id
    with pytest.raises((TimeoutError, asyncio.TimeoutError)):
        await sock.expect("event", wait_s=1.0)
    await sock.close()
