"""Notification benchmark (not a test): list latency with 10,000 notifications for one user, a
burst of 1,000 likes on one post, and the query plans of the list and unread-count queries.

    .venv/bin/python -m loadtest.notifications_bench [--database-url URL] [--requests 2000]

Uses a throw-away database on the given server (default: $NEXGATE_TEST_DATABASE_URL, else the
embedded PostgreSQL of the tests), runs the real app over real HTTP on 127.0.0.1, and prints
a Markdown report (append it to loadtest/RESULTS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import psycopg2
from aiohttp import web

from server.app import create_app
from server.app_keys import CONTEXT
from server.config import load_settings
from server.domain import notifications
from server.domain.notifications import NotificationType
from server.ids import new_id
from server.store.migrate import apply_migrations


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):.2f} ms · p95 {pct(values, 95):.2f} ms · "
        f"p99 {pct(values, 99):.2f} ms · max {max(values):.2f} ms (n={len(values)})"
    )


async def insert_users(db, count: int, prefix: str) -> list[uuid.UUID]:
    ids = [new_id() for _ in range(count)]
    await db.execute(
        """INSERT INTO users (id, username, email, password_hash, display_name)
           SELECT u, %(p)s || n, %(p)s || n || '@bench.test', 'x', 'Bench ' || n
           FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS a(u, n)""",
        {"p": prefix, "ids": ids},
    )
    return ids


async def notify_in_tx(ctx, **kwargs: Any) -> float:
    started = time.perf_counter()
    async with ctx.db.transaction() as tx:
        await notifications.notify(ctx, tx, **kwargs)
    return (time.perf_counter() - started) * 1000


async def gather_limited(coros, limit: int) -> list[Any]:
    sem = asyncio.Semaphore(limit)

    async def run(coro):
        async with sem:
            return await coro

    return await asyncio.gather(*(run(c) for c in coros))


async def timed_get(session: aiohttp.ClientSession, url: str, headers, params=None) -> float:
    started = time.perf_counter()
    async with session.get(url, headers=headers, params=params) as resp:
        assert resp.status == 200, await resp.text()
        await resp.read()
    return (time.perf_counter() - started) * 1000


async def explain(db, sql: str, params: dict) -> str:
    rows = await db.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
    return "\n".join(r["QUERY PLAN"] for r in rows)


async def run(database_url: str, requests: int, tmp: Path) -> str:
    settings = load_settings(
        env={},
        server={"data_dir": str(tmp), "log_level": "WARNING"},
        database={"url": database_url, "migrate_on_start": False, "pool_max": 20},
        auth={
            "jwt_secret": "bench-" + "x" * 40,
            "argon2_time_cost": 1,
            "argon2_memory_kib": 1024,
            "registration": "open",  # the bench signs its user in at registration
        },
        jobs={"in_process_worker": False},
        rate_limits={"notify_per_actor": "100000/3600", "api": "1000000/3600"},
    )
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    ctx = app[CONTEXT]
    out: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            reg = await http.post(
                f"{base}/api/auth/register",
                json={"username": "bench_star", "email": "star@example.com", "password": "x" * 12},
            )
            body = await reg.json()
            star = uuid.UUID(body["user"]["id"])
            headers = {"Authorization": f"Bearer {body['access_token']}"}

            # 10,000 notifications for one user, each through notify() (distinct posts).
            actors = await insert_users(ctx.db, 500, "actor")
            started = time.perf_counter()
            lat = await gather_limited(
                (
                    notify_in_tx(
                        ctx,
                        recipient_id=star,
                        actor_id=actors[i % len(actors)],
                        type=NotificationType.MENTION_POST
                        if i % 10 == 0
                        else NotificationType.LIKE_POST,
                        entity_type="post",
                        entity_id=new_id(),
                    )
                    for i in range(10_000)
                ),
                16,
            )
            elapsed = time.perf_counter() - started
            count = await ctx.db.fetchval(
                "SELECT count(*) FROM notifications WHERE recipient_id = %s", (star,)
            )
            await ctx.db.execute("VACUUM ANALYZE notifications")
            await ctx.db.execute("VACUUM ANALYZE notification_counters")
            await ctx.db.execute("ANALYZE users")
            out.append("### Seeding: 10,000 notifications through notify()")
            out.append(
                f"- {count} rows for one recipient in {elapsed:.1f} s "
                f"({10_000 / elapsed:.0f} notify/s, 16 concurrent transactions)"
            )
            out.append(f"- notify() transaction latency: {summary(lat)}")

            # The list over real HTTP.
            url = f"{base}/api/notifications"
            for _ in range(50):
                await timed_get(http, url, headers)
            cases = [
                ("newest page (limit 20)", url, None),
                ("newest unread page", url, {"unread": "true"}),
                ("mentions only (type filter)", url, {"type": "mention_post"}),
                ("unread count", f"{base}/api/notifications/unread-count", None),
            ]
            out.append("")
            out.append(
                f"### GET latency with 10,000 notifications (sequential, {requests} requests each)"
            )
            for label, target, params in cases:
                values = [await timed_get(http, target, headers, params) for _ in range(requests)]
                out.append(f"- {label}: {summary(values)}")
            # The same newest page without the HTTP stack (domain action: query + unread count).
            from server.domain.auth_tokens import Principal

            viewer = Principal(star, "bench_star", ("user",))
            direct = []
            for _ in range(requests):
                started = time.perf_counter()
                await notifications.list_notifications(ctx, viewer, limit=20, cursor=None)
                direct.append((time.perf_counter() - started) * 1000)
            out.append(f"- newest page, domain call without HTTP: {summary(direct)}")
            # A deep page: follow cursors 50 pages down.
            cursor = None
            for _ in range(50):
                async with http.get(
                    url,
                    headers=headers,
                    params={"limit": 20, **({"cursor": cursor} if cursor else {})},
                ) as resp:
                    cursor = (await resp.json())["next_cursor"]
            deep = [
                await timed_get(http, url, headers, {"cursor": cursor}) for _ in range(requests)
            ]
            out.append(f"- page 51 (keyset cursor): {summary(deep)}")

            # 1,000 likes on one post from 1,000 users, 50 at a time.
            author = (await insert_users(ctx.db, 1, "author"))[0]
            likers = await insert_users(ctx.db, 1000, "liker")
            post = new_id()
            started = time.perf_counter()
            lat = await gather_limited(
                (
                    notify_in_tx(
                        ctx,
                        recipient_id=author,
                        actor_id=liker,
                        type=NotificationType.LIKE_POST,
                        entity_type="post",
                        entity_id=post,
                    )
                    for liker in likers
                ),
                50,
            )
            elapsed = time.perf_counter() - started
            row = await ctx.db.fetchrow(
                """SELECT count(*) OVER () AS rows, actor_count, event_count,
                          cardinality(actor_ids) AS kept, content
                   FROM notifications WHERE recipient_id = %s""",
                (author,),
            )
            unread = await ctx.db.fetchval(
                "SELECT unread FROM notification_counters WHERE user_id = %s", (author,)
            )
            pushes = await ctx.db.fetchval(
                "SELECT count(*) FROM jobs WHERE kind = 'push.send' AND payload->>'user_id' = %s",
                (str(author),),
            )
            out.append("")
            out.append("### A burst of 1,000 likes on one post (50 concurrent transactions)")
            out.append(
                f"- {row['rows']} notification row(s); actor_count {row['actor_count']}, "
                f"event_count {row['event_count']}, actors kept {row['kept']}; unread {unread}; "
                f"push jobs queued {pushes}"
            )
            out.append(f'- text: "{row["content"]}"')
            out.append(
                f"- {1000 / elapsed:.0f} likes/s; notify() latency under contention: {summary(lat)}"
            )

            # Query plans.
            from server.store.notifications import ACTOR_PROFILES, COLUMNS

            newest = f"""SELECT {COLUMNS}, {ACTOR_PROFILES.format(alias="n")} AS actors
                FROM notifications n WHERE n.recipient_id = %(u)s AND n.visible
                ORDER BY n.latest_at DESC, n.id DESC LIMIT 21"""
            unread_q = f"""SELECT {COLUMNS} FROM notifications n
                WHERE n.recipient_id = %(u)s AND n.visible AND NOT n.is_read
                ORDER BY n.latest_at DESC, n.id DESC LIMIT 21"""
            typed = f"""SELECT {COLUMNS} FROM notifications n
                WHERE n.recipient_id = %(u)s AND n.visible AND n.type = ANY(%(t)s)
                ORDER BY n.latest_at DESC, n.id DESC LIMIT 21"""
            count_q = "SELECT unread FROM notification_counters WHERE user_id = %(u)s"
            out.append("")
            out.append("### Query plans (EXPLAIN ANALYZE, 10,000 rows for the user)")
            for label, sql, params in (
                ("newest page", newest, {"u": star}),
                ("unread page", unread_q, {"u": star}),
                ("type filter (10% of rows)", typed, {"u": star, "t": ["mention_post"]}),
                ("type filter (a type with no rows)", typed, {"u": star, "t": ["tag_image"]}),
                ("unread count", count_q, {"u": star}),
            ):
                out.append(f"\n{label}:\n```\n{await explain(ctx.db, sql, params)}\n```")
    finally:
        await runner.cleanup()
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("NEXGATE_TEST_DATABASE_URL"))
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    base = args.database_url
    if not base:
        from server.store.embedded import start_embedded

        base = start_embedded(Path(__file__).resolve().parent.parent / "var" / "loadtest-pg")
    name = f"nexgate_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(_with_db(base, "postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
    url = _with_db(base, name)
    try:
        apply_migrations(url)
        tmp = Path(f"/tmp/{name}")
        tmp.mkdir(exist_ok=True)
        import uvloop

        report = uvloop.run(run(url, args.requests, tmp))
        print(f"## Notifications (loadtest/notifications_bench.py, PostgreSQL {version})\n")
        print(report)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


if __name__ == "__main__":
    main()
