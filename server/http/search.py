"""HTTP routes of search: `/api/search/<kind>?q=` and the search history. Thin wrappers of
server/domain/search/searching.py.

Highlights (every hit): `[{"field", "start", "end"}]`, code-point offsets of the words that
matched in the hit's text fields as returned (see server/domain/search/text.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.domain.search import searching
from server.domain.search.commands import HistoryQuery, SearchQuery
from server.http.endpoint import context, endpoint, path_id, principal
from server.http.posts import PostOut
from server.http.schemas import UserOut

routes = web.RouteTableDef()
TAGS = ("search",)
ERRORS = (400, 422, 429)


class HighlightOut(BaseModel):
    """A matched word: `field` of the hit, code points `start` (inclusive) to `end`."""

    field: str
    start: int
    end: int


class UserHitOut(UserOut):
    """A user found, with where the words matched (username, display_name, bio)."""

    highlights: list[HighlightOut]


class PostHitOut(PostOut):
    """A post found, with where the words matched in its content."""

    highlights: list[HighlightOut]


class HashtagHitOut(BaseModel):
    """A hashtag found, with its count of published posts."""

    id: uuid.UUID
    tag: str
    posts_count: int
    created_at: datetime
    highlights: list[HighlightOut]


class MatchOut(BaseModel):
    """A commerce entity matching the words: its id and name (product, shop, group and plan:
    the product's name; event: its title)."""

    id: uuid.UUID
    label: str
    highlights: list[HighlightOut]


class UserHits(BaseModel):
    """Users found, best first."""

    items: list[UserHitOut]
    next_cursor: str | None


class PostHits(BaseModel):
    """Posts found, best first."""

    items: list[PostHitOut]
    next_cursor: str | None


class HashtagHits(BaseModel):
    """Hashtags found: the exact tag first, then the most used."""

    items: list[HashtagHitOut]
    next_cursor: str | None


class LinkedHits(BaseModel):
    """Posts linking matching commerce entities; `matches`: the best matching entities (first
    page only)."""

    items: list[PostHitOut]
    matches: list[MatchOut]
    next_cursor: str | None


class AllHits(BaseModel):
    """The best few of each kind."""

    users: list[UserHitOut]
    posts: list[PostHitOut]
    hashtags: list[HashtagHitOut]
    products: list[MatchOut]
    shops: list[MatchOut]
    events: list[MatchOut]


class HistoryEntryOut(BaseModel):
    """A search you made."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID
    query: str
    type: str = Field(
        description="user, post, hashtag, product, shop, event, group, installment_plan or all"
    )
    created_at: datetime


class HistoryPage(BaseModel):
    """Your searches, most recent first."""

    items: list[HistoryEntryOut]
    next_cursor: str | None


# History (static paths before /api/search/{kind}) -----------------------------------------


@routes.get("/api/search/history")
@endpoint(
    "Your search history",
    query=HistoryQuery,
    response=HistoryPage,
    tags=TAGS,
    operation_id="search.history",
)
async def history(request: web.Request, query: HistoryQuery) -> Any:
    """Searches you made (first pages, unless `history=false`), most recent first; a repeated
    search appears once, at its latest time. Only you see it."""
    return await searching.list_history(context(request), principal(request), query)


@routes.delete("/api/search/history")
@endpoint("Clear your search history", status=204, tags=TAGS, operation_id="search.clear_history")
async def clear_history(request: web.Request) -> None:
    """Forget every search you made."""
    await searching.clear_history(context(request), principal(request))


@routes.delete("/api/search/history/{id}")
@endpoint(
    "Remove a search from your history",
    status=204,
    tags=TAGS,
    errors=(404,),
    operation_id="search.delete_history_entry",
)
async def delete_history_entry(request: web.Request) -> None:
    """Forget one search (404 if it is not in your history)."""
    await searching.delete_history_entry(context(request), principal(request), path_id(request))


# Searches ---------------------------------------------------------------------------------


@routes.get("/api/search/users")
@endpoint(
    "Search users",
    query=SearchQuery,
    response=UserHits,
    tags=TAGS,
    errors=ERRORS,
    operation_id="search.users",
)
async def search_users(request: web.Request, query: SearchQuery) -> Any:
    """By username, display name and bio, each word a prefix: an exact username first, then
    accounts you follow, then relevance and popularity. Accounts blocked either way are never
    found."""
    return await searching.search_users(context(request), principal(request), query)


@routes.get("/api/search/posts")
@endpoint(
    "Search posts",
    query=SearchQuery,
    response=PostHits,
    tags=TAGS,
    errors=ERRORS,
    operation_id="search.posts",
)
async def search_posts(request: web.Request, query: SearchQuery) -> Any:
    """Full text over posts you may see (hashtags included), ranked by relevance, recency,
    engagement and your network; muted accounts, hidden posts and your muted words are left
    out."""
    return await searching.search_posts(context(request), principal(request), query)


@routes.get("/api/search/hashtags")
@endpoint(
    "Search hashtags",
    query=SearchQuery,
    response=HashtagHits,
    tags=TAGS,
    errors=ERRORS,
    operation_id="search.hashtags",
)
async def search_hashtags(request: web.Request, query: SearchQuery) -> Any:
    """Hashtags starting with the query (with or without `#`), the exact one first, then the
    most used."""
    return await searching.search_hashtags(context(request), principal(request), query)


@routes.get("/api/search/all")
@endpoint(
    "Search everything",
    query=SearchQuery,
    response=AllHits,
    tags=TAGS,
    errors=ERRORS,
    operation_id="search.all",
)
async def search_all(request: web.Request, query: SearchQuery) -> Any:
    """The best five users, posts, hashtags, products, shops and events at once (one page)."""
    return await searching.search_all(context(request), principal(request), query)


def _linked(path_kind: str, summary: str) -> None:
    async def handler(request: web.Request, query: SearchQuery) -> Any:
        return await searching.search_linked(context(request), principal(request), path_kind, query)

    handler.__doc__ = (
        f"{summary}: posts you may see that link a match (by name, title or description), "
        "ranked as posts are; the first page also lists the best matching entities."
    )
    name = path_kind.replace("-", "_")
    handler.__name__ = f"search_{name}"
    routes.get(f"/api/search/{path_kind}")(
        endpoint(
            summary,
            query=SearchQuery,
            response=LinkedHits,
            tags=TAGS,
            errors=ERRORS,
            operation_id=f"search.{name}",
        )(handler)
    )


_linked("products", "Search posts with products")
_linked("shops", "Search posts with shops")
_linked("events", "Search posts about events")
_linked("groups", "Search posts promoting buy-together groups")
_linked("installment-plans", "Search posts with installment plans")
