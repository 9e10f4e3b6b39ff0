"""The gateway: WebSocket sessions, resume, subscriptions, HTTP fallback transports."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def gateway_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start and stop the gateway's background work (runs after the core resources)."""
    yield
