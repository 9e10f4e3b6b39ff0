"""SQL of hashtags and discovery: hashtag feeds and follows, hourly usage and trending, and
explore's candidate snapshot and per-viewer filter. Viewer reads use `feeds.shown_in_feeds` on
the post alias `p`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from server.store.db import Queries, Row
from server.store.feeds import Keyset, shown_in_feeds
from server.store.posts.reads import POST_COLUMNS
from server.store.visibility import hashtag_visible, post_seen_by_everyone, require_viewer

# Hashtags ---------------------------------------------------------------------------------


async def hashtag_with_follow(q: Queries, tag: str, viewer: uuid.UUID) -> Row | None:
    """The tag as the viewer may know it: None when no post with it is one they may see."""
    return await q.fetchrow(
        f"""SELECT h.id, h.tag, h.posts_count, h.created_at,
                  EXISTS (SELECT 1 FROM hashtag_follows hf
                          WHERE hf.user_id = %(v)s AND hf.hashtag_id = h.id) AS following,
                  (SELECT count(*) FROM hashtag_follows hf WHERE hf.hashtag_id = h.id)
                      AS followers_count
           FROM hashtags h WHERE h.tag = %(tag)s AND {hashtag_visible("v", "h")}""",
        {"tag": tag, "v": require_viewer(viewer)},
    )


async def follow_hashtag(
    q: Queries, user_id: uuid.UUID, hashtag_id: uuid.UUID, now: datetime
) -> bool:
    n = await q.execute(
        """INSERT INTO hashtag_follows (user_id, hashtag_id, created_at) VALUES (%s, %s, %s)
           ON CONFLICT DO NOTHING""",
        (user_id, hashtag_id, now),
    )
    return n > 0


async def unfollow_hashtag(q: Queries, user_id: uuid.UUID, tag: str) -> bool:
    """Unfollow by name: works even when no post with the tag is visible to the user any
    more (they must always be able to leave). False if they did not follow it."""
    n = await q.execute(
        """DELETE FROM hashtag_follows hf USING hashtags h
           WHERE hf.user_id = %s AND hf.hashtag_id = h.id AND h.tag = %s""",
        (user_id, tag),
    )
    return n > 0


async def hashtag_feed_scan(
    q: Queries, hashtag_id: uuid.UUID, before: Keyset | None, scan: int
) -> list[tuple[datetime, uuid.UUID]]:
    """The next `scan` entries of the hashtag's index after `before` (post_hashtags_feed_idx)."""
    after = "AND (ph.published_at, ph.post_id) < (%(t)s, %(i)s)" if before else ""
    rows = await q.fetch(
        f"""SELECT ph.published_at, ph.post_id FROM post_hashtags ph
            WHERE ph.hashtag_id = %(tag)s {after}
            ORDER BY ph.published_at DESC, ph.post_id DESC LIMIT %(scan)s""",
        {
            "tag": hashtag_id,
            "scan": scan,
            "t": before[0] if before else None,
            "i": before[1] if before else None,
        },
    )
    return [(r["published_at"], r["post_id"]) for r in rows]


async def shown(
    q: Queries, viewer: uuid.UUID, post_ids: Sequence[uuid.UUID], now: datetime
) -> list[Row]:
    """The posts among `post_ids` any feed may show the viewer (one query)."""
    if not post_ids:
        return []
    return await q.fetch(
        f"""SELECT {POST_COLUMNS} FROM posts p
            WHERE p.id = ANY(%(ids)s::uuid[]) AND {shown_in_feeds()}""",
        {"ids": list(post_ids), "viewer": viewer, "now": now},
    )


# Usage and trending -----------------------------------------------------------------------


async def count_uses(q: Queries, post_id: uuid.UUID, hour: datetime, delta: int) -> None:
    """Add `delta` uses in `hour` to each hashtag of the post (linked already on publish, still
    linked on delete), only when everyone may see the post now (`post_seen_by_everyone`): a
    private account's or a narrower audience's tags never trend. A post whose audience changed
    between publication and deletion is uncounted by its audience at deletion (a use may stay
    in its hour; the trending read re-checks the audience, so such a tag does not surface)."""
    audience = f"""EXISTS (SELECT 1 FROM posts p WHERE p.id = %(post)s
                           AND {post_seen_by_everyone("p")})"""
    if delta > 0:
        await q.execute(
            f"""INSERT INTO hashtag_usage_hourly (hashtag_id, hour, uses)
               SELECT hashtag_id, %(hour)s, %(d)s FROM post_hashtags
               WHERE post_id = %(post)s AND {audience}
               ON CONFLICT (hashtag_id, hour)
               DO UPDATE SET uses = hashtag_usage_hourly.uses + EXCLUDED.uses""",
            {"post": post_id, "hour": hour, "d": delta},
        )
    else:
        await q.execute(
            f"""UPDATE hashtag_usage_hourly u SET uses = greatest(u.uses + %(d)s, 0)
               FROM post_hashtags ph
               WHERE ph.post_id = %(post)s AND u.hashtag_id = ph.hashtag_id
                 AND u.hour = %(hour)s AND {audience}""",
            {"post": post_id, "hour": hour, "d": delta},
        )


async def trending(
    q: Queries,
    *,
    window_start: datetime,
    baseline_start: datetime,
    now: datetime,
    window_h: int,
    baseline_h: int,
    min_uses: int,
    limit: int,
) -> list[Row]:
    """Hashtags by velocity: uses per hour in [window_start, now) against the per-hour average
    over [baseline_start, window_start), as (rate - base) / sqrt(base + 1) (a Poisson-style
    surprise score: a tag going from 0 to 10 an hour beats one steady at 100 an hour). Reads
    only the hours of the window and the baseline (hashtag_usage_hour_idx). A tag trends only
    while some post of the window carrying it is one everyone may see (the rule uses are counted
    by, checked again now: an account that turned private since takes its tags out at once);
    one probe of post_hashtags_feed_idx per candidate tag, usually its newest post."""
    return await q.fetch(
        f"""WITH recent AS (
               SELECT hashtag_id, sum(uses) AS uses FROM hashtag_usage_hourly
               WHERE hour >= %(ws)s AND hour <= %(now)s GROUP BY hashtag_id
               HAVING sum(uses) >= %(min)s),
           base AS (
               SELECT u.hashtag_id, sum(u.uses) AS uses FROM hashtag_usage_hourly u
               JOIN recent r ON r.hashtag_id = u.hashtag_id
               WHERE u.hour >= %(bs)s AND u.hour < %(ws)s GROUP BY u.hashtag_id)
           SELECT h.tag, h.posts_count, r.uses AS recent_uses,
                  coalesce(b.uses, 0) AS baseline_uses,
                  (r.uses::float8 / %(wh)s - coalesce(b.uses, 0)::float8 / %(bh)s)
                    / sqrt(coalesce(b.uses, 0)::float8 / %(bh)s + 1) AS score
           FROM recent r JOIN hashtags h ON h.id = r.hashtag_id
           LEFT JOIN base b ON b.hashtag_id = r.hashtag_id
           WHERE r.uses::float8 / %(wh)s > coalesce(b.uses, 0)::float8 / %(bh)s
             AND EXISTS (SELECT 1 FROM post_hashtags ph JOIN posts p ON p.id = ph.post_id
                         WHERE ph.hashtag_id = r.hashtag_id AND ph.published_at >= %(ws)s
                           AND p.deleted_at IS NULL AND {post_seen_by_everyone("p")})
           ORDER BY score DESC, h.tag LIMIT %(limit)s""",
        {
            "ws": window_start,
            "bs": baseline_start,
            "now": now,
            "wh": window_h,
            "bh": baseline_h,
            "min": min_uses,
            "limit": limit,
        },
    )


# Explore ----------------------------------------------------------------------------------


async def explore_snapshot(
    q: Queries, *, now: datetime, since: datetime, scan: int, keep: int
) -> list[Row]:
    """Explore's candidates: of the newest `scan` public posts since `since` by public active
    accounts (posts_public_recent_idx), the `keep` best by
    (likes + 2 comments + 3 reposts + 1) / (age_hours + 2) ^ 1.5: (id, score, author_ids)."""
    return await q.fetch(
        """SELECT id, author_ids, score FROM (
               SELECT p.id, p.author_ids,
                      (p.likes_count + 2 * p.comments_count + 3 * p.reposts_count + 1)::float8
                      / power(greatest(extract(epoch FROM %(now)s - p.published_at), 0)
                              / 3600.0 + 2, 1.5) AS score
               FROM posts p
               WHERE p.status = 'published' AND p.deleted_at IS NULL
                 AND p.visibility = 'public' AND NOT p.is_repost
                 AND p.published_at >= %(since)s AND p.published_at <= %(now)s
               ORDER BY p.published_at DESC, p.id DESC LIMIT %(scan)s) recent
           WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = ANY(recent.author_ids)
                             AND (u.is_private OR NOT u.is_active))
           ORDER BY score DESC, id DESC LIMIT %(keep)s""",
        {"now": now, "since": since, "scan": scan, "keep": keep},
    )


async def explore_filter(
    q: Queries, viewer: uuid.UUID, post_ids: Sequence[uuid.UUID], now: datetime
) -> list[Row]:
    """The snapshot's posts the viewer is shown: not theirs, by nobody they follow, and what
    every feed hides (blocks both ways, mutes, hides) left out. One query."""
    if not post_ids:
        return []
    return await q.fetch(
        f"""SELECT {POST_COLUMNS} FROM posts p
            WHERE p.id = ANY(%(ids)s::uuid[]) AND {shown_in_feeds()}
              AND NOT %(viewer)s::uuid = ANY(p.author_ids)
              AND NOT EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = %(viewer)s
                              AND f.following_id = ANY(p.author_ids))""",
        {"ids": list(post_ids), "viewer": viewer, "now": now},
    )
