"""The standalone worker's own small HTTP server (`nexgate worker`, port `jobs.metrics_port`):
/metrics for Prometheus, /healthz, and /readyz (database and bus). The worker has no other
HTTP surface."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from server.app_keys import CONTEXT
from server.domain.context import Context
from server.http import health
from server.ops_metrics import loop_lag_watcher

log = logging.getLogger("nexgate.worker")


@asynccontextmanager
async def serve_worker_metrics(ctx: Context, host: str, port: int) -> AsyncIterator[int | None]:
    """Serve while the block runs; yields the bound port (None when off: port 0, or the port
    is taken: logged, the worker runs on without it rather than not at all)."""
    if not port:
        async with loop_lag_watcher():
            yield None
        return
    app = web.Application()
    app[CONTEXT] = ctx
    app.router.add_get("/metrics", health.metrics)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            log.warning("worker metrics not served on %s:%s: %s", host, port, exc.strerror)
            yield None
            return
        async with loop_lag_watcher():
            yield port
    finally:
        await runner.cleanup()
