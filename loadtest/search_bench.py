"""Search and list-feed benchmark (not a test): every search endpoint and a list feed page under
concurrent readers, on a social graph at scale; plus the query plans of the hot queries.

    .venv/bin/python -m loadtest.search_bench [--database-url URL] [--users 100000]
        [--posts 1000000] [--readers 32] [--requests 1500]

Uses a throw-away database on the given server (default: $NEXGATE_TEST_DATABASE_URL, else the
embedded PostgreSQL), seeded by `python -m loadtest seed-social` (loadtest/social_seed.py:
`--users` accounts `u000001..` with a power-law follow graph, `--posts` posts with hashtags and
likes; `--world own` uses this module's older seeder of pseudo-words instead). Then the real app
serves over real HTTP on 127.0.0.1; `--readers` concurrent clients (registered viewers who
follow ~150 seeded accounts, mute a word, block an account and own a list of 50 members) send
`--requests` GETs per endpoint, a mix of common words, rare tags, two-word queries, short
prefixes and usernames; every request's latency is timed (auth, the rate limiter, the queries
and the JSON are all in the time).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg2

from loadtest import social_seed
from loadtest.notifications_bench import gather_limited, summary, timed_get
from loadtest.throwaway import run_on_throwaway_database, start_app
from server.domain.search.searching import CANDIDATES
from server.domain.search.text import parse_query
from server.ids import new_id
from server.store.db import Database
from server.store.lists import feed as list_feed
from server.store.search import PgSearchEngine

SYLLABLES = "ka lo mi ne ru sa ti vo ze ba do fu gi ha je ku la mo ni pe ri so tu wa ya".split()


def vocabulary(size: int = 3000) -> list[str]:
    """`size` distinct pseudo-words, the most frequent first (index = Zipf rank)."""
    rng = random.Random(7)
    words: dict[str, None] = {}
    while len(words) < size:
        words["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


def seed_users(db: Any, count: int) -> None:
    batch = 50_000
    for offset in range(0, count, batch):
        n = min(batch, count - offset)
        ids = [new_id() for _ in range(n)]
        db.execute(
            """INSERT INTO users (id, username, email, password_hash, display_name, bio,
                   is_private)
               SELECT u, 'u' || lpad((n + %(off)s)::text, 6, '0'),
                      'u' || (n + %(off)s) || '@seed.test', 'x',
                      (%(words)s::text[])[1 + (n * 7919 + %(off)s) %% 3000] || ' '
                        || (%(words)s::text[])[1 + (n * 104729 + %(off)s) %% 3000],
                      'I like ' || (%(words)s::text[])[1 + (n * 31 + %(off)s) %% 300],
                      (n + %(off)s) %% 20 = 0
               FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS a (u, n)""",
            {"ids": ids, "off": offset, "words": vocabulary()},
        )


def seed_follows(db: Any, users: int) -> None:
    """Each user follows 5-40 accounts, chosen with a cubic skew toward u000001 (power law)."""
    db.execute(
        """CREATE TABLE seq AS SELECT row_number() OVER (ORDER BY username) AS n, id
           FROM users WHERE username LIKE 'u%%' AND email LIKE '%%@seed.test'"""
    )
    db.execute("CREATE UNIQUE INDEX ON seq (n)")
    db.execute(
        """INSERT INTO follows (id, follower_id, following_id, status, created_at, accepted_at)
           SELECT gen_random_uuid(), f.id, t.id, 'accepted', now(), now()
           FROM seq f
           CROSS JOIN LATERAL (
               SELECT DISTINCT 1 + floor(%(n)s * power(random(), 3))::int AS k
               FROM generate_series(1, 5 + (f.n * 37) %% 36) g WHERE f.n > 0) pick
           JOIN seq t ON t.n = pick.k
           WHERE t.id <> f.id
           ON CONFLICT DO NOTHING""",
        {"n": users},
    )
    db.execute(
        """UPDATE users u SET followers_count = c.n FROM (
               SELECT following_id, count(*) AS n FROM follows GROUP BY following_id) c
           WHERE u.id = c.following_id"""
    )
    db.execute(
        """UPDATE users u SET following_count = c.n FROM (
               SELECT follower_id, count(*) AS n FROM follows GROUP BY follower_id) c
           WHERE u.id = c.follower_id"""
    )


def seed_posts(db: Any, users: int, count: int) -> None:
    """`count` published posts over 60 days, authors skewed toward the popular accounts."""
    words = vocabulary()
    start = datetime.now(UTC) - timedelta(days=60)
    step = timedelta(days=60) / max(count, 1)
    batch = 50_000
    for offset in range(0, count, batch):
        n = min(batch, count - offset)
        ids = [new_id() for _ in range(n)]
        db.execute(
            """INSERT INTO posts (id, author_id, author_ids, content, entities, post_type, status,
                   visibility, likes_count, comments_count, created_at, updated_at, published_at)
               SELECT p.id, s.id, ARRAY[s.id], c.content, '[]', 'text', 'published',
                   CASE WHEN (p.n + %(off)s) %% 10 = 0 THEN 'followers' ELSE 'public' END,
                   floor(200 * power(random(), 6))::int, floor(20 * power(random(), 6))::int,
                   %(start)s + (p.n + %(off)s) * %(step)s, %(start)s + (p.n + %(off)s) * %(step)s,
                   %(start)s + (p.n + %(off)s) * %(step)s
               FROM (SELECT u.id, u.n, 1 + floor(%(users)s * power(random(), 2))::int AS author
                     FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS u (id, n)) p
               JOIN seq s ON s.n = p.author
               CROSS JOIN LATERAL (
                   SELECT string_agg(
                       CASE WHEN g = 1 AND (p.n %% 4) = 0 THEN '#' ELSE '' END
                       || (%(words)s::text[])[1 + floor(3000 * power(random(), 3))::int], ' ')
                       AS content
                   FROM generate_series(1, 6 + (p.n %% 11)::int) g WHERE p.n > 0) c""",
            {
                "ids": ids,
                "off": offset,
                "start": start,
                "step": step,
                "users": users,
                "words": words,
            },
        )
    db.execute(
        """INSERT INTO hashtags (id, tag, posts_count, created_at)
           SELECT gen_random_uuid(), w, greatest(1, floor(50000 * power(random(), 4))::int), now()
           FROM unnest(%(words)s::text[]) w ON CONFLICT DO NOTHING""",
        {"words": words},
    )


def social_vocabulary() -> list[str]:
    """What the seed-social world's posts say, the most frequent first: its filler words, its
    topics (hashtags), then the numbered, rarer tags (`garden4017`)."""
    topics = list(social_seed.TOPICS)
    tags = [topics[(r - 1) % len(topics)] + str(r) for r in range(len(topics) + 1, 5001)]
    return [*social_seed.WORDS, *topics, *tags][:3000]


def seed(database_url: str, users: int, posts: int, world: str) -> str:
    """Seed the world; returns how it was made (for the report)."""
    if world == "social":
        made = social_seed.seed_social(database_url, users=users, posts=posts)
    conn = psycopg2.connect(database_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            if world == "social":
                cur.execute(
                    """CREATE TABLE seq AS SELECT row_number() OVER (ORDER BY username) AS n, id
                       FROM users"""
                )
                cur.execute("CREATE UNIQUE INDEX ON seq (n)")
                return f"`python -m loadtest seed-social`: {made.summary().split(' on ')[0]}"
            seed_users(cur, users)
            seed_follows(cur, users)
            seed_posts(cur, users, posts)
            return "the bench's own seeder (pseudo-word vocabulary)"
    finally:
        conn.close()


async def register_viewers(
    http: aiohttp.ClientSession, base: str, db, count: int, words: list[str]
) -> list[tuple[uuid.UUID, dict[str, str], uuid.UUID]]:
    """`count` viewers: (id, auth headers, their list's id)."""
    viewers = []
    for i in range(count):
        resp = await http.post(
            f"{base}/api/auth/register",
            json={"username": f"viewer{i}", "email": f"v{i}@example.com", "password": "x" * 12},
        )
        body = await resp.json()
        assert resp.status == 201, body
        viewer = uuid.UUID(body["user"]["id"])
        headers = {"Authorization": f"Bearer {body['access_token']}"}
        await db.execute(
            """INSERT INTO follows (id, follower_id, following_id, status, created_at)
               SELECT gen_random_uuid(), %(v)s, s.id, 'accepted', now() FROM seq s
               WHERE s.n IN (SELECT DISTINCT 1 + floor(20000 * power(random(), 2))::int
                             FROM generate_series(1, 150))
               ON CONFLICT DO NOTHING""",
            {"v": viewer},
        )
        await db.execute(
            """INSERT INTO blocks (id, blocker_id, blocked_id)
               SELECT gen_random_uuid(), %s, id FROM seq WHERE n = %s""",
            (viewer, 10 + i),
        )
        muted = await http.post(
            f"{base}/api/users/me/muted-words", json={"phrase": words[120 + i]}, headers=headers
        )
        assert muted.status == 201, await muted.text()
        created = await http.post(f"{base}/api/lists", json={"name": "Bench list"}, headers=headers)
        list_id = uuid.UUID((await created.json())["id"])
        await db.execute(
            """INSERT INTO list_members (id, list_id, user_id, added_at)
               SELECT gen_random_uuid(), %(l)s, s.id, now() FROM seq s
               WHERE s.n IN (SELECT DISTINCT 1 + floor(5000 * random())::int
                             FROM generate_series(1, 50))""",
            {"l": list_id},
        )
        viewers.append((viewer, headers, list_id))
    return viewers


def queries(rng: random.Random, words: list[str]) -> list[str]:
    """A mix a search box sees: common and rare words, two-word queries, short prefixes."""
    kinds = [
        lambda: words[rng.randrange(0, 20)],  # very common
        lambda: words[rng.randrange(500, 3000)],  # rare
        lambda: f"{words[rng.randrange(0, 200)]} {words[rng.randrange(0, 200)]}",
        lambda: words[rng.randrange(0, 3000)][:3],  # typing: a prefix
    ]
    return [rng.choice(kinds)() for _ in range(200)]


async def measure(
    http: aiohttp.ClientSession,
    url: str,
    viewers: list[Any],
    params_of: Any,
    requests: int,
    readers: int,
) -> list[float]:
    rng = random.Random(11)
    jobs = []
    for i in range(requests):
        _, headers, list_id = viewers[i % len(viewers)]
        jobs.append(timed_get(http, url.format(list_id=list_id), headers, params_of(rng)))
    return await gather_limited(jobs, readers)


async def run(
    database_url: str,
    users: int,
    posts: int,
    readers: int,
    requests: int,
    tmp: Path,
    world: str = "social",
) -> str:
    runner, base, ctx = await start_app(
        database_url, tmp, rate_limits={"register_per_ip": "100000/3600"}
    )
    out: list[str] = []
    words = social_vocabulary() if world == "social" else vocabulary()
    try:
        connector = aiohttp.TCPConnector(limit=readers)
        async with aiohttp.ClientSession(connector=connector) as http:
            started = time.perf_counter()
            # Seeding runs long statements: a plain connection without the pool's timeout.
            how = await asyncio.to_thread(seed, database_url, users, posts, world)
            for table in ("users", "follows", "posts", "hashtags", "blocks", "mutes"):
                await ctx.db.execute(f"VACUUM ANALYZE {table}")
            seeded = time.perf_counter() - started
            counts = await ctx.db.fetchrow(
                """SELECT (SELECT count(*) FROM users) AS users,
                          (SELECT count(*) FROM follows) AS follows,
                          (SELECT count(*) FROM posts) AS posts"""
            )
            out.append(
                f"- seeded {counts['users']:,} users, {counts['follows']:,} follows, "
                f"{counts['posts']:,} posts in {seeded:.0f} s by {how}"
            )
            n_viewers = min(readers, 32)
            viewers = await register_viewers(http, base, ctx.db, n_viewers, words)
            await ctx.db.execute("VACUUM ANALYZE follows")
            await ctx.db.execute("VACUUM ANALYZE list_members")
            mix = queries(random.Random(3), words)
            usernames = [f"u{n:06d}"[: random.Random(n).randint(3, 7)] for n in range(1, 200)]

            def q_of(pool: list[str]) -> Any:
                return lambda rng: {"q": rng.choice(pool), "history": "false"}

            cases = [
                ("search/posts", "/api/search/posts", q_of(mix)),
                ("search/users (usernames, prefixes)", "/api/search/users", q_of(usernames)),
                ("search/users (words)", "/api/search/users", q_of(mix)),
                ("search/hashtags", "/api/search/hashtags", q_of(mix)),
                ("search/products", "/api/search/products", q_of(mix)),
                ("search/all", "/api/search/all", q_of(mix)),
                ("list feed page (20)", "/api/lists/{list_id}/feed", lambda rng: {"limit": 20}),
            ]
            out.append(
                f"- {len(viewers)} viewers (each follows ~150 accounts, mutes a word, blocks "
                f"one, owns a list of 50); {readers} concurrent readers, {requests} requests "
                "per endpoint, after 100 warm-up requests each"
            )
            out.append("\nOver HTTP, one reader at a time (what one request costs):\n")
            for label, path, params_of in cases:
                await measure(http, base + path, viewers, params_of, 50, 1)
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                values = await measure(http, base + path, viewers, params_of, requests // 3, 1)
                out.append(f"- `{label}`: {summary(values)} (load {load})")
            out.append(f"\nOver HTTP, {readers} concurrent readers (one server process):\n")
            for label, path, params_of in cases:
                await measure(http, base + path, viewers, params_of, 100, readers)
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                values = await measure(http, base + path, viewers, params_of, requests, readers)
                out.append(f"- `{label}`: {summary(values)} (load {load})")
            out.append(
                f"\nThe search / feed queries alone (the store), {readers} concurrent readers "
                f"on a pool of {readers} connections:\n"
            )
            await measure_store(database_url, out, viewers, mix, usernames, requests, readers)
            viewer, _, list_id = viewers[0]
            await explain_hot(ctx, out, viewer, list_id, words)
    finally:
        await runner.cleanup()
    return "\n".join(out)


async def measure_store(
    database_url: str,
    out: list[str],
    viewers: list[Any],
    mix: list[str],
    usernames: list[str],
    requests: int,
    readers: int,
) -> None:
    db = await Database.connect(database_url, minsize=readers, maxsize=readers)
    try:
        engine = PgSearchEngine(db)
        now = datetime.now(UTC)

        def words_of(q: str) -> list[str]:
            return parse_query(q)

        cases: list[tuple[str, Any]] = [
            (
                "posts",
                lambda v, q: engine.posts(v, words_of(q), now, offset=0, limit=21, cap=CANDIDATES),
            ),
            (
                "users",
                lambda v, q: engine.users(
                    v, words_of(q), exact=q, offset=0, limit=21, cap=CANDIDATES
                ),
            ),
            (
                "hashtags",
                lambda v, q: engine.hashtags(words_of(q)[0], offset=0, limit=21, cap=CANDIDATES),
            ),
            (
                "products",
                lambda v, q: engine.linked_posts(
                    "product", v, words_of(q), now, offset=0, limit=21, cap=CANDIDATES
                ),
            ),
        ]
        for label, call in cases:
            pool = usernames if label == "users" else mix
            rng = random.Random(5)

            async def timed(v: uuid.UUID, q: str, call: Any = call) -> float:
                started = time.perf_counter()
                await call(v, q)
                return (time.perf_counter() - started) * 1000

            jobs = [timed(viewers[i % len(viewers)][0], rng.choice(pool)) for i in range(requests)]
            load = " ".join(f"{x:.2f}" for x in os.getloadavg())
            out.append(f"- `{label}`: {summary(await gather_limited(jobs, readers))} (load {load})")
        rng = random.Random(6)

        async def feed_once(i: int) -> float:
            viewer, _, list_id = viewers[i % len(viewers)]
            started = time.perf_counter()
            await list_feed(db, list_id, viewer, now, None, 21, 2)
            return (time.perf_counter() - started) * 1000

        values = await gather_limited([feed_once(i) for i in range(requests)], readers)
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        out.append(f"- `list feed page (share of 2)`: {summary(values)} (load {load})")
    finally:
        await db.close()


class Explaining:
    """Queries that answer EXPLAIN ANALYZE of what the store runs (the exact SQL and
    parameters of PgSearchEngine and lists.feed), collected in `plans`."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.plans: list[str] = []

    async def fetch(self, sql: str, params: Any = None) -> list[Any]:
        rows = await self.db.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        self.plans.append("\n".join(r["QUERY PLAN"] for r in rows))
        return []


async def explain_hot(ctx, out: list[str], viewer: uuid.UUID, list_id: uuid.UUID, words) -> None:
    now = datetime.now(UTC)
    probe = Explaining(ctx.db)
    engine = PgSearchEngine(probe)
    cases: list[tuple[str, Any]] = [
        (
            f"Post search, a common word (`{words[0]}`)",
            engine.posts(viewer, [words[0]], now, offset=0, limit=21, cap=CANDIDATES),
        ),
        (
            f"Post search, a short prefix (`{words[7][:3]}`)",
            engine.posts(viewer, [words[7][:3]], now, offset=0, limit=21, cap=CANDIDATES),
        ),
        (
            f"Post search, a rare word (`{words[2500]}`)",
            engine.posts(viewer, [words[2500]], now, offset=0, limit=21, cap=CANDIDATES),
        ),
        (
            "User search, a broad prefix (`u00`)",
            engine.users(viewer, ["u00"], exact="u00", offset=0, limit=21, cap=CANDIDATES),
        ),
        (
            f"Hashtag search (`{words[3][:2]}`)",
            engine.hashtags(words[3][:2], offset=0, limit=21, cap=CANDIDATES),
        ),
        (
            "List feed page of 20, 50 members (share of 2 each)",
            list_feed(probe, list_id, viewer, now, None, 21, 2),
        ),
    ]
    for label, run_query in cases:
        await run_query
        out.append(f"\n{label}:\n```\n{probe.plans[-1]}\n```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("NEXGATE_TEST_DATABASE_URL"))
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--readers", type=int, default=32)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument(
        "--world", choices=["social", "own"], default="social", help="seed-social or our own"
    )
    args = parser.parse_args()
    run_on_throwaway_database(
        args.database_url,
        f"Search and list feed (loadtest/search_bench.py, {args.users:,} users, "
        f"{args.posts:,} posts, {args.readers} concurrent readers)",
        lambda url, tmp: run(
            url, args.users, args.posts, args.readers, args.requests, tmp, args.world
        ),
    )


if __name__ == "__main__":
    main()
