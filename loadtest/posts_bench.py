"""Posts benchmark (not a test): `GET /api/posts/:id` of a post with commerce cards, and a profile
grid page of 30 such posts, with 100,000 posts in the table; plus the query plans.

    .venv/bin/python -m loadtest.posts_bench [--database-url URL] [--posts 100000] [--requests 2000]

Uses a throw-away database on the given server (default: $NEXGATE_TEST_DATABASE_URL, else the
embedded PostgreSQL), seeds posts with SQL (the bench is about reads), runs the real app over
real HTTP on 127.0.0.1 (sequential GETs with a bearer token: auth, the rate limiter, the queries
and JSON encoding are all in the time) and prints a Markdown report for loadtest/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from loadtest.notifications_bench import explain, insert_users, summary, timed_get
from loadtest.throwaway import run_on_throwaway_database, start_app
from server.ids import new_id
from server.store.posts.reads import POST_COLUMNS
from server.store.visibility import post_visible


async def seed_commerce(db, owner: uuid.UUID) -> dict[str, list[uuid.UUID]]:
    now = datetime.now(UTC)
    shop = new_id()
    await db.execute(
        """INSERT INTO shops (id, handle, name, owner_id, updated_at)
           VALUES (%s, 'bench_shop', 'Bench Shop', %s, %s)""",
        (shop, owner, now),
    )
    products = [new_id() for _ in range(3)]
    for i, product in enumerate(products):
        await db.execute(
            """INSERT INTO products (id, shop_id, owner_id, name, images, price, currency,
                                     updated_at)
               VALUES (%s, %s, %s, %s, ARRAY['https://cdn.test/p.jpg'], 100 + %s, 'USD', %s)""",
            (product, shop, owner, f"Product {i}", i, now),
        )
    group = new_id()
    await db.execute(
        """INSERT INTO buy_together_groups (id, product_id, creator_id, target_price,
               individual_price, currency, total_spots, participant_count, expires_at, updated_at)
           VALUES (%s, %s, %s, 80, 100, 'USD', 10, 3, %s, %s)""",
        (group, products[0], owner, now + timedelta(days=3), now),
    )
    plans = [new_id(), new_id()]
    for months, plan in zip((6, 12), plans, strict=True):
        await db.execute(
            """INSERT INTO installment_plans (id, product_id, duration_months, monthly_amount,
                   total_cost, currency, updated_at)
               VALUES (%s, %s, %s, 100.0 / %s * 6, 600, 'USD', %s)""",
            (plan, products[0], months, months, now),
        )
    return {"shop": [shop], "products": products, "group": [group], "plans": plans}


async def seed_posts(db, authors: list[uuid.UUID], count: int) -> None:
    """`count` published public posts spread over `authors`, a few seconds apart."""
    start = datetime.now(UTC) - timedelta(days=60)
    batch = 20_000
    for offset in range(0, count, batch):
        n = min(batch, count - offset)
        ids = [new_id() for _ in range(n)]
        await db.execute(
            """INSERT INTO posts (id, author_id, author_ids, content, entities, post_type, status,
                   visibility, created_at, updated_at, published_at)
               SELECT p.id, a.author, ARRAY[a.author], 'Post number ' || p.n, '[]', 'text',
                   'published', 'public', %(start)s + p.n * interval '5 seconds',
                   %(start)s + p.n * interval '5 seconds', %(start)s + p.n * interval '5 seconds'
               FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS p (id, n)
               JOIN LATERAL (SELECT (%(authors)s::uuid[])[1 + (p.n + %(offset)s)
                   %% cardinality(%(authors)s::uuid[])] AS author) a ON true""",
            {"ids": ids, "authors": authors, "start": start, "offset": offset},
        )


def _sizes(media_id: uuid.UUID) -> dict:
    sizes = {}
    for name, side in (("thumbnail", 150), ("medium", 600), ("large", 1200), ("original", 4000)):
        sizes[name] = {
            "width": side,
            "height": side * 3 // 4,
            "webp": f"m/{media_id}/{name}.webp",
            "jpeg": f"m/{media_id}/{name}.jpg",
        }
    return {"sizes": sizes}


async def link_cards(
    db, owner: uuid.UUID, post_ids: list[uuid.UUID], c: dict[str, list[uuid.UUID]]
) -> None:
    """Each post: 4 ready images (as processing leaves them), 3 products, a group, 2 plans."""
    import orjson

    now = datetime.now(UTC)
    for post_id in post_ids:
        for order in range(4):
            media_id = new_id()
            await db.execute(
                """INSERT INTO media (id, owner_id, media_type, status, content_type, byte_size,
                       width, height, blurhash, variants, attached_at, created_at, updated_at)
                   VALUES (%s, %s, 'image', 'ready', 'image/jpeg', 2000000, 4000, 3000,
                       'LEHV6nWB2yk8pyo0adR*.7kCMdnj', %s::jsonb, %s, %s, %s)""",
                (media_id, owner, orjson.dumps(_sizes(media_id)).decode(), now, now, now),
            )
            await db.execute(
                "INSERT INTO post_media VALUES (%s, %s, %s, %s)", (post_id, media_id, order, now)
            )
        await db.execute("UPDATE posts SET post_type = 'image' WHERE id = %s", (post_id,))
        for i, product in enumerate(c["products"]):
            await db.execute(
                "INSERT INTO post_products VALUES (%s, %s, %s, %s)", (post_id, product, i, now)
            )
        await db.execute(
            "INSERT INTO post_groups VALUES (%s, %s, 0, %s)", (post_id, c["group"][0], now)
        )
        for i, plan in enumerate(c["plans"]):
            await db.execute(
                "INSERT INTO post_plans VALUES (%s, %s, %s, %s, %s, %s)",
                (post_id, plan, c["products"][0], i, i == 1, now),
            )


async def run(database_url: str, posts: int, requests: int, tmp: Path) -> str:
    runner, base, ctx = await start_app(database_url, tmp)
    out: list[str] = []
    try:
        async with aiohttp.ClientSession() as http:
            reg = await http.post(
                f"{base}/api/auth/register",
                json={"username": "bench_viewer", "email": "v@example.com", "password": "x" * 12},
            )
            body = await reg.json()
            viewer = uuid.UUID(body["user"]["id"])
            headers = {"Authorization": f"Bearer {body['access_token']}"}
            authors = await insert_users(ctx.db, 1000, "author")
            star = authors[0]
            started = time.perf_counter()
            await seed_posts(ctx.db, authors, posts)
            cards = await seed_commerce(ctx.db, star)
            star_posts = [
                r["id"]
                for r in await ctx.db.fetch(
                    """SELECT id FROM posts WHERE author_id = %s
                       ORDER BY published_at DESC, id DESC LIMIT 30""",
                    (star,),
                )
            ]
            await link_cards(ctx.db, star, star_posts, cards)
            for table in (
                "posts",
                "post_products",
                "post_groups",
                "post_plans",
                "post_media",
                "users",
            ):
                await ctx.db.execute(f"VACUUM ANALYZE {table}")
            total = await ctx.db.fetchval("SELECT count(*) FROM posts")
            out.append(
                f"- seeded {total} posts by 1,000 authors in {time.perf_counter() - started:.1f} s;"
                f" the 30 newest of one author each carry 4 images, 3 product cards, a group card "
                "and 2 plans"
            )
            post_url = f"{base}/api/posts/{star_posts[0]}"
            grid_url = f"{base}/api/users/{star}/posts"
            for _ in range(50):
                await timed_get(http, post_url, headers)
                await timed_get(http, grid_url, headers, {"limit": 30})
            one = [await timed_get(http, post_url, headers) for _ in range(requests)]
            out.append(
                f"- `GET /api/posts/:id` (4 images, 3 products, group, 2 plans): {summary(one)}"
            )
            page = [
                await timed_get(http, grid_url, headers, {"limit": 30}) for _ in range(requests)
            ]
            out.append(f"- profile grid, 30 such posts: {summary(page)}")
            visible = post_visible("viewer")
            grid_sql = f"""SELECT {POST_COLUMNS} FROM posts p
                WHERE p.author_id = %(user)s AND p.status = 'published' AND p.deleted_at IS NULL
                  AND {visible}
                ORDER BY p.published_at DESC, p.id DESC LIMIT 31"""
            one_sql = f"SELECT {POST_COLUMNS} FROM posts p WHERE p.id = %(id)s AND {visible}"
            params = {"user": star, "viewer": viewer, "id": star_posts[0]}
            out.append(
                f"\nProfile grid query:\n```\n{await explain(ctx.db, grid_sql, params)}\n```"
            )
            out.append(f"\nOne post:\n```\n{await explain(ctx.db, one_sql, params)}\n```")
    finally:
        await runner.cleanup()
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("NEXGATE_TEST_DATABASE_URL"))
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    run_on_throwaway_database(
        args.database_url,
        "Posts (loadtest/posts_bench.py)",
        lambda url, tmp: run(url, args.posts, args.requests, tmp),
    )


if __name__ == "__main__":
    main()
