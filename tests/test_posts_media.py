"""Media on posts and image tags, through HTTP: attach in order, only your own ready uploads,
the type follows the media, the images served, edits and deletion release media, tags with
their refusals and notifications."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from server.clock import ManualClock
from tests.commerce_support import COMMERCE_SETTINGS
from tests.helpers import expect_problem
from tests.media_support import MEDIA_SETTINGS, encoded, fetch_image, ready_media, upload_ok
from tests.notifications_support import ctx_of, run_jobs
from tests.posts_support import block, get_post, grid, notification_types, post

pytestmark = pytest.mark.app_settings(**MEDIA_SETTINGS, **COMMERCE_SETTINGS)


async def photo(client, user, width: int = 800, height: int = 600) -> str:
    return (await ready_media(client, user, encoded("JPEG", width, height)))["id"]


async def test_image_post_end_to_end(client, alice, bob) -> None:
    first, second = await photo(client, alice, 800, 600), await photo(client, alice, 300, 400)
    created = await post(client, alice, content="two photos", media_ids=[second, first])
    assert created["post_type"] == "image"
    assert [m["id"] for m in created["media"]] == [second, first]  # order kept
    seen = await get_post(client, bob, created["id"])
    shown = seen["media"][1]
    assert (shown["width"], shown["height"]) == (800, 600) and shown["blurhash"]
    image = await fetch_image(client, shown["media_url"])
    assert image.size == (800, 600)  # the large variant of a smaller source: not upscaled
    thumb = await fetch_image(client, shown["thumbnail_url"])
    assert thumb.size == (150, 150)
    page = await grid(client, bob, alice)
    assert page["items"][0]["media"][0]["id"] == second
    # No caption needed with media; a text post still needs text.
    captionless = await post(client, alice, content="", media_ids=[await photo(client, alice)])
    assert captionless["content"] == ""


async def test_only_your_own_ready_media(client, alice, bob) -> None:
    theirs = await photo(client, bob)
    resp = await client.post(
        "/api/posts", json={"content": "x", "media_ids": [theirs]}, headers=alice.auth
    )
    await expect_problem(resp, 404)
    pending = await upload_ok(client, alice, encoded("PNG", 200, 200), "p.png")
    resp = await client.post(
        "/api/posts", json={"content": "x", "media_ids": [pending["id"]]}, headers=alice.auth
    )
    await expect_problem(resp, 409)
    resp = await client.post(
        "/api/posts", json={"content": "x", "media_ids": [str(uuid.uuid4())]}, headers=alice.auth
    )
    await expect_problem(resp, 404)
    mine = await photo(client, alice)
    resp = await client.post(
        "/api/posts",
        json={"content": "x", "media_ids": [mine], "post_type": "video"},
        headers=alice.auth,
    )
    await expect_problem(resp, 422)
    resp = await client.post(
        "/api/posts", json={"content": "x", "media_ids": [mine, mine]}, headers=alice.auth
    )
    await expect_problem(resp, 422)
    assert await ctx_of(client).db.fetchval("SELECT count(*) FROM posts") == 0


async def test_edit_and_delete_release_media(client, alice, bob) -> None:
    clock = ManualClock(datetime.now(UTC))
    ctx_of(client).clock = clock
    kept, dropped = await photo(client, alice), await photo(client, alice)
    created = await post(client, alice, content="album", media_ids=[kept, dropped])
    resp = await client.patch(
        f"/api/posts/{created['id']}", json={"media_ids": [kept]}, headers=alice.auth
    )
    assert [m["id"] for m in (await resp.json())["media"]] == [kept]
    db = ctx_of(client).db
    purge_after = await db.fetchval("SELECT purge_after FROM media WHERE id = %s", (dropped,))
    assert purge_after is not None
    assert await db.fetchval("SELECT purge_after FROM media WHERE id = %s", (kept,)) is None
    await client.delete(f"/api/posts/{created['id']}", headers=alice.auth)
    assert await db.fetchval("SELECT purge_after FROM media WHERE id = %s", (kept,)) is not None
    # Purged once due (the media purge runs on the clock).
    clock.advance(timedelta(days=31))
    from server.jobs.queue import enqueue

    await enqueue(db, "media.purge")
    await run_jobs(client)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM media WHERE id = ANY(%s::uuid[])", ([kept, dropped],)
        )
        == 0
    )


async def test_image_tags(client, commerce, alice, bob, make_user) -> None:
    carol = await make_user("carol")
    shop = await commerce.shop(carol.id, "carols_shop")
    product = await commerce.product(shop, "Scarf")
    image = await photo(client, alice)
    created = await post(client, alice, content="look", media_ids=[image])
    base = f"/api/posts/{created['id']}/media/{image}/tags"
    resp = await client.post(
        base,
        json={"tag_type": "user", "user_id": bob.id, "x": "12.5", "y": "80"},
        headers=alice.auth,
    )
    assert resp.status == 201, await resp.text()
    tag = await resp.json()
    assert (tag["x"], tag["y"], tag["username"]) == ("12.50", "80.00", "bob")
    await client.post(
        base,
        json={"tag_type": "product", "product_id": product, "x": 50, "y": 50},
        headers=alice.auth,
    )
    await client.post(
        base, json={"tag_type": "shop", "shop_id": shop, "x": 1, "y": 2}, headers=alice.auth
    )
    assert "tag_image" in await notification_types(client, bob)
    assert "shop_tagged" in await notification_types(client, carol)
    tags = await (await client.get(base, headers=carol.auth)).json()
    assert {t["tag_type"] for t in tags["items"]} == {"user", "product", "shop"}
    seen = await get_post(client, carol, created["id"])
    assert len(seen["media"][0]["tags"]) == 3
    # Refusals: outside 0-100, two targets, not an author, someone blocked, a video-less id.
    for body, status, who in (
        ({"tag_type": "user", "user_id": bob.id, "x": 101, "y": 0}, 422, alice),
        ({"tag_type": "user", "user_id": bob.id, "shop_id": shop, "x": 1, "y": 1}, 422, alice),
        ({"tag_type": "user", "user_id": carol.id, "x": 1, "y": 1}, 403, bob),
        ({"tag_type": "user", "user_id": str(uuid.uuid4()), "x": 1, "y": 1}, 422, alice),
    ):
        await expect_problem(await client.post(base, json=body, headers=who.auth), status)
    await block(client, carol, alice)
    resp = await client.post(
        base, json={"tag_type": "user", "user_id": carol.id, "x": 1, "y": 1}, headers=alice.auth
    )
    await expect_problem(resp, 422)
    # The tagged user removes their own tag; nobody else but the authors may.
    resp = await client.delete(f"{base}/{tag['id']}", headers=bob.auth)
    assert resp.status == 204
    other = (await (await client.get(base, headers=alice.auth)).json())["items"][0]
    await expect_problem(await client.delete(f"{base}/{other['id']}", headers=bob.auth), 403)
    await expect_problem(
        await client.get(f"/api/posts/{created['id']}/media/{uuid.uuid4()}/tags", headers=bob.auth),
        404,
    )


async def test_too_many_tags(client, alice, bob) -> None:
    image = await photo(client, alice)
    created = await post(client, alice, content="crowd", media_ids=[image])
    base = f"/api/posts/{created['id']}/media/{image}/tags"
    for i in range(20):
        resp = await client.post(
            base, json={"tag_type": "user", "user_id": bob.id, "x": i, "y": i}, headers=alice.auth
        )
        assert resp.status == 201
    resp = await client.post(
        base, json={"tag_type": "user", "user_id": bob.id, "x": 1, "y": 1}, headers=alice.auth
    )
    await expect_problem(resp, 422)
