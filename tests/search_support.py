"""Helpers of the search, lists and muted-words tests."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import User


async def search(
    client: TestClient, user: User, kind: str, q: str, expect: int = 200, **params: Any
) -> dict[str, Any]:
    resp = await client.get(f"/api/search/{kind}", params={"q": q, **params}, headers=user.auth)
    data = await resp.json()
    assert resp.status == expect, data
    return data


async def found_posts(client: TestClient, user: User, q: str, **params: Any) -> list[str]:
    """The contents of the posts `user` finds for `q`, best first."""
    return [item["content"] for item in (await search(client, user, "posts", q, **params))["items"]]


async def found_users(client: TestClient, user: User, q: str, **params: Any) -> list[str]:
    return [
        item["username"] for item in (await search(client, user, "users", q, **params))["items"]
    ]


async def mute_word(client: TestClient, user: User, phrase: str, **body: Any) -> dict[str, Any]:
    resp = await client.post(
        "/api/users/me/muted-words", json={"phrase": phrase, **body}, headers=user.auth
    )
    data = await resp.json()
    assert resp.status == 201, data
    return data


async def make_list(client: TestClient, owner: User, name: str = "Friends", **body: Any) -> dict:
    resp = await client.post("/api/lists", json={"name": name, **body}, headers=owner.auth)
    data = await resp.json()
    assert resp.status == 201, data
    return data


async def add_member(
    client: TestClient, owner: User, list_id: str, member: User, expect: int = 201
) -> dict[str, Any]:
    resp = await client.post(
        f"/api/lists/{list_id}/members", json={"user_id": member.id}, headers=owner.auth
    )
    data = await resp.json()
    assert resp.status == expect, data
    return data


async def list_feed(
    client: TestClient, viewer: User, list_id: str, expect: int = 200, **params: Any
) -> dict[str, Any]:
    resp = await client.get(f"/api/lists/{list_id}/feed", params=params, headers=viewer.auth)
    data = await resp.json()
    assert resp.status == expect, data
    return data


async def feed_contents(client: TestClient, viewer: User, list_id: str) -> list[str]:
    return [item["content"] for item in (await list_feed(client, viewer, list_id))["items"]]
