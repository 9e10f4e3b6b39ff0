"""The PostgreSQL search engine (server.domain.search.engine.SearchEngine): full text with prefix
matching over the GIN indexes, ranked in SQL, every visibility rule applied in the query.

How a search stays bounded: each kind first takes at most `cap` candidates through an index
(posts: the newest matches, by the primary key in time order or the GIN index, whichever the
planner finds cheaper for the words' frequency; users: the most followed matches, plus exact
username and followed accounts; hashtags: the most used matching tags), already filtered by
visibility, then ranks only those. Pages are offsets into that ranking (see
server/domain/search/searching.py for why not a keyset), so a page costs one query.

Ranking (posts): relevance (ts_rank) + recency (decays over days from ctx.clock's now) +
engagement (log of likes, comments, reposts) + network (the viewer follows an author). Users:
exact username first, then accounts the viewer follows, then relevance and popularity.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final

from server.store.db import Queries, Row
from server.store.keyword_filters import passes_keyword_filters
from server.store.users import PROFILE_COLUMNS
from server.store.visibility import (
    hashtag_visible,
    not_blocked,
    post_not_muted_or_hidden,
    post_visible,
    require_viewer,
    user_listed_for,
)

USERS_TSVECTOR: Final = (
    "to_tsvector('simple', u.username || ' ' || u.display_name || ' ' || coalesce(u.bio, ''))"
)

# Posts a search may return at all (cheap, on the row: the capped candidate scan) ...
_POST_LIVE = "p.status = 'published' AND p.deleted_at IS NULL AND NOT p.is_repost"
# ... and what this viewer may see of them (subqueries per row: run on the capped set only).
_POST_FOR_VIEWER = f"""{post_visible("viewer", "p")} AND {post_not_muted_or_hidden("viewer", "p")}
    AND {passes_keyword_filters("p", "viewer", "now")}"""
# The columns the viewer's filters and the ranking read, carried out of the candidate scan.
_MATCH_COLUMNS = """p.id, p.author_ids, p.status, p.visibility, p.deleted_at, p.search,
    p.published_at, p.likes_count, p.comments_count, p.reposts_count"""

# The score of a candidate post `c` (columns of the candidate CTE below).
_POST_SCORE = """(4 * c.rel
    + 1.0 / (1 + greatest(extract(epoch FROM %(now)s::timestamptz - c.published_at), 0) / 86400.0)
    + 0.25 * ln(1 + c.likes_count + 2 * c.comments_count + 2 * c.reposts_count)
    + CASE WHEN EXISTS (SELECT 1 FROM follows nf WHERE nf.follower_id = %(viewer)s::uuid
                        AND nf.following_id = ANY(c.author_ids) AND nf.status = 'accepted')
           THEN 2 ELSE 0 END)"""


def _ranked_posts(matches: str, rel: str) -> str:
    """Rank posts: `matches` selects _MATCH_COLUMNS of the newest `cap` live matches (no
    per-viewer subquery: an index scan that stops at `cap`); the viewer's filters then run on
    those rows only, and the visible ones are scored (`rel`: relevance over `p` and `tsq`).
    A viewer who may see few of the newest matches gets fewer results, never a slower query."""
    return f"""WITH m AS MATERIALIZED ({matches}),
        cand AS (
            SELECT p.id, p.published_at, p.likes_count, p.comments_count, p.reposts_count,
                   p.author_ids, {rel} AS rel
            FROM m p, to_tsquery('simple', %(tsq)s) tsq
            WHERE {_POST_FOR_VIEWER})
        SELECT c.id, {_POST_SCORE} AS score FROM cand c
        ORDER BY score DESC, c.id DESC OFFSET %(offset)s LIMIT %(limit)s"""


class PgSearchEngine:
    """Search over this database (the default engine)."""

    def __init__(self, q: Queries) -> None:
        self.q = q

    async def users(
        self, viewer: uuid.UUID, words: list[str], *, exact: str, offset: int, limit: int, cap: int
    ) -> list[Row]:
        params = {
            "viewer": require_viewer(viewer),
            "tsq": _tsq(words),
            "exact": exact,
            "first": words[0],
            "cap": cap,
            "offset": offset,
            "limit": limit,
        }
        listed = user_listed_for("viewer", "u")
        return await self.q.fetch(
            f"""WITH tsq AS (SELECT to_tsquery('simple', %(tsq)s) AS q),
            cand AS (
                (SELECT u.id FROM users u
                 WHERE lower(u.username) = %(exact)s AND u.is_active)
                UNION
                -- Accounts the viewer follows: their text checked one by one (a follow list
                -- is short; OFFSET 0 keeps the planner from matching every user instead).
                (SELECT fu.id FROM follows f, tsq, LATERAL (
                     SELECT u.id FROM users u
                     WHERE u.id = f.following_id AND u.is_active
                       AND {USERS_TSVECTOR} @@ tsq.q OFFSET 0) fu
                 WHERE f.follower_id = %(viewer)s AND f.status = 'accepted'
                 LIMIT %(cap)s)
                UNION
                (SELECT u.id FROM users u, tsq
                 WHERE {USERS_TSVECTOR} @@ tsq.q AND u.is_active
                 ORDER BY u.followers_count DESC, u.id DESC LIMIT %(cap)s))
            SELECT {PROFILE_COLUMNS},
                   (CASE WHEN lower(u.username) = %(exact)s THEN 100 ELSE 0 END
                    + CASE WHEN EXISTS (SELECT 1 FROM follows nf
                                        WHERE nf.follower_id = %(viewer)s
                                          AND nf.following_id = u.id AND nf.status = 'accepted')
                           THEN 10 ELSE 0 END
                    + CASE WHEN lower(u.username) LIKE %(first)s || '%%' THEN 2 ELSE 0 END
                    + 4 * ts_rank({USERS_TSVECTOR}, tsq.q)
                    + 0.1 * ln(1 + u.followers_count)) AS score
            FROM cand JOIN users u ON u.id = cand.id, tsq
            WHERE {listed}
            ORDER BY score DESC, u.id DESC OFFSET %(offset)s LIMIT %(limit)s""",
            params,
        )

    async def posts(
        self,
        viewer: uuid.UUID,
        words: list[str],
        now: datetime,
        *,
        offset: int,
        limit: int,
        cap: int,
    ) -> list[Row]:
        matches = f"""SELECT {_MATCH_COLUMNS}
            FROM posts p, to_tsquery('simple', %(tsq)s) tsq
            WHERE p.search @@ tsq AND {_POST_LIVE}
            ORDER BY p.id DESC LIMIT %(cap)s"""
        return await self.q.fetch(
            _ranked_posts(matches, "ts_rank(p.search, tsq)"),
            _post_params(viewer, words, now, offset=offset, limit=limit, cap=cap),
        )

    async def hashtags(
        self, viewer: uuid.UUID, prefix: str, *, offset: int, limit: int, cap: int
    ) -> list[Row]:
        """Tags with a post the viewer may see (`hashtag_visible`): a tag used only by a
        private account or in narrower audiences is not found by strangers."""
        like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return await self.q.fetch(
            f"""SELECT h.id, h.tag, h.posts_count, h.created_at FROM (
                   SELECT h.* FROM hashtags h
                   WHERE h.tag LIKE %(like)s AND {hashtag_visible("viewer", "h")}
                   ORDER BY h.posts_count DESC, h.id DESC LIMIT %(cap)s) h
               ORDER BY (h.tag = %(exact)s) DESC, h.posts_count DESC, h.tag
               OFFSET %(offset)s LIMIT %(limit)s""",
            {
                "like": like,
                "exact": prefix,
                "cap": cap,
                "offset": offset,
                "limit": limit,
                "viewer": require_viewer(viewer),
            },
        )

    async def linked_posts(
        self,
        kind: str,
        viewer: uuid.UUID,
        words: list[str],
        now: datetime,
        *,
        offset: int,
        limit: int,
        cap: int,
    ) -> list[Row]:
        """Posts linking a commerce entity of `kind` that matches the words (at most the
        ENTITY_CAP best matching entities), a post whose own text matches too ranking higher."""
        entities, link_table, link_column = _LINKED[kind]
        matches = f"""SELECT {_MATCH_COLUMNS} FROM posts p
            WHERE p.id IN (SELECT l.post_id FROM {link_table} l
                           WHERE l.{link_column} IN (SELECT ent.id FROM ({entities}) ent))
              AND {_POST_LIVE}
            ORDER BY p.id DESC LIMIT %(cap)s"""
        params = _post_params(viewer, words, now, offset=offset, limit=limit, cap=cap)
        params["entity_cap"] = ENTITY_CAP
        rel = "CASE WHEN p.search @@ tsq THEN 0.2 + ts_rank(p.search, tsq) ELSE 0.1 END"
        return await self.q.fetch(_ranked_posts(matches, rel), params)

    async def entities(
        self, kind: str, viewer: uuid.UUID, words: list[str], limit: int
    ) -> list[Row]:
        """The entities of `kind` matching the words, best first (id, label, rank)."""
        entities, _, _ = _LINKED[kind]
        return await self.q.fetch(
            f"SELECT * FROM ({entities}) ent",
            {"tsq": _tsq(words), "viewer": require_viewer(viewer), "entity_cap": limit},
        )


ENTITY_CAP: Final = 50


def _entity_query(source: str, alias: str, owner: str, label: str, extra: str = "") -> str:
    """The best matching entities (id, label, rank), owner not blocked either way."""
    visible = not_blocked("viewer", owner)
    return f"""SELECT {alias}.id, {label} AS label, ts_rank(sx.search, etq) AS rank
        FROM {source}, to_tsquery('simple', %(tsq)s) etq
        WHERE sx.search @@ etq AND {visible} {extra}
        ORDER BY rank DESC, {alias}.id DESC LIMIT %(entity_cap)s"""


# kind -> (entity query, link table, link column). Groups and plans are found by their
# product's text (they have none of their own).
_LINKED: Final[dict[str, tuple[str, str, str]]] = {
    "product": (
        _entity_query("products sx", "sx", "sx.owner_id", "sx.name"),
        "post_products",
        "product_id",
    ),
    "shop": (_entity_query("shops sx", "sx", "sx.owner_id", "sx.name"), "post_shops", "shop_id"),
    "event": (
        _entity_query("commerce_events sx", "sx", "sx.organizer_id", "sx.title"),
        "post_events",
        "event_id",
    ),
    "group": (
        _entity_query(
            "buy_together_groups g JOIN products sx ON sx.id = g.product_id",
            "g",
            "g.creator_id",
            "sx.name",
            "AND g.state = 'active' AND " + not_blocked("viewer", "sx.owner_id"),
        ),
        "post_groups",
        "group_id",
    ),
    "installment_plan": (
        _entity_query(
            "installment_plans i JOIN products sx ON sx.id = i.product_id",
            "i",
            "sx.owner_id",
            "sx.name",
        ),
        "post_plans",
        "plan_id",
    ),
}
LINKED_KINDS: Final = tuple(_LINKED)


MIN_PREFIX: Final = 2


def prefix_tsquery(words: list[str]) -> str:
    """`["gaming", "lap"]` -> `gaming & lap:*`: every word, the last one also as a prefix
    (search as you type) once it has MIN_PREFIX characters (a one-letter prefix matches half
    the index). Words are letters and digits only, so the result is always a valid tsquery."""
    *whole, last = words
    return " & ".join([*whole, f"{last}:*" if len(last) >= MIN_PREFIX else last])


def _tsq(words: list[str]) -> str:
    # Words are letters and digits only (server.domain.search.text.parse_query).
    return prefix_tsquery(words)


def _post_params(
    viewer: uuid.UUID, words: list[str], now: datetime, *, offset: int, limit: int, cap: int
) -> dict[str, Any]:
    return {
        "viewer": require_viewer(viewer),
        "now": now,
        "tsq": _tsq(words),
        "cap": cap,
        "offset": offset,
        "limit": limit,
    }


# Search history ---------------------------------------------------------------------------


async def record_search(
    q: Queries, id: uuid.UUID, user_id: uuid.UUID, query: str, kind: str, now: datetime
) -> None:
    """Remember a search; the same one again moves to the top."""
    await q.execute(
        """INSERT INTO search_history (id, user_id, search_query, search_type, created_at)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (user_id, search_type, search_query)
           DO UPDATE SET created_at = EXCLUDED.created_at""",
        (id, user_id, query, kind, now),
    )


async def history_page(
    q: Queries, user_id: uuid.UUID, before: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Row]:
    after = "AND (created_at, id) < (%(t)s, %(i)s)" if before else ""
    return await q.fetch(
        f"""SELECT id, search_query, search_type, created_at FROM search_history
            WHERE user_id = %(user)s {after}
            ORDER BY created_at DESC, id DESC LIMIT %(limit)s""",
        {
            "user": user_id,
            "t": before[0] if before else None,
            "i": before[1] if before else None,
            "limit": limit,
        },
    )


async def delete_history_entry(q: Queries, user_id: uuid.UUID, entry_id: uuid.UUID) -> bool:
    return bool(
        await q.execute(
            "DELETE FROM search_history WHERE user_id = %s AND id = %s", (user_id, entry_id)
        )
    )


async def clear_history(q: Queries, user_id: uuid.UUID) -> int:
    return await q.execute("DELETE FROM search_history WHERE user_id = %s", (user_id,))


# Suggested users --------------------------------------------------------------------------


# Who may be suggested to the viewer (query parameter `viewer`, user alias `u`): someone else,
# listed for them (active, no block either way), not already followed or requested, not muted.
_SUGGESTABLE = f"""u.id <> %(viewer)s AND {user_listed_for("viewer", "u")}
              AND NOT EXISTS (SELECT 1 FROM follows x
                              WHERE x.follower_id = %(viewer)s AND x.following_id = u.id)
              AND NOT EXISTS (SELECT 1 FROM mutes m
                              WHERE m.muter_id = %(viewer)s AND m.muted_id = u.id)"""


async def suggestion_candidates(
    q: Queries, viewer: uuid.UUID, *, limit: int, fan_out: int
) -> list[Row]:
    """Accounts to suggest to `viewer` (id, mutuals, score), best first: friends of friends
    (followed by accounts the viewer follows, by how many of them: `mutuals`; at most `fan_out`
    of the viewer's most recent follows and `fan_out` follows of each are read), then popular
    active public accounts (by followers). Never the viewer, nor anyone they follow or asked
    to follow, blocked either way, or muted."""
    return await q.fetch(
        f"""WITH mine AS (
                SELECT f.following_id AS id FROM follows f
                WHERE f.follower_id = %(viewer)s AND f.status = 'accepted'
                ORDER BY f.id DESC LIMIT %(fan_out)s),
            fof AS (
                SELECT ff.following_id AS id, count(*) AS mutuals FROM mine
                CROSS JOIN LATERAL (
                    SELECT f2.following_id FROM follows f2
                    WHERE f2.follower_id = mine.id AND f2.status = 'accepted'
                    ORDER BY f2.id DESC LIMIT %(fan_out)s) ff
                GROUP BY ff.following_id),
            popular AS (
                SELECT u.id, 0 AS mutuals FROM users u
                WHERE u.is_active AND NOT u.is_private
                ORDER BY u.followers_count DESC, u.id DESC LIMIT %(limit)s * 3),
            cand AS (
                SELECT id, max(mutuals) AS mutuals FROM (
                    SELECT * FROM fof UNION ALL SELECT * FROM popular) x GROUP BY id)
            SELECT u.id, cand.mutuals,
                   cand.mutuals * 10 + ln(1 + u.followers_count) AS score
            FROM cand JOIN users u ON u.id = cand.id
            WHERE {_SUGGESTABLE}
            ORDER BY score DESC, u.id DESC LIMIT %(limit)s""",
        {"viewer": require_viewer(viewer), "limit": limit, "fan_out": fan_out},
    )


async def suggestable_profiles(
    q: Queries, viewer: uuid.UUID, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Row]:
    """Profiles of `user_ids` still suggestable now (the exclusions of suggestion_candidates
    re-checked: a cached list must not show someone just followed, blocked or muted)."""
    if not user_ids:
        return {}
    rows = await q.fetch(
        f"""SELECT {PROFILE_COLUMNS} FROM users u
            WHERE u.id = ANY(%(ids)s) AND {_SUGGESTABLE}""",
        {"ids": user_ids, "viewer": require_viewer(viewer)},
    )
    return {row["id"]: row for row in rows}
