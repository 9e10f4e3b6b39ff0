"""A throw-away database for the benchmarks that seed their own data (posts_bench,
interactions_bench): created on the given PostgreSQL (else the embedded one), migrated, handed
to the benchmark, dropped afterwards whatever happens."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

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
