"""`GET /media/<key>`: the processed files of media. Local storage: the file, with long
immutable cache headers (a key never changes content), ETag / If-None-Match and Range (video
seeking); S3: a redirect to the CDN or to a fresh presigned URL."""

from __future__ import annotations

from aiohttp import web

from server.domain.media.views import locate_served
from server.http.endpoint import context
from server.media.storage.base import content_type_for

routes = web.RouteTableDef()
IMMUTABLE = "public, max-age=31536000, immutable"


@routes.get("/media/{key:.+}")
async def serve_media_file(request: web.Request) -> web.StreamResponse:
    key = request.match_info["key"]
    located = await locate_served(context(request), key)
    if located is None:
        raise web.HTTPNotFound(text="No such media file.")
    if located.redirect_url is not None:
        redirect = web.HTTPMovedPermanently if located.permanent else web.HTTPFound
        raise redirect(located.redirect_url)
    assert located.path is not None
    return web.FileResponse(
        located.path,
        headers={"Cache-Control": IMMUTABLE, "Content-Type": content_type_for(key)},
    )
