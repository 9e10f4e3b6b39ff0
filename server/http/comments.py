"""HTTP routes of comments: on a post, replies, edit, delete, likes. Thin wrappers of
server/domain/posts/comments.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from server.domain.posts import comments
from server.domain.posts.commands import PostPageQuery
from server.domain.posts.comments import CommentEditIn, CommentIn
from server.http.endpoint import context, endpoint, path_id, principal
from server.http.posts import AuthorOut, EntityOut

routes = web.RouteTableDef()
TAGS = ("comments",)


class CommentOut(BaseModel):
    """A comment as you see it (`is_deleted`: a placeholder kept for its replies)."""

    id: uuid.UUID
    post_id: uuid.UUID
    parent_id: uuid.UUID | None
    depth: int = Field(description="0 for a comment on the post, 1 for a reply, ...")
    author: AuthorOut | None = Field(description="null for a deleted comment")
    content: str
    entities: list[EntityOut]
    is_deleted: bool
    likes_count: int
    replies_count: int
    liked: bool
    is_edited: bool
    edited_at: datetime | None
    created_at: datetime


class ThreadOut(CommentOut):
    replies: list[CommentOut] = Field(description="Its first replies (see replies_count)")


class ThreadPage(BaseModel):
    """Top-level comments, oldest first, with their first replies."""

    items: list[ThreadOut]
    next_cursor: str | None


class CommentPage(BaseModel):
    """Comments, oldest first."""

    items: list[CommentOut]
    next_cursor: str | None


class CommentLikeOut(BaseModel):
    """Whether you like the comment now, and its count."""

    comment_id: uuid.UUID
    liked: bool
    likes_count: int


@routes.post("/api/posts/{id}/comments")
@endpoint(
    "Comment on a post",
    body=CommentIn,
    response=CommentOut,
    status=201,
    tags=TAGS,
    errors=(404, 409, 422, 429),
    operation_id="comments.create",
)
async def create_comment(request: web.Request, body: CommentIn) -> Any:
    """With `parent_id`, a reply (past the depth limit it attaches to the deepest allowed
    comment). 100 comments / hour."""
    return await comments.add_comment(context(request), principal(request), path_id(request), body)


@routes.get("/api/posts/{id}/comments")
@endpoint(
    "A post's comments",
    query=PostPageQuery,
    response=ThreadPage,
    tags=TAGS,
    errors=(404,),
    operation_id="comments.list",
)
async def list_comments(request: web.Request, query: PostPageQuery) -> Any:
    """Top-level comments oldest first, each with its first replies inlined."""
    return await comments.list_comments(
        context(request),
        principal(request),
        path_id(request),
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.get("/api/comments/{id}")
@endpoint(
    "Get a comment", response=CommentOut, tags=TAGS, errors=(404,), operation_id="comments.get"
)
async def get_comment(request: web.Request) -> Any:
    """404 unless you may see its post."""
    return await comments.get_comment(context(request), principal(request), path_id(request))


@routes.patch("/api/comments/{id}")
@endpoint(
    "Edit your comment",
    body=CommentEditIn,
    response=CommentOut,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="comments.edit",
)
async def edit_comment(request: web.Request, body: CommentEditIn) -> Any:
    """Only its author; it shows as edited."""
    return await comments.edit_comment(context(request), principal(request), path_id(request), body)


@routes.delete("/api/comments/{id}")
@endpoint(
    "Delete a comment", status=204, tags=TAGS, errors=(403, 404), operation_id="comments.delete"
)
async def delete_comment(request: web.Request) -> Any:
    """Its author or the post's authors; with replies it stays as "[deleted]"."""
    await comments.delete_comment(context(request), principal(request), path_id(request))
    return None


@routes.post("/api/comments/{id}/reply")
@endpoint(
    "Reply to a comment",
    body=CommentEditIn,
    response=CommentOut,
    status=201,
    tags=TAGS,
    errors=(404, 422, 429),
    operation_id="comments.reply",
)
async def reply(request: web.Request, body: CommentEditIn) -> Any:
    """The same as commenting on its post with `parent_id`."""
    ctx, actor, parent_id = context(request), principal(request), path_id(request)
    parent = await comments.get_comment(ctx, actor, parent_id)
    command = CommentIn(content=body.content, parent_id=parent_id)
    return await comments.add_comment(ctx, actor, uuid.UUID(parent["post_id"]), command)


@routes.get("/api/comments/{id}/replies")
@endpoint(
    "A comment's replies",
    query=PostPageQuery,
    response=CommentPage,
    tags=TAGS,
    errors=(404,),
    operation_id="comments.replies",
)
async def list_replies(request: web.Request, query: PostPageQuery) -> Any:
    """Oldest first."""
    return await comments.list_replies(
        context(request),
        principal(request),
        path_id(request),
        limit=query.limit,
        cursor=query.cursor,
    )


@routes.post("/api/comments/{id}/like")
@endpoint(
    "Like a comment",
    response=CommentLikeOut,
    tags=TAGS,
    errors=(404, 429),
    operation_id="comments.like",
)
async def like_comment(request: web.Request) -> Any:
    """Idempotent."""
    return await comments.like_comment(context(request), principal(request), path_id(request))


@routes.delete("/api/comments/{id}/unlike")
@endpoint(
    "Unlike a comment",
    response=CommentLikeOut,
    tags=TAGS,
    errors=(404,),
    operation_id="comments.unlike",
)
async def unlike_comment(request: web.Request) -> Any:
    """Idempotent."""
    return await comments.unlike_comment(context(request), principal(request), path_id(request))
