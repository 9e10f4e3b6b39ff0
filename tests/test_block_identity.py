"""After a block, the blocked user's conversation list and message search show the blocker as a
neutral identity (issue 17, finding 7): "Nexgate User", no avatar, no badge, whatever the blocker
changes afterwards; the username (which cannot change) and the history stay. The blocker keeps
seeing whom they blocked as they are. Over HTTP and the gateway alike (one rule,
server/store/visibility.py user_brief_seen_by)."""

from __future__ import annotations

import pytest

from tests.messaging_support import MESSAGING_SETTINGS, block, conversations, gateway, open_dm, send
from tests.notifications_support import ctx_of

pytestmark = pytest.mark.app_settings(**MESSAGING_SETTINGS)

NEUTRAL = {"display_name": "Nexgate User", "profile_picture_url": None, "is_verified": False}


def _shown(user: dict) -> dict:
    return {key: user[key] for key in NEUTRAL}


async def _rename(client, user, **changes) -> None:
    resp = await client.patch(f"/api/users/{user.id}", json=changes, headers=user.auth)
    assert resp.status == 200, await resp.text()


async def _search(client, user, q: str) -> list[dict]:
    resp = await client.get("/api/messages/search", params={"q": q}, headers=user.auth)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]


async def test_the_blocked_side_sees_a_neutral_identity_that_does_not_follow_changes(
    client, alice, bob, clean_db
):
    await _rename(
        client, alice, display_name="Alice Old", profile_picture_url="https://a.example/1.png"
    )
    cid = await open_dm(client, alice, bob)
    await send(client, alice, cid, "meet at the harbour")
    [before] = (await conversations(client, bob))["items"]
    assert _shown(before["other_user"]) == {
        "display_name": "Alice Old",
        "profile_picture_url": "https://a.example/1.png",
        "is_verified": False,
    }

    await block(client, alice, bob)
    # The blocker moves on: a new name, a new face, a verified badge.
    await _rename(
        client, alice, display_name="Alice New", profile_picture_url="https://a.example/2.png"
    )
    # (No endpoint grants the badge yet; moderation sets it.)
    async with ctx_of(client).db.transaction() as tx:
        await tx.execute("UPDATE users SET is_verified = true WHERE id = %s", (alice.id,))

    [listed] = (await conversations(client, bob))["items"]
    assert listed["id"] == cid
    assert _shown(listed["other_user"]) == NEUTRAL
    assert listed["other_user"]["username"] == "alice"  # cannot change; bob knew it
    [hit] = await _search(client, bob, "harbour")
    assert hit["conversation_id"] == cid and _shown(hit["other_user"]) == NEUTRAL
    single = await (await client.get(f"/api/conversations/{cid}", headers=bob.auth)).json()
    assert _shown(single["other_user"]) == NEUTRAL

    gw = await gateway(client, bob)
    try:
        listed_gw = await gw.call("conversations.list")
        assert _shown(listed_gw["items"][0]["other_user"]) == NEUTRAL
        found_gw = await gw.call("messages.search", q="harbour")
        assert _shown(found_gw["items"][0]["other_user"]) == NEUTRAL
    finally:
        await gw.close()

    # The blocker still sees whom they blocked as they are.
    [own] = (await conversations(client, alice))["items"]
    assert own["other_user"]["display_name"] == "bob"
    # Unblocked: bob sees alice as she is again.
    resp = await client.delete(f"/api/users/{bob.id}/unblock", headers=alice.auth)
    assert resp.status in (200, 204)
    [after] = (await conversations(client, bob))["items"]
    assert _shown(after["other_user"]) == {
        "display_name": "Alice New",
        "profile_picture_url": "https://a.example/2.png",
        "is_verified": True,
    }
