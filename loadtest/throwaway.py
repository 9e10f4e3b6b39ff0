"""What the benchmarks that seed their own data share (posts_bench, interactions_bench): a
throw-away database (created on the given PostgreSQL, else the embedded one, migrated, dropped
afterwards whatever happens) and the real app serving on it over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from aiohttp import web

from server.app import create_app
from server.app_keys import CONTEXT
from server.config import load_settings
from server.domain.context import Context
from server.store.migrate import apply_migrations


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def run_on_throwaway_database(
    base_url: str | None, title: str, bench: Callable[[str, Path], Awaitable[str]]
) -> None:
    """Run `bench(database_url, tmp_dir)` on a fresh database and print its Markdown report
    under `### <title> (PostgreSQL <version>, load <loadavg>)`."""
    if not base_url:
        from server.store.embedded import start_embedded

        base_url = start_embedded(Path(__file__).resolve().parent.parent / "var" / "loadtest-pg")
    name = f"nexgate_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(with_database(base_url, "postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
    url = with_database(base_url, name)
    try:
        apply_migrations(url)
        tmp = Path(f"/tmp/{name}")
        tmp.mkdir(exist_ok=True)
        import uvloop

        with open("/proc/loadavg") as f:
            load = " ".join(f.read().split()[:3])
        report = uvloop.run(bench(url, tmp))
        print(f"### {title} (PostgreSQL {version}, load {load})\n")
        print(report)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


async def start_app(
    database_url: str, tmp: Path, **sections: dict[str, Any]
) -> tuple[web.AppRunner, str, Context]:
    """The real app over real HTTP on 127.0.0.1 (a free port), on `database_url`, with the
    settings a benchmark wants: no in-process job worker, sign-in at registration, cheap
    password hashing, the API limit out of the way; `sections` add or override settings.
    Returns (the runner to clean up, the base URL, the app's Context)."""
    base: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(tmp), "log_level": "WARNING"},
        "database": {"url": database_url, "migrate_on_start": False, "pool_max": 20},
        "auth": {
            "jwt_secret": "bench-" + "x" * 40,
            "argon2_time_cost": 1,
            "argon2_memory_kib": 1024,
            "registration": "open",  # the benchmarks sign in at registration
        },
        "jobs": {"in_process_worker": False},
        "rate_limits": {"api": "1000000/3600"},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    app = create_app(load_settings(env={}, **base))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", app[CONTEXT]
