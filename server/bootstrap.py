"""The composition root: the one place that builds (and closes) the Context of a process.

`nexgate serve` (through create_app), `nexgate worker`, `nexgate seed-demo` and the load-test
servers all call `open_context(settings)`; nothing else constructs a Context, so the engines
(database, bus, rate limiter, event sink, mailer, push sender, clock) are wired the same way
everywhere.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.bus.base import Bus
from server.bus.faults import FaultTolerantLimiter
from server.bus.memory import MemoryBus
from server.bus.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from server.clock import SYSTEM_CLOCK, Clock
from server.config import Settings
from server.domain.auth_tokens import Passwords, TokenSigner
from server.domain.context import Context, VirusScanner
from server.domain.events import EventSink
from server.domain.linearizer import Linearizer
from server.domain.sessions import RevocationCache, database_revocations, restore_revocations
from server.mail import make_mailer
from server.media import cpu as media_cpu
from server.media import optional_module
from server.media.storage import make_storage
from server.push_relay import make_push_sender
from server.store.db import Database
from server.store.embedded import release_embedded, start_embedded
from server.store.migrate import apply_migrations

log = logging.getLogger(__name__)


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
    """The configured database, else the embedded one in the data dir (this process holds a
    lease on it until `release_database(settings)`; the last user stops it)."""
    if settings.database.url:
        return settings.database.url
    return await asyncio.to_thread(start_embedded, settings.data_path / "pg")


def release_database(settings: Settings) -> None:
    if not settings.database.url:
        release_embedded(settings.data_path / "pg")


def make_bus(settings: Settings) -> Bus:
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


def make_limiter(settings: Settings, bus: Bus, clock: Clock = SYSTEM_CLOCK) -> RateLimiter:
    """Rate limits shared by every server and worker process of a deployment (Redis, under the
    configured key prefix), else in process memory."""
    if settings.redis.url:
        # make_bus gives a RedisBus whenever a Redis URL is set (the Bus protocol has no .redis).
        shared = RedisRateLimiter(
            bus.redis,  # type: ignore[attr-defined]
            prefix=f"{settings.redis.prefix}rl:",
            clock=clock,
        )
        # Redis faults degrade (allow, or 503 by config), never a 500 on every request.
        return FaultTolerantLimiter(shared, settings.redis.rate_limit_on_failure)
    return FaultTolerantLimiter(MemoryRateLimiter(clock))  # counts rejections; cannot fail


def make_scanner(settings: Settings) -> VirusScanner | None:
    """ClamAV (clamd INSTREAM) when an address is configured, else no scanning."""
    address = settings.media.scan_clamd_address
    try:
        scanning = optional_module("scanning")
    except ImportError:  # a build without the scanning module
        if address:
            raise RuntimeError(
                "media.scan_clamd_address is set but this build has no virus scanner"
            ) from None
        return None
    if address:
        return scanning.ClamdScanner(address, timeout_s=settings.media.scan_timeout_s)
    return scanning.NoScanner()


async def open_context(
    settings: Settings,
    *,
    migrate: bool | None = None,
    clock: Clock = SYSTEM_CLOCK,
    sweep_outbox: bool | None = None,
) -> Context:
    """Connect every engine and return the process's Context. `migrate` defaults to
    settings.database.migrate_on_start. `sweep_outbox`: republish events dead nodes left in
    the outbox; by default only on a shared bus (Redis): a process on the memory bus has no
    gateway of another process to reach, so only a server (create_app) sweeps there.
    Close it with `close_context`."""
    from server.capabilities import load_jobs

    load_jobs()  # every job kind known: enqueue refuses typos, workers find every handler
    dsn = await resolve_database_url(settings)
    try:
        if settings.database.migrate_on_start if migrate is None else migrate:
            await asyncio.to_thread(apply_migrations, dsn)
        db = await Database.connect(
            dsn, minsize=settings.database.pool_min, maxsize=settings.database.pool_max
        )
    except BaseException:
        release_database(settings)
        raise
    bus = make_bus(settings)
    try:
        await bus.start()
    except BaseException:  # e.g. Redis unreachable: close what is open, one clear error
        await db.close()
        release_database(settings)
        raise
    events = EventSink(
        db,
        bus,
        republish_after_s=settings.events.republish_after_s,
        sweep_interval_s=settings.events.sweep_interval_s,
    )
    events.start(sweep=bool(settings.redis.url) if sweep_outbox is None else sweep_outbox)
    revocations = RevocationCache(
        bus, fallback=database_revocations(db, settings.auth.access_token_ttl_s)
    )
    revocations.start()
    await restore_revocations(db, bus, settings.auth.access_token_ttl_s)
    media_cpu.configure(settings.media.cpu_workers)
    storage = make_storage(settings)
    try:
        await storage.start()
    except BaseException:
        await events.close()
        await bus.close()
        await db.close()
        release_database(settings)
        raise
    return Context(
        settings=settings,
        db=db,
        bus=bus,
        limiter=make_limiter(settings, bus, clock),
        mailer=make_mailer(settings.smtp),
        signer=TokenSigner(resolve_jwt_secret(settings), settings.auth.access_token_ttl_s),
        passwords=Passwords(settings.auth.argon2_time_cost, settings.auth.argon2_memory_kib),
        events=events,
        push=make_push_sender(settings.push),
        linearizer=Linearizer("conversations"),
        revocations=revocations,
        storage=storage,
        scanner=make_scanner(settings),
        clock=clock,
    )


async def close_context(ctx: Context) -> None:
    """Stop in the reverse order of `open_context`: pending outbox deletes are flushed while
    the database is still open; the embedded database lease goes last."""
    for coalescer in ctx.coalescers.values():
        await coalescer.close()
    await ctx.events.close()
    ctx.revocations.stop()
    await ctx.push.close()
    await ctx.storage.close()
    await ctx.bus.close()
    await ctx.db.close()
    release_database(ctx.settings)


@asynccontextmanager
async def context(
    settings: Settings,
    *,
    migrate: bool | None = None,
    clock: Clock = SYSTEM_CLOCK,
    sweep_outbox: bool | None = None,
) -> AsyncIterator[Context]:
    """`open_context` for the length of a `with` block (one-off commands)."""
    ctx = await open_context(settings, migrate=migrate, clock=clock, sweep_outbox=sweep_outbox)
    try:
        yield ctx
    finally:
        await close_context(ctx)
