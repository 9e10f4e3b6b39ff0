"""Posts through HTTP: create and read, entities, visibility (audiences, private accounts,
blocks), drafts, scheduling, edit history, deletion and purge, limits and bad input."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from server.clock import ManualClock
from server.jobs.queue import enqueue
from tests.helpers import expect_problem
from tests.notifications_support import ctx_of, run_jobs
from tests.posts_support import (
    block,
    follow,
    get_post,
    grid,
    make_private,
    notification_types,
    post,
)


async def test_create_and_read_a_post(client, alice, bob) -> None:
    created = await post(client, alice, content="  First post!  ", visibility="public")
    assert created["content"] == "First post!"  # surrounding whitespace trimmed
    assert created["status"] == "published" and created["published_at"]
    assert created["author"]["username"] == "alice"
    assert created["byline"] == "By @alice"
    assert created["post_type"] == "text" and not created["is_edited"]
    seen = await get_post(client, bob, created["id"])
    assert seen["content"] == "First post!" and seen["likes_count"] == 0
    uuid.UUID(seen["id"])  # a UUID (v7: time-ordered)
    assert uuid.UUID(seen["id"]).version == 7
    profile = await (await client.get("/api/users/alice", headers=bob.auth)).json()
    assert profile["posts_count"] == 1


async def test_entities_with_offsets_in_code_points(client, alice, bob) -> None:
    text = (
        "👋🏽 hi @bob and @nobody_here! #Café #cafe\u0301 #2024 e@mail.com https://x.test/a_(b) #ok"
    )
    created = await post(client, alice, content=text)
    entities = created["entities"]
    for entity in entities:  # each span is exactly the text it names
        assert text[entity["start"] : entity["end"]] == entity["text"]
    mentions = [e for e in entities if e["type"] == "mention"]
    assert [(m["username"], m["user_id"]) for m in mentions] == [("bob", bob.id)]
    assert mentions[0]["start"] == 6  # wave + skin tone + space + "hi " are 6 code points
    tags = [e["tag"] for e in entities if e["type"] == "hashtag"]
    assert tags == ["café", "café", "ok"]  # NFC + case folded; "#2024" is not a tag
    urls = [e["url"] for e in entities if e["type"] == "url"]
    assert urls == ["https://x.test/a_(b)"]
    assert "mention_post" in await notification_types(client, bob)
    tag = await (await client.get("/api/posts/" + created["id"], headers=bob.auth)).json()
    assert tag["entities"] == entities


async def test_only_http_urls_become_links(client, alice) -> None:
    created = await post(client, alice, content="see javascript:alert(1) and ftp://x.test")
    assert [e for e in created["entities"] if e["type"] == "url"] == []


async def test_mentions_do_not_reach_across_blocks(client, alice, bob) -> None:
    await block(client, bob, alice)
    created = await post(client, alice, content="hey @bob")
    assert [e for e in created["entities"] if e["type"] == "mention"] == []
    assert "mention_post" not in await notification_types(client, bob)


async def test_audiences_and_private_accounts(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    public = await post(client, alice, content="for everyone")
    followers = await post(client, alice, content="for followers", visibility="followers")
    private = await post(client, alice, content="for me", visibility="private")
    await follow(client, bob, alice)
    # bob follows: public + followers; carol does not: public only; private: alice only.
    assert {p["id"] for p in (await grid(client, bob, alice))["items"]} == {
        public["id"],
        followers["id"],
    }
    assert [p["id"] for p in (await grid(client, carol, alice))["items"]] == [public["id"]]
    await get_post(client, carol, followers["id"], expect=404)
    await get_post(client, bob, private["id"], expect=404)
    assert len((await grid(client, alice, alice))["items"]) == 3
    # A private account: only approved followers see even its public posts.
    await make_private(client, alice)
    await get_post(client, carol, public["id"], expect=404)
    assert (await grid(client, carol, alice))["items"] == []
    await get_post(client, bob, public["id"])


async def test_a_block_hides_posts_both_ways(client, alice, bob) -> None:
    a = await post(client, alice, content="alice's")
    b = await post(client, bob, content="bob's")
    await block(client, alice, bob)
    await get_post(client, bob, a["id"], expect=404)
    await get_post(client, alice, b["id"], expect=404)
    resp = await client.get(f"/api/users/{alice.id}/posts", headers=bob.auth)
    await expect_problem(resp, 404)  # the blocker does not exist for the blocked
    assert (await grid(client, alice, bob))["items"] == []


async def test_drafts_never_leak(client, alice, bob) -> None:
    draft = await post(client, alice, content="secret plan #launch @bob", status="draft")
    assert draft["status"] == "draft" and draft["published_at"] is None
    await get_post(client, bob, draft["id"], expect=404)
    assert (await grid(client, bob, alice))["items"] == []
    assert (await grid(client, alice, alice))["items"] == []  # not on the profile either
    assert "mention_post" not in await notification_types(client, bob)
    drafts = await (await client.get("/api/posts/drafts", headers=alice.auth)).json()
    assert [d["id"] for d in drafts["items"]] == [draft["id"]]
    others = await (await client.get("/api/posts/drafts", headers=bob.auth)).json()
    assert others["items"] == []
    resp = await client.get("/api/hashtags/launch", headers=bob.auth)
    assert resp.status == 404  # not counted while a draft
    resp = await client.post(f"/api/posts/{draft['id']}/publish", headers=bob.auth)
    await expect_problem(resp, 404)
    published = await client.post(f"/api/posts/{draft['id']}/publish", headers=alice.auth)
    assert published.status == 200
    body = await published.json()
    assert body["status"] == "published" and body["published_at"]
    await get_post(client, bob, draft["id"])
    assert "mention_post" in await notification_types(client, bob)
    again = await client.post(f"/api/posts/{draft['id']}/publish", headers=alice.auth)
    await expect_problem(again, 409)


@pytest.mark.app_settings(jobs={"in_process_worker": False})  # the test runs the jobs
async def test_scheduled_post_goes_out_at_its_time(client, alice, bob) -> None:
    clock = ManualClock(datetime.now(UTC))
    ctx_of(client).clock = clock
    at = clock.now() + timedelta(seconds=1)
    scheduled = await post(client, alice, content="later", publish_at=at.isoformat())
    assert scheduled["status"] == "scheduled"
    await get_post(client, bob, scheduled["id"], expect=404)
    clock.advance(timedelta(seconds=2))
    await asyncio.sleep(1.2)  # the job's run_at is in real time
    await run_jobs(client)
    seen = await get_post(client, bob, scheduled["id"])
    assert seen["status"] == "published"
    past = await client.post(
        "/api/posts",
        json={"content": "x", "publish_at": (clock.now() - timedelta(hours=1)).isoformat()},
        headers=alice.auth,
    )
    await expect_problem(past, 422)


async def test_edit_keeps_history_and_marks_edited(client, alice, bob) -> None:
    created = await post(client, alice, content="version one #first")
    resp = await client.patch(
        f"/api/posts/{created['id']}", json={"content": "version two #second"}, headers=alice.auth
    )
    assert resp.status == 200, await resp.text()
    edited = await resp.json()
    assert edited["is_edited"] and edited["edit_count"] == 1 and edited["edited_at"]
    await client.patch(
        f"/api/posts/{created['id']}", json={"content": "version three"}, headers=alice.auth
    )
    history = await (
        await client.get(f"/api/posts/{created['id']}/history", headers=bob.auth)
    ).json()
    assert history["current"]["content"] == "version three"
    assert [v["content"] for v in history["items"]] == ["version two #second", "version one #first"]
    assert history["edit_count"] == 2
    # Hashtags follow the text: no post uses #first or #second any more (404).
    for tag in ("first", "second"):
        info = await client.get(f"/api/hashtags/{tag}", headers=bob.auth)
        assert info.status == 404, await info.text()
    resp = await client.patch(
        f"/api/posts/{created['id']}", json={"content": "hijack"}, headers=bob.auth
    )
    await expect_problem(resp, 403)


@pytest.mark.app_settings(jobs={"in_process_worker": False})  # the test runs the jobs
async def test_delete_hides_at_once_and_purges_after_30_days(client, alice, bob) -> None:
    clock = ManualClock(datetime.now(UTC))
    ctx_of(client).clock = clock
    created = await post(client, alice, content="short-lived #gone")
    resp = await client.delete(f"/api/posts/{created['id']}", headers=bob.auth)
    await expect_problem(resp, 403)
    resp = await client.delete(f"/api/posts/{created['id']}", headers=alice.auth)
    assert resp.status == 204
    await get_post(client, bob, created["id"], expect=404)
    await get_post(client, alice, created["id"], expect=404)
    assert (await grid(client, alice, alice))["items"] == []
    profile = await (await client.get("/api/users/alice", headers=alice.auth)).json()
    assert profile["posts_count"] == 0
    # No post uses #gone any more: the tag is not found (it was counted, then uncounted).
    info = await client.get("/api/hashtags/gone", headers=bob.auth)
    assert info.status == 404, await info.text()
    db = ctx_of(client).db
    clock.advance(timedelta(days=29))
    await enqueue(db, "posts.purge_deleted")
    await run_jobs(client)
    assert await db.fetchval("SELECT count(*) FROM posts") == 1  # kept 30 days (audit)
    clock.advance(timedelta(days=2))
    await enqueue(db, "posts.purge_deleted")
    await run_jobs(client)
    assert await db.fetchval("SELECT count(*) FROM posts") == 0


@pytest.mark.parametrize(
    "body,field",
    [
        ({"content": "x" * 5001}, "content"),
        ({"content": "   "}, "content"),
        ({"content": "\u200b\u200b"}, "content"),
        ({"content": "a", "visibility": "friends"}, "visibility"),
        ({"content": "a", "post_type": "poll"}, "post_type"),
        ({"content": "a", "product_ids": [str(uuid.uuid4())]}, "product_ids"),
        ({"content": "a", "collaborator_ids": [str(uuid.uuid4())]}, "collaborator_ids"),
        ({"content": "a", "surprise": 1}, "surprise"),
        ({"content": "a", "status": "draft", "publish_at": "2999-01-01T00:00:00Z"}, "publish_at"),
    ],
)
async def test_bad_input_is_a_clear_422(client, alice, body, field) -> None:
    resp = await client.post("/api/posts", json=body, headers=alice.auth)
    problem = await expect_problem(resp, 422)
    assert field in str(problem.get("errors") or problem["detail"])
    count = await ctx_of(client).db.fetchval("SELECT count(*) FROM posts")
    assert count == 0


async def test_bad_ids_and_cursors(client, alice) -> None:
    await expect_problem(await client.get("/api/posts/not-a-uuid", headers=alice.auth), 422)
    await expect_problem(await client.get(f"/api/posts/{uuid.uuid4()}", headers=alice.auth), 404)
    resp = await client.get(f"/api/users/{alice.id}/posts?cursor=garbage", headers=alice.auth)
    await expect_problem(resp, 422)
    await expect_problem(await client.get("/api/posts/drafts"), 401)


@pytest.mark.app_settings(rate_limits={"post": {"count": 3, "window_s": 3600}})
async def test_posting_is_rate_limited(client, alice) -> None:
    for i in range(3):
        await post(client, alice, content=f"post {i}")
    resp = await client.post("/api/posts", json={"content": "one more"}, headers=alice.auth)
    await expect_problem(resp, 429)


async def test_profile_grid_pages_newest_first(client, alice, bob) -> None:
    ids = [(await post(client, alice, content=f"post {i}"))["id"] for i in range(5)]
    first = await grid(client, bob, alice, limit=2)
    second = await grid(client, bob, alice, limit=2, cursor=first["next_cursor"])
    third = await grid(client, bob, alice, limit=2, cursor=second["next_cursor"])
    got = [p["id"] for page in (first, second, third) for p in page["items"]]
    assert got == list(reversed(ids))
    assert third["next_cursor"] is None
    by_name = await (await client.get("/api/users/alice/posts", headers=bob.auth)).json()
    assert len(by_name["items"]) == 5
