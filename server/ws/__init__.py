"""The gateway: WebSocket sessions, resume, subscriptions, HTTP fallback transports.

Layout: hub.py (node-local registry, fan-out, sweeper), connection.py (the socket state
machine), calls.py (call methods and topic authorizers other capabilities register),
methods/ (one module of call methods per capability), fallback.py (long-poll and SSE),
frames.py (framing, encode-once), metrics.py.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from protocol.constants import CloseCode
from server.domain.context import Context


async def gateway_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start and stop the gateway's background work (runs after the core resources; the
    capabilities' call methods are loaded by create_app, server/capabilities.py)."""
    from server.app_keys import CONTEXT, SETTINGS
    from server.ws.hub import HUB, Hub
    hub = Hub(app[CONTEXT], app[SETTINGS].gateway)
    app[HUB] = hub
    hub.start()
    yield
    await hub.stop()


async def gateway_shutdown(app: web.Application) -> None:
    """on_shutdown: tell every client to reconnect (4012) before the server stops waiting."""
    from server.ws.hub import HUB

    hub = app.get(HUB)
    if hub is not None:
        await hub.shutdown()


async def disconnect_user(
    ctx: Context, user_id: uuid.UUID, reason: str = "session revoked", code: int | None = None
) -> None:
    """Close every live session of `user_id` on every node (e.g. after a password change or a
    deactivation), through the event sink's control channel. A domain action that ends
    sessions as part of a write calls `ctx.events.end_sessions(tx, ...)` in its transaction."""
    async with ctx.db.transaction() as tx:
        ctx.events.end_sessions(tx, user_id, reason, int(code or CloseCode.AUTHENTICATION_FAILED))
