"""Profiles: lookup by id or username, privacy of email, editing, validation, stats."""

from __future__ import annotations

import uuid

from tests.helpers import expect_problem


async def test_profile_by_username_and_by_id_hides_email_from_others(client, alice, bob):
    by_name = await client.get("/api/users/alice", headers=bob.auth)
    assert by_name.status == 200
    profile = await by_name.json()
    assert profile["id"] == alice.id and "email" not in profile
    assert profile["relationship"] == {
        "following": None,
        "followed_by": None,
        "blocking": False,
        "muting": False,
    }
    by_id = await client.get(f"/api/users/{alice.id}", headers=bob.auth)
    assert (await by_id.json())["username"] == "alice"
    own = await (await client.get("/api/users/alice", headers=alice.auth)).json()
    assert own["email"] == alice.email


async def test_unknown_user_is_404(client, alice):
    await expect_problem(await client.get("/api/users/nobody_here", headers=alice.auth), 404)
    await expect_problem(await client.get(f"/api/users/{uuid.uuid4()}", headers=alice.auth), 404)


async def test_blocked_and_muted_are_not_usernames(client, alice):
    blocked = await client.get("/api/users/blocked", headers=alice.auth)
    assert blocked.status == 200 and (await blocked.json())["items"] == []
    muted = await client.get("/api/users/muted", headers=alice.auth)
    assert muted.status == 200 and (await muted.json())["items"] == []


async def test_patch_own_profile(client, alice):
    resp = await client.patch(
        f"/api/users/{alice.id}",
        headers=alice.auth,
        json={
            "display_name": "Alice A.",
            "bio": "Shop owner",
            "website": "https://a.example",
            "location": "Lisbon",
        },
    )
    assert resp.status == 200
    body = await resp.json()
    assert body["display_name"] == "Alice A." and body["website"] == "https://a.example"
    again = await (await client.get("/api/users/alice", headers=alice.auth)).json()
    assert again["bio"] == "Shop owner" and again["location"] == "Lisbon"


async def test_cannot_patch_someone_else(client, alice, bob):
    resp = await client.patch(f"/api/users/{alice.id}", headers=bob.auth, json={"bio": "hacked"})
    await expect_problem(resp, 403)
    assert (await (await client.get("/api/users/alice", headers=alice.auth)).json())["bio"] is None


async def test_profile_validation(client, alice):
    cases = [
        ({"bio": "x" * 251}, "bio"),
        ({"display_name": "y" * 51}, "display_name"),
        ({"website": "javascript:alert(1)"}, "website"),
        ({"website": "ftp://files.example"}, "website"),
        ({"website": "http://[::1"}, "website"),
        ({"is_private": "maybe"}, "is_private"),
        ({"email": "new@example.com"}, "email"),
        ({"profile_picture_url": "javascript:alert(1)"}, "profile_picture_url"),
        ({"cover_photo_url": "data:text/html,hi"}, "cover_photo_url"),
        ({"display_name": "   "}, "display_name"),
    ]
    for payload, field in cases:
        resp = await client.patch(f"/api/users/{alice.id}", headers=alice.auth, json=payload)
        body = await expect_problem(resp, 422)
        assert field in str(body.get("errors", {})) or field in body["detail"], payload


async def test_stats_reflect_follows(client, alice, bob):
    await client.post("/api/users/alice/follow", headers=bob.auth)
    stats = await (await client.get(f"/api/users/{alice.id}/stats", headers=bob.auth)).json()
    assert stats["followers_count"] == 1 and stats["following_count"] == 0
    assert stats["posts_count"] == 0


async def test_blank_display_name_at_registration_falls_back_to_username(client):
    resp = await client.post(
        "/api/auth/register",
        json={
            "username": "spacey",
            "email": "s@example.com",
            "password": "longenough",
            "display_name": "   ",
        },
    )
    assert (await resp.json())["user"]["display_name"] == "spacey"
