"""The gateway: WebSocket sessions, resume, subscriptions, HTTP fallback transports.

Layout: hub.py (node-local registry, fan-out, sweeper), connection.py (the socket state
machine), handshake.py (identify / resume), endpoint.py (the WebSocket route's upgrade and
teardown), calls.py (call methods and topic authorizers other capabilities register),
methods/ (one module of call methods per capability), fallback.py (long-poll and SSE),
frames.py (framing, encode-once), metrics.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


async def gateway_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start and stop the gateway's background work (runs after the core resources; the
    capabilities' call methods are loaded by create_app, server/capabilities.py)."""
    from server.app_keys import CONTEXT, SETTINGS
    from server.gc_policy import gc_policy
    from server.ws.hub import HUB, Hub

    settings = app[SETTINGS].gateway
    hub = Hub(app[CONTEXT], settings)
    app[HUB] = hub
    hub.start()
    async with gc_policy(
        enabled=settings.gc_policy,
        threshold0=settings.gc_threshold0,
        warmup_s=settings.gc_warmup_s,
        freeze_interval_s=settings.gc_freeze_interval_s,
        full_collect_interval_s=settings.gc_full_collect_interval_s,
    ):
        yield
    await hub.stop()


async def gateway_shutdown(app: web.Application) -> None:
    """on_shutdown: tell every client to reconnect (4012) before the server stops waiting."""
    from server.ws.hub import HUB

    hub = app.get(HUB)
    if hub is not None:
        await hub.shutdown()


async def drain(app: web.Application, grace_s: float, spread_s: float) -> None:
    """Graceful drain before a stop (SIGTERM, see server/cli.py): readiness answers 503 at
    once; after `grace_s` (time for load balancers to notice) new sockets are refused and
    connected clients are asked to reconnect elsewhere, spread over `spread_s`. In-flight
    requests and jobs finish afterwards, in the ordinary shutdown."""
    import asyncio

    from server.app_keys import DRAINING
    from server.ws.hub import HUB

    app[DRAINING].set()
    await asyncio.sleep(grace_s)
    hub = app.get(HUB)
    if hub is not None:
        await hub.drain(spread_s)
