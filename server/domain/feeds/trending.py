"""Trending hashtags: velocity over a recent window against the tag's own baseline, not
all-time counts.

Maintained incrementally (server/domain/posts/distribution.py): publishing a post adds one
use to each of its hashtags in the UTC hour of publication (`hashtag_usage_hourly`, in the
publishing transaction); deleting it takes the use back from that hour. Edits that add or
drop tags later do not move usage (the moment of use is the publication). Reading ranks by

    score = (r - b) / sqrt(b + 1)

where r is uses per hour over the last `feeds.trending_window_h` hours (the current hour
included) and b the per-hour average over the `feeds.trending_baseline_days` days before that
window; the +1 smooths tags with no history, so a tag needs `feeds.trending_min_uses` uses in
the window and must be above its baseline to trend. The answer is cached per node for
`feeds.trending_cache_s` on ctx.clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from server.domain.context import Context
from server.domain.feeds.cache import cached
from server.store import hashtags as store

MAX_TRENDING = 50


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


async def trending(ctx: Context, *, limit: int) -> dict[str, Any]:
    settings = ctx.settings.feeds
    now = ctx.clock.now()

    async def compute() -> list[dict[str, Any]]:
        window_start = hour_of(now) - timedelta(hours=settings.trending_window_h - 1)
        baseline_h = settings.trending_baseline_days * 24
        rows = await store.trending(
            ctx.db,
            window_start=window_start,
            baseline_start=window_start - timedelta(hours=baseline_h),
            now=now,
            window_h=settings.trending_window_h,
            baseline_h=baseline_h,
            min_uses=settings.trending_min_uses,
            limit=MAX_TRENDING,
        )
        return [
            {
                "tag": r["tag"],
                "posts_count": r["posts_count"],
                "recent_uses": int(r["recent_uses"]),
                "baseline_uses": int(r["baseline_uses"]),
                "score": round(float(r["score"]), 4),
            }
            for r in rows
        ]

    items, computed_at = await cached(ctx, "trending", None, settings.trending_cache_s, compute)
    return {
        "items": items[:limit],
        "window_hours": settings.trending_window_h,
        "computed_at": computed_at,
    }
