"""HTTP routes of feeds and hashtags: the home feed, explore, a hashtag, its feed, following
it, trending. Thin wrappers of server/domain/feeds/.

Registered before the posts routes (server/capabilities.py): `/api/posts/explore` and
`/api/hashtags/trending` must match before `/api/posts/{id}` and `/api/hashtags/{tag}`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from server.domain.feeds import explore, hashtags, home, trending
from server.domain.messaging.commands import Query
from server.domain.posts.commands import PostPageQuery
from server.http.endpoint import context, endpoint, principal
from server.http.posts import PostOut

routes = web.RouteTableDef()
TAG_PATH = {"tag": "The tag, with or without #, any case (100 characters at most)"}


class FeedPage(BaseModel):
    """A page of your home feed."""

    items: list[PostOut]
    next_cursor: str | None
    live_topics: list[str] = Field(
        description="`feed:<author_id>` topics to subscribe to on the gateway for live pushes "
        "of the accounts you follow that are pulled at read time (PROTOCOL.md, feed pushes)"
    )


class PostPage(BaseModel):
    """A page of posts."""

    items: list[PostOut]
    next_cursor: str | None


class HashtagOut(BaseModel):
    """A hashtag: how many published posts carry it and follow it, and whether you do."""

    tag: str = Field(description="Normalised: NFC, case-folded")
    posts_count: int
    followers_count: int
    following: bool
    created_at: datetime


class HashtagPage(PostPage):
    """A page of a hashtag's posts."""

    tag: str


class TrendingOut(BaseModel):
    """A trending hashtag: uses in the window against its baseline."""

    tag: str
    posts_count: int
    recent_uses: int
    baseline_uses: int
    score: float


class TrendingPage(BaseModel):
    """Trending hashtags, best first."""

    items: list[TrendingOut]
    window_hours: int
    computed_at: datetime


class TrendingQuery(Query):
    limit: int = Field(20, ge=1, le=50)


@routes.get("/api/posts")
@endpoint(
    "Your home feed",
    query=PostPageQuery,
    response=FeedPage,
    tags=("feeds",),
    operation_id="feeds.home",
)
async def home_feed(request: web.Request, query: PostPageQuery) -> Any:
    """Posts and reposts of the accounts you follow, your own and co-authored posts, and posts
    with hashtags you follow, newest first; blocked, muted, hidden and deleted posts and what
    you may not see left out."""
    return await home.home_feed(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.get("/api/posts/explore")
@endpoint(
    "Explore",
    query=PostPageQuery,
    response=PostPage,
    tags=("feeds",),
    operation_id="feeds.explore",
)
async def explore_feed(request: web.Request, query: PostPageQuery) -> Any:
    """Recent public posts of accounts you do not follow, ranked by engagement and recency."""
    return await explore.explore(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.get("/api/hashtags/trending")
@endpoint(
    "Trending hashtags",
    query=TrendingQuery,
    response=TrendingPage,
    tags=("hashtags",),
    operation_id="hashtags.trending",
)
async def trending_hashtags(request: web.Request, query: TrendingQuery) -> Any:
    """Hashtags used faster in the last hours than their own baseline, fastest first."""
    return await trending.trending(context(request), limit=query.limit)


@routes.get("/api/hashtags/{tag}")
@endpoint(
    "A hashtag",
    response=HashtagOut,
    tags=("hashtags",),
    errors=(404, 422),
    operation_id="hashtags.get",
    path_params=TAG_PATH,
)
async def get_hashtag(request: web.Request) -> Any:
    """The normalised tag, its count of published posts, its followers, your follow."""
    return await hashtags.hashtag_info(
        context(request), principal(request), request.match_info["tag"]
    )


@routes.get("/api/hashtags/{tag}/posts")
@endpoint(
    "A hashtag's posts",
    query=PostPageQuery,
    response=HashtagPage,
    tags=("hashtags",),
    errors=(404, 422),
    operation_id="hashtags.posts",
    path_params=TAG_PATH,
)
async def hashtag_posts(request: web.Request, query: PostPageQuery) -> Any:
    """Posts with the hashtag that you may see, newest first."""
    return await hashtags.hashtag_posts(
        context(request),
        principal(request),
        request.match_info["tag"],
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.post("/api/hashtags/{tag}/follow")
@endpoint(
    "Follow a hashtag",
    response=HashtagOut,
    tags=("hashtags",),
    errors=(404, 422),
    operation_id="hashtags.follow",
    path_params=TAG_PATH,
)
async def follow_hashtag(request: web.Request) -> Any:
    """Its posts join your home feed. Following twice is harmless."""
    return await hashtags.follow(context(request), principal(request), request.match_info["tag"])


@routes.delete("/api/hashtags/{tag}/unfollow")
@endpoint(
    "Unfollow a hashtag",
    status=204,
    tags=("hashtags",),
    errors=(404, 422),
    operation_id="hashtags.unfollow",
    path_params=TAG_PATH,
)
async def unfollow_hashtag(request: web.Request) -> Any:
    """Its posts leave your home feed (those of accounts you follow stay)."""
    await hashtags.unfollow(context(request), principal(request), request.match_info["tag"])
    return None
