"""Running workers: the resources a worker process needs, and `nexgate worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from server.config import Settings
from server.domain.context import Context
from server.domain.push import PUSH_SENDER
from server.jobs.senders import make_push_sender

log = logging.getLogger("nexgate.jobs")


def attach_senders(ctx: Context) -> None:
    """Give the process its push sender (webhook or logging, per settings.push)."""
    if PUSH_SENDER not in ctx.extras:
        ctx.extras[PUSH_SENDER] = make_push_sender(ctx.settings.push)


async def close_senders(ctx: Context) -> None:
    sender = ctx.extras.pop(PUSH_SENDER, None)
    if sender is not None:
        await sender.close()


async def build_context(settings: Settings) -> Context:
    """The same engines `nexgate serve` builds (database, bus, limiter, mailer, signer)."""
    from server.app import make_bus, make_limiter, resolve_database_url, resolve_jwt_secret
    from server.domain.auth_tokens import Passwords, TokenSigner
    from server.mail import make_mailer
    from server.store.db import Database
    from server.store.migrate import apply_migrations

    dsn = await resolve_database_url(settings)
    if settings.database.migrate_on_start:
        await asyncio.to_thread(apply_migrations, dsn)
    db = await Database.connect(
        dsn, minsize=settings.database.pool_min, maxsize=settings.database.pool_max
    )
    bus = await make_bus(settings)
    await bus.start()
    ctx = Context(
        settings=settings,
        db=db,
        bus=bus,
        limiter=make_limiter(settings, bus),
        mailer=make_mailer(settings.smtp),
        signer=TokenSigner(resolve_jwt_secret(settings), settings.auth.access_token_ttl_s),
        passwords=Passwords(settings.auth.argon2_time_cost, settings.auth.argon2_memory_kib),
    )
    attach_senders(ctx)
    return ctx


async def close_context(ctx: Context) -> None:
    await close_senders(ctx)
    await ctx.bus.close()
    await ctx.db.close()


async def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    """Run one worker until SIGTERM / SIGINT, then shut down gracefully."""
    from server.jobs.worker import Worker

    ctx = await build_context(settings)
    worker = Worker(ctx, concurrency=concurrency)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, worker.stop)
    print(f"Nexgate worker {worker.name} running (concurrency {worker.concurrency})", flush=True)
    try:
        await worker.run()
    finally:
        await worker.close()
        await close_context(ctx)
