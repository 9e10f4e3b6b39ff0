"""Taking one upload in: its bytes spooled to disk under the limits as they arrive, then
validated by content, stored privately and queued for processing.

The size limit depends on what the file is, which the first bytes tell: until then the larger
(video) limit applies, after them the right one, and the upload is refused (413) the moment it
passes it, whatever the client declared. Nothing is stored for a refused upload.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from server.domain import access
from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.media.views import media_view
from server.errors import PayloadTooLarge, ServiceUnavailable, ValidationFailed
from server.ids import new_id
from server.jobs.queue import enqueue
from server.media import images, optional_module
from server.media.cpu import run_cpu
from server.media.sniffing import ACCEPTED, SNIFF_BYTES, Sniffed, sniff
from server.media.storage import StorageUnavailable
from server.store import media as store

log = logging.getLogger(__name__)

FILE_NAME_MAX = 255
NOT_ACCEPTED = f"is not a format we accept ({ACCEPTED})"
VIDEO_UNAVAILABLE = "video processing is not available on this server"


def spool_dir(ctx: Context) -> Path:
    path = Path(ctx.settings.media.spool_dir or ctx.settings.data_path / "uploads")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _mb(n: int) -> str:
    return f"{n / 1_048_576:g} MB"


def clean_file_name(name: str | None) -> str | None:
    """The client's file name, kept only as a label (never used to decide anything)."""
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1].replace("\x00", "").strip()
    return name[:FILE_NAME_MAX] or None


async def check_rate(ctx: Context, actor: Principal) -> None:
    await ctx.limit(f"media-upload:{actor.user_id}", ctx.settings.media.upload_rate, "uploads")


async def quota_left(ctx: Context, actor: Principal) -> int:
    return ctx.settings.media.quota_bytes - await store.bytes_used(ctx.db, actor.user_id)


class UploadLimits:
    """The byte limits of one upload: by type (once sniffed) and by the owner's quota."""

    def __init__(self, ctx: Context, quota_left: int) -> None:
        self.media = ctx.settings.media
        self.quota_left = quota_left
        self.sniffed: Sniffed | None = None

    def learn(self, head: bytes, *, final: bool = False) -> None:
        """Sniff the first bytes (422 at once when they are no format we take)."""
        if self.sniffed is None and (len(head) >= SNIFF_BYTES or final):
            self.sniffed = sniff(head)
            if self.sniffed is None:
                raise ValidationFailed.field("file", NOT_ACCEPTED)

    @property
    def type_limit(self) -> int:
        if self.sniffed is not None and self.sniffed.kind == "image":
            return self.media.max_image_bytes
        return self.media.max_video_bytes

    def check(self, size: int) -> None:
        """413 as soon as `size` bytes are more than this upload may hold."""
        if size > self.type_limit:
            kind = self.sniffed.kind + "s" if self.sniffed else "uploads"
            raise PayloadTooLarge(f"{kind.capitalize()} are limited to {_mb(self.type_limit)}.")
        if size > self.quota_left:
            raise PayloadTooLarge(
                f"Your media storage quota ({_mb(self.media.quota_bytes)}) is full; "
                "delete media you no longer use."
            )


@dataclass
class Received:
    """An upload fully received into a spool file (deleted once accepted or refused)."""

    path: Path
    size: int
    file_name: str | None
    sniffed: Sniffed
    upload_id: uuid.UUID | None = None  # the resumable upload it completes


class SpooledUpload:
    """An upload being received: bytes go to a spool file as they arrive (never held in
    memory), checked against the limits on the way."""

    def __init__(self, ctx: Context, limits: UploadLimits, file_name: str | None = None) -> None:
        self.ctx = ctx
        self.limits = limits
        self.file_name = clean_file_name(file_name)
        self.path = spool_dir(ctx) / f"{new_id()}.part"
        self.size = 0
        self._head = b""
        self._file = self.path.open("wb")

    def write(self, chunk: bytes) -> None:
        if len(self._head) < SNIFF_BYTES:
            self._head += chunk[: SNIFF_BYTES - len(self._head)]
            self.limits.learn(self._head)
        self.size += len(chunk)
        self.limits.check(self.size)
        self._file.write(chunk)

    def finish(self) -> Received:
        self._file.close()
        if self.size == 0:
            raise ValidationFailed.field("file", "is empty")
        self.limits.learn(self._head, final=True)
        assert self.limits.sniffed is not None  # learn(final=True) sniffed or refused
        return Received(self.path, self.size, self.file_name, self.limits.sniffed)

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def validate(ctx: Context, path: Path, sniffed: Sniffed) -> dict[str, Any]:
    """Decode (image) or probe (video) the whole file; 422 naming why it is refused. Returns
    what is known of it before processing (dimensions, duration)."""
    media = ctx.settings.media
    if sniffed.kind == "image":
        if sniffed.content_type == "image/heic" and not images.HEIF_SUPPORTED:
            raise ValidationFailed.field("file", "HEIC images are not supported on this server")
        try:
            info = await run_cpu(images.validate_image, path, max_pixels=media.max_image_pixels)
        except images.ImageRejected as exc:
            raise ValidationFailed.field("file", exc.reason) from None
        return {"width": info.width, "height": info.height, "duration_s": None}
    try:
        video = optional_module("video")
    except ImportError:
        raise ValidationFailed.field("file", VIDEO_UNAVAILABLE) from None
    try:
        probed = await run_cpu(
            video.probe_video,
            path,
            max_duration_s=media.max_video_duration_s,
            max_pixels=media.max_video_pixels,
        )
    except video.VideoRejected as exc:
        raise ValidationFailed.field("file", exc.reason) from None
    return {"width": probed.width, "height": probed.height, "duration_s": probed.duration_s}


async def accept(ctx: Context, actor: Principal, upload: Received) -> dict[str, Any]:
    """Validate a fully received upload, store it privately and queue its processing; the
    new media (status `processing`). The spool file is gone afterwards either way."""
    try:
        known = await validate(ctx, upload.path, upload.sniffed)
        return await _store(ctx, actor, upload, known)
    finally:
        with contextlib.suppress(FileNotFoundError):
            upload.path.unlink()


async def _store(ctx: Context, actor: Principal, upload: Received, known: dict) -> dict[str, Any]:
    sniffed = upload.sniffed
    media_id = new_id()
    source_key = f"incoming/{media_id}"
    try:
        await ctx.storage.put_file(source_key, upload.path, sniffed.content_type)
    except StorageUnavailable:
        log.warning("media storage unavailable", exc_info=True)
        raise ServiceUnavailable("Media storage is unavailable; try again shortly.") from None
    now = ctx.clock.now()
    try:
        async with ctx.db.transaction() as tx:
            await store.lock_owner_quota(tx, actor.user_id)
            if upload.upload_id is not None:  # its reservation becomes the media's
                await store.delete_upload(tx, upload.upload_id)
            used = await store.bytes_used(tx, actor.user_id)
            UploadLimits(ctx, ctx.settings.media.quota_bytes - used).check(upload.size)
            row = await store.insert(
                tx,
                id=media_id,
                owner_id=actor.user_id,
                media_type=sniffed.kind,
                content_type=sniffed.content_type,
                byte_size=upload.size,
                file_name=upload.file_name,
                source_key=source_key,
                purge_after=now + timedelta(seconds=ctx.settings.media.unattached_ttl_s),
                now=now,
                **known,
            )
            await enqueue(tx, "media.process", {"media_id": str(media_id)})
    except BaseException:
        with contextlib.suppress(Exception):
            await ctx.storage.delete([source_key])
        raise
    return media_view(ctx, row)


async def get_media(ctx: Context, actor: Principal, media_id: uuid.UUID) -> dict[str, Any]:
    """One of your uploads: its processing status and, once ready, its URLs."""
    return media_view(ctx, await access.access_own_media(ctx, ctx.db, actor, media_id))
