"""create_app(settings): wires store, bus, domain, http, ws and jobs."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp_session import setup as setup_sessions
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from server.app_keys import CONTEXT, SETTINGS
from server.bus.memory import MemoryBus
from server.bus.ratelimit import MemoryRateLimiter, RedisRateLimiter
from server.config import Settings
from server.domain.auth_tokens import Passwords, TokenSigner
from server.domain.context import Context
from server.http import (
    auth,
    commerce,
    gateway,
    health,
    messaging,
    middlewares,
    notifications,
    openapi,
    users,
)
from server.jobs import jobs_lifecycle
from server.mail import make_mailer
from server.store.db import Database
from server.store.embedded import start_embedded
from server.store.migrate import apply_migrations
from server.ws import gateway_lifecycle, gateway_shutdown

log = logging.getLogger(__name__)

ROUTE_TABLES = [
    health.routes,
    openapi.routes,
    auth.routes,
    users.routes,
    gateway.routes,
    notifications.routes,
    commerce.routes,
    messaging.routes,
]
# Each capability's background work, started in this order after the core resources.
LIFECYCLES = [gateway_lifecycle, jobs_lifecycle, commerce.commerce_lifecycle]


def resolve_jwt_secret(settings: Settings) -> str:
    """The configured secret, else one generated once and kept in the data dir."""
    if settings.auth.jwt_secret:
        return settings.auth.jwt_secret
    path = settings.data_path / "jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


async def resolve_database_url(settings: Settings) -> str:
    if settings.database.url:
        return settings.database.url
    return await asyncio.to_thread(start_embedded, settings.data_path / "pg")


async def make_bus(settings: Settings):
    gw = settings.gateway
    if settings.redis.url:
        from server.bus.redis import RedisBus

        return RedisBus(
            settings.redis.url,
            log_depth=gw.resume_log_depth,
            log_age_s=gw.resume_log_age_s,
            prefix=settings.redis.prefix,
            presence_ttl_s=gw.presence_ttl_s,
        )
    return MemoryBus(log_depth=gw.resume_log_depth, log_age_s=gw.resume_log_age_s)


def make_limiter(settings: Settings, bus):
    """Rate limits shared by every server and worker process of a deployment (Redis, under the
    configured key prefix), else in process memory."""
    if settings.redis.url:
        return RedisRateLimiter(bus.redis, prefix=f"{settings.redis.prefix}rl:")
    return MemoryRateLimiter()


def create_app(settings: Settings) -> web.Application:
    secret = resolve_jwt_secret(settings)
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[middlewares.request_context, middlewares.errors],
    )
    app[SETTINGS] = settings
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
    app.middlewares.append(middlewares.authenticate)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        dsn = await resolve_database_url(settings)
        if settings.database.migrate_on_start:
            await asyncio.to_thread(apply_migrations, dsn)
        db = await Database.connect(
            dsn, minsize=settings.database.pool_min, maxsize=settings.database.pool_max
        )
        bus = await make_bus(settings)
        await bus.start()
        limiter = make_limiter(settings, bus)
        app[CONTEXT] = Context(
            settings=settings,
            db=db,
            bus=bus,
            limiter=limiter,
            mailer=make_mailer(settings.smtp),
            signer=TokenSigner(secret, settings.auth.access_token_ttl_s),
            passwords=Passwords(settings.auth.argon2_time_cost, settings.auth.argon2_memory_kib),
        )
        yield
        await bus.close()
        await db.close()

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.extend(LIFECYCLES)
    app.on_shutdown.append(gateway_shutdown)
    for table in ROUTE_TABLES:
        app.router.add_routes(table)
    return app
