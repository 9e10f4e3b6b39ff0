"""Background work of the commerce read model (group expiry timers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def commerce_lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
