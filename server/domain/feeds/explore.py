"""Explore `GET /api/posts/explore`: recent public posts from accounts the viewer does not
follow, ranked by engagement and recency (the spec's v2):

    score = (likes + 2 * comments + 3 * reposts + 1) / (age_hours + 2) ^ 1.5

A snapshot of candidates (the `feeds.explore_candidates` best of the newest public posts of
public accounts within `feeds.explore_window_h` hours; reposts left out, their originals
compete on their own) is computed once per `feeds.explore_cache_s` per node, never per request.
A request filters the snapshot for its viewer in one query per batch (not theirs, nobody they
follow, blocks both ways, mutes, hides) and pages by (score, id) of the snapshot: a cursor
carries the score and id it ended at, so a page of a newer snapshot continues below them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.feeds.cache import cached
from server.domain.posts.views import render_posts
from server.errors import ValidationFailed
from server.pagination import decode_cursor, encode_cursor
from server.store import hashtags as store
from server.store.db import Row

Key = tuple[float, uuid.UUID]  # (score, id), descending
MAX_ROUNDS = 4
SCAN_FACTOR = 20  # newest posts read per snapshot slot, before ranking


def _key(cursor: str | None) -> Key | None:
    values = decode_cursor(cursor, 2)
    if values is None:
        return None
    try:
        if not isinstance(values[0], int | float) or isinstance(values[0], bool):
            raise ValueError
        return float(values[0]), uuid.UUID(str(values[1]))
    except ValueError:
        raise ValidationFailed.field("cursor", "is not a cursor this list produced") from None


async def snapshot(ctx: Context) -> list[tuple[Key, list[uuid.UUID]]]:
    """The ranked candidates ((score, id), author ids), best first, cached."""
    settings = ctx.settings.feeds

    async def compute() -> list[tuple[Key, list[uuid.UUID]]]:
        now = ctx.clock.now()
        rows = await store.explore_snapshot(
            ctx.db,
            now=now,
            since=now - timedelta(hours=settings.explore_window_h),
            scan=settings.explore_candidates * SCAN_FACTOR,
            keep=settings.explore_candidates,
        )
        return [((float(r["score"]), r["id"]), list(r["author_ids"])) for r in rows]

    value, _ = await cached(ctx, "explore", None, settings.explore_cache_s, compute)
    return value


async def explore(
    ctx: Context, viewer: Principal, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    after = _key(cursor)
    ranked = [key for key, _ in await snapshot(ctx)]
    if after is not None:
        ranked = [key for key in ranked if key < after]
    n = limit * 2 + 10
    kept: list[tuple[Key, Row]] = []
    next_key: Key | None = None
    for start in range(0, min(len(ranked), n * MAX_ROUNDS), n):
        chunk = ranked[start : start + n]
        rows = {
            r["id"]: r
            for r in await store.explore_filter(
                ctx.db, viewer.user_id, [k[1] for k in chunk], ctx.clock.now()
            )
        }
        kept.extend((key, rows[key[1]]) for key in chunk if key[1] in rows)
        next_key = chunk[-1] if start + n < len(ranked) else None
        if len(kept) > limit:
            kept = kept[:limit]
            next_key = kept[-1][0]
            break
    return {
        "items": await render_posts(ctx, viewer.user_id, [row for _, row in kept]),
        "next_cursor": encode_cursor(*next_key[:1], str(next_key[1])) if next_key else None,
    }
