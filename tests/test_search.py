"""Search through HTTP: users, posts, hashtags, commerce-linked posts and everything at once;
visibility (blocks both ways, private accounts, followers-only, deleted, muted accounts and
words, hidden posts), ranking a user notices, highlights, history and bad input."""

from __future__ import annotations

import pytest

from tests.commerce_support import COMMERCE_SETTINGS
from tests.helpers import expect_problem
from tests.posts_support import block, follow, make_private, post
from tests.search_support import found_posts, found_users, mute_word, search

pytestmark = pytest.mark.app_settings(**COMMERCE_SETTINGS)


async def test_posts_are_found_by_word_prefix_with_highlights(client, alice, bob) -> None:
    await post(client, alice, content="Gaming laptop for sale #deals")
    await post(client, alice, content="A quiet afternoon")
    result = await search(client, bob, "posts", "GAMING lap")
    assert [i["content"] for i in result["items"]] == ["Gaming laptop for sale #deals"]
    text = result["items"][0]["content"]
    spans = [text[h["start"] : h["end"]] for h in result["items"][0]["highlights"]]
    assert spans == ["Gaming", "laptop"]
    assert await found_posts(client, bob, "#deals") == ["Gaming laptop for sale #deals"]
    assert await found_posts(client, bob, "afternoons") == []  # whole words, prefixes only


async def test_users_exact_username_first_then_followed_then_strangers(
    client, alice, make_user
) -> None:
    stranger = await make_user("annabel_s", display_name="Anna Stranger")
    friend = await make_user("annie_f", display_name="Anna Friend")
    exact = await make_user("anna", display_name="Someone")
    for i in range(3):  # the stranger is more popular than the friend
        fan = await make_user(f"fan{i}")
        await follow(client, fan, stranger)
    await follow(client, alice, friend)
    assert await found_users(client, alice, "anna") == [
        exact.username,
        friend.username,
        stranger.username,
    ]
    assert (await found_users(client, alice, "@ANNA"))[0] == "anna"
    result = await search(client, alice, "users", "anna")
    friend_hit = result["items"][1]
    spans = {
        (h["field"], friend_hit[h["field"]][h["start"] : h["end"]])
        for h in friend_hit["highlights"]
    }
    assert spans == {("display_name", "Anna")}  # "annie_f" is not a word starting with anna


async def test_posts_of_followed_authors_rank_before_strangers(client, alice, bob, make_user):
    carol = await make_user("carol")
    await post(client, carol, content="sourdough starter tips")
    await post(client, bob, content="sourdough starter tips")  # newer, but bob is a stranger
    await follow(client, alice, carol)
    result = await search(client, alice, "posts", "sourdough")
    assert [i["author"]["username"] for i in result["items"]] == ["carol", "bob"]
    # Without the follow, the newer one comes first.
    dave = await make_user("dave")
    result = await search(client, dave, "posts", "sourdough")
    assert [i["author"]["username"] for i in result["items"]] == ["bob", "carol"]


async def test_blocks_hide_users_and_posts_both_ways(client, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    await post(client, alice, content="zebra crossing by alice")
    await post(client, carol, content="zebra crossing by carol")
    await block(client, alice, bob)  # alice blocks bob
    for viewer, other in ((bob, alice), (alice, bob)):
        assert other.username not in await found_users(client, viewer, other.username)
    assert await found_posts(client, bob, "zebra") == ["zebra crossing by carol"]
    await block(client, carol, alice)  # carol blocks alice: alice no longer finds carol's post
    assert await found_posts(client, alice, "zebra") == ["zebra crossing by alice"]
    assert "carol" not in await found_users(client, alice, "carol")


async def test_private_accounts_followers_only_and_deleted_posts(
    client, alice, bob, make_user
) -> None:
    carol = await make_user("carol")
    await post(client, alice, content="walrus public")
    await post(client, alice, content="walrus for followers", visibility="followers")
    await post(client, alice, content="walrus private", visibility="private")
    gone = await post(client, alice, content="walrus deleted")
    resp = await client.delete(f"/api/posts/{gone['id']}", headers=alice.auth)
    assert resp.status == 204
    await make_private(client, carol)
    await post(client, carol, content="walrus from a private account")
    assert sorted(await found_posts(client, bob, "walrus")) == ["walrus public"]
    await follow(client, bob, alice)
    await follow(client, bob, carol)
    assert sorted(await found_posts(client, bob, "walrus")) == [
        "walrus for followers",
        "walrus from a private account",
        "walrus public",
    ]
    # The private account itself is found (its posts stay hidden from non-followers).
    dave = await make_user("dave")
    assert "carol" in await found_users(client, dave, "carol")
    assert await found_posts(client, dave, "private") == []


async def test_muted_accounts_hidden_posts_and_muted_words_are_left_out(
    client, alice, bob, make_user
) -> None:
    carol = await make_user("carol")
    await post(client, alice, content="llama news from alice")
    hidden = await post(client, carol, content="llama photos from carol")
    await post(client, carol, content="llama spoiler ahead")
    resp = await client.post(f"/api/users/{alice.id}/mute", headers=bob.auth)
    assert resp.status in (200, 204)
    resp = await client.post(f"/api/posts/{hidden['id']}/hide", headers=bob.auth)
    assert resp.status in (200, 201, 204)
    await mute_word(client, bob, "SPOILER")
    assert await found_posts(client, bob, "llama") == []
    assert len(await found_posts(client, carol, "llama")) == 3  # nobody else is affected


async def test_hashtags_exact_first_then_most_used(client, alice, bob) -> None:
    await post(client, alice, content="#cafe_racer #cafe_racer_build")
    await post(client, alice, content="more #cafe_racer_build")
    await post(client, alice, content="#Café time")
    result = await search(client, bob, "hashtags", "#CAFÉ")
    assert [(h["tag"], h["posts_count"]) for h in result["items"]] == [("café", 1)]
    result = await search(client, bob, "hashtags", "cafe")
    assert [h["tag"] for h in result["items"]] == ["cafe_racer_build", "cafe_racer"]
    result = await search(client, bob, "hashtags", "cafe_racer")
    assert [h["tag"] for h in result["items"]] == ["cafe_racer", "cafe_racer_build"]
    assert result["items"][0]["highlights"] == [{"field": "tag", "start": 0, "end": 10}]


async def test_pages_follow_the_ranking_without_repeats(client, alice, bob) -> None:
    for i in range(7):
        await post(client, alice, content=f"pagination probe {i}")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        result = await search(client, bob, "posts", "probe", **params)
        seen += [i["content"] for i in result["items"]]
        cursor = result["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(f"pagination probe {i}" for i in range(7))
    assert seen[0] == "pagination probe 6"  # the newest first (same relevance)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"q": ""}, 400),
        ({"q": "   "}, 400),
        ({"q": "!!! ???"}, 400),
        ({"q": "x" * 201}, 400),
        ({"q": "ok", "cursor": "bogus"}, 422),
        ({"q": "ok", "cursor": "WzEwMDAwXQ"}, 422),  # [10000]: past the deepest page
        ({"q": "ok", "limit": "0"}, 422),
        ({"q": "ok", "limit": "51"}, 422),
    ],
)
async def test_bad_queries_are_problems(client, alice, params, status) -> None:
    for kind in ("users", "posts", "hashtags", "products", "all"):
        resp = await client.get(f"/api/search/{kind}", params=params, headers=alice.auth)
        if kind == "all" and "cursor" in params:
            status_for = 422
        else:
            status_for = status
        await expect_problem(resp, status_for)


async def test_search_needs_a_session(client) -> None:
    resp = await client.get("/api/search/posts", params={"q": "x"})
    await expect_problem(resp, 401)


async def test_history_records_lists_and_forgets(client, alice, bob) -> None:
    await search(client, alice, "posts", "first  thing")
    await search(client, alice, "users", "someone")
    await search(client, alice, "posts", "first thing")  # again: moves to the top, once
    await search(client, alice, "posts", "secret", history="false")
    resp = await client.get("/api/search/history", headers=alice.auth)
    items = (await resp.json())["items"]
    assert [(i["query"], i["type"]) for i in items] == [
        ("first thing", "post"),
        ("someone", "user"),
    ]
    other = await (await client.get("/api/search/history", headers=bob.auth)).json()
    assert other["items"] == []
    resp = await client.delete(f"/api/search/history/{items[1]['id']}", headers=bob.auth)
    await expect_problem(resp, 404)  # not bob's
    resp = await client.delete(f"/api/search/history/{items[1]['id']}", headers=alice.auth)
    assert resp.status == 204
    left = await (await client.get("/api/search/history", headers=alice.auth)).json()
    assert [i["query"] for i in left["items"]] == ["first thing"]
    resp = await client.delete("/api/search/history", headers=alice.auth)
    assert resp.status == 204
    left = await (await client.get("/api/search/history", headers=alice.auth)).json()
    assert left["items"] == []
    resp = await client.get("/api/search/history", params={"cursor": "xyz"}, headers=alice.auth)
    await expect_problem(resp, 422)


async def test_commerce_searches_find_posts_linking_matches(
    client, commerce, alice, bob, make_user
) -> None:
    seller = await make_user("seller")
    shop = await commerce.shop(seller.id, "retro_gear", name="Retro Gear")
    product = await commerce.product(shop, "Vintage Camera", description="35mm film")
    other = await commerce.product(shop, "Tripod")
    group = await commerce.group(product, seller.id)
    plan = await commerce.plan(product, 6, "20.00", "120.00")
    event = await commerce.event("Camera Swap Meet", organizer_id=seller.id)
    await post(client, alice, content="look what I found", product_ids=[product])
    await post(client, alice, content="a tripod", product_ids=[other])
    await post(client, alice, content="shop tour", shop_ids=[shop])
    await post(client, alice, content="join my group", group_ids=[group])
    await post(
        client, alice, content="pay monthly", product_ids=[product], plans=[{"plan_id": plan}]
    )
    await post(client, alice, content="see you there", event_ids=[event])
    expected = {
        "products": ("vintage cam", ["pay monthly", "look what I found"], "Vintage Camera"),
        "shops": ("retro", ["shop tour"], "Retro Gear"),
        "groups": ("camera", ["join my group"], "Vintage Camera"),
        "installment-plans": ("vintage", ["pay monthly"], "Vintage Camera"),
        "events": ("swap", ["see you there"], "Camera Swap Meet"),
    }
    for kind, (q, contents, label) in expected.items():
        result = await search(client, bob, kind, q)
        assert [i["content"] for i in result["items"]] == contents, kind
        assert [m["label"] for m in result["matches"]] == [label], kind
    # The posts themselves follow every rule: followers-only, deleted, muted words.
    hidden = await post(
        client, alice, content="for followers", product_ids=[other], visibility="followers"
    )
    gone = await post(client, alice, content="deleted soon", shop_ids=[shop])
    await client.delete(f"/api/posts/{gone['id']}", headers=alice.auth)
    await mute_word(client, bob, "monthly")
    assert [i["content"] for i in (await search(client, bob, "products", "tripod"))["items"]] == [
        "a tripod"
    ]
    assert [i["content"] for i in (await search(client, alice, "products", "tripod"))["items"]] == [
        "a tripod",  # its text matches too
        hidden["content"],
    ]
    assert [i["content"] for i in (await search(client, bob, "shops", "retro"))["items"]] == [
        "shop tour"
    ]
    assert [
        i["content"] for i in (await search(client, bob, "installment-plans", "vintage"))["items"]
    ] == []
    # A seller who blocked the viewer: their products (and the posts through them) vanish.
    await block(client, seller, bob)
    for kind in ("products", "shops", "events"):
        result = await search(client, bob, kind, expected[kind][0])
        assert result["items"] == [] and result["matches"] == [], kind


async def test_search_all_returns_each_kind(client, commerce, alice, bob) -> None:
    shop = await commerce.shop(alice.id, "kiwi_shop", name="Kiwi Shop")
    await commerce.product(shop, "Kiwi Juicer")
    await post(client, alice, content="#kiwi season")
    result = await search(client, bob, "all", "kiwi")
    assert [p["content"] for p in result["posts"]] == ["#kiwi season"]
    assert [h["tag"] for h in result["hashtags"]] == ["kiwi"]
    assert [p["label"] for p in result["products"]] == ["Kiwi Juicer"]
    assert [s["label"] for s in result["shops"]] == ["Kiwi Shop"]
    assert result["users"] == [] and result["events"] == []
    await block(client, bob, alice)  # blocked either way: nothing of the other is found
    result = await search(client, bob, "all", "kiwi")
    assert result["posts"] == [] and result["shops"] == [] and result["products"] == []
    result = await search(client, alice, "all", "bob")
    assert result["users"] == []
