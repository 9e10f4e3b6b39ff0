"""Comments through HTTP: threads with inlined replies, the depth limit, edit, delete with and
without replies, likes, mentions, notifications, blocks and visibility, bad input."""

from __future__ import annotations

import uuid

import pytest

from tests.helpers import expect_problem
from tests.posts_support import block, get_post, notification_types, post


async def comment(client, user, post_id: str, content: str, parent: str | None = None) -> dict:
    body = {"content": content, **({"parent_id": parent} if parent else {})}
    resp = await client.post(f"/api/posts/{post_id}/comments", json=body, headers=user.auth)
    data = await resp.json()
    assert resp.status == 201, data
    return data


async def thread(client, user, post_id: str, **params) -> dict:
    resp = await client.get(f"/api/posts/{post_id}/comments", params=params, headers=user.auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_threads_replies_and_counts(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    p = await post(client, alice, content="discuss")
    first = await comment(client, bob, p["id"], "first! @carol")
    second = await comment(client, carol, p["id"], "second")
    replies = [await comment(client, alice, p["id"], f"reply {i}", first["id"]) for i in range(5)]
    assert replies[0]["depth"] == 1 and replies[0]["parent_id"] == first["id"]
    page = await thread(client, carol, p["id"])
    assert [c["content"] for c in page["items"]] == ["first! @carol", "second"]
    top = page["items"][0]
    assert top["replies_count"] == 5
    assert [r["content"] for r in top["replies"]] == ["reply 0", "reply 1", "reply 2"]
    assert [e["username"] for e in top["entities"] if e["type"] == "mention"] == ["carol"]
    more = await (
        await client.get(
            f"/api/comments/{first['id']}/replies", params={"limit": 2}, headers=carol.auth
        )
    ).json()
    rest = await (
        await client.get(
            f"/api/comments/{first['id']}/replies",
            params={"cursor": more["next_cursor"]},
            headers=carol.auth,
        )
    ).json()
    assert [r["content"] for r in more["items"] + rest["items"]] == [f"reply {i}" for i in range(5)]
    assert (await get_post(client, bob, p["id"]))["comments_count"] == 7
    assert "comment_post" in await notification_types(client, alice)
    assert "reply_comment" in await notification_types(client, bob)
    assert "mention_comment" in await notification_types(client, carol)
    # /reply is the same as parent_id.
    resp = await client.post(
        f"/api/comments/{second['id']}/reply", json={"content": "hi"}, headers=bob.auth
    )
    assert resp.status == 201 and (await resp.json())["parent_id"] == second["id"]


@pytest.mark.app_settings(posts={"comment_max_depth": 2})
async def test_replies_past_the_depth_limit_attach_to_the_deepest_allowed(client, alice) -> None:
    p = await post(client, alice, content="deep")
    level0 = await comment(client, alice, p["id"], "0")
    level1 = await comment(client, alice, p["id"], "1", level0["id"])
    level2 = await comment(client, alice, p["id"], "2", level1["id"])
    level3 = await comment(client, alice, p["id"], "3?", level2["id"])
    assert level2["depth"] == 2
    assert level3["depth"] == 2 and level3["parent_id"] == level1["id"]


async def test_edit_and_delete(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    p = await post(client, alice, content="post")
    parent = await comment(client, bob, p["id"], "parent")
    child = await comment(client, carol, p["id"], "child", parent["id"])
    lonely = await comment(client, carol, p["id"], "lonely")
    resp = await client.patch(
        f"/api/comments/{parent['id']}", json={"content": "parent (edited)"}, headers=bob.auth
    )
    edited = await resp.json()
    assert resp.status == 200 and edited["is_edited"] and edited["content"] == "parent (edited)"
    resp = await client.patch(
        f"/api/comments/{parent['id']}", json={"content": "x"}, headers=carol.auth
    )
    await expect_problem(resp, 403)
    # Someone else's comment on someone else's post: no.
    await expect_problem(
        await client.delete(f"/api/comments/{lonely['id']}", headers=bob.auth), 403
    )
    # With replies: a placeholder. Without: gone. The post's author may delete any comment.
    assert (await client.delete(f"/api/comments/{parent['id']}", headers=bob.auth)).status == 204
    assert (await client.delete(f"/api/comments/{lonely['id']}", headers=alice.auth)).status == 204
    page = await thread(client, alice, p["id"])
    assert len(page["items"]) == 1
    placeholder = page["items"][0]
    assert placeholder["is_deleted"] and placeholder["content"] == "[deleted]"
    assert placeholder["author"] is None
    assert [r["content"] for r in placeholder["replies"]] == ["child"]
    assert (await get_post(client, alice, p["id"]))["comments_count"] == 1
    # The last reply goes: the placeholder goes too.
    assert (await client.delete(f"/api/comments/{child['id']}", headers=carol.auth)).status == 204
    assert (await thread(client, alice, p["id"]))["items"] == []
    await expect_problem(await client.get(f"/api/comments/{parent['id']}", headers=alice.auth), 404)


async def test_comment_likes(client, alice, bob) -> None:
    p = await post(client, alice, content="post")
    c = await comment(client, alice, p["id"], "like this comment")
    for _ in range(2):
        resp = await client.post(f"/api/comments/{c['id']}/like", headers=bob.auth)
        assert (await resp.json())["likes_count"] == 1
    assert "like_comment" in await notification_types(client, alice)
    page = await thread(client, bob, p["id"])
    assert page["items"][0]["liked"] and page["items"][0]["likes_count"] == 1
    resp = await client.delete(f"/api/comments/{c['id']}/unlike", headers=bob.auth)
    assert (await resp.json())["likes_count"] == 0
    assert "like_comment" not in await notification_types(client, alice)


async def test_blocks_and_visibility(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    p = await post(client, alice, content="public post")
    from_carol = await comment(client, carol, p["id"], "carol says hi")
    await block(client, bob, carol)
    # bob does not see carol's comment; carol cannot comment on bob's posts.
    assert [c["content"] for c in (await thread(client, bob, p["id"]))["items"]] == []
    bobs = await post(client, bob, content="bob's post")
    resp = await client.post(
        f"/api/posts/{bobs['id']}/comments", json={"content": "hey"}, headers=carol.auth
    )
    await expect_problem(resp, 404)
    private = await post(client, alice, content="mine", visibility="private")
    resp = await client.post(
        f"/api/posts/{private['id']}/comments", json={"content": "x"}, headers=bob.auth
    )
    await expect_problem(resp, 404)
    await expect_problem(
        await client.get(f"/api/posts/{private['id']}/comments", headers=bob.auth), 404
    )
    assert from_carol["id"]


async def test_bad_input(client, alice, bob) -> None:
    p = await post(client, alice, content="p")
    other = await post(client, alice, content="other")
    elsewhere = await comment(client, alice, other["id"], "on the other post")
    for body, status in (
        ({"content": ""}, 422),
        ({"content": "\u200b"}, 422),
        ({"content": "x" * 5001}, 422),
        ({"content": "x", "parent_id": elsewhere["id"]}, 404),
        ({"content": "x", "parent_id": str(uuid.uuid4())}, 404),
        ({"content": "x", "extra": 1}, 422),
    ):
        resp = await client.post(f"/api/posts/{p['id']}/comments", json=body, headers=bob.auth)
        await expect_problem(resp, status)
    resp = await client.post(
        f"/api/posts/{uuid.uuid4()}/comments", json={"content": "x"}, headers=bob.auth
    )
    await expect_problem(resp, 404)


@pytest.mark.app_settings(rate_limits={"comment": {"count": 2, "window_s": 3600}})
async def test_comments_are_rate_limited(client, alice, bob) -> None:
    p = await post(client, alice, content="p")
    for i in range(2):
        await comment(client, bob, p["id"], f"c{i}")
    resp = await client.post(
        f"/api/posts/{p['id']}/comments", json={"content": "c"}, headers=bob.auth
    )
    await expect_problem(resp, 429)
