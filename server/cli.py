"""`nexgate`: serve | migrate | worker | seed-demo | stop-embedded."""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server.config import ConfigError, Settings, load_settings
from server.logs import configure_logging
from server.store.embedded import EmbeddedError, release_embedded, stop_embedded


class CliError(Exception):
    """A failure the user can fix, shown as one line: `nexgate: <message>`."""


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop
    from aiohttp import web

    from server.app import create_app

    if args.host:
        settings.server.host = args.host
    if args.port is not None:
        settings.server.port = args.port
    # Bound now (a port in use fails at once), listening only once the database is up and
    # migrated: aiohttp calls `print` after the sites started, so the line is true when shown.
    sockets = _bind(settings.server.host, settings.server.port)
    port = sockets[0].getsockname()[1]
    host = settings.server.host
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    if settings.database.url:
        parts = urlsplit(settings.database.url)
        database = f"PostgreSQL at {parts.hostname or 'local socket'}{parts.path}"
    else:
        database = f"embedded PostgreSQL in {_shown(settings.data_path / 'pg')}"
    bus = "Redis" if settings.redis.url else "in-memory bus"

    def announce(_: str) -> None:
        print(f"Nexgate listening on {url} ({database}, {bus}); Ctrl-C to stop", flush=True)

    app = create_app(settings)
    app.on_startup.append(_drain_on_sigterm)
    try:
        web.run_app(
            app,
            handle_signals=False,  # _drain_on_sigterm: SIGTERM drains, SIGINT stops now
            sock=sockets,
            print=announce,
            access_log=None,
            backlog=2048,  # reconnect storms: a short listen queue drops SYNs (1 s retries)
            loop=uvloop.new_event_loop(),
        )
    finally:
        for sock in sockets:
            sock.close()
    return 0


async def _drain_on_sigterm(app: Any) -> None:
    """SIGTERM (a rolling deploy, `docker stop`, Kubernetes): drain, then stop as usual.
    SIGINT, or a second SIGTERM while draining, stops at once."""
    from aiohttp import web

    from server.app_keys import SETTINGS
    from server.ws import drain

    loop = asyncio.get_running_loop()
    server = app[SETTINGS].server
    draining: list[asyncio.Task[None]] = []

    def stop_now() -> None:
        raise web.GracefulExit()

    async def drain_then_stop() -> None:
        try:
            await drain(app, server.drain_grace_s, server.drain_spread_s)
        finally:
            loop.call_soon(stop_now)

    def on_sigterm() -> None:
        if draining:
            stop_now()
        draining.append(loop.create_task(drain_then_stop()))

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    loop.add_signal_handler(signal.SIGINT, stop_now)


def _bind(host: str, port: int) -> list[socket.socket]:
    """Bound (not yet listening) sockets for every address of `host`, as aiohttp's TCPSite
    would create them; a clear CliError when that is impossible."""
    hint = "(set --port or NEXGATE_SERVER_PORT)"
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise CliError(f"cannot listen on {host!r}: {exc.strerror} (set --host)") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address[0], port, *address[2:]))
            port = sock.getsockname()[1]  # port 0: the others share the one picked
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} on {host} is already in use {hint}") from None
        if exc.errno == errno.EACCES:
            raise CliError(f"not allowed to listen on port {port} on {host} {hint}") from None
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sockets


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is under it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from server.bootstrap import resolve_database_url
    from server.store.migrate import apply_migrations

    dsn = asyncio.run(resolve_database_url(settings))
    applied = apply_migrations(dsn)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop

    from server.bootstrap import context
    from server.http.worker_metrics import serve_worker_metrics
    from server.jobs.runtime import run_worker

    async def work() -> None:
        async with (
            context(settings) as ctx,
            serve_worker_metrics(ctx, settings.server.host, settings.jobs.metrics_port),
        ):
            await run_worker(ctx, concurrency=args.concurrency)

    uvloop.run(work())
    return 0


def _seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    from server.demo import run_seed_demo

    summary = asyncio.run(run_seed_demo(settings))
    print(
        f"demo world ready: {len(summary['users'])} users ({', '.join(summary['users'])}; "
        f"password {summary['password']!r}), {summary['shops']} shops, "
        f"{summary['products']} products, {summary['events']} events, "
        f"{summary['groups']} buy-together groups, {summary['installment_plans']} plans"
    )
    return 0


def _stop_embedded(settings: Settings, args: argparse.Namespace) -> int:
    pgdata = Path(args.pgdata) if args.pgdata else settings.data_path / "pg"
    if not stop_embedded(pgdata):
        print(f"the embedded PostgreSQL in {_shown(pgdata)} is not running")
    return 0


COMMANDS = {
    "serve": (_serve, "run the HTTP + WebSocket server"),
    "migrate": (_migrate, "apply pending database migrations"),
    "seed-demo": (_seed_demo, "fill a demo world: users, follows, shops, products, groups"),
    "worker": (_worker, "run a background job worker"),
    "stop-embedded": (_stop_embedded, "stop the embedded PostgreSQL, whoever uses it"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nexgate", description="The Nexgate server.")
    parser.add_argument("--config", help="a TOML file layered over config/default.toml")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text)
        if name == "serve":
            cmd.add_argument("--host")
            cmd.add_argument("--port", type=int)
        extend = EXTRA_ARGS.get(name)
        if extend:
            extend(cmd)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"nexgate: configuration error: {exc}", file=sys.stderr, flush=True)
        return 2
    configure_logging(settings.server.log_level, settings.server.log_format)
    # SIGTERM ends a command the way Ctrl-C does, so the embedded database it started stops.
    # (`serve` and `worker` install their own handlers for both while their loop runs.)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return COMMANDS[args.command][0](settings, args)
    except KeyboardInterrupt as exc:
        return 128 + (exc.signum if isinstance(exc, _Terminated) else signal.SIGINT)
    except Exception as exc:
        message = _explain(exc, settings)
        if message is None:
            raise
        print(f"nexgate: {message}", file=sys.stderr, flush=True)
        return 1
    finally:
        # No second Ctrl-C in the middle of stopping the database.
        handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in _STOP_SIGNALS}
        try:
            release_embedded()
        finally:
            handlers[signal.SIGTERM] = previous
            for sig, handler in handlers.items():
                signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Terminated(KeyboardInterrupt):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: object) -> None:
    raise _Terminated(signum)


def _explain(exc: BaseException, settings: Settings) -> str | None:
    """One line for a failure the user can act on (bad port, unreachable services), else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CliError | EmbeddedError):
            return str(current)
        first_line = (str(current).strip().splitlines() or [type(current).__name__])[0]
        module = type(current).__module__
        if module.startswith("psycopg2") and type(current).__name__ == "OperationalError":
            where = _redacted(settings.database.url) if settings.database.url else "embedded"
            return f"cannot use the database ({where}): {first_line} (check DATABASE_URL)"
        if module.startswith("redis") and "Connection" in type(current).__name__:
            where = _redacted(settings.redis.url)
            return f"cannot reach Redis ({where}): {first_line} (check REDIS_URL)"
        if isinstance(current, TimeoutError) and settings.redis.url and _raised_in(current, "bus"):
            where = _redacted(settings.redis.url)
            return f"cannot reach Redis ({where}): no answer (check REDIS_URL)"
        if isinstance(current, OSError) and current.errno == errno.EADDRINUSE:
            return (
                f"port {settings.server.port} on {settings.server.host} is already in use"
                " (set --port or NEXGATE_SERVER_PORT)"
            )
        current = current.__cause__ or current.__context__
    return None


def _raised_in(exc: BaseException, package: str) -> bool:
    """Whether `exc` went through server/<package>/."""
    marker = f"{os.sep}server{os.sep}{package}{os.sep}"
    return any(marker in frame.filename for frame in traceback.extract_tb(exc.__traceback__))


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        parts = parts._replace(netloc=netloc)
    return parts.geturl()


EXTRA_ARGS: dict = {}
EXTRA_ARGS["worker"] = lambda cmd: cmd.add_argument(
    "--concurrency", type=int, help="jobs run at once (default: jobs.concurrency)"
)
EXTRA_ARGS["stop-embedded"] = lambda cmd: cmd.add_argument(
    "pgdata", nargs="?", help="its data directory (default: <server.data_dir>/pg)"
)

if __name__ == "__main__":
    sys.exit(main())
