"""`nexgate`: serve | migrate | worker | seed-demo."""

from __future__ import annotations

import argparse
import asyncio
import sys

from server.config import Settings, load_settings
from server.logs import configure_logging


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop
    from aiohttp import web

    from server.app import create_app

    if args.host:
        settings.server.host = args.host
    if args.port is not None:
        settings.server.port = args.port
    print(
        f"Nexgate listening on http://{settings.server.host}:{settings.server.port}"
        f" (database: {'configured' if settings.database.url else 'embedded'},"
        f" bus: {'redis' if settings.redis.url else 'memory'})",
        flush=True,
    )
    web.run_app(
        create_app(settings),
        host=settings.server.host,
        port=settings.server.port,
        print=None,
        access_log=None,
        backlog=2048,  # reconnect storms: a short listen queue drops SYNs (1 s retries)
        loop=uvloop.new_event_loop(),
    )
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from server.app import resolve_database_url
    from server.store.migrate import apply_migrations

    dsn = asyncio.run(resolve_database_url(settings))
    applied = apply_migrations(dsn)
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop

    from server.jobs.runtime import run_worker

    uvloop.run(run_worker(settings, concurrency=args.concurrency))
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


COMMANDS = {
    "serve": (_serve, "run the HTTP + WebSocket server"),
    "migrate": (_migrate, "apply pending database migrations"),
    "seed-demo": (_seed_demo, "fill a demo world: users, follows, shops, products, groups"),
    "worker": (_worker, "run a background job worker"),
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
    settings = load_settings(args.config)
    configure_logging(settings.server.log_level)
    return COMMANDS[args.command][0](settings, args)


EXTRA_ARGS: dict = {}
EXTRA_ARGS["worker"] = lambda cmd: cmd.add_argument(
    "--concurrency", type=int, help="jobs run at once (default: jobs.concurrency)"
)

if __name__ == "__main__":
    sys.exit(main())
