"""HTTP routes of image tags on a post's images (the spec's Image Tags endpoints). Thin
wrappers of server/domain/posts/media.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from server.domain.posts import media
from server.domain.posts.media import TagIn
from server.http.endpoint import context, endpoint, path_id, principal

routes = web.RouteTableDef()
TAGS = ("posts",)


class TagOut(BaseModel):
    """A tag on an image: who or what, at x / y percent."""

    id: uuid.UUID
    media_id: uuid.UUID
    tag_type: Literal["user", "product", "shop"]
    user_id: uuid.UUID | None
    username: str | None
    product_id: uuid.UUID | None
    product_name: str | None
    shop_id: uuid.UUID | None
    shop_handle: str | None
    x: str
    y: str
    created_at: datetime


class TagList(BaseModel):
    """The tags on an image (people you and they blocked are left out)."""

    items: list[TagOut]


@routes.post("/api/posts/{id}/media/{media_id}/tags")
@endpoint(
    "Tag an image",
    body=TagIn,
    response=TagOut,
    status=201,
    tags=TAGS,
    errors=(403, 404, 422),
    operation_id="posts.tag_image",
)
async def add_tag(request: web.Request, body: TagIn) -> Any:
    """The post's authors tag a user, product or shop at x / y (0-100) of one of its images
    (20 tags per image)."""
    return await media.add_tag(
        context(request),
        principal(request),
        path_id(request),
        path_id(request, "media_id"),
        body,
    )


@routes.get("/api/posts/{id}/media/{media_id}/tags")
@endpoint(
    "An image's tags", response=TagList, tags=TAGS, errors=(404,), operation_id="posts.image_tags"
)
async def list_tags(request: web.Request) -> Any:
    """As shown over the image."""
    return await media.list_tags(
        context(request), principal(request), path_id(request), path_id(request, "media_id")
    )


@routes.delete("/api/posts/{id}/media/{media_id}/tags/{tag_id}")
@endpoint(
    "Remove an image tag",
    status=204,
    tags=TAGS,
    errors=(403, 404),
    operation_id="posts.untag_image",
)
async def delete_tag(request: web.Request) -> Any:
    """The post's authors, or the tagged user for their own tag."""
    await media.delete_tag(
        context(request),
        principal(request),
        path_id(request),
        path_id(request, "media_id"),
        path_id(request, "tag_id"),
    )
    return None
