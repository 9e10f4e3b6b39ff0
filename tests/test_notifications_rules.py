"""Who gets notified: never yourself, never across a block, never from a muted user, a flood
cap per actor, and every preference (push / in-app / email / frequency, critical types)."""

from __future__ import annotations

import uuid

import pytest

from server.domain.notification_catalog import (
    CategoryPatch,
    SettingsPatch,
    actors_phrase,
    channels_for,
    effective_settings,
    merge_patch,
    render,
)
from server.domain.notifications import NotificationType
from tests.helpers import expect_problem, register
from tests.notifications_support import (
    app_client,
    ctx_of,
    jobs,
    listing,
    notify,
    run_jobs,
    set_online,
    unread,
)


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path):
    return await app_client(
        aiohttp_client, clean_db, tmp_path, rate_limits={"notify_per_actor": "5/3600"}
    )


@pytest.fixture
async def alice(client):
    return await register(client, "alice")


@pytest.fixture
async def bob(client):
    return await register(client, "bob")


async def like(client, recipient, actor, **extra):
    return await notify(
        client,
        recipient_id=recipient.id,
        actor_id=actor.id,
        type=extra.pop("type", NotificationType.LIKE_POST),
        **extra,
    )


async def patch_settings(client, user, body) -> dict:
    resp = await client.patch("/api/notifications/settings", json=body, headers=user.auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


# -- rules -------------------------------------------------------------------------------------


async def test_nobody_is_notified_about_their_own_action(client, alice):
    assert await like(client, alice, alice) is None
    assert await unread(client, alice) == 0


async def test_a_block_either_way_silences_notifications(client, alice, bob):
    resp = await client.post(f"/api/users/{bob.id}/block", headers=alice.auth)
    assert resp.status in (200, 204)
    assert await like(client, alice, bob) is None  # from the blocked user
    assert await like(client, bob, alice) is None  # to the blocked user
    assert await unread(client, alice) == 0 and await unread(client, bob) == 0
    await client.delete(f"/api/users/{bob.id}/unblock", headers=alice.auth)
    assert await like(client, alice, bob) is not None


async def test_blocking_removes_what_the_blocked_user_caused(client, alice, bob):
    carol = await register(client, "carol")
    post = uuid.uuid4()
    await like(client, alice, bob, entity_id=post)
    await like(client, alice, carol, entity_id=post)
    await like(client, alice, bob, type=NotificationType.REPOST)
    assert await unread(client, alice) == 2
    await client.post(f"/api/users/{bob.id}/block", headers=alice.auth)
    items = (await listing(client, alice))["items"]
    assert [i["content"] for i in items] == ["@carol liked your post"]
    assert items[0]["actor_count"] == 1
    assert await unread(client, alice) == 1


async def test_nothing_from_a_muted_user(client, alice, bob):
    await client.post(f"/api/users/{bob.id}/mute", headers=alice.auth)
    resp = await client.post(f"/api/users/{alice.id}/follow", headers=bob.auth)
    assert resp.status in (200, 201)  # the follow itself works; it is just silent
    assert await like(client, alice, bob) is None
    assert (await listing(client, alice))["items"] == []
    # Muting is one-way: alice still notifies bob.
    assert await like(client, bob, alice) is not None


async def test_one_actor_cannot_flood_a_recipient(client, alice, bob):
    carol = await register(client, "carol")
    made = [await like(client, alice, bob) for _ in range(8)]  # cap: 5 per hour
    assert sum(1 for m in made if m is not None) == 5
    assert await unread(client, alice) == 5
    assert await like(client, alice, carol) is not None  # others are not affected
    assert await like(client, carol, bob) is not None  # nor bob towards others


async def test_messages_are_not_capped_by_the_flood_cap(client, alice, bob):
    conversation = uuid.uuid4()
    for _ in range(8):
        item = await notify(
            client,
            recipient_id=alice.id,
            actor_id=bob.id,
            type=NotificationType.NEW_MESSAGE,
            entity_type="conversation",
            entity_id=conversation,
        )
    assert item["event_count"] == 8


async def test_a_deactivated_recipient_gets_nothing(client, alice, bob):
    await ctx_of(client).db.execute(
        "UPDATE users SET is_active = false WHERE id = %s", (uuid.UUID(alice.id),)
    )
    assert await like(client, alice, bob) is None


async def test_system_notifications_have_no_actor(client, alice):
    item = await notify(
        client,
        recipient_id=alice.id,
        type=NotificationType.GROUP_FULL,
        entity_type="group",
    )
    assert item["content"] == "Your buy-together group is full! 🎉"
    assert item["actors"] == [] and item["actor_count"] == 0


# -- preferences -------------------------------------------------------------------------------


async def test_settings_default_to_push_in_app_on_and_a_daily_digest(client, alice):
    resp = await client.get("/api/notifications/settings", headers=alice.auth)
    body = await resp.json()
    assert resp.status == 200 and body["push_enabled"] and body["email_enabled"]
    assert set(body["categories"]) == {
        "follows",
        "likes",
        "comments",
        "mentions",
        "tags",
        "reposts",
        "collaborations",
        "direct_messages",
        "message_reactions",
        "product_interactions",
        "shop_tags",
    }
    for prefs in body["categories"].values():
        assert prefs == {"push": True, "in_app": True, "email": "daily", "frequency": "all"}
    assert "follow_request" in body["critical_types"]


async def test_settings_patch_changes_only_what_is_given(client, alice):
    body = await patch_settings(
        client, alice, {"categories": {"likes": {"push": False, "email": "weekly"}}}
    )
    assert body["categories"]["likes"] == {
        "push": False,
        "in_app": True,
        "email": "weekly",
        "frequency": "all",
    }
    body = await patch_settings(client, alice, {"categories": {"likes": {"frequency": "none"}}})
    assert body["categories"]["likes"]["push"] is False
    assert body["categories"]["likes"]["frequency"] == "none"
    assert body["categories"]["comments"]["push"] is True
    again = await client.get("/api/notifications/settings", headers=alice.auth)
    assert await again.json() == body


@pytest.mark.parametrize(
    "body",
    [
        {"categories": {"nope": {"push": False}}},
        {"categories": {"likes": {"push": "sometimes"}}},
        {"categories": {"likes": {"email": "hourly"}}},
        {"categories": {"likes": {"frequency": "often"}}},
        {"categories": {"likes": {"volume": 3}}},
        {"push_enabled": "yes please"},
        {"unknown": True},
    ],
)
async def test_bad_settings_are_422(client, alice, body):
    resp = await client.patch("/api/notifications/settings", json=body, headers=alice.auth)
    await expect_problem(resp, 422)


async def test_in_app_off_keeps_the_center_clean_but_still_pushes(client, alice, bob):
    await patch_settings(client, alice, {"categories": {"likes": {"in_app": False}}})
    item = await like(client, alice, bob)
    assert item is not None
    assert (await listing(client, alice))["items"] == []
    assert await unread(client, alice) == 0
    [push] = await jobs(client, "push.send")
    assert push["payload"]["notification_id"] == str(item["id"])
    # Other categories are untouched.
    await like(client, alice, bob, type=NotificationType.COMMENT_POST)
    assert await unread(client, alice) == 1


async def test_push_off_means_no_push_job(client, alice, bob):
    await patch_settings(client, alice, {"categories": {"likes": {"push": False}}})
    await like(client, alice, bob)
    assert await jobs(client, "push.send") == []
    assert await unread(client, alice) == 1
    await like(client, alice, bob, type=NotificationType.MENTION_POST)
    assert len(await jobs(client, "push.send")) == 1


async def test_the_push_master_switch_pauses_every_push(client, alice, bob):
    await patch_settings(client, alice, {"push_enabled": False})
    await like(client, alice, bob)
    await like(client, alice, bob, type=NotificationType.MENTION_POST)
    assert await jobs(client, "push.send") == []
    assert await unread(client, alice) == 2


async def test_no_push_while_the_recipient_has_a_live_session(client, alice, bob):
    await set_online(client, alice.id)
    await like(client, alice, bob)
    assert await jobs(client, "push.send") == []
    await like(client, bob, alice)  # bob is offline
    assert len(await jobs(client, "push.send")) == 1


async def test_a_batch_queues_one_push_while_it_waits(client, alice, bob):
    carol = await register(client, "carol")
    post = uuid.uuid4()
    await like(client, alice, bob, entity_id=post)
    await like(client, alice, carol, entity_id=post)
    pushes = await jobs(client, "push.send")
    assert len(pushes) == 1 and pushes[0]["status"] == "queued"


async def test_a_growing_batch_re_pushes_at_most_once_a_minute(client, alice, bob):
    post = uuid.uuid4()
    await like(client, alice, bob, entity_id=post)
    assert await run_jobs(client) == 1  # the first like: pushed at once
    for name in ("carol", "dave", "erin"):
        await like(client, alice, await register(client, name), entity_id=post)
    pushes = await jobs(client, "push.send")
    assert [p["status"] for p in pushes] == ["done", "queued"]
    delay = (pushes[1]["run_at"] - pushes[1]["created_at"]).total_seconds()
    assert 59 <= delay <= 61
    assert await run_jobs(client) == 0


async def test_frequency_none_silences_a_category(client, alice, bob):
    await patch_settings(client, alice, {"categories": {"likes": {"frequency": "none"}}})
    assert await like(client, alice, bob) is None
    assert await jobs(client) == []
    assert await like(client, alice, bob, type=NotificationType.COMMENT_POST) is not None


async def test_frequency_important_keeps_direct_interactions_and_people_you_follow(
    client, alice, bob
):
    carol = await register(client, "carol")
    await patch_settings(
        client,
        alice,
        {
            "categories": {
                "likes": {"frequency": "important"},
                "mentions": {"frequency": "important"},
            }
        },
    )
    assert await like(client, alice, bob) is None  # a like from a stranger: not important
    assert await like(client, alice, bob, type=NotificationType.MENTION_POST) is not None
    await client.post(f"/api/users/{carol.id}/follow", headers=alice.auth)
    assert await like(client, alice, carol) is not None  # alice follows carol


async def test_critical_notifications_always_reach_the_center(client, alice, bob):
    await patch_settings(
        client,
        alice,
        {"categories": {"follows": {"in_app": False, "push": False, "frequency": "none"}}},
    )
    resp = await client.patch(
        f"/api/users/{alice.id}", json={"is_private": True}, headers=alice.auth
    )
    assert resp.status == 200
    await client.post(f"/api/users/{alice.id}/follow", headers=bob.auth)
    [item] = (await listing(client, alice))["items"]
    assert item["type"] == "follow_request"
    assert await jobs(client, "push.send") == []  # push stays off
    carol = await register(client, "carol")
    await client.patch(f"/api/users/{alice.id}", json={"is_private": False}, headers=alice.auth)
    await client.post(f"/api/users/{alice.id}/follow", headers=carol.auth)
    assert len((await listing(client, alice))["items"]) == 1  # a plain follow stays silent


async def test_email_on_queues_one_email_per_batch_after_its_window(client, alice, bob):
    await patch_settings(client, alice, {"categories": {"likes": {"email": "on"}}})
    post = uuid.uuid4()
    await like(client, alice, bob, entity_id=post)
    carol = await register(client, "carol")
    await like(client, alice, carol, entity_id=post)
    [email] = await jobs(client, "notifications.email")
    assert email["run_at"] > email["created_at"]
    await patch_settings(client, alice, {"categories": {"likes": {"email": "off"}}})
    await like(client, alice, bob)
    assert len(await jobs(client, "notifications.email")) == 1


# -- the pure rules --------------------------------------------------------------------------


def test_actor_phrases():
    assert actors_phrase(["ana"], 1) == "@ana"
    assert actors_phrase(["ana", "ben"], 2) == "@ana and @ben"
    assert actors_phrase(["ana", "ben", "cy"], 3) == "@ana, @ben and @cy"
    assert actors_phrase(["ana", "ben", "cy"], 4) == "@ana, @ben, @cy and 1 other"
    assert actors_phrase(["ana", "ben", "cy"], 13) == "@ana, @ben, @cy and 10 others"
    assert actors_phrase([], 0) == "Someone"
    assert actors_phrase([], 3) == "3 people"
    assert (
        render("like_post", ["ana", "ben", "cy"], 13, 13, {})
        == "@ana, @ben, @cy and 10 others liked your post"
    )


def test_channels_follow_the_preferences():
    defaults = effective_settings(None)
    assert channels_for(defaults, "like_post", actor_is_followed=False).push
    stored = merge_patch(
        None,
        SettingsPatch(categories={"likes": CategoryPatch(frequency="important")}),
    )
    settings = effective_settings(stored)
    assert not channels_for(settings, "like_post", actor_is_followed=False).any
    assert channels_for(settings, "like_post", actor_is_followed=True).in_app
    off = effective_settings({"email_enabled": False})
    assert channels_for(off, "like_post", actor_is_followed=False).email == "off"
