"""Interactions benchmark (not a test): 1,000 users liking one post within a second, 10,000
votes on one poll in 10 s with a live subscriber, and a comments page (with inlined replies)
on a post with 10,000 comments.

    .venv/bin/python -m loadtest.interactions_bench [--database-url URL] [--requests 1000]

Likes and votes call the domain actions (the same ones HTTP and the gateway call) with the
concurrency given, on the real app over a throw-away database; the comments page is read over
real HTTP. Prints a Markdown report for loadtest/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path

import aiohttp

from loadtest.notifications_bench import insert_users, summary, timed_get
from loadtest.throwaway import run_on_throwaway_database, start_app
from server.domain.auth_tokens import Principal
from server.domain.posts import likes, polls, publishing
from server.domain.posts.commands import CreatePostIn, PollIn, VoteIn
from server.ids import new_id


async def paced(make, count: int, seconds: float, in_flight: int = 64) -> list[float]:
    """Start `count` calls evenly over `seconds` (at most `in_flight` running, as a server's
    request concurrency would be; waiting for a slot counts in the latency); their latencies."""
    slots = asyncio.Semaphore(in_flight)

    async def one(i: int) -> float:
        started = time.perf_counter()
        async with slots:
            await make(i)
        return (time.perf_counter() - started) * 1000

    tasks = []
    started = time.perf_counter()
    for i in range(count):
        delay = started + i * seconds / count - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    return await asyncio.gather(*tasks)


async def run(database_url: str, requests: int, tmp: Path) -> str:
    runner, base, ctx = await start_app(
        database_url,
        tmp,
        rate_limits={
            "like": "1000000/3600",
            "post": "1000000/3600",
            "notify_per_actor": "1000000/3600",
        },
    )
    out: list[str] = []
    published: list[dict] = []

    async def capture(topic: str, type: str, data: dict) -> None:
        published.append({"topic": topic, "type": type})

    original_publish = ctx.bus.publish_topic

    async def counting_publish(topic, type, data):  # type: ignore[no-untyped-def]
        await capture(topic, type, data)
        return await original_publish(topic, type, data)

    ctx.bus.publish_topic = counting_publish  # type: ignore[method-assign]
    try:
        async with aiohttp.ClientSession() as http:
            reg = await http.post(
                f"{base}/api/auth/register",
                json={"username": "bench_author", "email": "a@example.com", "password": "x" * 12},
            )
            body = await reg.json()
            author = Principal(uuid.UUID(body["user"]["id"]), "bench_author", ("user",))
            headers = {"Authorization": f"Bearer {body['access_token']}"}
            fans = await insert_users(ctx.db, 10_000, "fan")

            # 1,000 likes on one post within one second.
            post = await publishing.create_post(ctx, author, CreatePostIn(content="like me"))
            post_id = uuid.UUID(post["id"])
            published.clear()
            started = time.perf_counter()
            lat = await paced(
                lambda i: likes.like_post(ctx, Principal(fans[i], "fan", ("user",)), post_id),
                1000,
                1.0,
            )
            elapsed = time.perf_counter() - started
            await asyncio.sleep(1.5)  # the last coalesced counter event
            count = await ctx.db.fetchval("SELECT likes_count FROM posts WHERE id = %s", (post_id,))
            rows = await ctx.db.fetch(
                """SELECT actor_count FROM notifications
                   WHERE recipient_id = %s AND type = 'like_post'""",
                (author.user_id,),
            )
            events = [e for e in published if e["topic"] == f"post:{post_id}"]
            out.append("#### 1,000 likes on one post, started over one second")
            out.append(
                f"- likes_count {count}; notification rows {len(rows)} "
                f"(actor_count {rows[0]['actor_count'] if rows else 0}); "
                f"post.updated events published {len(events)}; all done in {elapsed:.2f} s"
            )
            out.append(f"- like latency: {summary(lat)}")

            # 10,000 votes on one poll in 10 s.
            poll_post = await publishing.create_post(
                ctx,
                author,
                CreatePostIn(content="Pick one", poll=PollIn(options=["A", "B", "C", "D"])),
            )
            poll_id = uuid.UUID(poll_post["poll"]["id"])
            options = [uuid.UUID(o["id"]) for o in poll_post["poll"]["options"]]
            published.clear()
            started = time.perf_counter()
            lat = await paced(
                lambda i: polls.vote(
                    ctx,
                    Principal(fans[i], "fan", ("user",)),
                    poll_id,
                    VoteIn(option_ids=[options[i % 4]]),
                    change=False,
                ),
                10_000,
                10.0,
            )
            elapsed = time.perf_counter() - started
            await asyncio.sleep(1.5)
            results = await polls.get_results(ctx, author, poll_id)
            updates = [e for e in published if e["topic"] == f"poll:{poll_id}"]
            out.append("")
            out.append("#### 10,000 votes on one poll, paced over 10 s")
            out.append(
                f"- voters_count {results['voters_count']}, per option "
                f"{[o['votes'] for o in results['options']]}; poll.updated published "
                f"{len(updates)} in {elapsed:.1f} s (one topic publish reaches every subscriber)"
            )
            out.append(f"- vote latency: {summary(lat)}")

            # A comments page on a post with 10,000 comments (and replies on the first ones).
            thread = await publishing.create_post(ctx, author, CreatePostIn(content="talk"))
            thread_id = uuid.UUID(thread["id"])
            ids = [new_id() for _ in range(10_000)]
            await ctx.db.execute(
                """INSERT INTO comments (id, post_id, author_id, depth, content, created_at)
                   SELECT c.id, %(p)s, (%(fans)s::uuid[])[1 + c.n %% 1000], 0,
                          'comment ' || c.n, now()
                   FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS c (id, n)""",
                {"p": thread_id, "fans": fans[:1000], "ids": ids},
            )
            replies = [new_id() for _ in range(20 * 5)]
            await ctx.db.execute(
                """INSERT INTO comments (id, post_id, author_id, parent_id, depth, content,
                                         created_at)
                   SELECT r.id, %(p)s, %(a)s, (%(parents)s::uuid[])[1 + (r.n - 1) / 5], 1,
                          'reply ' || r.n, now()
                   FROM unnest(%(ids)s::uuid[]) WITH ORDINALITY AS r (id, n)""",
                {"p": thread_id, "a": fans[0], "parents": sorted(ids)[:20], "ids": replies},
            )
            await ctx.db.execute(
                """UPDATE comments c SET replies_count = 5 WHERE id = ANY(%s)""",
                (sorted(ids)[:20],),
            )
            await ctx.db.execute("VACUUM ANALYZE comments")
            url = f"{base}/api/posts/{thread_id}/comments"
            for _ in range(50):
                await timed_get(http, url, headers)
            page = [await timed_get(http, url, headers) for _ in range(requests)]
            out.append("")
            out.append("#### Comments page (20 top-level, 3 replies inlined each), 10,000 comments")
            out.append(f"- `GET /api/posts/:id/comments` over HTTP: {summary(page)}")
    finally:
        await runner.cleanup()
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("NEXGATE_TEST_DATABASE_URL"))
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    run_on_throwaway_database(
        args.database_url,
        "Interactions (loadtest/interactions_bench.py)",
        lambda url, tmp: run(url, args.requests, tmp),
    )


if __name__ == "__main__":
    main()
