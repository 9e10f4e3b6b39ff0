"""Direct messaging over HTTP: conversations, messages, receipts, reactions, replies, forwards,
idempotent sends, search, blocks, limits and notifications."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

from server.clock import ManualClock
from tests.helpers import expect_problem
from tests.messaging_support import (
    MESSAGING_SETTINGS,
    block,
    conversation,
    conversations,
    messages,
    nonce,
    notifications_of,
    open_dm,
    send,
)
from tests.notifications_support import ctx_of

pytestmark = pytest.mark.app_settings(**MESSAGING_SETTINGS)

# Conversations --------------------------------------------------------------------------------


async def test_one_conversation_per_pair_and_creating_again_returns_it(client, alice, bob):
    first = await client.post("/api/conversations", json={"user_id": bob.id}, headers=alice.auth)
    assert first.status == 200
    body = await first.json()
    assert body["created"] is True
    assert body["other_user"]["username"] == "bob"
    assert [p["username"] for p in body["participants"]] == ["alice", "bob"]
    again = await (
        await client.post("/api/conversations", json={"username": "alice"}, headers=bob.auth)
    ).json()
    assert again["id"] == body["id"] and again["created"] is False
    again = await (
        await client.post("/api/conversations", json={"user_id": bob.id}, headers=alice.auth)
    ).json()
    assert again["id"] == body["id"] and again["created"] is False


async def test_concurrent_creates_from_both_sides_make_one_conversation(client, alice, bob):
    async def create(a, b):
        resp = await client.post("/api/conversations", json={"user_id": b.id}, headers=a.auth)
        assert resp.status == 200, await resp.text()
        return (await resp.json())["id"]

    ids = await asyncio.gather(*(create(*pair) for pair in [(alice, bob), (bob, alice)] * 5))
    assert len(set(ids)) == 1


async def test_create_validates_the_other_user(client, alice):
    resp = await client.post("/api/conversations", json={"user_id": alice.id}, headers=alice.auth)
    assert "yourself" in (await expect_problem(resp, 422))["detail"]
    resp = await client.post("/api/conversations", json={"username": "nobody"}, headers=alice.auth)
    await expect_problem(resp, 404)
    resp = await client.post("/api/conversations", json={}, headers=alice.auth)
    await expect_problem(resp, 422)
    resp = await client.post("/api/conversations", json={"user_id": alice.id})
    await expect_problem(resp, 401)


async def test_a_new_conversation_shows_for_the_other_only_once_it_has_a_message(
    client, alice, bob
):
    cid = await open_dm(client, alice, bob)
    assert [c["id"] for c in (await conversations(client, alice))["items"]] == [cid]
    assert (await conversations(client, bob))["items"] == []
    await send(client, alice, cid, "hello bob")
    items = (await conversations(client, bob))["items"]
    assert [c["id"] for c in items] == [cid]
    assert items[0]["unread_count"] == 1
    assert items[0]["last_message"]["content"] == "hello bob"
    assert items[0]["other_user"]["username"] == "alice"


async def test_list_is_ordered_by_last_message_with_unread_counts_and_keyset_pages(
    client, alice, make_user
):
    friends = [await make_user(f"friend{i}") for i in range(5)]
    ids = [await open_dm(client, f, alice) for f in friends]
    for i, f in enumerate(friends):
        for n in range(i + 1):
            await send(client, f, ids[i], f"{f.username} #{n}")
    await send(client, friends[1], ids[1], "latest")
    page1 = await conversations(client, alice, limit=2)
    page2 = await conversations(client, alice, limit=2, cursor=page1["next_cursor"])
    page3 = await conversations(client, alice, limit=2, cursor=page2["next_cursor"])
    assert page3["next_cursor"] is None
    listed = page1["items"] + page2["items"] + page3["items"]
    assert [c["id"] for c in listed] == [ids[1], ids[4], ids[3], ids[2], ids[0]]
    assert [c["unread_count"] for c in listed] == [3, 5, 4, 3, 1]
    assert listed[0]["last_message"]["content"] == "latest"
    resp = await client.get("/api/conversations?cursor=nope", headers=alice.auth)
    await expect_problem(resp, 422)


async def test_conversation_list_and_messages_are_index_backed(client, alice, bob, clean_db):
    cid = await open_dm(client, alice, bob)
    await send(client, alice, cid)
    conn = psycopg2.connect(clean_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET enable_seqscan = off")
        cur.execute(
            """EXPLAIN SELECT conversation_id FROM conversation_participants p
               WHERE p.user_id = %s AND NOT p.hidden
               ORDER BY p.activity_at DESC, p.conversation_id DESC LIMIT 20""",
            (alice.id,),
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
        assert "conversation_participants_list_idx" in plan and "Sort" not in plan, plan
        cur.execute(
            """EXPLAIN SELECT id FROM messages m WHERE m.conversation_id = %s AND m.seq < 100
               ORDER BY m.seq DESC LIMIT 20""",
            (cid,),
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
        assert "messages_conversation_id_seq_key" in plan and "Sort" not in plan, plan
    conn.close()


async def test_conversation_details_and_strangers_get_404(client, alice, bob, make_user):
    cid = await open_dm(client, alice, bob)
    details = await conversation(client, alice, cid)
    assert details["id"] == cid and details["conversation_type"] == "direct"
    assert details["product_context"] is None and details["last_message"] is None
    eve = await make_user("eve")
    resp = await client.get(f"/api/conversations/{cid}", headers=eve.auth)
    await expect_problem(resp, 404)
    resp = await client.get(f"/api/conversations/{cid}/messages", headers=eve.auth)
    await expect_problem(resp, 404)
    resp = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "hi"}, headers=eve.auth
    )
    await expect_problem(resp, 404)
    resp = await client.get("/api/conversations/not-a-uuid", headers=alice.auth)
    await expect_problem(resp, 422)


async def test_delete_conversation_hides_history_for_that_user_only(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    for n in range(3):
        await send(client, alice if n % 2 == 0 else bob, cid, f"old {n} pineapple")
    resp = await client.delete(f"/api/conversations/{cid}", headers=bob.auth)
    assert resp.status == 204
    assert (await conversations(client, bob))["items"] == []
    assert (await messages(client, bob, cid))["items"] == []
    assert len((await messages(client, alice, cid))["items"]) == 3
    search = await client.get("/api/messages/search?q=pineapple", headers=bob.auth)
    assert (await search.json())["items"] == []
    await send(client, alice, cid, "new one")
    listed = (await conversations(client, bob))["items"]
    assert [c["id"] for c in listed] == [cid] and listed[0]["unread_count"] == 1
    assert [m["content"] for m in (await messages(client, bob, cid))["items"]] == ["new one"]
    # Opening it again also brings it back, still without the old history.
    await client.delete(f"/api/conversations/{cid}", headers=bob.auth)
    assert await open_dm(client, bob, alice) == cid
    assert [c["id"] for c in (await conversations(client, bob))["items"]] == [cid]
    assert (await messages(client, bob, cid))["items"] == []


async def test_mute_and_unmute(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    resp = await client.post(f"/api/conversations/{cid}/mute", headers=bob.auth)
    assert resp.status == 200 and (await resp.json())["is_muted"] is True
    await send(client, alice, cid, "shh")
    assert await notifications_of(client, bob) == []
    listed = (await conversations(client, bob))["items"]
    assert listed[0]["is_muted"] is True and listed[0]["unread_count"] == 1
    resp = await client.delete(f"/api/conversations/{cid}/unmute", headers=bob.auth)
    assert (await resp.json())["is_muted"] is False
    await send(client, alice, cid, "hello again")
    notes = await notifications_of(client, bob)
    assert [n["type"] for n in notes] == ["new_message"]
    # A timed mute.
    resp = await client.post(
        f"/api/conversations/{cid}/mute", json={"duration_s": 3600}, headers=bob.auth
    )
    body = await resp.json()
    assert body["is_muted"] is True and body["muted_until"] is not None
    resp = await client.post(
        f"/api/conversations/{cid}/mute", json={"duration_s": 5}, headers=bob.auth
    )
    await expect_problem(resp, 422)


async def test_read_receipts_and_message_status(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    m1 = await send(client, alice, cid, "one")
    m2 = await send(client, alice, cid, "two")
    assert m1["status"] == "sent"
    assert [m["status"] for m in (await messages(client, alice, cid))["items"]] == [
        "sent",
        "sent",
    ]
    # bob fetches them: delivered.
    bob_view = await messages(client, bob, cid)
    assert [m["status"] for m in bob_view["items"]] == [None, None]
    assert [m["status"] for m in (await messages(client, alice, cid))["items"]] == [
        "delivered",
        "delivered",
    ]
    resp = await client.post(
        f"/api/conversations/{cid}/read", json={"message_id": m1["id"]}, headers=bob.auth
    )
    read = await resp.json()
    assert read["seq"] == m1["seq"] and read["unread_count"] == 1
    statuses = [m["status"] for m in (await messages(client, alice, cid))["items"]]
    assert statuses == ["delivered", "read"]
    resp = await client.post(f"/api/conversations/{cid}/read", headers=bob.auth)
    assert (await resp.json())["unread_count"] == 0
    assert (await messages(client, alice, cid))["items"][0]["status"] == "read"
    details = await conversation(client, alice, cid)
    assert details["receipts"]["read_seq"] == m2["seq"]
    # Reading never moves back.
    resp = await client.post(f"/api/conversations/{cid}/read", json={"seq": 0}, headers=bob.auth)
    assert (await resp.json())["seq"] == m2["seq"]
    # A message of another conversation is refused.
    resp = await client.post(
        f"/api/conversations/{cid}/read", json={"message_id": cid}, headers=bob.auth
    )
    await expect_problem(resp, 422)


async def test_mark_unread_is_cleared_by_reading(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    await send(client, alice, cid)
    await client.post(f"/api/conversations/{cid}/read", headers=bob.auth)
    resp = await client.post(f"/api/conversations/{cid}/unread", headers=bob.auth)
    assert (await resp.json())["marked_unread"] is True
    assert (await conversations(client, bob))["items"][0]["marked_unread"] is True
    await client.post(f"/api/conversations/{cid}/read", headers=bob.auth)
    assert (await conversations(client, bob))["items"][0]["marked_unread"] is False


# Messages -----------------------------------------------------------------------------------


async def test_send_text_and_link_messages(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    text = await send(client, alice, cid, "  plain text  ")
    assert text["message_type"] == "text" and text["content"] == "plain text"
    assert text["sender_id"] == alice.id and text["seq"] == 1
    link = await send(client, alice, cid, "look https://example.com/a?b=1, nice")
    assert link["message_type"] == "link"
    assert link["links"] == ["https://example.com/a?b=1"]
    forced = await send(client, alice, cid, "see www.example.org", message_type="text")
    assert forced["message_type"] == "text"
    resp = await client.post(
        f"/api/conversations/{cid}/messages",
        json={"content": "no url", "message_type": "link"},
        headers=alice.auth,
    )
    await expect_problem(resp, 422)


@pytest.mark.parametrize("overrides", [{"messaging": {"max_message_chars": 10}}])
async def test_content_limits_are_clear(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    for content, words in [
        ("", "needs some text"),
        ("   \n ", "needs some text"),
        ("x" * 11, "at most 10"),
    ]:
        resp = await client.post(
            f"/api/conversations/{cid}/messages", json={"content": content}, headers=alice.auth
        )
        body = await expect_problem(resp, 422)
        assert words in body["detail"] and "content" in body["errors"]
    resp = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "a\u0000b"}, headers=alice.auth
    )
    await expect_problem(resp, 422)
    resp = await client.post(
        f"/api/conversations/{cid}/messages",
        json={"content": "pic", "message_type": "image"},
        headers=alice.auth,
    )
    assert "attachments" in (await expect_problem(resp, 422))["detail"]
    assert (await send(client, alice, cid, "x" * 10))["content"] == "x" * 10


async def test_messages_list_newest_first_with_keyset_cursor(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    for n in range(7):
        await send(client, alice if n % 2 else bob, cid, f"m{n}")
    page = await messages(client, alice, cid, limit=3)
    seen = [m["content"] for m in page["items"]]
    while page["next_cursor"]:
        page = await messages(client, alice, cid, limit=3, cursor=page["next_cursor"])
        seen += [m["content"] for m in page["items"]]
    assert seen == [f"m{n}" for n in reversed(range(7))]
    caught_up = await messages(client, alice, cid, after_seq=4, limit=2)
    assert [m["seq"] for m in caught_up["items"]] == [5, 6] and caught_up["has_more"] is True
    resp = await client.get(f"/api/conversations/{cid}/messages?cursor=WzEsMl0", headers=alice.auth)
    await expect_problem(resp, 422)


@pytest.mark.parametrize("overrides", [{"messaging": {"edit_window_s": 60}}])
async def test_edit_within_the_window_only_by_the_sender(client, alice, bob, clean_db):
    cid = await open_dm(client, alice, bob)
    msg = await send(client, alice, cid, "helo")
    resp = await client.patch(
        f"/api/messages/{msg['id']}", json={"content": "hello"}, headers=alice.auth
    )
    edited = await resp.json()
    assert resp.status == 200
    assert edited["content"] == "hello" and edited["is_edited"] and edited["edited_at"]
    resp = await client.patch(
        f"/api/messages/{msg['id']}", json={"content": "mine now"}, headers=bob.auth
    )
    await expect_problem(resp, 403)
    # One minute and a second later, on the clock the rule reads.
    ctx_of(client).clock = ManualClock(datetime.now(UTC) + timedelta(seconds=61))
    resp = await client.patch(
        f"/api/messages/{msg['id']}", json={"content": "too late"}, headers=alice.auth
    )
    assert "within 1 minute of" in (await expect_problem(resp, 403))["detail"]
    assert (await messages(client, bob, cid))["items"][0]["content"] == "hello"


async def test_delete_for_self_and_for_everyone(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    keep = await send(client, alice, cid, "keep me")
    mine = await send(client, alice, cid, "oops secret")
    # For self: gone for bob only.
    resp = await client.delete(f"/api/messages/{keep['id']}", headers=bob.auth)
    assert resp.status == 200 and (await resp.json())["scope"] == "self"
    assert [m["id"] for m in (await messages(client, bob, cid))["items"]] == [mine["id"]]
    assert len((await messages(client, alice, cid))["items"]) == 2
    resp = await client.get(f"/api/messages/{keep['id']}", headers=bob.auth)
    await expect_problem(resp, 404)
    # For everyone: only the sender, a tombstone for both.
    resp = await client.delete(f"/api/messages/{mine['id']}?scope=everyone", headers=bob.auth)
    await expect_problem(resp, 403)
    resp = await client.delete(f"/api/messages/{mine['id']}?scope=everyone", headers=alice.auth)
    assert resp.status == 200
    for user in (alice, bob):
        newest = (await messages(client, user, cid))["items"][0]
        assert newest["id"] == mine["id"] and newest["is_deleted"] is True
        assert newest["content"] is None and newest["deleted_at"]
    assert (await conversations(client, bob))["items"][0]["unread_count"] == 0
    hits = await client.get("/api/messages/search?q=secret", headers=alice.auth)
    assert (await hits.json())["items"] == []
    resp = await client.patch(
        f"/api/messages/{mine['id']}", json={"content": "x"}, headers=alice.auth
    )
    await expect_problem(resp, 422)
    resp = await client.delete(f"/api/messages/{mine['id']}?scope=nobody", headers=alice.auth)
    await expect_problem(resp, 422)


async def test_reactions_are_unique_per_message_user_and_emoji(client, alice, bob, make_user):
    cid = await open_dm(client, alice, bob)
    msg = await send(client, alice, cid, "react to me")
    url = f"/api/messages/{msg['id']}/reactions"
    for user, emoji in [(bob, "👍"), (bob, "👍"), (alice, "👍"), (bob, ":fire:")]:
        resp = await client.post(url, json={"emoji": emoji}, headers=user.auth)
        assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert [(r["emoji"], r["count"]) for r in body["reactions"]] == [("👍", 2), (":fire:", 1)]
    assert body["reactions"][0]["me"] is True
    resp = await client.delete(f"{url}/%F0%9F%91%8D", headers=bob.auth)
    body = await resp.json()
    assert [(r["emoji"], r["count"], r["me"]) for r in body["reactions"]] == [
        ("👍", 1, False),
        (":fire:", 1, True),
    ]
    listed = (await messages(client, alice, cid))["items"][0]["reactions"]
    assert [(r["emoji"], r["user_ids"]) for r in listed] == [
        ("👍", [alice.id]),
        (":fire:", [bob.id]),
    ]
    for bad in ["", "abc", "a b", "👍 x", ":no spaces:"]:
        resp = await client.post(url, json={"emoji": bad}, headers=bob.auth)
        await expect_problem(resp, 422)
    eve = await make_user("eve")
    resp = await client.post(url, json={"emoji": "👍"}, headers=eve.auth)
    await expect_problem(resp, 404)
    notes = await notifications_of(client, alice)
    assert any(n["type"] == "message_reaction" for n in notes)


async def test_reply_to_a_message_of_the_same_conversation(client, alice, bob, make_user):
    cid = await open_dm(client, alice, bob)
    original = await send(client, alice, cid, "what time?")
    reply = await send(client, bob, cid, "at 8", reply_to_message_id=original["id"])
    assert reply["reply_to"] == {
        "id": original["id"],
        "sender_id": alice.id,
        "message_type": "text",
        "content": "what time?",
        "has_media": False,
        "is_deleted": False,
    }
    carol = await make_user("carol")
    other = await open_dm(client, bob, carol)
    resp = await client.post(
        f"/api/conversations/{other}/messages",
        json={"content": "x", "reply_to_message_id": original["id"]},
        headers=bob.auth,
    )
    await expect_problem(resp, 422)
    await client.delete(f"/api/messages/{original['id']}?scope=everyone", headers=alice.auth)
    listed = (await messages(client, bob, cid))["items"]
    assert listed[0]["reply_to"]["is_deleted"] is True and listed[0]["reply_to"]["content"] is None


async def test_forward_only_what_the_sender_can_see_to_their_conversations(
    client, alice, bob, make_user
):
    carol = await make_user("carol")
    ab = await open_dm(client, alice, bob)
    bc = await open_dm(client, bob, carol)
    original = await send(client, alice, ab, "party at 9 https://example.com/p")
    resp = await client.post(
        f"/api/messages/{original['id']}/forward", json={"conversation_id": bc}, headers=bob.auth
    )
    assert resp.status == 201, await resp.text()
    fwd = await resp.json()
    assert fwd["is_forwarded"] and fwd["content"] == original["content"]
    assert fwd["sender_id"] == bob.id and fwd["message_type"] == "link"
    assert (await messages(client, carol, bc))["items"][0]["is_forwarded"] is True
    # carol cannot forward alice's message: she cannot see it.
    resp = await client.post(
        f"/api/messages/{original['id']}/forward", json={"conversation_id": bc}, headers=carol.auth
    )
    await expect_problem(resp, 404)
    # bob cannot forward into a conversation he is not in.
    ac = await open_dm(client, alice, carol)
    resp = await client.post(
        f"/api/messages/{original['id']}/forward", json={"conversation_id": ac}, headers=bob.auth
    )
    await expect_problem(resp, 404)
    # nor a message he deleted for himself.
    await client.delete(f"/api/messages/{original['id']}", headers=bob.auth)
    resp = await client.post(
        f"/api/messages/{original['id']}/forward", json={"conversation_id": bc}, headers=bob.auth
    )
    await expect_problem(resp, 404)
    # A forwarded message cannot be edited (it is not the forwarder's text).
    resp = await client.patch(
        f"/api/messages/{fwd['id']}", json={"content": "changed"}, headers=bob.auth
    )
    await expect_problem(resp, 422)


async def test_a_resend_with_the_same_nonce_returns_the_original(client, alice, bob, make_user):
    cid = await open_dm(client, alice, bob)
    key = nonce()
    first = await send(client, alice, cid, "only once", nonce=key)
    again = await send(client, alice, cid, "only once", nonce=key)
    assert again["id"] == first["id"] and again["client_nonce"] == key
    results = await asyncio.gather(
        *(send(client, alice, cid, "racing", nonce="race-1") for _ in range(6))
    )
    assert len({r["id"] for r in results}) == 1
    assert [m["content"] for m in (await messages(client, bob, cid))["items"]] == [
        "racing",
        "only once",
    ]
    assert (await messages(client, bob, cid))["items"][0]["client_nonce"] is None
    # The same nonce for another conversation is a client bug: 409.
    carol = await make_user("carol")
    other = await open_dm(client, alice, carol)
    resp = await client.post(
        f"/api/conversations/{other}/messages",
        json={"content": "x", "nonce": key},
        headers=alice.auth,
    )
    await expect_problem(resp, 409)


@pytest.mark.parametrize("overrides", [{"rate_limits": {"message": "3/3600"}}])
async def test_the_message_rate_limit(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    key = nonce()
    await send(client, alice, cid, "1", nonce=key)
    await send(client, alice, cid, "2")
    await send(client, alice, cid, "3")
    resp = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "4"}, headers=alice.auth
    )
    body = await expect_problem(resp, 429)
    assert "messages" in body["detail"] and resp.headers.get("Retry-After")
    # A resend of a message already sent is not a new message.
    assert (await send(client, alice, cid, "1", nonce=key))["content"] == "1"


async def test_blocks_either_way_forbid_creating_and_sending_without_saying_so(
    client, alice, bob, make_user
):
    cid = await open_dm(client, alice, bob)
    await send(client, alice, cid, "before")
    await block(client, bob, alice)
    resp = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "hi?"}, headers=alice.auth
    )
    body = await expect_problem(resp, 403)
    assert body["detail"] == "You cannot message this account."
    assert "block" not in body["detail"].lower()
    resp = await client.post("/api/conversations", json={"user_id": bob.id}, headers=alice.auth)
    assert (await expect_problem(resp, 403))["detail"] == "You cannot message this account."
    # The blocker is told what they did themselves.
    resp = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "x"}, headers=bob.auth
    )
    assert "unblock" in (await expect_problem(resp, 403))["detail"].lower()
    # History stays readable for both.
    assert len((await messages(client, alice, cid))["items"]) == 1
    carol = await make_user("carol")
    await block(client, carol, bob)
    resp = await client.post("/api/conversations", json={"user_id": carol.id}, headers=bob.auth)
    await expect_problem(resp, 403)


# Search --------------------------------------------------------------------------------------


async def test_search_own_conversations_only(client, alice, bob, make_user):
    carol = await make_user("carol")
    ab = await open_dm(client, alice, bob)
    bc = await open_dm(client, bob, carol)
    await send(client, alice, ab, "The red bicycle is for sale")
    await send(client, bob, ab, "Is the bicycle still available?")
    await send(client, carol, bc, "I sold my bicycle yesterday")
    hidden = await send(client, bob, ab, "bicycle lock combination 1234")
    await client.delete(f"/api/messages/{hidden['id']}", headers=alice.auth)
    resp = await client.get("/api/messages/search?q=bicy", headers=alice.auth)
    hits = (await resp.json())["items"]
    assert [h["message"]["content"] for h in hits] == [
        "Is the bicycle still available?",
        "The red bicycle is for sale",
    ]
    assert hits[0]["conversation_id"] == ab and hits[0]["other_user"]["username"] == "bob"
    resp = await client.get("/api/messages/search?q=red+bicycle", headers=alice.auth)
    assert len((await resp.json())["items"]) == 1
    resp = await client.get(
        "/api/messages/search", params={"q": "bicycle", "conversation_id": bc}, headers=bob.auth
    )
    assert [h["message"]["sender_id"] for h in (await resp.json())["items"]] == [carol.id]
    resp = await client.get(
        "/api/messages/search", params={"q": "bicycle", "conversation_id": bc}, headers=alice.auth
    )
    await expect_problem(resp, 404)
    page = await (
        await client.get("/api/messages/search?q=bicycle&limit=1", headers=bob.auth)
    ).json()
    page2 = await (
        await client.get(
            "/api/messages/search",
            params={"q": "bicycle", "limit": "1", "cursor": page["next_cursor"]},
            headers=bob.auth,
        )
    ).json()
    assert page["items"][0]["message"]["id"] != page2["items"][0]["message"]["id"]
    resp = await client.get("/api/messages/search?q=%21%21", headers=alice.auth)
    await expect_problem(resp, 422)


# Notifications -------------------------------------------------------------------------------


async def test_new_message_notifications_are_batched_per_conversation(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    for n in range(3):
        await send(client, alice, cid, f"ping {n}")
    notes = await notifications_of(client, bob)
    assert len(notes) == 1
    note = notes[0]
    assert note["type"] == "new_message" and note["entity_type"] == "conversation"
    assert note["entity_id"] == cid and note["event_count"] == 3
    assert note["content"] == "3 new messages from @alice"
    assert note["data"]["message_preview"] == "ping 2"
    assert await notifications_of(client, alice) == []


async def test_reading_or_replying_reads_the_conversations_notifications(client, alice, bob):
    cid = await open_dm(client, alice, bob)
    await send(client, alice, cid, "one")
    await send(client, alice, cid, "two")
    assert [n["is_read"] for n in await notifications_of(client, bob)] == [False]
    await client.post(f"/api/conversations/{cid}/read", headers=bob.auth)
    assert [n["is_read"] for n in await notifications_of(client, bob)] == [True]
    count = await (await client.get("/api/notifications/unread-count", headers=bob.auth)).json()
    assert count["unread_count"] == 0
    await send(client, bob, cid, "hi alice")
    assert [n["is_read"] for n in await notifications_of(client, alice)] == [False]
    await send(client, alice, cid, "replying reads it")
    assert [n["is_read"] for n in await notifications_of(client, alice)] == [True]
