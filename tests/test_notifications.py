"""The notification center: follow triggers, batching (also under concurrency), the list,
unread count, read / read-all / delete, and live events."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from server.domain import notifications
from server.domain.notifications import NotificationType
from tests.helpers import expect_problem, register
from tests.notifications_support import (
    app_client,
    ctx_of,
    insert_users,
    listen,
    listing,
    notify,
    unread,
)


@pytest.fixture
async def client(aiohttp_client, clean_db, tmp_path):
    return await app_client(aiohttp_client, clean_db, tmp_path)


@pytest.fixture
async def alice(client):
    return await register(client, "alice")


@pytest.fixture
async def bob(client):
    return await register(client, "bob")


async def follow(client, who, target) -> dict:
    resp = await client.post(f"/api/users/{target.id}/follow", headers=who.auth)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


async def test_a_follow_notifies_the_followed_user(client, alice, bob):
    await follow(client, bob, alice)
    page = await listing(client, alice)
    assert page["unread_count"] == 1 and page["next_cursor"] is None
    [item] = page["items"]
    assert item["type"] == "follow" and item["category"] == "follows"
    assert item["content"] == "@bob started following you"
    assert [a["username"] for a in item["actors"]] == ["bob"]
    assert item["actor_id"] == bob.id and item["actor_count"] == 1
    assert item["action"] == {"kind": "view_profile", "target_type": "user", "target_id": bob.id}
    assert item["is_read"] is False and item["read_at"] is None
    assert await unread(client, alice) == 1
    assert (await listing(client, bob))["items"] == []


async def test_follow_request_and_acceptance_notify_each_side(client, alice, bob):
    resp = await client.patch(
        f"/api/users/{alice.id}", json={"is_private": True}, headers=alice.auth
    )
    assert resp.status == 200
    await follow(client, bob, alice)
    [request] = (await listing(client, alice))["items"]
    assert request["type"] == "follow_request"
    assert request["content"] == "@bob requested to follow you"
    assert request["action"]["kind"] == "view_follow_requests"

    reqs = await (await client.get("/api/follows/requests", headers=alice.auth)).json()
    follow_id = reqs["items"][0]["follow_id"]
    resp = await client.post(f"/api/follows/{follow_id}/accept", headers=alice.auth)
    assert resp.status == 200, await resp.text()
    [accepted] = (await listing(client, bob))["items"]
    assert accepted["type"] == "follow_accepted"
    assert accepted["content"] == "@alice accepted your follow request"
    assert accepted["action"]["target_id"] == alice.id


async def test_follows_within_five_minutes_batch_into_one_notification(client, alice):
    fans = [await register(client, f"fan{i}") for i in range(5)]
    for fan in fans:
        await follow(client, fan, alice)
    page = await listing(client, alice)
    [item] = page["items"]
    assert item["content"] == "@fan4, @fan3, @fan2 and 2 others started following you"
    assert [a["username"] for a in item["actors"]] == ["fan4", "fan3", "fan2"]
    assert item["actor_count"] == 5 and item["event_count"] == 5
    assert item["action"]["kind"] == "view_followers"
    assert page["unread_count"] == 1


async def test_concurrent_follows_of_one_user_make_one_notification_with_every_actor(client, alice):
    fans = [await register(client, f"crowd{i}") for i in range(12)]
    await asyncio.gather(*(follow(client, fan, alice) for fan in fans))
    [item] = (await listing(client, alice))["items"]
    assert item["actor_count"] == 12 and item["event_count"] == 12
    assert item["content"].endswith("and 9 others started following you")
    assert await unread(client, alice) == 1


async def test_two_likes_at_the_same_instant_make_one_notification_with_both_actors(
    client, alice, bob
):
    """Two transactions notify about the same post at once; both are open at the same time."""
    carol = await register(client, "carol")
    ctx = ctx_of(client)
    post = uuid.uuid4()
    both_started = asyncio.Barrier(2)

    async def like(actor) -> None:
        async with ctx.db.transaction() as tx:
            await tx.execute("SELECT 1")
            await both_started.wait()
            await notifications.notify(
                ctx,
                tx,
                recipient_id=uuid.UUID(alice.id),
                actor_id=uuid.UUID(actor.id),
                type=NotificationType.LIKE_POST,
                entity_type="post",
                entity_id=post,
            )
            await asyncio.sleep(0.05)  # hold the transaction open while the other one runs

    for _ in range(3):
        await asyncio.gather(like(bob), like(carol))
    [item] = (await listing(client, alice))["items"]
    assert item["type"] == "like_post" and item["actor_count"] == 2
    assert item["event_count"] == 6
    assert {a["username"] for a in item["actors"]} == {"bob", "carol"}
    assert item["content"] in ("@bob and @carol liked your post", "@carol and @bob liked your post")
    assert await unread(client, alice) == 1


async def test_a_batch_keeps_100_actors_and_counts_them_all(client, alice):
    fans = await insert_users(client, 130)
    post = uuid.uuid4()
    for fan in fans:
        await notify(
            client,
            recipient_id=alice.id,
            actor_id=fan,
            type=NotificationType.LIKE_POST,
            entity_id=post,
        )
    rows = await ctx_of(client).db.fetch(
        "SELECT actor_ids, actor_count, content FROM notifications WHERE recipient_id = %s",
        (uuid.UUID(alice.id),),
    )
    assert len(rows) == 1
    assert len(rows[0]["actor_ids"]) == 100 and rows[0]["actor_ids"][0] == fans[-1]
    assert rows[0]["actor_count"] == 130
    assert rows[0]["content"].endswith("and 127 others liked your post")


async def test_the_same_actor_again_is_not_counted_twice(client, alice, bob):
    post = uuid.uuid4()
    for _ in range(3):
        await notify(
            client,
            recipient_id=alice.id,
            actor_id=bob.id,
            type=NotificationType.LIKE_POST,
            entity_id=post,
        )
    [item] = (await listing(client, alice))["items"]
    assert item["actor_count"] == 1 and item["content"] == "@bob liked your post"


async def test_batches_close_after_five_minutes_and_once_read(client, alice, bob):
    carol = await register(client, "carol")
    post = uuid.uuid4()
    first = await notify(
        client,
        recipient_id=alice.id,
        actor_id=bob.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    await ctx_of(client).db.execute(
        "UPDATE notifications SET created_at = created_at - interval '301 seconds'"
    )
    second = await notify(
        client,
        recipient_id=alice.id,
        actor_id=carol.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    assert second["id"] != first["id"] and second["content"] == "@carol liked your post"
    assert await unread(client, alice) == 2

    resp = await client.patch(f"/api/notifications/{second['id']}/read", headers=alice.auth)
    assert resp.status == 200
    third = await notify(
        client,
        recipient_id=alice.id,
        actor_id=bob.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    assert third["id"] not in (first["id"], second["id"])
    assert await unread(client, alice) == 2
    # A different post or a different type is never folded in.
    other = await notify(
        client,
        recipient_id=alice.id,
        actor_id=bob.id,
        type=NotificationType.LIKE_POST,
        entity_id=uuid.uuid4(),
    )
    repost = await notify(
        client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.REPOST, entity_id=post
    )
    assert len({third["id"], other["id"], repost["id"]}) == 3
    assert await unread(client, alice) == 4


async def test_templates_render_the_spec_texts(client, alice, bob):
    cases = [
        (
            NotificationType.COMMENT_POST,
            {"comment_preview": "Nice shot!"},
            "@bob commented on your post: 'Nice shot!'",
        ),
        (
            NotificationType.REPLY_COMMENT,
            {"reply_preview": "agreed"},
            "@bob replied to your comment: 'agreed'",
        ),
        (NotificationType.MENTION_POST, {}, "@bob mentioned you in a post"),
        (NotificationType.TAG_IMAGE, {}, "@bob tagged you in an image"),
        (
            NotificationType.QUOTE_POST,
            {"quote_preview": "so true"},
            "@bob quoted your post: 'so true'",
        ),
        (NotificationType.COLLABORATION_INVITE, {}, "@bob invited you to collaborate on a post"),
        (
            NotificationType.PRODUCT_MESSAGE,
            {"product_name": "Phone X"},
            "@bob messaged you about Phone X",
        ),
        (
            NotificationType.PRODUCT_POST_LIKE,
            {"product_name": "Phone X"},
            "@bob liked a post featuring your product 'Phone X'",
        ),
        (NotificationType.SHOP_TAGGED, {}, "@bob tagged your shop in a post"),
        (NotificationType.COMMENT_POST, {}, "@bob commented on your post"),
    ]
    for type, data, text in cases:
        item = await notify(client, recipient_id=alice.id, actor_id=bob.id, type=type, data=data)
        assert item["content"] == text


async def test_messages_in_one_conversation_batch_with_a_message_count(client, alice, bob):
    conversation = uuid.uuid4()
    for i in range(3):
        item = await notify(
            client,
            recipient_id=alice.id,
            actor_id=bob.id,
            type=NotificationType.NEW_MESSAGE,
            entity_type="conversation",
            entity_id=conversation,
            data={"message_preview": f"hi {i}"},
        )
    assert item["content"] == "3 new messages from @bob"
    assert item["data"]["message_preview"] == "hi 2"
    assert item["action"] == {
        "kind": "view_conversation",
        "target_type": "conversation",
        "target_id": str(conversation),
    }


# -- the list ---------------------------------------------------------------------------------


async def test_the_list_pages_newest_first_and_filters(client, alice, bob):
    made = []
    for i in range(25):
        type = NotificationType.MENTION_POST if i % 5 == 0 else NotificationType.LIKE_POST
        made.append(await notify(client, recipient_id=alice.id, actor_id=bob.id, type=type))
    seen, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = await listing(client, alice, **params)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(m["id"]) for m in reversed(made)]

    mentions = await listing(client, alice, type="mention_post")
    assert len(mentions["items"]) == 5
    assert {i["type"] for i in mentions["items"]} == {"mention_post"}
    by_category = await listing(client, alice, category="mentions", limit=3)
    assert len(by_category["items"]) == 3 and by_category["next_cursor"]
    several = await listing(client, alice, type="mention_post,like_post", limit=100)
    assert len(several["items"]) == 25

    await client.patch(f"/api/notifications/{made[-1]['id']}/read", headers=alice.auth)
    unread_page = await listing(client, alice, unread="true", limit=100)
    assert len(unread_page["items"]) == 24
    assert str(made[-1]["id"]) not in {i["id"] for i in unread_page["items"]}


async def test_bad_list_parameters_are_422(client, alice):
    for params in (
        {"type": "nonsense"},
        {"category": "nope"},
        {"cursor": "garbage"},
        {"limit": 0},
        {"limit": 101},
        {"unread": "maybe"},
    ):
        resp = await client.get("/api/notifications", params=params, headers=alice.auth)
        await expect_problem(resp, 422)
    await expect_problem(await client.get("/api/notifications"), 401)


async def test_a_batched_update_moves_the_notification_to_the_top(client, alice, bob):
    carol = await register(client, "carol")
    post = uuid.uuid4()
    first = await notify(
        client,
        recipient_id=alice.id,
        actor_id=bob.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.REPOST)
    await notify(
        client,
        recipient_id=alice.id,
        actor_id=carol.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    items = (await listing(client, alice))["items"]
    assert items[0]["id"] == str(first["id"])
    assert items[0]["content"] == "@carol and @bob liked your post"


# -- read, read-all, delete ---------------------------------------------------------------


async def test_mark_read_read_all_and_delete_keep_the_unread_count_right(client, alice, bob):
    made = [
        await notify(
            client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.LIKE_POST
        )
        for _ in range(4)
    ]
    assert await unread(client, alice) == 4

    resp = await client.patch(f"/api/notifications/{made[0]['id']}/read", headers=alice.auth)
    body = await resp.json()
    assert resp.status == 200 and body["is_read"] and body["unread_count"] == 3
    again = await client.patch(f"/api/notifications/{made[0]['id']}/read", headers=alice.auth)
    assert (await again.json())["unread_count"] == 3

    resp = await client.delete(f"/api/notifications/{made[1]['id']}", headers=alice.auth)
    assert resp.status == 204
    assert await unread(client, alice) == 2
    resp = await client.delete(f"/api/notifications/{made[0]['id']}", headers=alice.auth)
    assert resp.status == 204
    assert await unread(client, alice) == 2
    assert len((await listing(client, alice))["items"]) == 2

    resp = await client.patch("/api/notifications/read-all", headers=alice.auth)
    assert await resp.json() == {"marked": 2, "unread_count": 0}
    assert await unread(client, alice) == 0
    resp = await client.patch("/api/notifications/read-all", headers=alice.auth)
    assert await resp.json() == {"marked": 0, "unread_count": 0}
    items = (await listing(client, alice))["items"]
    assert all(i["is_read"] and i["read_at"] for i in items)


async def test_nobody_reads_or_deletes_someone_elses_notification(client, alice, bob):
    item = await notify(
        client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.LIKE_POST
    )
    await expect_problem(
        await client.patch(f"/api/notifications/{item['id']}/read", headers=bob.auth), 404
    )
    await expect_problem(
        await client.delete(f"/api/notifications/{item['id']}", headers=bob.auth), 404
    )
    await expect_problem(
        await client.patch("/api/notifications/not-a-uuid/read", headers=alice.auth), 422
    )
    await expect_problem(
        await client.delete(f"/api/notifications/{uuid.uuid4()}", headers=alice.auth), 404
    )
    assert await unread(client, alice) == 1


async def test_the_unread_counter_never_goes_negative(client, alice, bob):
    ctx = ctx_of(client)
    item = await notify(
        client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.LIKE_POST
    )
    # Drift (e.g. a bug elsewhere): the counter says 0 but a notification is unread.
    await ctx.db.execute("UPDATE notification_counters SET unread = 0")
    resp = await client.patch(f"/api/notifications/{item['id']}/read", headers=alice.auth)
    assert (await resp.json())["unread_count"] == 0
    # The nightly reconciliation puts drifted counters right.
    await ctx.db.execute("UPDATE notification_counters SET unread = 7")
    from server.domain.digests import reconcile_job

    await reconcile_job(ctx, {})
    assert await unread(client, alice) == 0


# -- live events ------------------------------------------------------------------------------


async def test_created_and_updated_events_carry_the_unread_count(client, alice, bob):
    events = listen(client)
    carol = await register(client, "carol")
    post = uuid.uuid4()
    await notify(
        client,
        recipient_id=alice.id,
        actor_id=bob.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    await notify(
        client,
        recipient_id=alice.id,
        actor_id=carol.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    created = events.of(alice.id, "notification.created")
    updated = events.of(alice.id, "notification.updated")
    assert len(created) == 1 and len(updated) == 1
    assert created[0].data["unread_count"] == 1
    assert created[0].data["notification"]["content"] == "@bob liked your post"
    assert updated[0].data["notification"]["content"] == "@carol and @bob liked your post"
    assert updated[0].data["notification"]["id"] == created[0].data["notification"]["id"]
    assert updated[0].data["unread_count"] == 1
    assert not events.of(bob.id) and not events.of(carol.id)

    nid = created[0].data["notification"]["id"]
    await client.patch(f"/api/notifications/{nid}/read", headers=alice.auth)
    [read] = events.of(alice.id, "notification.read")
    assert read.data == {"id": nid, "unread_count": 0}


async def test_nothing_is_published_for_a_rolled_back_write(client, alice, bob):
    events = listen(client)
    ctx = ctx_of(client)
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as tx:
            await notifications.notify(
                ctx,
                tx,
                recipient_id=uuid.UUID(alice.id),
                actor_id=uuid.UUID(bob.id),
                type=NotificationType.LIKE_POST,
                entity_type="post",
                entity_id=uuid.uuid4(),
            )
            raise RuntimeError("the like failed")
    assert events.items == []
    assert (await listing(client, alice))["items"] == []
    assert await unread(client, alice) == 0
    assert await ctx.db.fetchval("SELECT count(*) FROM jobs") == 0


# -- undoing, forgetting, retention -------------------------------------------------------------


async def retract(client, **kwargs) -> None:
    ctx = ctx_of(client)
    async with ctx.db.transaction() as tx:
        await notifications.retract(ctx, tx, **kwargs)


async def test_an_unlike_takes_the_actor_back_out(client, alice, bob):
    events = listen(client)
    carol = await register(client, "carol")
    post = uuid.uuid4()
    for actor in (bob, carol):
        await notify(
            client,
            recipient_id=alice.id,
            actor_id=actor.id,
            type=NotificationType.LIKE_POST,
            entity_id=post,
        )
    key = {
        "recipient_id": uuid.UUID(alice.id),
        "type": NotificationType.LIKE_POST,
        "entity_type": "post",
        "entity_id": post,
    }
    await retract(client, actor_id=uuid.UUID(carol.id), **key)
    [item] = (await listing(client, alice))["items"]
    assert item["content"] == "@bob liked your post" and item["actor_count"] == 1
    assert events.of(alice.id, "notification.updated")[-1].data["notification"]["content"] == (
        "@bob liked your post"
    )
    await retract(client, actor_id=uuid.UUID(bob.id), **key)
    assert (await listing(client, alice))["items"] == []
    assert await unread(client, alice) == 0
    [deleted] = events.of(alice.id, "notification.deleted")
    assert deleted.data == {"id": item["id"], "unread_count": 0}


async def test_a_deleted_post_takes_its_notifications_along(client, alice, bob):
    carol = await register(client, "carol")
    post = uuid.uuid4()
    await notify(
        client,
        recipient_id=alice.id,
        actor_id=bob.id,
        type=NotificationType.LIKE_POST,
        entity_id=post,
    )
    await notify(
        client,
        recipient_id=carol.id,
        actor_id=bob.id,
        type=NotificationType.MENTION_POST,
        entity_id=post,
    )
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.REPOST)
    ctx = ctx_of(client)
    async with ctx.db.transaction() as tx:
        await notifications.forget_entity(ctx, tx, entity_type="post", entity_id=post)
    assert [i["type"] for i in (await listing(client, alice))["items"]] == ["repost"]
    assert await unread(client, alice) == 1 and await unread(client, carol) == 0


async def test_notifications_older_than_the_retention_are_cleaned_up(client, alice, bob):
    from datetime import UTC, datetime, timedelta

    from server.domain.digests import _uuid7_floor, cleanup_job

    ctx = ctx_of(client)
    old = await notify(
        client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.LIKE_POST
    )
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.REPOST)
    long_ago = datetime.now(UTC) - timedelta(days=120)
    old_id = uuid.UUID(int=_uuid7_floor(long_ago).int + 1)
    await ctx.db.execute(
        "UPDATE notifications SET id = %s, created_at = %s, latest_at = %s WHERE id = %s",
        (old_id, long_ago, long_ago, old["id"]),
    )
    await cleanup_job(ctx, {"period_start": datetime.now(UTC).isoformat()})
    assert [i["type"] for i in (await listing(client, alice))["items"]] == ["repost"]
    assert await unread(client, alice) == 1


async def test_reading_a_conversation_reads_its_notifications(client, alice, bob):
    events = listen(client)
    conversation = uuid.uuid4()
    for _ in range(2):
        await notify(
            client,
            recipient_id=alice.id,
            actor_id=bob.id,
            type=NotificationType.NEW_MESSAGE,
            entity_type="conversation",
            entity_id=conversation,
        )
    await notify(client, recipient_id=alice.id, actor_id=bob.id, type=NotificationType.REPOST)
    assert await unread(client, alice) == 2
    ctx = ctx_of(client)
    async with ctx.db.transaction() as tx:
        changed = await notifications.mark_entity_read(
            ctx,
            tx,
            recipient_id=uuid.UUID(alice.id),
            entity_type="conversation",
            entity_id=conversation,
        )
    assert changed == 1
    assert await unread(client, alice) == 1
    assert events.of(alice.id, "notification.read")[-1].data["unread_count"] == 1
