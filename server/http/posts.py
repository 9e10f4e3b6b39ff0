"""HTTP routes of posts: create, read, edit, delete, drafts and publishing, edit history,
profile grids and collaboration. Thin wrappers of server/domain/posts/ (the gateway calls in
server/ws/methods/posts.py wrap the same actions); bodies are the command models of
server/domain/posts/commands.py.

Static paths (`/api/posts/drafts`, `/api/posts/invitations`) are registered before
`/api/posts/{id}` so they are not read as ids.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from server.domain.posts import collaboration, editing, publishing, reading, removal
from server.domain.posts.commands import CreatePostIn, EditPostIn, InviteIn, PostPageQuery
from server.http.endpoint import context, endpoint, path_id, principal

routes = web.RouteTableDef()
TAGS = ("posts",)


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class AuthorOut(_Open):
    """An author, briefly."""

    id: uuid.UUID
    username: str
    display_name: str
    profile_picture_url: str | None
    is_verified: bool


class EntityOut(_Open):
    """A span of the text: `start` / `end` in code points; per type, `user_id` + `username`
    (mention), `tag` (hashtag, normalised), `shop_id` + `handle` (shop), `url` (url)."""

    type: Literal["mention", "hashtag", "shop", "url"]
    start: int
    end: int
    text: str


class PostOut(BaseModel):
    """A post as you see it, with its commerce cards."""

    id: uuid.UUID
    author: AuthorOut
    authors: list[AuthorOut] = Field(description="The byline: creator, then accepted co-authors")
    byline: str = Field(description='"By @a and @b"')
    content: str
    entities: list[EntityOut]
    post_type: Literal["text", "image", "video", "poll", "mixed"]
    status: Literal["draft", "pending_collaboration", "scheduled", "published"]
    visibility: Literal["public", "followers", "private"]
    is_collaborative: bool
    pending_collaborators: list[AuthorOut] = Field(
        description="Invitees who have not answered (shown to the authors and the invitee)"
    )
    likes_count: int
    comments_count: int
    reposts_count: int
    bookmarks_count: int
    liked: bool = Field(description="You like it")
    bookmarked: bool = Field(description="You bookmarked it")
    is_edited: bool
    edit_count: int
    edited_at: datetime | None
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    publish_at: datetime | None = Field(description="When a scheduled post goes out")
    products: list[dict[str, Any]]
    shops: list[dict[str, Any]]
    events: list[dict[str, Any]]
    groups: list[dict[str, Any]] = Field(description="Buy-together group cards, live")
    installment_plans: list[dict[str, Any]]
    poll: dict[str, Any] | None = Field(description="The poll's results as you see them")
    media: list[dict[str, Any]] = Field(
        description="Images and videos in order: media_url (large JPEG / HLS playlist), "
        "thumbnail_url, width, height, duration, blurhash, tags"
    )
    is_repost: bool
    is_quote: bool
    original_post: dict[str, Any] | None = Field(
        description="The reposted / quoted post as you see it (null: not a repost or gone)"
    )
    original_unavailable: bool = Field(description='Show "post unavailable"')


class PostPage(BaseModel):
    """A page of posts."""

    items: list[PostOut]
    next_cursor: str | None


class VersionOut(BaseModel):
    """A version the post had before an edit."""

    id: uuid.UUID
    content: str
    entities: list[EntityOut]
    edited_by: uuid.UUID | None
    valid_from: datetime
    replaced_at: datetime


class HistoryOut(BaseModel):
    """The post's text now and before each edit, most recent first."""

    post_id: uuid.UUID
    edit_count: int
    current: dict[str, Any]
    items: list[VersionOut]
    next_cursor: str | None


# Static paths first ----------------------------------------------------------------------


@routes.get("/api/posts/drafts")
@endpoint(
    "Your unpublished posts",
    query=PostPageQuery,
    response=PostPage,
    tags=TAGS,
    operation_id="posts.drafts",
)
async def list_drafts(request: web.Request, query: PostPageQuery) -> Any:
    """Drafts, scheduled posts and posts waiting for co-authors, last touched first."""
    return await reading.drafts(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.get("/api/posts/invitations")
@endpoint(
    "Posts you are invited to co-author",
    query=PostPageQuery,
    response=PostPage,
    tags=TAGS,
    operation_id="posts.invitations",
)
async def list_invitations(request: web.Request, query: PostPageQuery) -> Any:
    """Posts waiting for your answer (accept or decline), newest first."""
    return await collaboration.pending_invitations(
        context(request), principal(request), limit=query.limit, cursor=query.cursor
    )


@routes.post("/api/posts")
@endpoint(
    "Create a post",
    body=CreatePostIn,
    response=PostOut,
    status=201,
    tags=TAGS,
    errors=(422, 429),
    operation_id="posts.create",
)
async def create_post(request: web.Request, body: CreatePostIn) -> Any:
    """Publish at once, save a draft (`status: draft`) or schedule (`publish_at`); invited
    co-authors answer before it is published. Mentions, hashtags, `$shop`s and URLs come back
    as `entities`."""
    return await publishing.create_post(context(request), principal(request), body)


# One post --------------------------------------------------------------------------------


@routes.get("/api/posts/{id}")
@endpoint("Get a post", response=PostOut, tags=TAGS, errors=(404,), operation_id="posts.get")
async def get_post(request: web.Request) -> Any:
    """The post with its entities and commerce cards, if you may see it (404 otherwise)."""
    return await reading.get_post(context(request), principal(request), path_id(request))


@routes.patch("/api/posts/{id}")
@endpoint(
    "Edit a post",
    body=EditPostIn,
    response=PostOut,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="posts.edit",
)
async def edit_post(request: web.Request, body: EditPostIn) -> Any:
    """Any author edits; a published post keeps the version it replaces."""
    return await editing.edit_post(context(request), principal(request), path_id(request), body)


@routes.delete("/api/posts/{id}")
@endpoint("Delete a post", status=204, tags=TAGS, errors=(403, 404), operation_id="posts.delete")
async def delete_post(request: web.Request) -> Any:
    """Any author deletes: hidden at once everywhere, purged after 30 days."""
    await removal.delete_post(context(request), principal(request), path_id(request))
    return None


@routes.post("/api/posts/{id}/publish")
@endpoint(
    "Publish a draft",
    response=PostOut,
    tags=TAGS,
    errors=(403, 404, 409),
    operation_id="posts.publish",
)
async def publish_post(request: web.Request) -> Any:
    """Publish a draft or a scheduled post now (after the co-authors' answers, if any)."""
    return await publishing.publish_post(context(request), principal(request), path_id(request))


@routes.get("/api/posts/{id}/history")
@endpoint(
    "A post's edit history",
    query=PostPageQuery,
    response=HistoryOut,
    tags=TAGS,
    errors=(404,),
    operation_id="posts.history",
)
async def post_history(request: web.Request, query: PostPageQuery) -> Any:
    """What the post said before each edit, most recent first."""
    return await editing.post_history(
        context(request),
        principal(request),
        path_id(request),
        limit=query.limit,
        cursor=query.cursor,
    )


# Collaboration ---------------------------------------------------------------------------


@routes.post("/api/posts/{id}/collaborators")
@endpoint(
    "Invite co-authors",
    body=InviteIn,
    response=PostOut,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="posts.invite_collaborators",
)
async def invite_collaborators(request: web.Request, body: InviteIn) -> Any:
    """The creator invites more co-authors (10 at most in all)."""
    return await collaboration.invite(
        context(request), principal(request), path_id(request), body.user_ids
    )


@routes.delete("/api/posts/{id}/collaborators/{user_id}")
@endpoint(
    "Leave, or remove a collaborator",
    status=204,
    tags=TAGS,
    errors=(403, 404),
    operation_id="posts.remove_collaborator",
)
async def remove_collaborator(request: web.Request) -> Any:
    """Your own id: leave the post. Someone else's (creator only): remove them or withdraw
    their invitation."""
    await collaboration.remove(
        context(request), principal(request), path_id(request), path_id(request, "user_id")
    )
    return None


@routes.post("/api/posts/{id}/collaboration/accept")
@endpoint(
    "Accept an invitation to co-author",
    response=PostOut,
    tags=TAGS,
    errors=(404, 409),
    operation_id="posts.accept_collaboration",
)
async def accept_collaboration(request: web.Request) -> Any:
    """You join the byline and the post shows on your profile."""
    return await collaboration.accept(context(request), principal(request), path_id(request))


@routes.post("/api/posts/{id}/collaboration/decline")
@endpoint(
    "Decline an invitation to co-author",
    status=204,
    tags=TAGS,
    errors=(404, 409),
    operation_id="posts.decline_collaboration",
)
async def decline_collaboration(request: web.Request) -> Any:
    """Your invitation is withdrawn and the creator told."""
    await collaboration.decline(context(request), principal(request), path_id(request))
    return None


# Profiles --------------------------------------------------------------------------------


@routes.get("/api/users/{ref}/posts")
@endpoint(
    "A user's posts",
    query=PostPageQuery,
    response=PostPage,
    tags=TAGS,
    errors=(404,),
    operation_id="users.posts",
    path_params={"ref": "The user's id or username"},
)
async def user_posts(request: web.Request, query: PostPageQuery) -> Any:
    """Their published posts and those they co-author, newest first, as far as you may see
    them (a private account's to approved followers only)."""
    return await reading.user_posts(
        context(request),
        principal(request),
        request.match_info["ref"],
        limit=query.limit,
        cursor=query.cursor,
    )
