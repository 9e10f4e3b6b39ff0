"""The `media.process` job: scan the upload, make what is served of it, mark it ready (or
failed) and tell the uploader's sessions (`media.ready` / `media.failed`).

Safe to run again (at-least-once delivery): variants are written under fixed keys and only a
media still `processing` changes state. A storage or scanner outage raises, so the job is
retried later; a file that can never be processed fails the media with a reason.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

from server.domain.context import Context
from server.domain.media import MEDIA_FAILED, MEDIA_READY
from server.domain.media.intake import VIDEO_UNAVAILABLE, spool_dir
from server.domain.media.views import media_view
from server.jobs.queue import enqueue
from server.media import images, optional_module
from server.media.cpu import run_cpu
from server.media.storage.base import content_type_for
from server.store import media as store
from server.store.db import Row

log = logging.getLogger(__name__)


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def process_media_job(ctx: Context, payload: dict[str, Any]) -> None:
    row = await store.get(ctx.db, uuid.UUID(payload["media_id"]))
    if row is None or row["status"] != "processing" or not row["source_key"]:
        return  # done by an earlier run, or purged
    with tempfile.TemporaryDirectory(dir=spool_dir(ctx), prefix="process-") as tmp:
        work = Path(tmp)
        source = work / "source"
        try:
            await ctx.storage.fetch_to(row["source_key"], source)
        except FileNotFoundError:
            await _finish_failed(ctx, row, "the upload was lost before it was processed")
            return
        try:
            await _scan(ctx, source)
            if row["media_type"] == "image":
                result = await _process_image(ctx, row, source, work / "out")
            else:
                result = await _process_video(ctx, row, source, work / "out")
        except _Rejected as exc:
            await _finish_failed(ctx, row, exc.reason)
            return
    await _finish_ready(ctx, row, result)


async def _scan(ctx: Context, path: Path) -> None:
    if ctx.scanner is None:
        return
    result = await ctx.scanner.scan_file(path)  # ScannerUnavailable: the job is retried
    if not result.clean:
        refused = getattr(result, "refused", None)
        if refused:  # too large for the scanner: not proven clean, never served
            raise _Rejected(f"could not be scanned: {refused}")
        log.warning("infected upload refused", extra={"signature": result.signature})
        raise _Rejected(f"rejected by the virus scanner ({result.signature or 'infected'})")


async def _put_all(ctx: Context, media_id: uuid.UUID, files: list[tuple[Path, str, str]]) -> None:
    """Store (local path, name under the media's prefix, content type) for each file."""
    for path, name, content_type in files:
        await ctx.storage.put_file(f"m/{media_id}/{name}", path, content_type)


async def _process_image(ctx: Context, row: Row, source: Path, out: Path) -> dict[str, Any]:
    try:
        output = await run_cpu(
            images.render_variants, source, out, max_pixels=ctx.settings.media.max_image_pixels
        )
    except images.ImageRejected as exc:
        raise _Rejected(exc.reason) from None
    media_id = row["id"]
    prefix = f"m/{media_id}/"
    await _put_all(ctx, media_id, [(f.path, f.path.name, f.content_type) for f in output.files])
    sizes: dict[str, dict[str, Any]] = {}
    for f in output.files:
        size = sizes.setdefault(f.name, {"width": f.width, "height": f.height})
        size[f.format] = prefix + f.path.name
        size[f"{f.format}_bytes"] = f.bytes
    return {
        "variants": {"sizes": sizes, "keys": [prefix + f.path.name for f in output.files]},
        "width": output.width,
        "height": output.height,
        "duration_s": None,
        "blurhash": output.blurhash,
    }


async def _process_video(ctx: Context, row: Row, source: Path, out: Path) -> dict[str, Any]:
    try:
        video = optional_module("video")
    except ImportError:
        raise _Rejected(VIDEO_UNAVAILABLE) from None
    media = ctx.settings.media
    try:
        info = await run_cpu(
            video.probe_video,
            source,
            max_duration_s=media.max_video_duration_s,
            max_pixels=media.max_video_pixels,
        )
        output = await run_cpu(
            video.transcode_video, source, out, heights=tuple(media.video_heights)
        )
    except video.VideoRejected as exc:
        raise _Rejected(exc.reason) from None
    media_id = row["id"]
    prefix = f"m/{media_id}/"
    await _put_all(
        ctx, media_id, [(out / name, name, content_type_for(name)) for name in output.files]
    )
    variants = {
        "poster": {
            "jpeg": prefix + output.poster,
            "width": output.poster_width,
            "height": output.poster_height,
        },
        "hls": {
            "master": prefix + output.master_playlist,
            "renditions": [
                {
                    "height": r.height,
                    "width": r.width,
                    "bandwidth": r.bandwidth,
                    "playlist": prefix + r.playlist,
                }
                for r in output.renditions
            ],
        },
        "keys": [prefix + name for name in output.files],
    }
    return {
        "variants": variants,
        "width": info.width,
        "height": info.height,
        "duration_s": info.duration_s,
        "blurhash": None,
    }


async def _finish_ready(ctx: Context, row: Row, result: dict[str, Any]) -> None:
    async with ctx.db.transaction() as tx:
        updated = await store.mark_ready(tx, row["id"], now=ctx.clock.now(), **result)
        if updated is None:  # purged or failed meanwhile: what was just written goes too
            await enqueue(tx, "media.delete_objects", {"keys": result["variants"]["keys"]})
        else:
            ctx.events.to_users(
                tx, [row["owner_id"]], MEDIA_READY, {"media": media_view(ctx, updated)}
            )
    await ctx.storage.delete([row["source_key"]])


async def _finish_failed(ctx: Context, row: Row, reason: str) -> None:
    async with ctx.db.transaction() as tx:
        updated = await store.mark_failed(tx, row["id"], reason, ctx.clock.now())
        if updated is not None:
            ctx.events.to_users(
                tx,
                [row["owner_id"]],
                MEDIA_FAILED,
                {"media_id": row["id"], "reason": reason, "media": media_view(ctx, updated)},
            )
    await ctx.storage.delete([row["source_key"]])
