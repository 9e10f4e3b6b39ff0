"""Lists through HTTP: create, read, rename, delete, private / public, members (only accounts
the owner can see) and the list feed with every visibility rule for its reader."""

from __future__ import annotations

import uuid

from tests.helpers import expect_problem
from tests.posts_support import block, follow, make_private, post
from tests.search_support import add_member, feed_contents, list_feed, make_list, mute_word


async def test_create_read_rename_delete(client, alice, bob) -> None:
    created = await make_list(client, alice, "  Tech   people ", description="who I read")
    assert created["name"] == "Tech people" and created["is_owner"]
    assert created["members_count"] == 0 and created["is_private"] is False
    second = await make_list(client, alice, "Food", is_private=True)
    mine = await (await client.get("/api/lists", headers=alice.auth)).json()
    assert [i["name"] for i in mine["items"]] == ["Food", "Tech people"]
    theirs = await (await client.get("/api/lists", headers=bob.auth)).json()
    assert theirs["items"] == []
    resp = await client.patch(
        f"/api/lists/{created['id']}", json={"name": "Tech", "is_private": True}, headers=alice.auth
    )
    changed = await resp.json()
    assert resp.status == 200 and changed["name"] == "Tech" and changed["is_private"]
    assert changed["description"] == "who I read"
    resp = await client.delete(f"/api/lists/{second['id']}", headers=alice.auth)
    assert resp.status == 204
    resp = await client.get(f"/api/lists/{second['id']}", headers=alice.auth)
    await expect_problem(resp, 404)


async def test_private_lists_are_404_to_others_public_ones_read_only(client, alice, bob) -> None:
    private = await make_list(client, alice, "Secret", is_private=True)
    public = await make_list(client, alice, "Open")
    for path in ("", "/feed", "/members"):
        resp = await client.get(f"/api/lists/{private['id']}{path}", headers=bob.auth)
        await expect_problem(resp, 404)
    seen = await (await client.get(f"/api/lists/{public['id']}", headers=bob.auth)).json()
    assert seen["name"] == "Open" and seen["is_owner"] is False
    resp = await client.patch(f"/api/lists/{public['id']}", json={"name": "x"}, headers=bob.auth)
    await expect_problem(resp, 403)
    resp = await client.delete(f"/api/lists/{public['id']}", headers=bob.auth)
    await expect_problem(resp, 403)
    resp = await client.patch(f"/api/lists/{private['id']}", json={"name": "x"}, headers=bob.auth)
    await expect_problem(resp, 404)
    await add_member(client, bob, public["id"], bob, expect=403)
    # A block either way hides even a public list.
    await block(client, bob, alice)
    resp = await client.get(f"/api/lists/{public['id']}", headers=bob.auth)
    await expect_problem(resp, 404)


async def test_members_only_accounts_the_owner_can_see(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    dave = await make_user("dave")
    mine = await make_list(client, alice)
    assert (await add_member(client, alice, mine["id"], bob))["added"] is True
    assert (await add_member(client, alice, mine["id"], bob))["added"] is False
    await block(client, carol, alice)  # carol blocked alice: alice cannot add her
    await add_member(client, alice, mine["id"], carol, expect=404)
    await block(client, alice, dave)  # nor someone she blocked
    await add_member(client, alice, mine["id"], dave, expect=404)
    resp = await client.post(
        f"/api/lists/{mine['id']}/members", json={"user_id": str(uuid.uuid4())}, headers=alice.auth
    )
    await expect_problem(resp, 404)
    got = await (await client.get(f"/api/lists/{mine['id']}", headers=alice.auth)).json()
    assert got["members_count"] == 1
    members = await (
        await client.get(f"/api/lists/{mine['id']}/members", headers=alice.auth)
    ).json()
    assert [m["username"] for m in members["items"]] == ["bob"]
    resp = await client.delete(f"/api/lists/{mine['id']}/members/{bob.id}", headers=alice.auth)
    assert resp.status == 204
    resp = await client.delete(f"/api/lists/{mine['id']}/members/{bob.id}", headers=alice.auth)
    await expect_problem(resp, 404)
    got = await (await client.get(f"/api/lists/{mine['id']}", headers=alice.auth)).json()
    assert got["members_count"] == 0


async def test_feed_is_members_posts_newest_first_in_pages(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    outsider = await make_user("outsider")
    mine = await make_list(client, alice)
    await add_member(client, alice, mine["id"], bob)
    await add_member(client, alice, mine["id"], carol)
    for i in range(3):
        await post(client, bob, content=f"bob {i}")
        await post(client, carol, content=f"carol {i}")
    await post(client, outsider, content="not on the list")
    expected = ["carol 2", "bob 2", "carol 1", "bob 1", "carol 0", "bob 0"]
    assert await feed_contents(client, alice, mine["id"]) == expected
    seen, cursor = [], None
    while True:
        page = await list_feed(
            client, alice, mine["id"], limit=4, **({"cursor": cursor} if cursor else {})
        )
        seen += [i["content"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == expected
    await expect_problem(
        await client.get(
            f"/api/lists/{mine['id']}/feed", params={"cursor": "nope"}, headers=alice.auth
        ),
        422,
    )
    await expect_problem(
        await client.get(f"/api/lists/{uuid.uuid4()}/feed", headers=alice.auth), 404
    )
    await expect_problem(await client.get("/api/lists/not-a-uuid/feed", headers=alice.auth), 422)
    # Removing a member takes their posts out.
    await client.delete(f"/api/lists/{mine['id']}/members/{carol.id}", headers=alice.auth)
    assert await feed_contents(client, alice, mine["id"]) == ["bob 2", "bob 1", "bob 0"]


async def test_feed_applies_every_visibility_rule_for_its_reader(
    client, alice, bob, make_user
) -> None:
    carol, dave, erin, reader = [await make_user(n) for n in ("carol", "dave", "erin", "reader")]
    public = await make_list(client, alice, "Everyone")
    for member in (bob, carol, dave, erin):
        await add_member(client, alice, public["id"], member)
    await post(client, bob, content="bob public")
    await post(client, bob, content="bob followers", visibility="followers")
    await post(client, bob, content="bob private", visibility="private")
    gone = await post(client, bob, content="bob deleted")
    await client.delete(f"/api/posts/{gone['id']}", headers=bob.auth)
    await make_private(client, carol)
    await post(client, carol, content="carol locked")
    await post(client, dave, content="dave spoiler alert")
    await post(client, dave, content="dave plain")
    hidden = await post(client, erin, content="erin hidden")
    await post(client, erin, content="erin shown")
    # The reader follows bob (sees followers-only), not carol (private account).
    await follow(client, reader, bob)
    await mute_word(client, reader, "Spoiler")
    await client.post(f"/api/posts/{hidden['id']}/hide", headers=reader.auth)
    contents = await feed_contents(client, reader, public["id"])
    assert contents == ["erin shown", "dave plain", "bob followers", "bob public"]
    # Mutes and blocks, either way.
    resp = await client.post(f"/api/users/{erin.id}/mute", headers=reader.auth)
    assert resp.status in (200, 204)
    await block(client, dave, reader)
    assert await feed_contents(client, reader, public["id"]) == ["bob followers", "bob public"]
    await block(client, reader, bob)
    assert await feed_contents(client, reader, public["id"]) == []
    # The owner sees what they may see: carol's locked post needs an approved follow.
    await follow(client, alice, carol)
    owner_view = await feed_contents(client, alice, public["id"])
    assert "carol locked" in owner_view and "bob private" not in owner_view
    assert "dave spoiler alert" in owner_view  # the reader's muted words are theirs only


async def test_feed_page_is_exact_when_one_member_posts_most(client, alice, make_user) -> None:
    # Each member's scan reads a share of the page (2 of 6 here, with 10 members); a member who
    # fills their share makes the page read again with more, so nothing is skipped.
    members = [await make_user(f"mem{i}") for i in range(10)]
    mine = await make_list(client, alice)
    for member in members:
        await add_member(client, alice, mine["id"], member)
        await post(client, member, content=f"old {member.username}")
    for i in range(8):
        await post(client, members[0], content=f"burst {i}")
    page = await list_feed(client, alice, mine["id"], limit=5)
    assert [i["content"] for i in page["items"]] == [f"burst {i}" for i in (7, 6, 5, 4, 3)]
    rest = await list_feed(client, alice, mine["id"], limit=5, cursor=page["next_cursor"])
    assert [i["content"] for i in rest["items"]] == [
        "burst 2",
        "burst 1",
        "burst 0",
        "old mem9",
        "old mem8",
    ]


async def _repost(client, reposter, original) -> None:
    resp = await client.post(f"/api/posts/{original['id']}/repost", headers=reposter.auth)
    assert resp.status == 201, await resp.text()


def _shown_text(page: dict) -> list[str]:
    return [
        text
        for item in page["items"]
        for text in (item["content"], (item.get("original_post") or {}).get("content"))
        if text
    ]


async def test_list_feed_hides_reposts_of_muted_authors_muted_words_and_blockers(
    client, alice, bob, make_user
) -> None:
    """GET /api/lists/{id}/feed: carol, a member of alice's public list, reposts posts by dave
    (bob muted him), by erin ("spoiler", a word bob muted) and by frank (who blocked bob). Bob
    sees none of the three (as in his home feed), neither the muted texts nor an empty
    "unavailable" repost of frank's post."""
    carol, dave, erin, frank = [await make_user(n) for n in ("carol", "dave", "erin", "frank")]
    await _repost(client, carol, await post(client, dave, content="dave talks"))
    await _repost(client, carol, await post(client, erin, content="big spoiler inside"))
    await _repost(client, carol, await post(client, frank, content="frank thinks"))
    resp = await client.post(f"/api/users/{dave.id}/mute", headers=bob.auth)
    assert resp.status in (200, 201, 204), await resp.text()
    await mute_word(client, bob, "spoiler")
    await block(client, frank, bob)
    listed = await make_list(client, alice, "pub")
    await add_member(client, alice, listed["id"], carol)
    page = await (await client.get(f"/api/lists/{listed['id']}/feed", headers=bob.auth)).json()
    assert page["items"] == [], _shown_text(page)
    # alice muted nobody: she still sees carol's three reposts.
    mine = await (await client.get(f"/api/lists/{listed['id']}/feed", headers=alice.auth)).json()
    assert len(mine["items"]) == 3, mine
