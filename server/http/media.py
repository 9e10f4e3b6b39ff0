"""HTTP routes of the media capability: one-request uploads (multipart, streamed to disk under
the limits), an upload's status, and using an upload as profile picture or cover photo.
Resumable uploads: media_tus.py; serving the files: media_files.py."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ConfigDict, Field

from server.domain.media import intake, lifecycle
from server.errors import ValidationFailed
from server.http.endpoint import context, endpoint, json_response, path_id, principal
from server.http.schemas import UserOut

routes = web.RouteTableDef()
TAGS = ("media",)
CHUNK = 256 * 1024
# Multipart framing around the file (boundaries, part headers, other small fields).
MULTIPART_SLACK = 64 * 1024


class SizeOut(BaseModel):
    width: int
    height: int
    webp_url: str
    jpeg_url: str


class RenditionOut(BaseModel):
    width: int
    height: int
    bandwidth: int
    playlist_url: str


class HlsOut(BaseModel):
    master_url: str
    renditions: list[RenditionOut]


class PosterOut(BaseModel):
    width: int | None
    height: int | None
    jpeg_url: str


class MediaOut(BaseModel):
    """An upload as its uploader sees it. `status` goes processing → ready | failed (the
    gateway says when: `media.ready` / `media.failed`); URLs are set once ready."""

    id: uuid.UUID
    media_type: Literal["image", "video"]
    status: Literal["processing", "ready", "failed"]
    failure_reason: str | None
    content_type: str = Field(description="What the bytes are (sniffed, not as sent)")
    byte_size: int
    file_name: str | None
    width: int | None
    height: int | None
    duration_s: float | None
    blurhash: str | None = Field(description="A placeholder to paint while loading")
    url: str | None = Field(description="Large JPEG of an image; HLS master of a video")
    thumbnail_url: str | None
    sizes: dict[str, SizeOut] = Field(description="thumbnail, medium, large, original")
    hls: HlsOut | None
    poster: PosterOut | None
    attached: bool
    created_at: datetime


class ProfileMediaIn(BaseModel):
    """One of your ready image uploads; null clears it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"media_id": "0192d1e4-7c3a-7b1e-9f2a-4c8d5e6f7a8b"}]},
    )

    media_id: uuid.UUID | None


@routes.post("/api/media")
@endpoint(
    "Upload an image or a video",
    response=MediaOut,
    status=201,
    tags=TAGS,
    errors=(413, 415, 422, 503),
    operation_id="media.upload",
)
async def upload_media(request: web.Request) -> Any:
    """Send the file as the `file` part of a multipart/form-data body. It is streamed to disk
    and refused (413) as soon as it passes its limit (images 10 MB, videos 100 MB, your quota);
    what it is comes from its content, never its name or type. A file we cannot decode is
    refused with 422 saying why. Then it is processed in the background: 201 with status
    `processing`, and `media.ready` (or `media.failed`) on the gateway when done."""
    ctx = context(request)
    actor = principal(request)
    if not request.content_type.startswith("multipart/"):
        raise web.HTTPUnsupportedMediaType(
            text="Send the file as the `file` part of a multipart/form-data body."
        )
    await intake.check_rate(ctx, actor)
    limits = intake.UploadLimits(ctx, await intake.quota_left(ctx, actor))
    declared = request.content_length
    if declared is not None:  # over every limit (or the quota left): refused before reading
        limits.check(declared - MULTIPART_SLACK)
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader) or part.name != "file":
            raise ValidationFailed.field("file", "send only one part, named `file`")
        upload = intake.SpooledUpload(ctx, limits, part.filename)
        try:
            while chunk := await part.read_chunk(CHUNK):
                upload.write(chunk)
            received = upload.finish()
        except BaseException:
            upload.discard()
            raise
        response = await intake.accept(ctx, actor, received)
        created = json_response(response, 201)
        created.headers["Location"] = f"/api/media/{response['id']}"
        return created
    raise ValidationFailed.field("file", "is missing: send it as a part named `file`")


@routes.get("/api/media/{id}")
@endpoint(
    "One of your uploads", response=MediaOut, tags=TAGS, errors=(404,), operation_id="media.get"
)
async def get_media(request: web.Request) -> Any:
    """Its processing status and, once ready, its dimensions, placeholder and URLs. Only the
    uploader sees it (anyone else: 404)."""
    return await intake.get_media(context(request), principal(request), path_id(request))


@routes.put("/api/users/me/profile-picture")
@endpoint(
    "Set your profile picture",
    body=ProfileMediaIn,
    response=UserOut,
    tags=("users",),
    errors=(404, 409, 422),
    operation_id="users.set_profile_picture",
)
async def set_profile_picture(request: web.Request, *, body: ProfileMediaIn) -> Any:
    """Show one of your ready image uploads as your profile picture (its 600 px JPEG); the
    picture it replaces is deleted."""
    return await lifecycle.set_profile_media(
        context(request), principal(request), "profile_picture", body.media_id
    )


@routes.put("/api/users/me/cover-photo")
@endpoint(
    "Set your cover photo",
    body=ProfileMediaIn,
    response=UserOut,
    tags=("users",),
    errors=(404, 409, 422),
    operation_id="users.set_cover_photo",
)
async def set_cover_photo(request: web.Request, *, body: ProfileMediaIn) -> Any:
    """Show one of your ready image uploads as your cover photo (its 1200 px JPEG); the photo
    it replaces is deleted."""
    return await lifecycle.set_profile_media(
        context(request), principal(request), "cover_photo", body.media_id
    )
