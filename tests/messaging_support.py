"""Helpers of the messaging tests: the settings of an app with commerce ingest enabled and roomy
limits, small HTTP helpers, and gateway clients (the reference client) connected to the test
server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from protocol.client import GatewayClient, GatewayEvent
from tests.commerce_support import SERVICE_TOKEN, Commerce
from tests.helpers import User

__all__ = ["SERVICE_TOKEN", "Commerce"]

# Commerce ingest on, limits a test does not hit:
# pytestmark = pytest.mark.app_settings(**MESSAGING_SETTINGS); a test changes more with
# @pytest.mark.parametrize("overrides", [{section: {...}}]).
MESSAGING_SETTINGS: dict[str, dict[str, Any]] = {
    "commerce": {"service_token": SERVICE_TOKEN},
    "rate_limits": {"message": "10000/3600", "api": "100000/3600"},
    "gateway": {"frame_budget": 100000},
}


async def open_dm(client, a: User, b: User) -> str:
    resp = await client.post("/api/conversations", json={"user_id": b.id}, headers=a.auth)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["id"]


async def send(client, user: User, conversation_id: str, content: str = "hi", **extra: Any):
    resp = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"content": content, **extra},
        headers=user.auth,
    )
    assert resp.status == 201, await resp.text()
    return await resp.json()


async def messages(client, user: User, conversation_id: str, **params: Any) -> dict:
    resp = await client.get(
        f"/api/conversations/{conversation_id}/messages",
        params={k: str(v) for k, v in params.items()},
        headers=user.auth,
    )
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def conversations(client, user: User, **params: Any) -> dict:
    resp = await client.get(
        "/api/conversations", params={k: str(v) for k, v in params.items()}, headers=user.auth
    )
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def conversation(client, user: User, conversation_id: str) -> dict:
    resp = await client.get(f"/api/conversations/{conversation_id}", headers=user.auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def block(client, blocker: User, blocked: User) -> None:
    resp = await client.post(f"/api/users/{blocked.id}/block", headers=blocker.auth)
    assert resp.status in (200, 204), await resp.text()


async def notifications_of(client, user: User) -> list[dict]:
    resp = await client.get("/api/notifications", headers=user.auth)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["items"]


async def gateway(client, user: User, **kwargs: Any) -> GatewayClient:
    url = str(client.make_url("/api/gateway/ws"))
    gw = GatewayClient(url, user.token, backoff_initial_s=0.05, **kwargs)
    await gw.connect()
    return gw


async def next_of(
    gw: GatewayClient, type: str | Callable[[GatewayEvent], bool], wait_s: float = 5.0
) -> GatewayEvent:
    """The next event of `type` (or matching a predicate), skipping others."""
    match = type if callable(type) else (lambda e: e.type == type)
    async with asyncio.timeout(wait_s):
        while True:
            event = await gw.next_event(wait_s)
            if match(event):
                return event


async def collect(gw: GatewayClient, type: str, n: int, wait_s: float = 10.0) -> list:
    """The next `n` events of `type`, in arrival order."""
    got = []
    async with asyncio.timeout(wait_s):
        while len(got) < n:
            event = await gw.next_event(wait_s)
            if event.type == type:
                got.append(event)
    return got


async def no_event(gw: GatewayClient, type: str, wait_s: float = 0.3) -> None:
    """Assert no event of `type` arrives within `wait_s`."""
    try:
        async with asyncio.timeout(wait_s):
            while True:
                event = await gw.next_event(wait_s)
                assert event.type != type, f"unexpected {event.type}: {event.data}"
    except TimeoutError:
        pass


def nonce() -> str:
    return uuid.uuid4().hex


async def wait_resumed(gw: GatewayClient, resumes_before: int, wait_s: float = 5.0) -> None:
    """Wait until the client has resumed after a drop (its `resumes` counter moved)."""
    async with asyncio.timeout(wait_s):
        while gw.resumes == resumes_before:  # noqa: ASYNC110  (the client offers no event)
            await asyncio.sleep(0.01)
