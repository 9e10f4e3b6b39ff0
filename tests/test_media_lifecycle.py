"""What uploads are for and how they go: DM image messages end to end (only the uploader
attaches, forwards share the media), profile picture and cover photo (the replaced one is
purged), and the clock-driven purge of unattached and released media."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.clock import ManualClock
from server.jobs.queue import enqueue
from tests.helpers import expect_problem
from tests.media_support import (
    MEDIA_SETTINGS,
    encoded,
    fetch,
    fetch_image,
    get_media,
    ready_media,
    upload_ok,
)
from tests.messaging_support import gateway, messages, next_of, open_dm, send
from tests.notifications_support import ctx_of, run_jobs

pytestmark = pytest.mark.app_settings(**MEDIA_SETTINGS)
START = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)


def pin_clock(client) -> ManualClock:
    clock = ManualClock(START)
    ctx_of(client).clock = clock
    return clock


async def purge(client) -> None:
    """Run the periodic purge now (as the hourly schedule would) and what it enqueues."""
    async with ctx_of(client).db.transaction() as tx:
        await enqueue(tx, "media.purge", {})
    await run_jobs(client)


async def gone(client, user, media: dict) -> bool:
    resp = await client.get(f"/api/media/{media['id']}", headers=user.auth)
    files = [await fetch(client, s["jpeg_url"]) for s in media["sizes"].values()]
    return resp.status == 404 and all(f.status == 404 for f in files)


async def test_a_dm_image_message_end_to_end(client, alice, bob):
    photo = await ready_media(client, alice, encoded("JPEG", 800, 600), "sunset.jpg")
    conversation_id = await open_dm(client, alice, bob)
    gw = await gateway(client, bob)
    try:
        message = await send(
            client, alice, conversation_id, "look!", message_type="image", media_ids=[photo["id"]]
        )
        event = await next_of(gw, "message.created")
    finally:
        await gw.close()
    assert message["message_type"] == "image" and message["content"] == "look!"
    [attachment] = message["media"]
    assert attachment["media_id"] == photo["id"] and attachment["media_type"] == "image"
    assert attachment["media_url"] == photo["sizes"]["large"]["jpeg_url"]
    assert attachment["thumbnail_url"] == photo["sizes"]["thumbnail"]["jpeg_url"]
    assert attachment["file_name"] == "sunset.jpg"
    assert event.data["message"]["media"] == message["media"]
    # Bob sees it in the history and can load both pictures.
    [listed] = (await messages(client, bob, conversation_id))["items"]
    assert listed["media"][0]["media_url"] == attachment["media_url"]
    assert (await fetch_image(client, attachment["media_url"])).size == (800, 600)
    assert (await fetch_image(client, attachment["thumbnail_url"])).size == (150, 150)
    # A caption is optional; the upload is now attached (never purged as unattached).
    bare = await send(client, alice, conversation_id, "", media_ids=[photo["id"]])
    assert bare["message_type"] == "image" and bare["content"] == ""
    assert (await get_media(client, alice, photo["id"]))["attached"] is True


async def test_only_the_uploader_attaches_and_only_ready_media(client, alice, bob):
    photo = await ready_media(client, alice, encoded("PNG", 64, 64))
    conversation_id = await open_dm(client, alice, bob)
    url = f"/api/conversations/{conversation_id}/messages"
    # Bob cannot send Alice's upload (it does not exist for him).
    resp = await client.post(url, json={"media_ids": [photo["id"]]}, headers=bob.auth)
    await expect_problem(resp, 404)
    pending = await upload_ok(client, alice, encoded("PNG", 64, 64))
    resp = await client.post(url, json={"media_ids": [pending["id"]]}, headers=alice.auth)
    assert "processing" in (await expect_problem(resp, 409))["detail"]
    # An image message needs media; media of the wrong type is refused.
    resp = await client.post(url, json={"message_type": "image"}, headers=alice.auth)
    assert "media_ids" in (await expect_problem(resp, 422))["errors"]
    resp = await client.post(
        url, json={"message_type": "video", "media_ids": [photo["id"]]}, headers=alice.auth
    )
    await expect_problem(resp, 422)
    resp = await client.post(
        url, json={"media_ids": [photo["id"], photo["id"]]}, headers=alice.auth
    )
    await expect_problem(resp, 422)


async def test_forwards_share_the_media_and_deleting_releases_it(client, alice, bob, make_user):
    clock = pin_clock(client)
    carol = await make_user("carol")
    photo = await ready_media(client, alice, encoded("PNG", 64, 64))
    ab = await open_dm(client, alice, bob)
    bc = await open_dm(client, bob, carol)
    original = await send(client, alice, ab, "", media_ids=[photo["id"]])
    resp = await client.post(
        f"/api/messages/{original['id']}/forward", json={"conversation_id": bc}, headers=bob.auth
    )
    assert resp.status == 201, await resp.text()
    forward = await resp.json()
    assert forward["message_type"] == "image"
    assert forward["media"][0]["media_id"] == photo["id"]
    assert forward["media"][0]["media_url"] == original["media"][0]["media_url"]

    # Alice retracts hers: the forward still shows the picture, long after.
    resp = await client.delete(
        f"/api/messages/{original['id']}", params={"scope": "everyone"}, headers=alice.auth
    )
    assert resp.status == 200
    clock.advance(days=200)
    await purge(client)
    assert (await fetch(client, forward["media"][0]["media_url"])).status == 200

    # Bob retracts the forward: kept for the spec's 90 days of deleted messages, then purged.
    resp = await client.delete(
        f"/api/messages/{forward['id']}", params={"scope": "everyone"}, headers=bob.auth
    )
    assert resp.status == 200
    clock.advance(days=89)
    await purge(client)
    assert not await gone(client, alice, photo)
    clock.advance(days=2)
    await purge(client)
    assert await gone(client, alice, photo)


async def test_unattached_uploads_are_purged_after_24_hours(client, alice, bob, settings):
    clock = pin_clock(client)
    kept = await ready_media(client, alice, encoded("PNG", 64, 64))
    unused = await ready_media(client, alice, encoded("PNG", 64, 64))
    ab = await open_dm(client, alice, bob)
    await send(client, alice, ab, "", media_ids=[kept["id"]])
    clock.advance(hours=23)
    await purge(client)
    assert not await gone(client, alice, unused)
    clock.advance(hours=2)
    await purge(client)
    assert await gone(client, alice, unused)
    assert not await gone(client, alice, kept)
    # Nothing of the purged one is left on disk.
    assert not list((settings.data_path / "media" / "m" / unused["id"]).glob("*"))


async def test_profile_picture_and_cover_photo_replace_and_purge_the_old(client, alice, bob):
    pin_clock(client)
    first = await ready_media(client, alice, encoded("PNG", 900, 900))
    second = await ready_media(client, alice, encoded("PNG", 700, 700))
    cover = await ready_media(client, alice, encoded("PNG", 1600, 900))

    put = client.put
    resp = await put(
        "/api/users/me/profile-picture", json={"media_id": first["id"]}, headers=alice.auth
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["profile_picture_url"] == first["sizes"]["medium"]["jpeg_url"]
    resp = await put(
        "/api/users/me/cover-photo", json={"media_id": cover["id"]}, headers=alice.auth
    )
    assert (await resp.json())["cover_photo_url"] == cover["sizes"]["large"]["jpeg_url"]

    resp = await put(
        "/api/users/me/profile-picture", json={"media_id": second["id"]}, headers=alice.auth
    )
    profile = await resp.json()
    assert profile["profile_picture_url"] == second["sizes"]["medium"]["jpeg_url"]
    # Others see the new picture on the profile and can load it.
    seen = await (await client.get(f"/api/users/{alice.username}", headers=bob.auth)).json()
    assert seen["profile_picture_url"] == profile["profile_picture_url"]
    assert (await fetch_image(client, seen["profile_picture_url"])).size == (600, 600)
    await purge(client)  # the replaced picture goes at the next purge
    assert await gone(client, alice, first)
    assert not await gone(client, alice, second) and not await gone(client, alice, cover)

    # Someone else's upload does not exist for you; clearing works.
    resp = await put(
        "/api/users/me/profile-picture", json={"media_id": second["id"]}, headers=bob.auth
    )
    await expect_problem(resp, 404)
    resp = await put("/api/users/me/cover-photo", json={"media_id": None}, headers=alice.auth)
    assert (await resp.json())["cover_photo_url"] is None
    await purge(client)
    assert await gone(client, alice, cover)
