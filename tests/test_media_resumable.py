"""Resumable uploads (tus 1.0: core, creation, termination) at /api/media/uploads: chunks at
offsets, the offset learnt after a dropped connection, resuming, and the same refusals as a
one-request upload."""

from __future__ import annotations

import asyncio
import base64
import io
import os

import pytest
from PIL import Image

from tests.helpers import expect_problem
from tests.media_support import MEDIA_SETTINGS, fetch_image, get_media, jpeg_with_exif
from tests.notifications_support import run_jobs

pytestmark = pytest.mark.app_settings(**MEDIA_SETTINGS)
TUS = {"Tus-Resumable": "1.0.0"}
CHUNK_TYPE = {"Content-Type": "application/offset+octet-stream"}


def noisy_png(side: int = 400) -> bytes:
    """A PNG that does not compress (about 3 bytes a pixel)."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


async def create(client, user, length: int, name: str = "photo.png") -> str:
    meta = "filename " + base64.b64encode(name.encode()).decode()
    resp = await client.post(
        "/api/media/uploads",
        headers={**user.auth, **TUS, "Upload-Length": str(length), "Upload-Metadata": meta},
    )
    assert resp.status == 201, await resp.text()
    assert resp.headers["Tus-Resumable"] == "1.0.0" and resp.headers["Upload-Offset"] == "0"
    return resp.headers["Location"]


async def offset_of(client, user, location: str) -> int:
    resp = await client.head(location, headers={**user.auth, **TUS})
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    return int(resp.headers["Upload-Offset"])


async def patch(client, user, location: str, offset: int, data: bytes):
    return await client.patch(
        location,
        data=data,
        headers={**user.auth, **TUS, **CHUNK_TYPE, "Upload-Offset": str(offset)},
    )


async def cut_patch(client, user, location: str, offset: int, data: bytes, send: int) -> None:
    """A PATCH whose connection drops after `send` of its `len(data)` bytes."""
    _reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(
        (
            f"PATCH {location} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {user.token}\r\n"
            "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Upload-Offset: {offset}\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode()
        + data[:send]
    )
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()  # the phone went into a tunnel


async def test_server_announces_tus_support(client):
    resp = await client.options("/api/media/uploads")
    assert resp.status == 204
    assert resp.headers["Tus-Version"] == "1.0.0"
    assert set(resp.headers["Tus-Extension"].split(",")) == {"creation", "termination"}
    assert int(resp.headers["Tus-Max-Size"]) == 100 * 1024 * 1024


async def test_an_upload_resumes_after_a_dropped_connection(client, alice):
    data = noisy_png()
    assert len(data) > 400_000
    location = await create(client, alice, len(data))
    resp = await patch(client, alice, location, 0, data[:100_000])
    assert resp.status == 204 and resp.headers["Upload-Offset"] == "100000"

    await cut_patch(client, alice, location, 100_000, data[100_000:], send=150_000)
    offset = 100_000
    for _ in range(50):  # the server notices the cut and keeps what it got
        offset = await offset_of(client, alice, location)
        if offset > 100_000:
            break
        await asyncio.sleep(0.05)
    assert 100_000 < offset <= 250_000

    # Resuming at a stale offset is refused; at the server's offset it completes.
    stale = await patch(client, alice, location, 100_000, data[100_000:])
    await expect_problem(stale, 409)
    assert stale.headers["Tus-Resumable"] == "1.0.0"
    done = await patch(client, alice, location, offset, data[offset:])
    assert done.status == 201, await done.text()
    assert done.headers["Upload-Offset"] == str(len(data))
    media = await done.json()
    assert done.headers["Upload-Media-Id"] == media["id"]
    assert media["status"] == "processing" and media["file_name"] == "photo.png"
    assert media["byte_size"] == len(data)

    await run_jobs(client)
    media = await get_media(client, alice, media["id"])
    assert media["status"] == "ready"
    original = await fetch_image(client, media["sizes"]["original"]["webp_url"])
    assert original.size == (400, 400)
    # The finished upload is gone from the resumable endpoint.
    assert (await client.head(location, headers={**alice.auth, **TUS})).status == 404


async def test_uploads_belong_to_their_creator_and_can_be_terminated(client, alice, bob):
    location = await create(client, alice, 1000)
    for method in ("HEAD", "PATCH", "DELETE"):
        resp = await client.request(
            method, location, headers={**bob.auth, **TUS, **CHUNK_TYPE, "Upload-Offset": "0"}
        )
        assert resp.status == 404, method
    resp = await client.delete(location, headers={**alice.auth, **TUS})
    assert resp.status == 204
    assert (await client.head(location, headers={**alice.auth, **TUS})).status == 404


async def test_resumable_uploads_are_refused_like_single_ones(client, alice):
    # Not a format we take: refused once the first bytes are in, and forgotten.
    location = await create(client, alice, 5000)
    problem = await expect_problem(
        await patch(client, alice, location, 0, b"MZ\x90\x00" + b"\x00" * 200), 422
    )
    assert "not a format we accept" in problem["detail"]
    assert (await client.head(location, headers={**alice.auth, **TUS})).status == 404

    # An image announced past the image limit: refused at its first bytes.
    location = await create(client, alice, 20 * 1024 * 1024)
    problem = await expect_problem(
        await patch(client, alice, location, 0, jpeg_with_exif()[:4096]), 413
    )
    assert "limited to 10 MB" in problem["detail"]

    # Past the video limit: refused at creation.
    resp = await client.post(
        "/api/media/uploads",
        headers={**alice.auth, **TUS, "Upload-Length": str(101 * 1024 * 1024)},
    )
    await expect_problem(resp, 413)

    # Truncated: refused when complete.
    data = jpeg_with_exif()[:2000]
    location = await create(client, alice, len(data))
    problem = await expect_problem(await patch(client, alice, location, 0, data), 422)
    assert "truncated or corrupt" in problem["detail"]

    # More bytes than announced, a wrong protocol version, a missing length.
    location = await create(client, alice, 100)
    await expect_problem(await patch(client, alice, location, 0, jpeg_with_exif()[:500]), 422)
    resp = await client.post("/api/media/uploads", headers={**alice.auth, "Upload-Length": "5"})
    await expect_problem(resp, 412)
    resp = await client.post("/api/media/uploads", headers={**alice.auth, **TUS})
    await expect_problem(resp, 422)
