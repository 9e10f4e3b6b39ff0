"""Helpers of the feed tests: read the home feed (every page), explore and hashtag feeds, run
the fan-out jobs, mute / hide / unfollow through HTTP."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers import User
from tests.notifications_support import run_jobs

# Fan-out jobs run when the test says (run_jobs); a low threshold puts authors with 3
# followers on the pulled side of the hybrid.
FEED_SETTINGS = {"jobs": {"in_process_worker": False}, "feeds": {"fanout_threshold": 3}}


async def feed_page(
    client: TestClient, viewer: User, path: str = "/api/posts", **params: Any
) -> dict[str, Any]:
    resp = await client.get(path, params=params, headers=viewer.auth)
    data = await resp.json()
    assert resp.status == 200, data
    return data


async def feed(
    client: TestClient, viewer: User, path: str = "/api/posts", limit: int = 20
) -> list[str]:
    """Every post id of the feed, page after page (following next_cursor)."""
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = await feed_page(client, viewer, path, **params)
        ids.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("the feed did not end")


async def contents(client: TestClient, viewer: User, path: str = "/api/posts") -> list[str]:
    page = await feed_page(client, viewer, path, limit=100)
    return [item["content"] for item in page["items"]]


async def settle(client: TestClient) -> None:
    """Run the queued fan-out / retraction jobs."""
    await run_jobs(client)


async def act(client: TestClient, user: User, method: str, path: str) -> None:
    resp = await client.request(method, path, headers=user.auth)
    assert resp.status in (200, 201, 204), await resp.text()
