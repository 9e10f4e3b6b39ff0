"""Input hygiene (issue 17, finding 10): text that shows nothing is refused, URLs hold no control
characters, display names are NFC-normalised without invisible characters; always a 422
problem+json naming the field."""

from __future__ import annotations

import unicodedata

import pytest

from tests.helpers import expect_problem, register

INVISIBLE = [
    "\u200b\u200b",  # zero-width spaces
    "\u200d\u2060\ufeff",  # zero-width joiner, word joiner, BOM
    "\u202e\u2066\u2069",  # bidi override / isolates
    "\u3164 \u2800",  # Hangul filler, braille blank
]


async def _conversation(client, alice, bob) -> str:
    resp = await client.post("/api/conversations", json={"user_id": bob.id}, headers=alice.auth)
    assert resp.status in (200, 201), await resp.text()
    return (await resp.json())["id"]


@pytest.mark.parametrize("text", INVISIBLE, ids=["zwsp", "joiners", "bidi", "blank-letters"])
async def test_a_message_of_invisible_characters_is_refused(client, alice, bob, text):
    cid = await _conversation(client, alice, bob)
    resp = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": text}, headers=alice.auth
    )
    body = await expect_problem(resp, 422)
    assert "content" in body["errors"]
    listed = await client.get(f"/api/conversations/{cid}/messages", headers=bob.auth)
    assert (await listed.json())["items"] == []
    ok = await client.post(
        f"/api/conversations/{cid}/messages", json={"content": "hi \u200b"}, headers=alice.auth
    )
    assert ok.status == 201


@pytest.mark.parametrize("text", INVISIBLE, ids=["zwsp", "joiners", "bidi", "blank-letters"])
async def test_a_display_name_of_invisible_characters_is_refused(client, alice, text):
    resp = await client.patch(
        f"/api/users/{alice.id}", json={"display_name": text}, headers=alice.auth
    )
    body = await expect_problem(resp, 422)
    assert "display_name" in body["errors"]
    reg = await client.post(
        "/api/auth/register",
        json={
            "username": "ghost",
            "email": "ghost@example.com",
            "password": "s3cret-pass",
            "display_name": text,
        },
    )
    assert "display_name" in (await expect_problem(reg, 422))["errors"]


async def test_display_names_are_nfc_without_hidden_characters(client, alice):
    decomposed = "Zoe\u0301 \u202eadmin\u200b"  # e + combining acute; bidi override; ZWSP
    resp = await client.patch(
        f"/api/users/{alice.id}", json={"display_name": decomposed}, headers=alice.auth
    )
    assert resp.status == 200, await resp.text()
    name = (await resp.json())["display_name"]
    assert name == "Zoé admin"
    assert unicodedata.is_normalized("NFC", name)
    fetched = await client.get("/api/users/alice", headers=alice.auth)
    assert (await fetched.json())["display_name"] == "Zoé admin"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/\r\nSet-Cookie: x=1",
        "https://example.com/a\nb",
        "https://example.com/\tx",
        "https://example.com/\x7f",
    ],
)
async def test_urls_with_control_characters_are_refused(client, alice, url):
    resp = await client.patch(f"/api/users/{alice.id}", json={"website": url}, headers=alice.auth)
    body = await expect_problem(resp, 422)
    assert "website" in body["errors"]
    fetched = await (await client.get("/api/users/alice", headers=alice.auth)).json()
    assert fetched["website"] is None


async def test_a_bio_of_only_invisible_characters_is_refused(client, alice):
    resp = await client.patch(
        f"/api/users/{alice.id}", json={"bio": "\u200b\u200c"}, headers=alice.auth
    )
    assert "bio" in (await expect_problem(resp, 422))["errors"]
    ok = await client.patch(f"/api/users/{alice.id}", json={"bio": ""}, headers=alice.auth)
    assert ok.status == 200  # clearing it stays allowed


async def test_register_helper_still_works(client):
    assert (await register(client, "plain_user")).username == "plain_user"
