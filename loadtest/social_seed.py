"""`python -m loadtest seed-social`: a social world at benchmark scale, made inside PostgreSQL.

100,000 users with a power-law follow graph, 1,000,000 published posts with hashtags and
likes, in a few minutes on two cores: every row is made by set-based SQL over
`generate_series` (no per-row round trips), ids are UUIDv7 made in SQL from each row's own
time, and the counters are computed from the rows they count, so the world obeys the same
invariants as one made through the API (the nightly reconciliation would change nothing).

The shape, deterministic for a given --seed (apart from the random bits of the ids):
- users `u000001` .. `uNNNNNN`, email `<username>@seed.example`, password `seed-password-1`;
  the rank is the popularity: a follow picks its target with P(rank <= r) = (r / N) ** (1/3),
  so u000001 has tens of thousands of followers at 100k users and most accounts a handful;
  every user follows 5-34 accounts; 5 % of accounts are private (their followers accepted);
- posts: authors drawn with a milder skew, published over the last 30 days up to now, 85 %
  public and 15 % followers-only, 6-20 words of text then 0-3 hashtags drawn from 5,000 tags
  (a Zipf-like skew: `#deals` is everywhere, `#garden4017` rare), with their entities and
  offsets as the composer writes them;
- likes: a skewed count per post (mean about --likes-per-post), by distinct users.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import psycopg2
from argon2 import PasswordHasher

from loadtest.throwaway import with_database
from server.store.migrate import apply_migrations

PASSWORD = "seed-password-1"
TOPICS = (
    "deals sneakers fashion food travel music tech gaming fitness beauty home garden books art "
    "photography coffee cars pets kids football basketball movies style vintage handmade "
    "skincare recipes vegan outdoors camping diy decor phones laptops cameras watches jewelry "
    "bags shoes streetwear luxury budget sale unboxing review tutorial giveaway launch event "
    "market local smallbusiness crafts wellness yoga running cycling hiking beach summer winter"
).split()
WORDS = (
    "the a new best great my our today love this that just got look check out amazing price "
    "quality fast shipping store shop order week weekend morning night friends family city "
    "first last again finally fresh favourite little big bright colour soft warm cool happy "
    "share thanks everyone ready open limited stock back soon join group buy together plan "
    "pay easy deal offer style made hand local found picked tried recommend worth every"
).split()
_UUID7 = """
CREATE OR REPLACE FUNCTION pg_temp.uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
           PLACING substring(int8send((extract(epoch FROM ts) * 1000)::bigint) FROM 3)
           FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
$$;
"""


@dataclass(frozen=True)
class SocialWorld:
    database_url: str
    users: int
    posts: int
    follows: int
    likes: int
    hashtags: int
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.users:,} users, {self.follows:,} follows, {self.posts:,} posts, "
            f"{self.likes:,} likes, {self.hashtags:,} hashtags in {self.seconds:.0f} s "
            f"on {self.database_url}"
        )


def _stride(n: int) -> int:
    """A step coprime with n: (start + i * step) % n visits n distinct users."""
    for step in (7919, 7927, 7933, 7937, 7949):
        if math.gcd(step, n) == 1:
            return step
    return 1


def seed_social(
    database_url: str,
    *,
    users: int = 100_000,
    posts: int = 1_000_000,
    likes_per_post: float = 3.0,
    seed: float = 0.42,
    progress: Any = sys.stderr,
) -> SocialWorld:
    """Fill a migrated, empty database at `database_url`; returns what it made."""
    if users < 10 or posts < 1:
        raise ValueError("need at least 10 users and 1 post")
    started = time.monotonic()
    # Cheap argon2 parameters (they travel in the hash): benchmarks sign thousands of users in.
    password_hash = PasswordHasher(time_cost=1, memory_cost=1024).hash(PASSWORD)
    conn = psycopg2.connect(database_url)
    conn.autocommit = True

    def step(title: str, sql: str, params: dict[str, Any] | None = None) -> None:
        t0 = time.monotonic()
        with conn.cursor() as cur:
            cur.execute(sql, params or {})
        print(f"  {title}: {time.monotonic() - t0:.1f} s", file=progress, flush=True)

    vocab = {"words": WORDS, "topics": TOPICS}
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users")
        if cur.fetchone()[0]:
            raise RuntimeError("seed-social wants an empty database")
        cur.execute(_UUID7)
        cur.execute("SELECT setseed(%s)", (seed,))
        cur.execute("SET synchronous_commit = off")
    step(
        "users",
        """INSERT INTO users (id, username, email, password_hash, display_name, bio, is_private,
                              email_verified_at, created_at, updated_at)
           SELECT pg_temp.uuid7(t), u, u || '@seed.example', %(hash)s,
                  initcap(topics[1 + (r %% cardinality(topics))]) || ' ' || u,
                  'I post about ' || topics[1 + ((r * 7) %% cardinality(topics))],
                  random() < 0.05, t, t, t
           FROM generate_series(1, %(n)s) r, (SELECT %(topics)s::text[] AS topics) v,
                LATERAL (SELECT 'u' || lpad(r::text, 6, '0') AS u,
                                now() - interval '400 days' + r * interval '1 second' AS t) x""",
        {"n": users, "hash": password_hash, **vocab},
    )
    step(
        "ranks",
        """CREATE TEMP TABLE seed_ranks AS
             SELECT substr(username, 2)::int AS rank, id FROM users;
           ALTER TABLE seed_ranks ADD PRIMARY KEY (rank); ANALYZE seed_ranks""",
    )
    step(
        "follows",
        """INSERT INTO follows (id, follower_id, following_id, status, created_at, accepted_at)
           SELECT pg_temp.uuid7(t), f.id, g.id, 'accepted', t, t
           FROM (SELECT DISTINCT r.rank AS f_rank,
                        1 + floor(%(n)s * power(random(), 3))::int AS t_rank
                 FROM seed_ranks r,
                      LATERAL generate_series(1, 5 + floor(random() * 30)::int + 0 * r.rank) k
                ) pairs
           JOIN seed_ranks f ON f.rank = pairs.f_rank
           JOIN seed_ranks g ON g.rank = least(pairs.t_rank, %(n)s)
           CROSS JOIN LATERAL (SELECT now() - interval '300 days'
                                      + random() * interval '270 days' AS t) tt
           WHERE pairs.f_rank <> least(pairs.t_rank, %(n)s)
           ON CONFLICT DO NOTHING""",
        {"n": users},
    )
    step(
        "follow counters",
        """UPDATE users u SET followers_count = c.n
           FROM (SELECT following_id, count(*) AS n FROM follows GROUP BY 1) c
           WHERE u.id = c.following_id;
           UPDATE users u SET following_count = c.n
           FROM (SELECT follower_id, count(*) AS n FROM follows GROUP BY 1) c
           WHERE u.id = c.follower_id""",
    )
    step(
        "hashtags",
        """CREATE TEMP TABLE seed_tags AS
             SELECT r AS rank, pg_temp.uuid7(now() - interval '1 year') AS id,
                    (%(topics)s::text[])[1 + ((r - 1) %% array_length(%(topics)s, 1))]
                      || CASE WHEN r > array_length(%(topics)s, 1) THEN r::text ELSE '' END
                      AS tag
             FROM generate_series(1, 5000) r;
           INSERT INTO hashtags (id, tag, posts_count, created_at)
             SELECT id, tag, 0, now() - interval '1 year' FROM seed_tags;
           ALTER TABLE seed_tags ADD PRIMARY KEY (rank)""",
        vocab,
    )
    # One draft row per post in a temp table, then posts, their hashtags and likes from it.
    step(
        "post drafts",
        """CREATE TEMP TABLE seed_posts AS
           WITH drafts AS MATERIALIZED (
             SELECT g, 1 + floor(%(n)s * power(random(), 1.6))::int AS author_rank,
                    now() - random() * interval '30 days' AS t
             FROM generate_series(1, %(posts)s) g)
           SELECT pg_temp.uuid7(d.t) AS id, a.id AS author_id, d.t,
                  (CASE WHEN random() < 0.85 THEN 'public' ELSE 'followers' END) AS visibility,
                  array_to_string(ARRAY(SELECT (%(words)s::text[])[1 + floor(random()
                                                 * array_length(%(words)s, 1))::int]
                                        FROM generate_series(1, 6 + floor(random() * 15)::int
                                                                + 0 * d.g)), ' ') AS words,
                  ARRAY(SELECT DISTINCT 1 + floor(5000 * power(random(), 2.5))::int
                        FROM generate_series(1, floor(random() * 4)::int + 0 * d.g)) AS tag_ranks,
                  floor(power(random(), 3) * 4 * %(likes)s)::int AS likes
           FROM drafts d JOIN seed_ranks a ON a.rank = least(d.author_rank, %(n)s)""",
        {"posts": posts, "n": users, "likes": likes_per_post, **vocab},
    )
    step(
        "posts",
        """INSERT INTO posts (id, author_id, author_ids, content, entities, post_type, status,
                              visibility, likes_count, created_at, updated_at, published_at)
           SELECT sp.id, sp.author_id, ARRAY[sp.author_id],
                  sp.words || coalesce(tags.text, ''), coalesce(tags.entities, '[]'),
                  'text', 'published', sp.visibility, least(sp.likes, %(n)s - 1), sp.t, sp.t, sp.t
           FROM seed_posts sp
           LEFT JOIN LATERAL (
             SELECT string_agg(' #' || tag, '' ORDER BY o) AS text,
                    jsonb_agg(jsonb_build_object('type', 'hashtag', 'text', '#' || tag,
                                                 'tag', tag, 'start', "end" - length(tag) - 1,
                                                 'end', "end") ORDER BY o) AS entities
             FROM (SELECT st.tag, x.o,
                          length(sp.words)
                            + sum(length(st.tag) + 2) OVER (ORDER BY x.o) AS "end"
                   FROM unnest(sp.tag_ranks) WITH ORDINALITY AS x(rank, o)
                   JOIN seed_tags st ON st.rank = x.rank) offsets
           ) tags ON true""",
        {"n": users},
    )
    step(
        "post hashtags",
        """INSERT INTO post_hashtags (post_id, hashtag_id, published_at)
           SELECT sp.id, st.id, sp.t
           FROM seed_posts sp, unnest(sp.tag_ranks) r JOIN seed_tags st ON st.rank = r;
           UPDATE hashtags h SET posts_count = c.n
           FROM (SELECT hashtag_id, count(*) AS n FROM post_hashtags GROUP BY 1) c
           WHERE h.id = c.hashtag_id""",
    )
    step(
        "likes",
        """INSERT INTO post_likes (post_id, user_id, created_at)
           SELECT p.id, u.id, p.published_at + (i + 1) * interval '1 minute'
           FROM posts p
           CROSS JOIN LATERAL (SELECT floor(random() * %(n)s)::int + 0 * p.likes_count AS s) st
           CROSS JOIN LATERAL generate_series(0, p.likes_count - 1) i
           JOIN seed_ranks u ON u.rank = 1 + ((st.s + i * %(stride)s) %% %(n)s)
           WHERE p.likes_count > 0""",
        {"n": users, "stride": _stride(users)},
    )
    step(
        "author counters",
        """UPDATE users u SET posts_count = c.n, likes_received = c.likes
           FROM (SELECT author_id, count(*) AS n, sum(likes_count) AS likes
                 FROM posts GROUP BY 1) c
           WHERE u.id = c.author_id;
           ANALYZE""",
    )
    with conn.cursor() as cur:
        counts = []
        for table in ("users", "posts", "follows", "post_likes", "hashtags"):
            cur.execute(f"SELECT count(*) FROM {table}")
            counts.append(cur.fetchone()[0])
    conn.close()
    n_users, n_posts, n_follows, n_likes, n_tags = counts
    return SocialWorld(
        database_url, n_users, n_posts, n_follows, n_likes, n_tags, time.monotonic() - started
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest seed-social", description=__doc__)
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="the PostgreSQL server to create the database on",
    )
    parser.add_argument("--name", default="nexgate_social", help="database to (re)create")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--likes-per-post", type=float, default=3.0)
    parser.add_argument("--seed", type=float, default=0.42, help="-1..1, for setseed()")
    args = parser.parse_args(argv)
    admin = psycopg2.connect(with_database(args.database_url, "postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{args.name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{args.name}"')
    admin.close()
    url = with_database(args.database_url, args.name)
    apply_migrations(url)
    world = seed_social(
        url,
        users=args.users,
        posts=args.posts,
        likes_per_post=args.likes_per_post,
        seed=args.seed,
    )
    print(world.summary())
    return 0
