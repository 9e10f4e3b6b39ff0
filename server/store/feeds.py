"""SQL of the home feed: the PostgreSQL timeline engine (`home_timeline`), the read-time pull of
the hybrid (the viewer's own posts, authors past the fan-out threshold, followed hashtags), the
fan-out's follower pages and the one visibility query a page's candidates go through.

Every read on behalf of a viewer filters with `visibility.post_visible` and names the post
alias `p`, so one more `AND <fragment>` on `p` (keyword filters) slots into `feed_filter`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from server.store.db import Queries, Row
from server.store.keyword_filters import passes_keyword_filters
from server.store.posts.reads import POST_COLUMNS
from server.store.visibility import (
    blocked_either_way_among,
    post_not_muted_or_hidden,
    post_visible,
)

Keyset = tuple[datetime, uuid.UUID]
READ_AT_GRANULARITY = timedelta(hours=1)
Entry = tuple[datetime, uuid.UUID]  # (published_at, post_id)


def _keyset(before: Keyset | None) -> dict[str, Any]:
    return {"t": before[0] if before else None, "i": before[1] if before else None}


def _after(published: str, post_id: str, before: Keyset | None) -> str:
    return f"AND ({published}, {post_id}) < (%(t)s, %(i)s)" if before else ""


# The PostgreSQL timeline engine -----------------------------------------------------------


async def timeline_page(
    q: Queries, user_id: uuid.UUID, before: Keyset | None, limit: int, now: datetime
) -> list[Entry] | None:
    """The newest `limit` entries of the user's timeline after `before`, or None when the
    timeline is not built (never read, or dropped after timeline_ttl_s unread). One round trip
    (home_timeline_page_idx); the read time is refreshed at most hourly, so reads stay reads."""
    rows = await q.fetch(
        f"""SELECT s.read_at, t.published_at, t.post_id FROM home_timeline_state s
            LEFT JOIN LATERAL (
                SELECT published_at, post_id FROM home_timeline
                WHERE user_id = s.user_id {_after("published_at", "post_id", before)}
                ORDER BY published_at DESC, post_id DESC LIMIT %(limit)s) t ON true
            WHERE s.user_id = %(user)s""",
        {"user": user_id, "limit": limit, **_keyset(before)},
    )
    if not rows:
        return None
    if rows[0]["read_at"] < now - READ_AT_GRANULARITY:
        await q.execute(
            "UPDATE home_timeline_state SET read_at = %s WHERE user_id = %s", (now, user_id)
        )
    return [(r["published_at"], r["post_id"]) for r in rows if r["post_id"] is not None]


async def timeline_add(
    q: Queries, user_ids: Sequence[uuid.UUID], post_id: uuid.UUID, published_at: datetime
) -> int:
    """Push the post into the built timelines among `user_ids` (others are rebuilt on read)."""
    if not user_ids:
        return 0
    return await q.execute(
        """INSERT INTO home_timeline (user_id, post_id, published_at)
           SELECT s.user_id, %(post)s, %(at)s FROM home_timeline_state s
           WHERE s.user_id = ANY(%(users)s::uuid[])
           ON CONFLICT DO NOTHING""",
        {"users": list(user_ids), "post": post_id, "at": published_at},
    )


async def timeline_remove(q: Queries, post_id: uuid.UUID) -> list[uuid.UUID]:
    """Retract the post from every timeline (home_timeline_post_idx); whose it was in."""
    rows = await q.fetch(
        "DELETE FROM home_timeline WHERE post_id = %s RETURNING user_id", (post_id,)
    )
    return [r["user_id"] for r in rows]


async def timeline_replace(
    q: Queries, user_id: uuid.UUID, entries: Sequence[Entry], now: datetime
) -> None:
    """Rebuild: the timeline becomes `entries` and is marked built (call in a transaction)."""
    await q.execute("DELETE FROM home_timeline WHERE user_id = %s", (user_id,))
    await q.execute(
        """INSERT INTO home_timeline (user_id, post_id, published_at)
           SELECT %(user)s, e.post_id, e.published_at
           FROM unnest(%(ids)s::uuid[], %(ats)s::timestamptz[]) AS e (post_id, published_at)
           ON CONFLICT DO NOTHING""",
        {"user": user_id, "ids": [e[1] for e in entries], "ats": [e[0] for e in entries]},
    )
    await q.execute(
        """INSERT INTO home_timeline_state (user_id, built_at, read_at) VALUES (%s, %s, %s)
           ON CONFLICT (user_id) DO UPDATE SET built_at = EXCLUDED.built_at,
                                               read_at = EXCLUDED.read_at""",
        (user_id, now, now),
    )


async def timeline_forget(q: Queries, user_id: uuid.UUID) -> None:
    await q.execute("DELETE FROM home_timeline_state WHERE user_id = %s", (user_id,))
    await q.execute("DELETE FROM home_timeline WHERE user_id = %s", (user_id,))


async def timeline_expire(q: Queries, unread_since: datetime, cap: int) -> int:
    """Drop timelines unread since `unread_since` and trim the others to their newest `cap`
    entries (the periodic job); returns the timelines dropped."""
    dropped = await q.fetch(
        "DELETE FROM home_timeline_state WHERE read_at < %s RETURNING user_id", (unread_since,)
    )
    ids = [r["user_id"] for r in dropped]
    if ids:
        await q.execute("DELETE FROM home_timeline WHERE user_id = ANY(%s::uuid[])", (ids,))
    await q.execute(
        """DELETE FROM home_timeline h USING (
               SELECT user_id, post_id FROM (
                   SELECT user_id, post_id, row_number() OVER (
                       PARTITION BY user_id ORDER BY published_at DESC, post_id DESC) AS n
                   FROM home_timeline) ranked
               WHERE n > %s) extra
           WHERE h.user_id = extra.user_id AND h.post_id = extra.post_id""",
        (cap,),
    )
    return len(ids)


# Rebuilding and fan-out -------------------------------------------------------------------


async def rebuild_entries(q: Queries, user_id: uuid.UUID, cap: int) -> list[Entry]:
    """What a rebuilt timeline holds: the newest `cap` shareable posts of the accounts the user
    follows, each author's read from posts_author_published_idx (at most `cap` each)."""
    rows = await q.fetch(
        """SELECT x.published_at, x.id FROM follows f
           CROSS JOIN LATERAL (
               SELECT p.published_at, p.id FROM posts p
               WHERE p.author_id = f.following_id AND p.status = 'published'
                 AND p.deleted_at IS NULL AND p.visibility <> 'private'
               ORDER BY p.published_at DESC, p.id DESC LIMIT %(cap)s) x
           WHERE f.follower_id = %(user)s AND f.status = 'accepted'
           ORDER BY x.published_at DESC, x.id DESC LIMIT %(cap)s""",
        {"user": user_id, "cap": cap},
    )
    return [(r["published_at"], r["id"]) for r in rows]


async def authors_reach(q: Queries, author_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Follower counts of the authors (which side of the fan-out threshold each is on)."""
    rows = await q.fetch(
        "SELECT id, followers_count FROM users WHERE id = ANY(%s::uuid[])", (list(author_ids),)
    )
    return {r["id"]: r["followers_count"] for r in rows}


async def followers_page(
    q: Queries,
    author_id: uuid.UUID,
    post_authors: Sequence[uuid.UUID],
    after: uuid.UUID | None,
    limit: int,
) -> list[Row]:
    """A page of the author's accepted followers (follows_following_idx, keyset on the follow
    id), without those who mute any of the post's authors or who and any of them blocked each
    other (a co-author's block: the follower may not see the post, so neither its timeline
    entry nor its `feed.post` may reach them): (follow_id, user_id). Both probes read the
    follower's own rows (mutes primary key, blocks_blocker_idx / blocks_blocked_idx)."""
    return await q.fetch(
        f"""SELECT f.id AS follow_id, f.follower_id AS user_id FROM follows f
           WHERE f.following_id = %(author)s AND f.status = 'accepted'
             AND (%(after)s::uuid IS NULL OR f.id < %(after)s)
             AND NOT EXISTS (SELECT 1 FROM mutes m WHERE m.muter_id = f.follower_id
                             AND m.muted_id = ANY(%(authors)s::uuid[]))
             AND NOT EXISTS ({blocked_either_way_among("f.follower_id", "%(authors)s::uuid[]")})
           ORDER BY f.id DESC LIMIT %(limit)s""",
        {"author": author_id, "after": after, "authors": list(post_authors), "limit": limit},
    )


async def post_for_fanout(q: Queries, post_id: uuid.UUID) -> Row | None:
    return await q.fetchrow(
        """SELECT id, author_id, author_ids, published_at, visibility, status, deleted_at
           FROM posts WHERE id = %s""",
        (post_id,),
    )


# Reading: the pulled half and the page's one visibility query ------------------------------


async def pull_sources(
    q: Queries, viewer: uuid.UUID, threshold: int
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """(authors, hashtags) pulled at read time: the viewer and the followed accounts at or past
    `threshold` followers; the hashtags the viewer follows."""
    row = await q.fetchrow(
        """SELECT ARRAY(SELECT f.following_id FROM follows f JOIN users u ON u.id = f.following_id
                        WHERE f.follower_id = %(viewer)s AND f.status = 'accepted'
                          AND u.followers_count >= %(threshold)s) AS authors,
                  ARRAY(SELECT hashtag_id FROM hashtag_follows
                        WHERE user_id = %(viewer)s) AS hashtags""",
        {"viewer": viewer, "threshold": threshold},
    )
    assert row is not None
    return [viewer, *row["authors"]], list(row["hashtags"])


async def pulled(
    q: Queries,
    authors: Sequence[uuid.UUID],
    hashtags: Sequence[uuid.UUID],
    before: Keyset | None,
    limit: int,
) -> list[Entry]:
    """The newest `limit` posts after `before` by `authors` (as creator: one index scan each on
    posts_author_published_idx; as co-author: post_collaborators_user_idx) or carrying one of
    `hashtags` (post_hashtags_feed_idx, one scan each)."""
    rows = await q.fetch(
        f"""SELECT published_at, id FROM (
              (SELECT x.published_at, x.id FROM unnest(%(authors)s::uuid[]) a (id)
               CROSS JOIN LATERAL (
                   SELECT p.published_at, p.id FROM posts p
                   WHERE p.author_id = a.id AND p.status = 'published' AND p.deleted_at IS NULL
                     {_after("p.published_at", "p.id", before)}
                   ORDER BY p.published_at DESC, p.id DESC LIMIT %(limit)s) x)
              UNION ALL
              (SELECT p.published_at, p.id FROM post_collaborators pc
               JOIN posts p ON p.id = pc.post_id
               WHERE pc.user_id = ANY(%(authors)s::uuid[]) AND pc.status = 'accepted'
                 AND p.status = 'published' AND p.deleted_at IS NULL
                 {_after("p.published_at", "p.id", before)}
               ORDER BY p.published_at DESC, p.id DESC LIMIT %(limit)s)
              UNION ALL
              (SELECT x.published_at, x.post_id FROM unnest(%(tags)s::uuid[]) t (id)
               CROSS JOIN LATERAL (
                   SELECT ph.published_at, ph.post_id FROM post_hashtags ph
                   WHERE ph.hashtag_id = t.id {_after("ph.published_at", "ph.post_id", before)}
                   ORDER BY ph.published_at DESC, ph.post_id DESC LIMIT %(limit)s) x)
            ) c ORDER BY published_at DESC, id DESC LIMIT %(limit)s""",
        {"authors": list(authors), "tags": list(hashtags), "limit": limit, **_keyset(before)},
    )
    return [(r["published_at"], r["id"]) for r in rows]


# A repost whose original is gone is not shown; nor one whose original the viewer may not see
# (a block, a mute, a hide of the original) or that matches one of their live muted words (the
# repost shows the original's text; its own text is empty).
def _original_ok(viewer_param: str) -> str:
    return f"""(NOT p.is_repost OR EXISTS (
        SELECT 1 FROM posts o WHERE o.id = p.original_post_id
          AND {post_visible(viewer_param, "o")}
          AND {post_not_muted_or_hidden(viewer_param, "o")}
          AND {passes_keyword_filters("o", viewer_param, "now")}))"""


def repost_original_shown() -> str:
    """SQL boolean on post alias `p`: not a repost, or a repost whose original the viewer
    (query parameter `viewer`; `now` for muted words) would be shown: the home feed's rule,
    for the feeds that filter posts themselves (the list feed)."""
    return _original_ok("viewer")


def shown_in_feeds(viewer_param: str = "viewer") -> str:
    """SQL boolean on post alias `p`: what every feed hides from the viewer beyond
    `post_visible`: posts by an account they mute, posts they hid, posts matching their live
    muted words (server/store/keyword_filters.py: needs the query parameter `now`), reposts
    of what they may not see or whose original matches their muted words."""
    return f"""(p.status = 'published'
        AND {post_visible(viewer_param, "p")}
        AND {post_not_muted_or_hidden(viewer_param, "p")}
        AND {passes_keyword_filters("p", viewer_param, "now")}
        AND {_original_ok(viewer_param)})"""


async def feed_filter(
    q: Queries, viewer: uuid.UUID, post_ids: Sequence[uuid.UUID], now: datetime
) -> list[Row]:
    """The home feed's candidates the viewer sees now (one query for the page): visible, not
    muted or hidden, and still the viewer's business: they are an author, follow an author
    (unfollowing takes effect at once, whatever the timeline holds) or follow a hashtag of it."""
    if not post_ids:
        return []
    return await q.fetch(
        f"""SELECT {POST_COLUMNS} FROM posts p
            WHERE p.id = ANY(%(ids)s::uuid[]) AND {shown_in_feeds()}
              AND (%(viewer)s::uuid = ANY(p.author_ids)
                   OR EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = %(viewer)s
                              AND f.following_id = ANY(p.author_ids) AND f.status = 'accepted')
                   OR EXISTS (SELECT 1 FROM post_hashtags ph JOIN hashtag_follows hf
                                ON hf.hashtag_id = ph.hashtag_id AND hf.user_id = %(viewer)s
                              WHERE ph.post_id = p.id))""",
        {"ids": list(post_ids), "viewer": viewer, "now": now},
    )


async def follows_author(q: Queries, viewer: uuid.UUID, author_id: uuid.UUID) -> bool:
    """The viewer follows the author (accepted) and neither blocked the other."""
    return bool(
        await q.fetchval(
            """SELECT EXISTS (SELECT 1 FROM follows f WHERE f.follower_id = %(v)s
                              AND f.following_id = %(a)s AND f.status = 'accepted')
                  AND NOT EXISTS (SELECT 1 FROM blocks b
                                  WHERE (b.blocker_id = %(v)s AND b.blocked_id = %(a)s)
                                     OR (b.blocker_id = %(a)s AND b.blocked_id = %(v)s))""",
            {"v": viewer, "a": author_id},
        )
    )
