"""Resumable uploads over tus 1.0 (core, creation, termination): `/api/media/uploads`.

    POST   /api/media/uploads        Upload-Length, Upload-Metadata -> 201 Location
    HEAD   /api/media/uploads/{id}   -> Upload-Offset, Upload-Length
    PATCH  /api/media/uploads/{id}   Upload-Offset + application/offset+octet-stream body
                                     -> 204 Upload-Offset (+ Upload-Media-Id when complete)
    DELETE /api/media/uploads/{id}   -> 204
    OPTIONS /api/media/uploads       -> Tus-Version, Tus-Extension, Tus-Max-Size

Errors are problem+json with the Tus-Resumable header. The completing PATCH answers 201 with
the media (status `processing`) as JSON body besides the tus headers, or 413 / 422 naming why
the file is refused.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from server.domain.media import resumable
from server.errors import AppError, ValidationFailed
from server.http.endpoint import context, json_response, path_id, principal
from server.http.middlewares import error_response

routes = web.RouteTableDef()
TUS_VERSION = "1.0.0"
CHUNK = 256 * 1024
BASE = "/api/media/uploads"


def _tus_headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **(extra or {})}


def _check_version(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise _TusVersion()


class _TusVersion(AppError):
    status = 412
    code = "tus_version"
    title = "Unsupported tus version"

    def __init__(self) -> None:
        super().__init__(f"Send Tus-Resumable: {TUS_VERSION}.")


def _int_header(request: web.Request, name: str) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit() or len(raw) > 15:
        raise ValidationFailed.field(name, "must be a non-negative integer")
    return int(raw)


def _file_name(metadata: str) -> str | None:
    """`filename` (or `name`) from Upload-Metadata: `key base64value, key2 ...`."""
    for pair in metadata.split(","):
        key, _, value = pair.strip().partition(" ")
        if key in ("filename", "name") and value:
            try:
                return base64.b64decode(value, validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                raise ValidationFailed.field("Upload-Metadata", "values must be base64") from None
    return None


def tus(handler: Any) -> Any:
    """Every tus answer, problems included, carries Tus-Resumable."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except AppError as exc:
            response = error_response(exc)
        response.headers.update({"Tus-Resumable": TUS_VERSION})
        return response

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped


def _options(request: web.Request) -> web.Response:
    max_size = context(request).settings.media.max_video_bytes
    return web.Response(
        status=204,
        headers={
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,termination",
            "Tus-Max-Size": str(max_size),
        },
    )


async def tus_options(request: web.Request) -> web.StreamResponse:
    return _options(request)


tus_options.__public__ = True  # type: ignore[attr-defined]  # discovery needs no token
routes.route("OPTIONS", BASE)(tus_options)


@routes.post(BASE)
@tus
async def tus_create(request: web.Request) -> web.StreamResponse:
    _check_version(request)
    length = _int_header(request, "Upload-Length")
    state = await resumable.create_upload(
        context(request),
        principal(request),
        length,
        _file_name(request.headers.get("Upload-Metadata", "")),
    )
    return web.Response(
        status=201,
        headers=_tus_headers(
            {
                "Location": f"{BASE}/{state.id}",
                "Upload-Offset": "0",
                "Upload-Expires": state.expires_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
            }
        ),
    )


@routes.route("HEAD", BASE + "/{id}")
@tus
async def tus_head(request: web.Request) -> web.StreamResponse:
    _check_version(request)
    state = await resumable.upload_state(context(request), principal(request), path_id(request))
    return web.Response(
        status=200,
        headers=_tus_headers(
            {"Upload-Offset": str(state.offset), "Upload-Length": str(state.length)}
        ),
    )


async def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    while chunk := await request.content.read(CHUNK):
        yield chunk


@routes.patch(BASE + "/{id}")
@tus
async def tus_patch(request: web.Request) -> web.StreamResponse:
    _check_version(request)
    if request.content_type != "application/offset+octet-stream":
        raise web.HTTPUnsupportedMediaType(
            text="Send Content-Type: application/offset+octet-stream."
        )
    offset = _int_header(request, "Upload-Offset")
    state = await resumable.append(
        context(request), principal(request), path_id(request), offset, _chunks(request)
    )
    headers = _tus_headers({"Upload-Offset": str(state.offset)})
    if state.media is None:
        return web.Response(status=204, headers=headers)
    done = json_response(state.media, 201)
    done.headers.update({**headers, "Upload-Media-Id": str(state.media["id"])})
    return done


@routes.delete(BASE + "/{id}")
@tus
async def tus_delete(request: web.Request) -> web.StreamResponse:
    _check_version(request)
    await resumable.terminate(context(request), principal(request), path_id(request))
    return web.Response(status=204, headers=_tus_headers())
