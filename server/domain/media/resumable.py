"""Resumable uploads for flaky mobile links: the tus 1.0 protocol (core, creation, termination).

Create an upload with its total length, append chunks at the offset the server holds, ask the
offset after a dropped connection (bytes received before the cut are kept), and the last chunk
turns it into a media exactly as a one-request upload (validated, stored, processed).

The bytes in flight live in this node's spool directory (media.spool_dir); a deployment of
several nodes routes an upload's requests to one node or shares that directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from server.domain.auth_tokens import Principal
from server.domain.context import Context
from server.domain.media import intake
from server.domain.media.lifecycle import upload_path
from server.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from server.ids import new_id
from server.media.sniffing import SNIFF_BYTES
from server.store import media as store
from server.store.db import Row

NO_UPLOAD = "No such upload (it may have expired)."
# One append at a time per upload (in this process; the offset check covers the rest).
_locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class UploadState:
    id: uuid.UUID
    offset: int
    length: int
    expires_at: Any
    media: dict[str, Any] | None = None  # set by the append that completed it


def _offset(ctx: Context, upload_id: uuid.UUID) -> int:
    try:
        return upload_path(ctx, upload_id).stat().st_size
    except FileNotFoundError:
        return 0


async def _own(ctx: Context, actor: Principal, upload_id: uuid.UUID) -> Row:
    row = await store.get_upload(ctx.db, upload_id)
    if row is None or row["owner_id"] != actor.user_id or row["expires_at"] <= ctx.clock.now():
        raise NotFound(NO_UPLOAD)
    return row


async def create_upload(
    ctx: Context, actor: Principal, length: int, file_name: str | None
) -> UploadState:
    """Reserve an upload of `length` bytes (413 past the video limit or the quota)."""
    media = ctx.settings.media
    if length < 1:
        raise ValidationFailed.field("Upload-Length", "must be a positive number of bytes")
    if length > media.max_video_bytes:
        raise PayloadTooLarge(f"Uploads are limited to {media.max_video_bytes / 1_048_576:g} MB.")
    await intake.check_rate(ctx, actor)
    now = ctx.clock.now()
    upload_id = new_id()
    async with ctx.db.transaction() as tx:
        await store.lock_owner_quota(tx, actor.user_id)
        used = await store.bytes_used(tx, actor.user_id)
        intake.UploadLimits(ctx, media.quota_bytes - used).check(length)
        row = await store.insert_upload(
            tx,
            id=upload_id,
            owner_id=actor.user_id,
            upload_length=length,
            file_name=intake.clean_file_name(file_name),
            now=now,
            expires_at=now + timedelta(seconds=media.resumable_ttl_s),
        )
        upload_path(ctx, upload_id).touch()
    return UploadState(upload_id, 0, length, row["expires_at"])


async def upload_state(ctx: Context, actor: Principal, upload_id: uuid.UUID) -> UploadState:
    row = await _own(ctx, actor, upload_id)
    return UploadState(upload_id, _offset(ctx, upload_id), row["upload_length"], row["expires_at"])


async def terminate(ctx: Context, actor: Principal, upload_id: uuid.UUID) -> None:
    await _own(ctx, actor, upload_id)
    await _drop(ctx, upload_id)


async def _drop(ctx: Context, upload_id: uuid.UUID) -> None:
    await store.delete_upload(ctx.db, upload_id)
    with contextlib.suppress(FileNotFoundError):
        upload_path(ctx, upload_id).unlink()


async def append(
    ctx: Context,
    actor: Principal,
    upload_id: uuid.UUID,
    offset: int,
    chunks: AsyncIterator[bytes],
) -> UploadState:
    """Append the bytes of `chunks` at `offset` (409 unless it is the server's offset). Bytes
    received before a dropped connection are kept. The append that completes the upload
    returns the new media."""
    row = await _own(ctx, actor, upload_id)
    lock = _locks.setdefault(upload_id, asyncio.Lock())
    if lock.locked():
        raise Conflict("Another request is appending to this upload.")
    async with lock:
        path = upload_path(ctx, upload_id)
        current = _offset(ctx, upload_id)
        if offset != current:
            raise Conflict(f"Upload-Offset is {offset}; the server has {current} bytes.")
        length = row["upload_length"]
        limits = intake.UploadLimits(ctx, quota_left=length)
        with path.open("ab") as out:
            async for chunk in chunks:
                if current + len(chunk) > length:
                    raise ValidationFailed.field(
                        "body", f"goes past Upload-Length ({length} bytes)"
                    )
                out.write(chunk)
                current += len(chunk)
                if current >= SNIFF_BYTES and limits.sniffed is None:
                    out.flush()
                    await _check_type(ctx, upload_id, limits, length)
        if current < length:
            return UploadState(upload_id, current, length, row["expires_at"])
        await _check_type(ctx, upload_id, limits, length, final=True)
        sniffed = limits.sniffed
        assert sniffed is not None
        received = intake.Received(path, length, row["file_name"], sniffed, upload_id)
        try:
            media = await intake.accept(ctx, actor, received)
        except BaseException:
            await _drop(ctx, upload_id)
            raise
        return UploadState(upload_id, length, length, row["expires_at"], media)


async def _check_type(
    ctx: Context, upload_id: uuid.UUID, limits: intake.UploadLimits, length: int, *, final=False
) -> None:
    """Once the first bytes are in: refuse a format we do not take, or an image whose
    declared length is past the image limit, before the rest is sent."""
    with upload_path(ctx, upload_id).open("rb") as f:
        head = f.read(SNIFF_BYTES)
    try:
        limits.learn(head, final=final)
        limits.check(length)
    except (ValidationFailed, PayloadTooLarge):
        await _drop(ctx, upload_id)
        raise
