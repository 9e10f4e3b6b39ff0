"""A media as its uploader sees it: status, size, placeholder and the URLs of its variants."""

from __future__ import annotations

from typing import Any

from server.domain.context import Context
from server.media.storage.base import SERVED_PREFIX, Located, check_key
from server.store.db import Row


def _image_sizes(ctx: Context, variants: dict[str, Any]) -> dict[str, Any]:
    url = ctx.storage.url
    return {
        name: {
            "width": size["width"],
            "height": size["height"],
            "webp_url": url(size["webp"]),
            "jpeg_url": url(size["jpeg"]),
        }
        for name, size in (variants.get("sizes") or {}).items()
    }


def main_urls(ctx: Context, row: Row) -> tuple[str | None, str | None]:
    """(the URL a client shows, its thumbnail) for a ready media: the large JPEG and the
    thumbnail JPEG of an image (every client decodes JPEG; the view lists the WebP ones); the
    HLS master playlist and the poster of a video."""
    variants = row["variants"] or {}
    if row["status"] != "ready":
        return None, None
    if row["media_type"] == "image":
        sizes = variants.get("sizes") or {}
        if not sizes:
            return None, None
        return ctx.storage.url(sizes["large"]["jpeg"]), ctx.storage.url(sizes["thumbnail"]["jpeg"])
    hls = variants.get("hls") or {}
    poster = variants.get("poster") or {}
    return (
        ctx.storage.url(hls["master"]) if hls.get("master") else None,
        ctx.storage.url(poster["jpeg"]) if poster.get("jpeg") else None,
    )


def media_view(ctx: Context, row: Row) -> dict[str, Any]:
    variants = row["variants"] or {}
    url, thumbnail_url = main_urls(ctx, row)
    view: dict[str, Any] = {
        "id": row["id"],
        "media_type": row["media_type"],
        "status": row["status"],
        "failure_reason": row["failure_reason"],
        "content_type": row["content_type"],
        "byte_size": row["byte_size"],
        "file_name": row["file_name"],
        "width": row["width"],
        "height": row["height"],
        "duration_s": row["duration_s"],
        "blurhash": row["blurhash"],
        "url": url,
        "thumbnail_url": thumbnail_url,
        "sizes": _image_sizes(ctx, variants) if row["status"] == "ready" else {},
        "hls": None,
        "poster": None,
        "attached": row["attached_at"] is not None and row["purge_after"] is None,
        "created_at": row["created_at"],
    }
    if row["media_type"] == "video" and row["status"] == "ready":
        hls = variants.get("hls") or {}
        view["hls"] = {
            "master_url": ctx.storage.url(hls["master"]),
            "renditions": [
                {
                    "width": r["width"],
                    "height": r["height"],
                    "bandwidth": r["bandwidth"],
                    "playlist_url": ctx.storage.url(r["playlist"]),
                }
                for r in hls.get("renditions") or []
            ],
        }
        poster = variants.get("poster") or {}
        view["poster"] = {
            "width": poster.get("width"),
            "height": poster.get("height"),
            "jpeg_url": ctx.storage.url(poster["jpeg"]),
        }
    return view


async def locate_served(ctx: Context, key: str) -> Located | None:
    """Where `GET /media/<key>` is answered from; None (404) for anything but a processed
    media's files (uploads waiting for processing are never served)."""
    try:
        check_key(key)
    except ValueError:
        return None
    if not key.startswith(SERVED_PREFIX):
        return None
    return await ctx.storage.locate(key)
