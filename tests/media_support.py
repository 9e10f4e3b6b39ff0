"""Helpers of the media tests: real image files made with Pillow (with EXIF orientation and
GPS, alpha, animation, a crafted decompression bomb), uploads over HTTP, and the processing
jobs run on demand."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

from aiohttp import FormData
from PIL import Image

from tests.helpers import User
from tests.notifications_support import run_jobs

# Uploads processed when the test says (run_jobs), limits a test does not hit by accident.
MEDIA_SETTINGS: dict[str, dict[str, Any]] = {
    "jobs": {"in_process_worker": False, "retry_base_s": 1},
    "rate_limits": {"api": "100000/3600", "message": "10000/3600"},
    "media": {"upload_rate": "1000/3600"},
}

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def gradient(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A picture with detail (so encoders and the blurhash have something to work on)."""
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            ((x * 255) // width, (y * 255) // height, 128)
            for y in range(height)
            for x in range(width)
        ]
    )
    return image.convert(mode)


def jpeg_with_exif(width: int = 400, height: int = 200, orientation: int = 6) -> bytes:
    """A JPEG stored `width`x`height` with an EXIF orientation (6: shown rotated 90°, i.e.
    `height`x`width`), a camera model and a GPS position."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x0110] = "SpyCam 3000"  # Model
    exif[GPS_IFD] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}
    out = io.BytesIO()
    gradient(width, height).save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def encoded(fmt: str, width: int = 320, height: int = 240, **save: Any) -> bytes:
    mode = "RGBA" if fmt in ("PNG", "WEBP") else "RGB"
    out = io.BytesIO()
    gradient(width, height, mode).save(out, fmt, **save)
    return out.getvalue()


def animated_gif(frames: int = 3) -> bytes:
    images = [gradient(120, 80).rotate(i * 30) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = 100_000) -> bytes:
    """A tiny PNG that claims `side`x`side` pixels (10 gigapixels by default): decoding it
    would take tens of gigabytes."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    row = b"\x00" + b"\x00" * side
    idat = zlib.compress(row * 16, 9)  # a few rows; the rest never comes
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def form(data: bytes, filename: str = "photo.jpg", content_type: str = "image/jpeg") -> FormData:
    body = FormData()
    body.add_field("file", data, filename=filename, content_type=content_type)
    return body


async def upload(client, user: User, data: bytes, filename: str = "photo.jpg", **kw: Any):
    return await client.post("/api/media", data=form(data, filename, **kw), headers=user.auth)


async def upload_ok(client, user: User, data: bytes, filename: str = "photo.jpg") -> dict:
    resp = await upload(client, user, data, filename)
    assert resp.status == 201, await resp.text()
    media = await resp.json()
    assert media["status"] == "processing"
    return media


async def get_media(client, user: User, media_id: str) -> dict:
    resp = await client.get(f"/api/media/{media_id}", headers=user.auth)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def ready_media(client, user: User, data: bytes, filename: str = "photo.jpg") -> dict:
    """Upload, run the processing job, and return the ready media."""
    media = await upload_ok(client, user, data, filename)
    await run_jobs(client)
    media = await get_media(client, user, media["id"])
    assert media["status"] == "ready", media
    return media


def path_of(url: str) -> str:
    """The server-relative part of a media URL (the tests' server is not on public_url)."""
    return url[url.index("/media/") :]


async def fetch(client, url: str, **kw: Any):
    return await client.get(path_of(url), **kw)


async def fetch_image(client, url: str) -> Image.Image:
    resp = await fetch(client, url)
    assert resp.status == 200, await resp.text()
    image = Image.open(io.BytesIO(await resp.read()))
    image.load()
    return image
