"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web

from server.app_keys import CONTEXT
from server.http.metrics import DB_POOL_IN_USE, DB_POOL_SIZE, render_metrics

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    try:
        await ctx.db.ping()
    except Exception as exc:
        return web.json_response({"status": "unavailable", "database": str(exc)}, status=503)
    return web.json_response({"status": "ready"})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    db = request.app[CONTEXT].db
    DB_POOL_IN_USE.set(db.in_use)
    DB_POOL_SIZE.set(db.pool.size)
    body, content_type = render_metrics()
    return web.Response(body=body, headers={"Content-Type": content_type})
