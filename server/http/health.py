"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from aiohttp import web

from server.app_keys import CONTEXT, DRAINING
from server.http.metrics import DB_POOL_IN_USE, DB_POOL_MAX, DB_POOL_SIZE, READY, render_metrics

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check(probe: Awaitable[None], timeout_s: float = 2.0) -> str:
    try:
        await asyncio.wait_for(probe, timeout_s)
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}: {exc}"[:200]
    return "ok"


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready to take traffic: the database and the bus each answer (reported separately), and
    the node is not draining. 503 otherwise, so a load balancer sends clients elsewhere.

    `?degraded=ok` asks instead "can this node serve at all": a bus (Redis) outage then answers
    200 `degraded` (the node serves with the limiter failing open, revocations read from
    PostgreSQL, live events waiting in the outbox). A Redis outage takes every node down at
    once, and an orchestrator that only knows ready / not ready (a Kubernetes Service) would
    otherwise drop all of them and answer nobody; HAProxy falls back by itself instead."""
    ctx = request.app[CONTEXT]
    database, bus = await asyncio.gather(_check(ctx.db.ping()), _check(ctx.bus.ping()))
    draining = DRAINING in request.app and request.app[DRAINING].is_set()
    ready = database == "ok" and bus == "ok" and not draining
    degraded = (
        not ready and request.query.get("degraded") == "ok" and database == "ok" and not draining
    )
    status = "ready" if ready else "degraded" if degraded else "draining" if draining else None
    body = {"status": status or "unavailable", "database": database, "bus": bus}
    READY.set(1 if ready else 0)
    return web.json_response(body, status=200 if ready or degraded else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    db = request.app[CONTEXT].db
    DB_POOL_IN_USE.set(db.in_use)
    DB_POOL_SIZE.set(db.pool.size)
    DB_POOL_MAX.set(db.pool.maxsize or 0)
    body, content_type = render_metrics()
    return web.Response(body=body, headers={"Content-Type": content_type})
