"""create_app(settings): the HTTP application: middlewares, sessions, the Context (built by the
composition root, server/bootstrap.py), the gateway, and every capability's routes and
background work (server/capabilities.py)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from server import capabilities
from server.app_keys import CONTEXT, DRAINING, SETTINGS
from server.bootstrap import close_context, open_context, resolve_jwt_secret
from server.clock import SYSTEM_CLOCK, Clock
from server.config import Settings
from server.http import middlewares, openapi, web_security
from server.ops_metrics import loop_lag_watcher
from server.ws import gateway_lifecycle, gateway_shutdown

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> web.Application:
    secret = resolve_jwt_secret(settings)
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[middlewares.request_context, middlewares.errors],
    )
    app[SETTINGS] = settings
    app[DRAINING] = asyncio.Event()
    session_key = hashlib.sha256(b"session:" + secret.encode()).digest()
    setup_sessions(
        app,
        EncryptedCookieStorage(
            session_key,
            cookie_name=settings.auth.session_cookie_name,
            httponly=True,
            secure=settings.auth.cookie_secure,
            samesite="Strict",
            max_age=settings.auth.refresh_token_ttl_s,
        ),
    )
    app.middlewares.append(web_security.browser_guard)  # preflights and the origin check
    app.middlewares.append(middlewares.authenticate)
    app.on_response_prepare.append(web_security.cors_headers)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        app[CONTEXT] = await open_context(settings, clock=clock, sweep_outbox=True)
        async with loop_lag_watcher():
            yield
        await close_context(app[CONTEXT])

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(gateway_lifecycle)
    capabilities.install(app, lambda app: app[CONTEXT])
    app.on_startup.append(openapi.build_on_startup)  # a duplicate operation id fails here
    app.on_shutdown.append(gateway_shutdown)
    return app
