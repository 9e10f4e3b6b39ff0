"""Feeds benchmark (not a test): the home feed (first and a deep page), explore and a hashtag
feed under concurrent readers, publishing latency for a small and a very large author, the
fan-out job's rate, live delivery to many followers' sockets, and the query plans.

    .venv/bin/python -m loadtest.feeds_bench [--database-url URL] [--users 100000]
        [--posts 1000000] [--readers 50] [--requests 20] [--sockets 10000] [--redis-url URL]

Uses a throw-away database on the given server (default: $NEXGATE_TEST_DATABASE_URL, else the
embedded PostgreSQL), seeds a power-law social graph and posts with SQL (u0 is followed by a
few percent of everyone: tens of thousands of followers), runs the real app over real HTTP on
127.0.0.1 and prints a Markdown report for loadtest/RESULTS.md. With --redis-url the app runs on
the Redis bus (timelines in Redis sorted sets); without it, on the memory bus (timelines in
PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.notifications_bench import explain, summary
from loadtest.throwaway import run_on_throwaway_database, start_app
from server.domain.feeds.home import candidates
from server.ids import new_id
from server.store import feeds as feeds_store
from server.store import hashtags as hashtags_store
from server.store.posts.reads import POST_COLUMNS

TAGS = 2000


class Report(list[str]):
    """The report's lines, also written to stderr as they come (a long run shows progress and
    keeps what it measured if a later step fails)."""

    def append(self, line: str) -> None:
        print(line, file=sys.stderr, flush=True)
        super().append(line)


class _SyncDb:
    """Seeding runs long statements: a plain psycopg2 connection (no driver timeout), in a
    thread, with the store's `execute(sql, params)` shape."""

    def __init__(self, url: str) -> None:
        import psycopg2

        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True

    async def execute(self, sql: str, params: Any = None) -> None:
        def run() -> None:
            with self.conn.cursor() as cur:
                cur.execute(sql, params)

        await asyncio.to_thread(run)

    def close(self) -> None:
        self.conn.close()


async def seed(db: Any, users: int, posts: int, follows_each: int) -> float:
    """Users fb_<n>, a power-law follow graph (target rank = users * random()^3: rank 0 gets
    about users * follows_each * users^(-1/3) followers), posts over the last 7 days by authors
    skewed the same way (with 0-2 of TAGS hashtags, engagement counters), in SQL. Seconds."""
    started = time.perf_counter()
    await db.execute(
        """INSERT INTO users (id, username, email, password_hash, display_name)
           SELECT gen_random_uuid(), 'fb_' || n, 'fb_' || n || '@bench.test', 'x', 'Bench ' || n
           FROM generate_series(0, %s - 1) n""",
        (users,),
    )
    await db.execute(
        """CREATE TEMP TABLE ranked AS
           SELECT id, (substr(username, 4))::int AS rank FROM users WHERE username LIKE 'fb\\_%%'"""
    )
    await db.execute("CREATE UNIQUE INDEX ON ranked (rank)")
    await db.execute(
        """INSERT INTO follows (id, follower_id, following_id, status, created_at, accepted_at)
           SELECT gen_random_uuid(), f.id, t.id, 'accepted', now(), now()
           FROM ranked f CROSS JOIN LATERAL (
               SELECT DISTINCT floor(%(n)s * power(random() + f.rank * 0, 3))::int AS rank
               FROM generate_series(1, %(k)s)) pick
           JOIN ranked t ON t.rank = pick.rank AND t.id <> f.id
           ON CONFLICT DO NOTHING""",
        {"n": users, "k": follows_each},
    )
    await db.execute(
        """UPDATE users u SET followers_count = c.n FROM (
               SELECT following_id, count(*) AS n FROM follows GROUP BY following_id) c
           WHERE u.id = c.following_id"""
    )
    await db.execute(
        """UPDATE users u SET following_count = c.n FROM (
               SELECT follower_id, count(*) AS n FROM follows GROUP BY follower_id) c
           WHERE u.id = c.follower_id"""
    )
    await db.execute(
        """INSERT INTO hashtags (id, tag, posts_count, created_at)
           SELECT gen_random_uuid(), 'tag' || n, 0, now() FROM generate_series(0, %s - 1) n""",
        (TAGS,),
    )
    batch = 100_000
    for start in range(0, posts, batch):
        count = min(batch, posts - start)
        await db.execute(
            """INSERT INTO posts (id, author_id, author_ids, content, post_type, status,
                   visibility, likes_count, comments_count, reposts_count, created_at,
                   updated_at, published_at)
               SELECT x.id, r.id, ARRAY[r.id], 'bench post ' || x.n, 'text', 'published',
                      CASE WHEN x.v < 0.9 THEN 'public' WHEN x.v < 0.98 THEN 'followers'
                           ELSE 'private' END,
                      floor(power(random(), 6) * 500)::int, floor(power(random(), 6) * 50)::int,
                      floor(power(random(), 8) * 20)::int, x.at, x.at, x.at
               FROM (SELECT gen_random_uuid() AS id, n, random() AS v,
                            now() - random() * interval '7 days' AS at,
                            floor(%(users)s * power(random(), 2))::int AS rank
                     FROM generate_series(%(start)s, %(end)s) n) x
               JOIN ranked r ON r.rank = x.rank""",
            {"users": users, "start": start, "end": start + count - 1},
        )
    await db.execute(
        """INSERT INTO post_hashtags (post_id, hashtag_id, published_at)
           SELECT p.id, h.id, p.published_at FROM posts p
           CROSS JOIN LATERAL (SELECT DISTINCT floor(%(tags)s * power(random() + 0 * extract(
                   epoch FROM p.published_at), 2))::int AS n
               FROM generate_series(1, floor(random() * 3)::int)) pick
           JOIN hashtags h ON h.tag = 'tag' || pick.n
           WHERE p.visibility <> 'private'
           ON CONFLICT DO NOTHING""",
        {"tags": TAGS},
    )
    await db.execute(
        """UPDATE hashtags h SET posts_count = c.n FROM (
               SELECT hashtag_id, count(*) AS n FROM post_hashtags GROUP BY hashtag_id) c
           WHERE h.id = c.hashtag_id"""
    )
    await db.execute(
        """INSERT INTO hashtag_usage_hourly (hashtag_id, hour, uses)
           SELECT hashtag_id, date_trunc('hour', published_at), count(*) FROM post_hashtags
           GROUP BY 1, 2"""
    )
    await db.execute("UPDATE users u SET posts_count = 0")
    await db.execute("ANALYZE")
    return time.perf_counter() - started


async def timed(session: aiohttp.ClientSession, url: str, token: str, params: dict) -> float:
    started = time.perf_counter()
    async with session.get(url, params=params, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
        await r.read()
    return (time.perf_counter() - started) * 1000


async def concurrent(
    session: aiohttp.ClientSession,
    url: str,
    readers: list[tuple[str, dict]],
    requests: int,
) -> list[float]:
    """Each reader (token, params) reads `requests` times, all readers at once."""

    async def reader(token: str, params: dict) -> list[float]:
        return [await timed(session, url, token, params) for _ in range(requests)]

    results = await asyncio.gather(*(reader(t, p) for t, p in readers))
    return [v for r in results for v in r]


async def deep_cursor(session: aiohttp.ClientSession, url: str, token: str, pages: int) -> dict:
    params: dict[str, Any] = {"limit": 20}
    for _ in range(pages):
        async with session.get(
            url, params=params, headers={"Authorization": f"Bearer {token}"}
        ) as r:
            data = await r.json()
        if not data.get("next_cursor"):
            break
        params = {"limit": 20, "cursor": data["next_cursor"]}
    return params


async def live_delivery(
    base: str, ctx: Any, author: dict, followers: list[dict], sockets: int
) -> str:
    """Open `sockets` gateway sessions of the author's followers, each subscribed to the author's
    feed topic; publish; time until every socket has the `feed.post` event."""
    from protocol.constants import Op

    ws_url = base.replace("http", "ws") + "/api/gateway/ws"
    conns: list[aiohttp.ClientWebSocketResponse] = []
    connector = aiohttp.TCPConnector(limit=0)
    session = aiohttp.ClientSession(connector=connector)
    topic = f"feed:{author['id']}"
    sem = asyncio.Semaphore(200)
    started_connect = time.perf_counter()

    async def open_one(user: dict) -> None:
        async with sem:
            ws = await session.ws_connect(ws_url, autoping=True, heartbeat=None)
            await ws.receive_json()  # hello
            await ws.send_json({"op": "identify", "d": {"token": user["token"]}})
            while (await ws.receive_json())["op"] != Op.READY:
                pass
            await ws.send_json({"op": "subscribe", "id": "s", "d": {"topic": topic}})
            while True:
                frame = await ws.receive_json()
                if frame["op"] == Op.REPLY:
                    assert frame["d"]["ok"], frame
                    break
            conns.append(ws)

    try:
        await asyncio.gather(*(open_one(u) for u in followers[:sockets]))
        connect_s = time.perf_counter() - started_connect
        arrivals: list[float] = []

        async def wait_one(ws: aiohttp.ClientWebSocketResponse) -> None:
            while True:
                frame = await ws.receive_json(timeout=30)
                if frame.get("t") == "feed.post":
                    arrivals.append(time.perf_counter())
                    return

        waiters = [asyncio.create_task(wait_one(ws)) for ws in conns]
        await asyncio.sleep(0.5)
        sent = time.perf_counter()
        async with session.post(
            f"{base}/api/posts",
            json={"content": "live to everyone"},
            headers={"Authorization": f"Bearer {author['token']}"},
        ) as resp:
            assert resp.status == 201, await resp.text()
            answered = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*waiters), 60)
        lat = sorted((a - sent) * 1000 for a in arrivals)
        return (
            f"- live push, author with {author['followers']} followers, {len(conns)} follower "
            f"sockets subscribed to `{topic}` (connected in {connect_s:.1f} s): publish answered "
            f"in {(answered - sent) * 1000:.1f} ms; event on every socket within "
            f"{lat[-1]:.0f} ms (p50 {lat[len(lat) // 2]:.0f} ms)"
        )
    finally:
        for ws in conns:
            await ws.close()
        await session.close()


async def run(database_url: str, tmp: Path, args: argparse.Namespace) -> str:
    from server.store.db import Database

    seed_s = 0.0
    if not args.seeded:
        sync = _SyncDb(database_url)
        try:
            seed_s = await seed(sync, args.users, args.posts, args.follows)
        finally:
            sync.close()
    db = await Database.connect(database_url, maxsize=4)
    try:
        stats = await db.fetchrow(
            """SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM posts) AS posts,
                      (SELECT count(*) FROM follows) AS follows,
                      (SELECT max(followers_count) FROM users) AS max_followers"""
        )
    finally:
        await db.close()
    sections: dict[str, dict[str, Any]] = {
        "rate_limits": {"api": "100000000/3600", "post": "1000000/3600"},
        "database": {"pool_max": 40},
        "feeds": {"fanout_threshold": args.threshold},
        # Thousands of idle bench sockets connect for minutes without heartbeats.
        "gateway": {"heartbeat_interval_ms": 3_600_000, "hello_timeout_s": 600},
    }
    if args.redis_url:
        sections["redis"] = {"url": args.redis_url, "prefix": f"bench:{uuid.uuid4().hex[:8]}:"}
    runner, base, ctx = await start_app(database_url, tmp, **sections)
    origin = "`seed-social` database" if args.seeded else f"Seeded in {seed_s:.0f} s"
    out = Report()
    out += [
        f"{origin}: {stats['users']:,} users, {stats['posts']:,} posts, "
        f"{stats['follows']:,} follows (power law; the most followed account has "
        f"{stats['max_followers']:,} followers), fan-out threshold {args.threshold:,}, "
        f"timelines on {'Redis' if args.redis_url else 'PostgreSQL'}.\n"
    ]
    try:

        def token(row: Any) -> str:
            return ctx.signer.issue(row["id"], row["username"], ["user"], new_id())

        # Readers: ordinary accounts (ranks from the middle of the graph) following ~20-40.
        rows = await ctx.db.fetch(
            """SELECT id, username, following_count FROM users
               WHERE following_count >= 10 AND NOT is_private
               ORDER BY followers_count, username DESC LIMIT %s""",
            (args.readers,),
        )
        readers = [(token(r), {"limit": 20}) for r in rows]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            feed = f"{base}/api/posts"
            # First read of each reader rebuilds its timeline (cold): measured on its own.
            cold = await concurrent(http, feed, readers, 1)
            out.append(
                f"- home feed, first read (timeline rebuilt), {len(readers)} readers at once: "
                f"{summary(cold)}"
            )
            # One reader at a time: the cost of a request, without queueing behind others.
            alone = [v for r in readers for v in await concurrent(http, feed, [r], 3)]
            out.append(f"- home feed, first page, one reader at a time: {summary(alone)}")
            warm = await concurrent(http, feed, readers, args.requests)
            out.append(
                f"- home feed, first page, {len(readers)} concurrent readers: {summary(warm)}"
            )
            deep = [(t, await deep_cursor(http, feed, t, 10)) for t, _ in readers]
            alone = [v for r in deep for v in await concurrent(http, feed, [r], 3)]
            out.append(f"- home feed, page 11, one reader at a time: {summary(alone)}")
            values = await concurrent(http, feed, deep, args.requests)
            out.append(
                f"- home feed, page 11 (200 posts deep), {len(readers)} concurrent readers: "
                f"{summary(values)}"
            )
            explore_url = f"{base}/api/posts/explore"
            await concurrent(http, explore_url, readers[:1], 1)  # the snapshot, once
            values = await concurrent(http, explore_url, readers, args.requests)
            out.append(
                f"- explore, first page, {len(readers)} concurrent readers: {summary(values)}"
            )
            deep = [(t, await deep_cursor(http, explore_url, t, 5)) for t, _ in readers]
            values = await concurrent(http, explore_url, deep, args.requests)
            out.append(f"- explore, page 6, {len(readers)} concurrent readers: {summary(values)}")
            top = await ctx.db.fetchrow(
                "SELECT tag, posts_count FROM hashtags ORDER BY posts_count DESC LIMIT 1"
            )
            tag_url = f"{base}/api/hashtags/{top['tag']}/posts"
            values = await concurrent(http, tag_url, readers, args.requests)
            out.append(
                f"- hashtag feed (#{top['tag']}, {top['posts_count']:,} posts), {len(readers)} "
                f"concurrent readers: {summary(values)}"
            )
            trend_url = f"{base}/api/hashtags/trending"
            values = await concurrent(http, trend_url, readers, args.requests)
            out.append(f"- trending (cached), {len(readers)} concurrent readers: {summary(values)}")

            # Publishing: the most followed account and a small one, sequential posts.
            authors = await ctx.db.fetch(
                """(SELECT id, username, followers_count FROM users
                    ORDER BY followers_count DESC LIMIT 1)
                   UNION ALL
                   (SELECT id, username, followers_count FROM users
                    WHERE followers_count < %s ORDER BY followers_count DESC LIMIT 1)""",
                (args.threshold,),
            )
            for author in authors:
                tok = token(author)
                lat = []
                for i in range(args.publishes):
                    started = time.perf_counter()
                    async with http.post(
                        f"{base}/api/posts",
                        json={"content": f"bench publish {i} #tag{i % 50}"},
                        headers={"Authorization": f"Bearer {tok}"},
                    ) as resp:
                        assert resp.status == 201, await resp.text()
                        await resp.read()
                    lat.append((time.perf_counter() - started) * 1000)
                out.append(
                    f"- publish, author with {author['followers_count']:,} followers: "
                    f"{summary(lat)}"
                )
            # The fan-out of those posts (the small author's), run by one worker.
            from server.jobs.worker import Worker

            queued = await ctx.db.fetchval(
                "SELECT count(*) FROM jobs WHERE kind = 'feeds.fanout' AND status = 'queued'"
            )
            started = time.perf_counter()
            await Worker(ctx, listen=False, periodic=False).run_until_idle(600)
            took = time.perf_counter() - started
            small = authors[-1]["followers_count"]
            out.append(
                f"- fan-out job: {queued} posts x {small:,} followers in {took:.1f} s "
                f"({queued * small / max(took, 1e-9):,.0f} timeline entries / s, one worker)"
            )

        if args.sockets:
            big = authors[0]
            followers = await ctx.db.fetch(
                """SELECT u.id, u.username FROM follows f JOIN users u ON u.id = f.follower_id
                   WHERE f.following_id = %s AND f.status = 'accepted' LIMIT %s""",
                (big["id"], args.sockets),
            )
            try:
                line = await live_delivery(
                    base,
                    ctx,
                    {"id": big["id"], "token": token(big), "followers": big["followers_count"]},
                    [{"token": token(f)} for f in followers],
                    args.sockets,
                )
            except Exception as exc:  # report it, keep the rest of the report
                line = f"- live push with {args.sockets} sockets failed: {exc!r}"
            out.append(line)

        # Plans of the hot queries, for one of the readers.
        viewer = rows[0]["id"]
        n = 50
        entries = await candidates(ctx, viewer, None, n)
        authors_pulled, tags = await feeds_store.pull_sources(ctx.db, viewer, args.threshold)
        plans = {
            "home: timeline page (PostgreSQL engine)": (
                """SELECT published_at, post_id FROM home_timeline WHERE user_id = %(user)s
                   ORDER BY published_at DESC, post_id DESC LIMIT 50""",
                {"user": viewer},
            ),
            "home: the pulled half (own, authors past the threshold, followed tags)": (
                _pulled_sql(),
                {"authors": authors_pulled, "tags": tags, "limit": n},
            ),
            "home: the page's visibility query (50 candidates)": (
                _filter_sql(),
                {"ids": [e[1] for e in entries], "viewer": viewer, "now": ctx.clock.now()},
            ),
        }
        for title, (sql, params) in plans.items():
            out.append(f"\n{title}:\n```\n{await explain(ctx.db, sql, params)}\n```")
        out.append(
            "\nexplore snapshot (once per minute per node):\n```\n"
            + await _explain_snapshot(ctx)
            + "\n```"
        )
    finally:
        await runner.cleanup()
    return "\n".join(out)


def _pulled_sql() -> str:
    return """SELECT published_at, id FROM (
              (SELECT x.published_at, x.id FROM unnest(%(authors)s::uuid[]) a (id)
               CROSS JOIN LATERAL (
                   SELECT p.published_at, p.id FROM posts p
                   WHERE p.author_id = a.id AND p.status = 'published' AND p.deleted_at IS NULL
                   ORDER BY p.published_at DESC, p.id DESC LIMIT %(limit)s) x)
              UNION ALL
              (SELECT p.published_at, p.id FROM post_collaborators pc
               JOIN posts p ON p.id = pc.post_id
               WHERE pc.user_id = ANY(%(authors)s::uuid[]) AND pc.status = 'accepted'
                 AND p.status = 'published' AND p.deleted_at IS NULL
               ORDER BY p.published_at DESC, p.id DESC LIMIT %(limit)s)
              UNION ALL
              (SELECT x.published_at, x.post_id FROM unnest(%(tags)s::uuid[]) t (id)
               CROSS JOIN LATERAL (
                   SELECT ph.published_at, ph.post_id FROM post_hashtags ph
                   WHERE ph.hashtag_id = t.id
                   ORDER BY ph.published_at DESC, ph.post_id DESC LIMIT %(limit)s) x)
            ) c ORDER BY published_at DESC, id DESC LIMIT %(limit)s"""


def _filter_sql() -> str:
    return f"""SELECT {POST_COLUMNS} FROM posts p
            WHERE p.id = ANY(%(ids)s::uuid[]) AND {feeds_store.shown_in_feeds()}
              AND (%(viewer)s::uuid = ANY(p.author_ids)
                   OR EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = %(viewer)s
                              AND f.following_id = ANY(p.author_ids) AND f.status = 'accepted')
                   OR EXISTS (SELECT 1 FROM post_hashtags ph JOIN hashtag_follows hf
                                ON hf.hashtag_id = ph.hashtag_id AND hf.user_id = %(viewer)s
                              WHERE ph.post_id = p.id))"""


async def _explain_snapshot(ctx: Any) -> str:
    from datetime import timedelta

    captured: dict[str, Any] = {}

    class Capture:
        async def fetch(self, sql: str, params: dict) -> list:
            captured["sql"], captured["params"] = sql, params
            return []

    now = ctx.clock.now()
    await hashtags_store.explore_snapshot(
        Capture(), now=now, since=now - timedelta(hours=48), scan=10_000, keep=500
    )
    return await explain(ctx.db, captured["sql"], captured["params"])


def run_on_seeded(args: argparse.Namespace) -> None:
    import uvloop

    from server.store.migrate import apply_migrations

    apply_migrations(args.seeded)  # 0016 (feeds) if the seed predates it
    sync = _SyncDb(args.seeded)
    try:  # trending's hourly usage, for a seed made before it existed
        uvloop.run(
            sync.execute(
                """INSERT INTO hashtag_usage_hourly (hashtag_id, hour, uses)
                   SELECT hashtag_id, date_trunc('hour', published_at), count(*)
                   FROM post_hashtags GROUP BY 1, 2 ON CONFLICT DO NOTHING"""
            )
        )
    finally:
        sync.close()
    tmp = Path(f"/tmp/feeds_bench_{uuid.uuid4().hex[:8]}")
    tmp.mkdir(exist_ok=True)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    engine = "Redis" if args.redis_url else "PostgreSQL"
    print(f"### Feeds on seed-social ({engine} timelines, load {load})\n")
    print(uvloop.run(run(args.seeded, tmp, args)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("NEXGATE_TEST_DATABASE_URL"))
    parser.add_argument("--redis-url", default=None)
    parser.add_argument(
        "--seeded",
        default=None,
        help="URL of a `python -m loadtest seed-social` database to run on as it is (it is "
        "written to: posts, timelines); default: seed a throw-away one",
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--follows", type=int, default=20, help="follow picks per user")
    parser.add_argument("--threshold", type=int, default=10_000)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20, help="per reader per measurement")
    parser.add_argument("--publishes", type=int, default=100)
    parser.add_argument("--sockets", type=int, default=10_000)
    args = parser.parse_args()
    scale = f"{args.users:,} users, {args.posts:,} posts"
    if args.seeded:
        run_on_seeded(args)
        return
    run_on_throwaway_database(
        args.database_url,
        f"Feeds ({scale}, {'Redis' if args.redis_url else 'PostgreSQL'} timelines)",
        lambda url, tmp: run(url, tmp, args),
    )


if __name__ == "__main__":
    main()
