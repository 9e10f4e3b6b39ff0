"""HTTP routes of interactions with posts: likes, bookmarks and their collections, hiding.
Thin wrappers of server/domain/posts/ (likes.py, bookmarks.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from server.domain.messaging.commands import Query
from server.domain.posts import bookmarks, likes, reposts
from server.domain.posts.bookmarks import BookmarkIn, CollectionIn, MoveIn
from server.domain.posts.commands import PostPageQuery
from server.domain.posts.reposts import QuoteIn
from server.http.endpoint import context, endpoint, path_id, principal
from server.http.posts import AuthorOut, PostOut

routes = web.RouteTableDef()
TAGS = ("interactions",)


class LikeOut(BaseModel):
    """Whether you like the post now, and its count."""

    post_id: uuid.UUID
    liked: bool
    likes_count: int


class LikerOut(AuthorOut):
    liked_at: datetime


class LikerPage(BaseModel):
    """Who liked the post, newest first."""

    items: list[LikerOut]
    next_cursor: str | None


class BookmarkOut(BaseModel):
    """A bookmark of yours."""

    id: uuid.UUID
    post_id: uuid.UUID
    collection_id: uuid.UUID | None
    created_at: datetime


class CreatedBookmarkOut(BookmarkOut):
    created: bool = Field(description="false: it was already bookmarked")


class SavedPostOut(BookmarkOut):
    post: PostOut


class BookmarkPage(BaseModel):
    """Your bookmarks, newest first, with the posts."""

    items: list[SavedPostOut]
    next_cursor: str | None


class CollectionOut(BaseModel):
    """A bookmark collection."""

    id: uuid.UUID
    name: str
    bookmarks_count: int
    created_at: datetime
    updated_at: datetime


class CollectionPage(BaseModel):
    items: list[CollectionOut]
    next_cursor: str | None


class RepostOut(BaseModel):
    """A repost or quote of the post."""

    post_id: uuid.UUID = Field(description="The repost / quote itself")
    is_quote: bool
    reposted_at: datetime
    user: AuthorOut


class RepostPage(BaseModel):
    """Reposts and quotes, newest first."""

    items: list[RepostOut]
    next_cursor: str | None


class DeleteCollectionQuery(Query):
    with_bookmarks: bool = Field(
        False, description="Delete its bookmarks too (default: they stay, in no collection)"
    )


# Likes -----------------------------------------------------------------------------------


@routes.post("/api/posts/{id}/like")
@endpoint(
    "Like a post",
    response=LikeOut,
    tags=TAGS,
    errors=(404, 409, 429),
    operation_id="posts.like",
)
async def like(request: web.Request) -> Any:
    """Idempotent: liking again changes nothing. 200 likes / hour."""
    return await likes.like_post(context(request), principal(request), path_id(request))


@routes.delete("/api/posts/{id}/unlike")
@endpoint("Unlike a post", response=LikeOut, tags=TAGS, errors=(404,), operation_id="posts.unlike")
async def unlike(request: web.Request) -> Any:
    """Idempotent; the authors' notification loses you."""
    return await likes.unlike_post(context(request), principal(request), path_id(request))


@routes.get("/api/posts/{id}/likes")
@endpoint(
    "Who liked a post",
    query=PostPageQuery,
    response=LikerPage,
    tags=TAGS,
    errors=(404,),
    operation_id="posts.likes",
)
async def likers(request: web.Request, query: PostPageQuery) -> Any:
    """Newest first; users you and they blocked are left out."""
    return await likes.list_likers(
        context(request),
        principal(request),
        path_id(request),
        limit=query.limit,
        cursor=query.cursor,
    )


# Bookmarks -------------------------------------------------------------------------------


@routes.post("/api/posts/{id}/bookmark")
@endpoint(
    "Bookmark a post",
    body=BookmarkIn,
    response=CreatedBookmarkOut,
    tags=TAGS,
    errors=(404, 409),
    operation_id="posts.bookmark",
)
async def bookmark(request: web.Request, body: BookmarkIn) -> Any:
    """Optionally into one of your collections; bookmarking again returns the bookmark."""
    return await bookmarks.bookmark(context(request), principal(request), path_id(request), body)


@routes.delete("/api/posts/{id}/unbookmark")
@endpoint(
    "Remove a bookmark", status=204, tags=TAGS, errors=(404,), operation_id="posts.unbookmark"
)
async def unbookmark(request: web.Request) -> Any:
    """Idempotent."""
    await bookmarks.unbookmark(context(request), principal(request), path_id(request))
    return None


@routes.post("/api/posts/{id}/hide")
@endpoint(
    "Hide a post from your feeds", status=204, tags=TAGS, errors=(404,), operation_id="posts.hide"
)
async def hide(request: web.Request) -> Any:
    """ "Not interested": it leaves your feeds (`DELETE` on the same path undoes it)."""
    await bookmarks.hide_post(context(request), principal(request), path_id(request), hidden=True)
    return None


@routes.delete("/api/posts/{id}/hide")
@endpoint("Show a hidden post again", status=204, tags=TAGS, operation_id="posts.unhide")
async def unhide(request: web.Request) -> Any:
    """It may appear in your feeds again."""
    await bookmarks.hide_post(context(request), principal(request), path_id(request), hidden=False)
    return None


@routes.get("/api/bookmarks")
@endpoint(
    "Your bookmarks",
    query=PostPageQuery,
    response=BookmarkPage,
    tags=TAGS,
    operation_id="bookmarks.list",
)
async def list_bookmarks(request: web.Request, query: PostPageQuery) -> Any:
    """Newest first, with each post as you may see it now (gone ones drop out)."""
    return await bookmarks.list_bookmarks(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.post("/api/bookmarks/collections")
@endpoint(
    "Create a collection",
    body=CollectionIn,
    response=CollectionOut,
    status=201,
    tags=TAGS,
    errors=(409, 422),
    operation_id="bookmarks.create_collection",
)
async def create_collection(request: web.Request, body: CollectionIn) -> Any:
    """Names are unique among your collections, ignoring case."""
    return await bookmarks.create_collection(context(request), principal(request), body)


@routes.get("/api/bookmarks/collections")
@endpoint(
    "Your collections",
    query=PostPageQuery,
    response=CollectionPage,
    tags=TAGS,
    operation_id="bookmarks.collections",
)
async def list_collections(request: web.Request, query: PostPageQuery) -> Any:
    """Newest first, with their bookmark counts."""
    return await bookmarks.list_collections(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.get("/api/bookmarks/collections/{id}")
@endpoint(
    "A collection's bookmarks",
    query=PostPageQuery,
    response=BookmarkPage,
    tags=TAGS,
    errors=(404,),
    operation_id="bookmarks.collection",
)
async def collection_bookmarks(request: web.Request, query: PostPageQuery) -> Any:
    """Newest first (404 for anyone's collection but yours)."""
    return await bookmarks.list_bookmarks(
        context(request),
        principal(request),
        collection_id=path_id(request),
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.patch("/api/bookmarks/collections/{id}")
@endpoint(
    "Rename a collection",
    body=CollectionIn,
    response=CollectionOut,
    tags=TAGS,
    errors=(404, 409, 422),
    operation_id="bookmarks.rename_collection",
)
async def rename_collection(request: web.Request, body: CollectionIn) -> Any:
    """A name you do not use for another collection."""
    return await bookmarks.rename_collection(
        context(request), principal(request), path_id(request), body
    )


@routes.delete("/api/bookmarks/collections/{id}")
@endpoint(
    "Delete a collection",
    query=DeleteCollectionQuery,
    status=204,
    tags=TAGS,
    errors=(404,),
    operation_id="bookmarks.delete_collection",
)
async def delete_collection(request: web.Request, query: DeleteCollectionQuery) -> Any:
    """Its bookmarks stay (in no collection) unless `with_bookmarks=true`."""
    await bookmarks.delete_collection(
        context(request), principal(request), path_id(request), with_bookmarks=query.with_bookmarks
    )
    return None


@routes.post("/api/bookmarks/{id}/move")
@endpoint(
    "Move a bookmark",
    body=MoveIn,
    response=BookmarkOut,
    tags=TAGS,
    errors=(404,),
    operation_id="bookmarks.move",
)
async def move(request: web.Request, body: MoveIn) -> Any:
    """Into one of your collections, or out of any (`collection_id: null`)."""
    return await bookmarks.move_bookmark(
        context(request), principal(request), path_id(request), body
    )


# Reposts ---------------------------------------------------------------------------------


@routes.post("/api/posts/{id}/repost")
@endpoint(
    "Repost",
    response=PostOut,
    status=201,
    tags=TAGS,
    errors=(403, 404, 409, 429),
    operation_id="posts.repost",
)
async def repost(request: web.Request) -> Any:
    """Public posts of public accounts only; reposting again returns your repost."""
    return await reposts.repost(context(request), principal(request), path_id(request))


@routes.post("/api/posts/{id}/quote")
@endpoint(
    "Quote a post",
    body=QuoteIn,
    response=PostOut,
    status=201,
    tags=TAGS,
    errors=(403, 404, 409, 422, 429),
    operation_id="posts.quote",
)
async def quote(request: web.Request, body: QuoteIn) -> Any:
    """A post of yours with your text above the original (public posts only)."""
    return await reposts.quote(context(request), principal(request), path_id(request), body)


@routes.delete("/api/posts/{id}/unrepost")
@endpoint("Undo your repost", status=204, tags=TAGS, operation_id="posts.unrepost")
async def unrepost(request: web.Request) -> Any:
    """Idempotent. A quote is a post: delete it with DELETE /api/posts/{id}."""
    await reposts.unrepost(context(request), principal(request), path_id(request))
    return None


@routes.get("/api/posts/{id}/reposts")
@endpoint(
    "Who reposted a post",
    query=PostPageQuery,
    response=RepostPage,
    tags=TAGS,
    errors=(404,),
    operation_id="posts.reposts",
)
async def list_reposts(request: web.Request, query: PostPageQuery) -> Any:
    """Reposts and quotes you may see, newest first."""
    return await reposts.list_reposts(
        context(request),
        principal(request),
        path_id(request),
        limit=query.limit,
        cursor=query.cursor,
    )
