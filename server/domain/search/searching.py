"""Search: users, posts, hashtags, posts linking commerce entities, everything at once, and the
search history.

Pages are a bounded offset into the ranking, not a keyset: the order is a blend of relevance,
recency, engagement and the viewer's network (recency moves with the clock, engagement with
every like), so no column of a row is a stable key to resume after. The cursor holds the
offset; a search ranks at most CANDIDATES candidates, so the deepest page is bounded too (a
cursor past it, or not one this search made, is a 400 / 422 problem). Results may shift between
pages when the ranking changes meanwhile, as in every search product.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Final

from server.domain.accounts import profile_view
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.posts.entities import normalize_tag
from server.domain.posts.views import render_posts
from server.domain.search.commands import HistoryQuery, SearchQuery
from server.domain.search.engine import engine_for
from server.domain.search.text import fold, highlights, parse_query
from server.errors import NotFound, ValidationFailed
from server.ids import new_id
from server.pagination import decode_cursor, decode_time_id_cursor, encode_cursor, page
from server.store import search as store
from server.store.db import Row
from server.store.posts import reads as posts_store

CANDIDATES: Final = 300
ALL_PER_KIND: Final = 5
MATCHES_SHOWN: Final = 5
# The URL names of the commerce kinds -> the engine's kind (also the history's search_type).
LINKED: Final = {
    "products": "product",
    "shops": "shop",
    "events": "event",
    "groups": "group",
    "installment-plans": "installment_plan",
}


def _offset(cursor: str | None) -> int:
    values = decode_cursor(cursor, 1)
    if values is None:
        return 0
    offset = values[0]
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 < offset < CANDIDATES:
        raise ValidationFailed.field("cursor", "is not a cursor this search produced")
    return offset


def _page(rows: list[Row], offset: int, limit: int) -> tuple[list[Row], str | None]:
    if len(rows) <= limit or offset + limit >= CANDIDATES:
        return rows[:limit], None
    return rows[:limit], encode_cursor(offset + limit)


async def _remember(ctx: Context, viewer: Principal, query: SearchQuery, kind: str) -> None:
    """The first page of a search goes to the history (unless `history=false`)."""
    if query.history and not query.cursor:
        text = " ".join((query.q or "").split())
        await store.record_search(ctx.db, new_id(), viewer.user_id, text, kind, ctx.clock.now())


def _user_item(row: Row, viewer: uuid.UUID, words: list[str]) -> dict[str, Any]:
    view = profile_view({k: v for k, v in row.items() if k != "score"}, viewer)
    fields = {k: row[k] for k in ("username", "display_name", "bio")}
    return {**view, "highlights": highlights(fields, words)}


async def search_users(ctx: Context, viewer: Principal, query: SearchQuery) -> dict[str, Any]:
    """Accounts by username, display name and bio: an exact username first, then accounts you
    follow, then by relevance and popularity. Blocked (either way) and deactivated accounts are
    never found; private accounts are (their posts stay hidden)."""
    words = parse_query(query.q)
    offset = _offset(query.cursor)
    exact = fold((query.q or "").strip().lstrip("@"))
    rows = await engine_for(ctx.db).users(
        viewer.user_id, words, exact=exact, offset=offset, limit=query.limit + 1, cap=CANDIDATES
    )
    rows, next_cursor = _page(rows, offset, query.limit)
    await _remember(ctx, viewer, query, "user")
    items = [_user_item(row, viewer.user_id, words) for row in rows]
    return {"items": items, "next_cursor": next_cursor}


async def _draw_posts(
    ctx: Context, viewer: Principal, hits: list[Row], words: list[str]
) -> list[dict[str, Any]]:
    """The hits as posts, in rank order, re-checked visible (an engine must not be trusted
    with privacy), with their highlights."""
    ids = [hit["id"] for hit in hits]
    rows = {row["id"]: row for row in await posts_store.get_posts(ctx.db, ids, viewer.user_id)}
    ordered = [rows[i] for i in ids if i in rows]
    posts = await render_posts(ctx, viewer.user_id, ordered)
    return [
        {**post, "highlights": highlights({"content": post["content"]}, words)} for post in posts
    ]


async def search_posts(ctx: Context, viewer: Principal, query: SearchQuery) -> dict[str, Any]:
    """Published posts whose text (hashtags included) has every word, ranked by relevance,
    recency, engagement and whether you follow an author; only posts you may see, none from
    accounts you muted, none you hid, none matching your muted words."""
    words = parse_query(query.q)
    offset = _offset(query.cursor)
    hits = await engine_for(ctx.db).posts(
        viewer.user_id,
        words,
        ctx.clock.now(),
        offset=offset,
        limit=query.limit + 1,
        cap=CANDIDATES,
    )
    hits, next_cursor = _page(hits, offset, query.limit)
    await _remember(ctx, viewer, query, "post")
    return {"items": await _draw_posts(ctx, viewer, hits, words), "next_cursor": next_cursor}


def _tag_prefix(raw: str | None, words: list[str]) -> str:
    tag = normalize_tag("".join((raw or "").split()).lstrip("#"))
    return tag if tag else words[0]


def _hashtag_item(row: Row, prefix: str) -> dict[str, Any]:
    # A tag matches as a whole prefix (`cafe_r` in `cafe_racer`): that prefix is the highlight.
    tag = row["tag"]
    spans = [{"field": "tag", "start": 0, "end": len(prefix)}] if tag.startswith(prefix) else []
    return {
        "id": row["id"],
        "tag": row["tag"],
        "posts_count": row["posts_count"],
        "created_at": row["created_at"],
        "highlights": spans,
    }


async def search_hashtags(ctx: Context, viewer: Principal, query: SearchQuery) -> dict[str, Any]:
    """Hashtags starting with the query (`#caf`, `caf`: #café, #cafe_racer), the exact tag
    first, then the most used."""
    words = parse_query(query.q)
    offset = _offset(query.cursor)
    prefix = _tag_prefix(query.q, words)
    rows = await engine_for(ctx.db).hashtags(
        viewer.user_id, prefix, offset=offset, limit=query.limit + 1, cap=CANDIDATES
    )
    rows, next_cursor = _page(rows, offset, query.limit)
    await _remember(ctx, viewer, query, "hashtag")
    return {"items": [_hashtag_item(row, prefix) for row in rows], "next_cursor": next_cursor}


def _match_item(row: Row, words: list[str]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "label": row["label"],
        "highlights": highlights({"label": row["label"]}, words),
    }


async def search_linked(
    ctx: Context, viewer: Principal, path_kind: str, query: SearchQuery
) -> dict[str, Any]:
    """Posts linking products / shops / events / buy-together groups / installment plans that
    match the query (by name, title, description; groups and plans by their product), ranked as
    posts are; the first page also lists the best matching entities themselves (`matches`)."""
    kind = LINKED.get(path_kind)
    if kind is None:
        raise NotFound("No such search.")
    words = parse_query(query.q)
    offset = _offset(query.cursor)
    engine = engine_for(ctx.db)
    hits = await engine.linked_posts(
        kind,
        viewer.user_id,
        words,
        ctx.clock.now(),
        offset=offset,
        limit=query.limit + 1,
        cap=CANDIDATES,
    )
    hits, next_cursor = _page(hits, offset, query.limit)
    matches: list[Row] = []
    if offset == 0:
        matches = await engine.entities(kind, viewer.user_id, words, MATCHES_SHOWN)
    await _remember(ctx, viewer, query, kind)
    return {
        "items": await _draw_posts(ctx, viewer, hits, words),
        "matches": [_match_item(row, words) for row in matches],
        "next_cursor": next_cursor,
    }


async def search_all(ctx: Context, viewer: Principal, query: SearchQuery) -> dict[str, Any]:
    """The best few of each kind at once (users, posts, hashtags, products, shops, events),
    read in parallel; follow up with the kind's own search for more."""
    words = parse_query(query.q)
    if query.cursor:
        raise ValidationFailed.field("cursor", "search/all has one page; search a kind for more")
    engine, now, me = engine_for(ctx.db), ctx.clock.now(), viewer.user_id
    exact = fold((query.q or "").strip().lstrip("@"))
    n = min(query.limit, ALL_PER_KIND)
    tag_prefix = _tag_prefix(query.q, words)
    users, hits, tags, products, shops, events = await asyncio.gather(
        engine.users(me, words, exact=exact, offset=0, limit=n, cap=CANDIDATES),
        engine.posts(me, words, now, offset=0, limit=n, cap=CANDIDATES),
        engine.hashtags(me, tag_prefix, offset=0, limit=n, cap=CANDIDATES),
        engine.entities("product", me, words, n),
        engine.entities("shop", me, words, n),
        engine.entities("event", me, words, n),
    )
    await _remember(ctx, viewer, query, "all")
    return {
        "users": [_user_item(row, me, words) for row in users],
        "posts": await _draw_posts(ctx, viewer, hits, words),
        "hashtags": [_hashtag_item(row, tag_prefix) for row in tags],
        "products": [_match_item(row, words) for row in products],
        "shops": [_match_item(row, words) for row in shops],
        "events": [_match_item(row, words) for row in events],
    }


# History ----------------------------------------------------------------------------------


async def list_history(ctx: Context, viewer: Principal, query: HistoryQuery) -> dict[str, Any]:
    """Your searches, most recent first (a repeated search counts once, at its last time)."""
    rows = await store.history_page(
        ctx.db, viewer.user_id, decode_time_id_cursor(query.cursor), query.limit + 1
    )
    rows, next_cursor = page(
        rows, query.limit, lambda r: (r["created_at"].isoformat(), str(r["id"]))
    )
    items = [
        {
            "id": r["id"],
            "query": r["search_query"],
            "type": r["search_type"],
            "created_at": r["created_at"],
        }
        for r in rows
    ]
    return {"items": items, "next_cursor": next_cursor}


async def delete_history_entry(ctx: Context, viewer: Principal, entry_id: uuid.UUID) -> None:
    if not await store.delete_history_entry(ctx.db, viewer.user_id, entry_id):
        raise NotFound("No such search in your history.")


async def clear_history(ctx: Context, viewer: Principal) -> None:
    await store.clear_history(ctx.db, viewer.user_id)
