"""Helpers of the posts tests: create posts, follow (with approval), block, read notifications."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import User


async def post(client: TestClient, user: User, expect: int = 201, **body: Any) -> dict[str, Any]:
    body.setdefault("content", "hello world")
    resp = await client.post("/api/posts", json=body, headers=user.auth)
    data = await resp.json()
    assert resp.status == expect, data
    return data


async def get_post(client: TestClient, user: User, post_id: str, expect: int = 200) -> dict:
    resp = await client.get(f"/api/posts/{post_id}", headers=user.auth)
    data = await resp.json()
    assert resp.status == expect, data
    return data


async def grid(client: TestClient, viewer: User, of: User, **params: Any) -> dict[str, Any]:
    resp = await client.get(f"/api/users/{of.id}/posts", params=params, headers=viewer.auth)
    data = await resp.json()
    assert resp.status == 200, data
    return data


async def make_private(client: TestClient, user: User) -> None:
    resp = await client.patch(f"/api/users/{user.id}", json={"is_private": True}, headers=user.auth)
    assert resp.status == 200, await resp.text()


async def follow(client: TestClient, follower: User, followed: User) -> None:
    """`follower` follows `followed`, approved if the account is private."""
    resp = await client.post(f"/api/users/{followed.id}/follow", headers=follower.auth)
    assert resp.status in (200, 201), await resp.text()
    requests = await (await client.get("/api/follows/requests", headers=followed.auth)).json()
    for item in requests["items"]:
        accepted = await client.post(
            f"/api/follows/{item['follow_id']}/accept", headers=followed.auth
        )
        assert accepted.status == 200, await accepted.text()


async def block(client: TestClient, blocker: User, blocked: User) -> None:
    resp = await client.post(f"/api/users/{blocked.id}/block", headers=blocker.auth)
    assert resp.status in (200, 201, 204), await resp.text()


async def notification_types(client: TestClient, user: User) -> list[str]:
    resp = await client.get("/api/notifications", headers=user.auth)
    assert resp.status == 200, await resp.text()
    return [item["type"] for item in (await resp.json())["items"]]
