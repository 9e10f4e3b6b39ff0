"""Uploads through POST /api/media: each image format, the processing job's variants (sizes,
WebP + JPEG, blurhash, EXIF stripped and orientation applied), every refusal (wrong magic,
truncated, bomb, oversize mid-stream, quota, rate) and how the files are served."""

from __future__ import annotations

import asyncio
import importlib.util
import io
from pathlib import Path

import pytest
from PIL import Image

from server.media import images
from tests.helpers import expect_problem
from tests.media_support import (
    MEDIA_SETTINGS,
    encoded,
    fetch,
    fetch_image,
    get_media,
    gradient,
    jpeg_with_exif,
    png_bomb,
    ready_media,
    upload,
    upload_ok,
)
from tests.messaging_support import gateway, next_of
from tests.notifications_support import run_jobs

pytestmark = pytest.mark.app_settings(**MEDIA_SETTINGS)


def stored_files(settings) -> list[Path]:
    root = settings.data_path / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_a_photo_is_processed_into_every_variant_without_its_exif(client, alice):
    gw = await gateway(client, alice)
    try:
        media = await upload_ok(client, alice, jpeg_with_exif(400, 200, orientation=6))
        assert media["media_type"] == "image" and media["content_type"] == "image/jpeg"
        assert media["url"] is None and media["sizes"] == {}
        await run_jobs(client)
        event = await next_of(gw, "media.ready")
    finally:
        await gw.close()
    assert event.data["media"]["id"] == media["id"]
    media = await get_media(client, alice, media["id"])
    # Stored 400x200 with "rotate 90°": shown (and served) 200x400.
    assert (media["width"], media["height"]) == (200, 400)
    assert media["status"] == "ready" and 20 <= len(media["blurhash"]) <= 40
    sizes = media["sizes"]
    assert set(sizes) == {"thumbnail", "medium", "large", "original"}
    assert (sizes["thumbnail"]["width"], sizes["thumbnail"]["height"]) == (150, 150)
    for name in ("medium", "large", "original"):  # never upscaled
        assert (sizes[name]["width"], sizes[name]["height"]) == (200, 400)
    for name, size in sizes.items():
        for fmt, key in (("WEBP", "webp_url"), ("JPEG", "jpeg_url")):
            image = await fetch_image(client, size[key])
            assert image.format == fmt and image.size == (size["width"], size["height"]), name
            assert len(image.getexif()) == 0 and "exif" not in image.info, f"{name} {fmt}"
            raw = await (await fetch(client, size[key])).read()
            assert b"SpyCam" not in raw and b"Exif" not in raw
    # The original is upright: its top rows are what was the left column before rotation.
    original = await fetch_image(client, sizes["original"]["jpeg_url"])
    assert original.size == (200, 400)
    assert media["url"] == sizes["large"]["jpeg_url"]
    assert media["thumbnail_url"] == sizes["thumbnail"]["jpeg_url"]


async def test_large_images_get_the_spec_sizes(client, alice):
    media = await ready_media(client, alice, encoded("PNG", 2000, 1500), "big.png")
    sizes = media["sizes"]
    assert (sizes["thumbnail"]["width"], sizes["thumbnail"]["height"]) == (150, 150)
    assert (sizes["medium"]["width"], sizes["medium"]["height"]) == (600, 450)
    assert (sizes["large"]["width"], sizes["large"]["height"]) == (1200, 900)
    assert (sizes["original"]["width"], sizes["original"]["height"]) == (2000, 1500)
    large = await fetch_image(client, sizes["large"]["webp_url"])
    assert large.size == (1200, 900)


@pytest.mark.parametrize(
    ("fmt", "content_type", "save"),
    [
        ("JPEG", "image/jpeg", {}),
        ("PNG", "image/png", {}),
        ("WEBP", "image/webp", {}),
        ("GIF", "image/gif", {}),
        pytest.param(
            "HEIF",
            "image/heic",
            {},
            marks=pytest.mark.skipif(not images.HEIF_SUPPORTED, reason="no pillow-heif wheel"),
        ),
    ],
)
async def test_each_image_format_is_recognised_by_content_not_name(
    client, alice, fmt, content_type, save
):
    # Named and typed as something else: the bytes decide.
    resp = await upload(
        client, alice, encoded(fmt, **save), "holiday.txt", content_type="text/plain"
    )
    assert resp.status == 201, await resp.text()
    media = await resp.json()
    assert media["content_type"] == content_type and media["file_name"] == "holiday.txt"
    await run_jobs(client)
    media = await get_media(client, alice, media["id"])
    assert media["status"] == "ready" and (media["width"], media["height"]) == (320, 240)


async def test_transparent_images_keep_alpha_in_webp_and_get_a_white_jpeg(client, alice):
    image = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    out = io.BytesIO()
    image.save(out, "PNG")
    media = await ready_media(client, alice, out.getvalue(), "clear.png")
    webp = await fetch_image(client, media["sizes"]["original"]["webp_url"])
    jpeg = await fetch_image(client, media["sizes"]["original"]["jpeg_url"])
    assert webp.mode == "RGBA" and webp.getpixel((10, 10))[3] == 0
    assert jpeg.convert("RGB").getpixel((10, 10)) == (255, 255, 255)


async def test_an_animated_gif_is_served_as_its_first_frame(client, alice):
    frames = [gradient(120, 80).rotate(i * 30) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    media = await ready_media(client, alice, out.getvalue(), "anim.gif")
    assert media["content_type"] == "image/gif"
    assert (media["width"], media["height"]) == (120, 80)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"just some text pretending to be a JPEG" * 10, "not a format we accept"),
        (b"%PDF-1.7\n" + b"0" * 200, "not a format we accept"),
        (jpeg_with_exif()[:1500], "truncated or corrupt"),
        (encoded("PNG")[:300], "truncated or corrupt"),
        (png_bomb(), "megapixels"),
        (b"", "empty"),
    ],
    ids=["text", "pdf", "truncated-jpeg", "truncated-png", "bomb", "empty"],
)
async def test_bad_files_are_refused_naming_why_and_nothing_is_kept(
    client, alice, settings, data, reason
):
    resp = await upload(client, alice, data, "photo.jpg")
    problem = await expect_problem(resp, 422)
    assert reason in problem["detail"], problem
    assert problem["errors"]["file"]
    assert stored_files(settings) == []
    assert not any((settings.data_path / "uploads").glob("*.part"))


@pytest.mark.parametrize("overrides", [{"media": {"max_image_pixels": 1_000_000}}])
async def test_the_pixel_limit_is_configurable(client, alice):
    problem = await expect_problem(await upload(client, alice, encoded("PNG", 1200, 1000)), 422)
    assert "1200x1000 is more than 1 megapixels" in problem["detail"]


@pytest.mark.skipif(
    importlib.util.find_spec("server.media.video") is not None,
    reason="this build processes videos (tested in the video tests)",
)
async def test_videos_are_refused_clearly_where_video_processing_is_missing(client, alice):
    mp4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 100
    problem = await expect_problem(await upload(client, alice, mp4, "clip.mp4"), 422)
    assert "video processing is not available on this server" in problem["detail"]


async def test_missing_file_part_and_wrong_body_type_are_refused(client, alice):
    resp = await client.post("/api/media", json={"file": "abc"}, headers=alice.auth)
    await expect_problem(resp, 415)
    from aiohttp import FormData

    body = FormData()
    body.add_field("caption", "hello")
    body.add_field("file", b"x", filename="x.jpg")
    problem = await expect_problem(
        await client.post("/api/media", data=body, headers=alice.auth), 422
    )
    assert "file" in problem["errors"]


async def _raw_upload(client, token: str, declared: int, head: bytes, send: int) -> bytes:
    """POST a multipart body announcing `declared` bytes, send only `send` of them, and read
    what the server answers while the client is still 'sending'."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    boundary = "b0undary"
    preamble = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    writer.write(
        (
            f"POST /api/media HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        ).encode()
        + preamble
        + head
    )
    sent = len(head)
    chunk = b"\x55" * 65536
    try:
        while sent < send:
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    try:
        async with asyncio.timeout(10):
            answer = await reader.read(4096)
    finally:
        writer.close()
    return answer


async def test_an_oversize_image_is_refused_as_soon_as_it_passes_10_mb(client, alice, settings):
    head = jpeg_with_exif()[:200]
    # Announces 60 MB (under the video limit), sends 11 MB and waits: 413 arrives before the
    # client has sent the rest.
    answer = await _raw_upload(client, alice.token, 60 * 1024 * 1024, head, 11 * 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"application/problem+json" in answer and b"limited to 10 MB" in answer
    assert stored_files(settings) == []


async def test_a_declared_length_over_every_limit_is_refused_before_reading(client, alice):
    answer = await _raw_upload(client, alice.token, 500 * 1024 * 1024, b"", 0)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


@pytest.mark.parametrize("overrides", [{"media": {"quota_bytes": 120_000}}])
async def test_the_quota_refuses_what_does_not_fit(client, alice, bob):
    big = jpeg_with_exif(1600, 1200)
    assert 60_000 < len(big) < 120_000
    await upload_ok(client, alice, big)
    problem = await expect_problem(await upload(client, alice, big), 413)
    assert "quota" in problem["detail"]
    await upload_ok(client, bob, big)  # per user


@pytest.mark.parametrize("overrides", [{"media": {"upload_rate": "2/3600"}}])
async def test_uploads_are_rate_limited_per_user(client, alice, bob):
    for _ in range(2):
        await upload_ok(client, alice, encoded("PNG", 16, 16))
    resp = await upload(client, alice, encoded("PNG", 16, 16))
    await expect_problem(resp, 429)
    assert int(resp.headers["Retry-After"]) >= 1
    await upload_ok(client, bob, encoded("PNG", 16, 16))


async def test_only_the_uploader_sees_the_upload_record(client, alice, bob):
    media = await upload_ok(client, alice, encoded("PNG", 16, 16))
    await expect_problem(await client.get(f"/api/media/{media['id']}", headers=bob.auth), 404)
    await expect_problem(await client.get(f"/api/media/{media['id']}"), 401)


async def test_files_are_served_immutable_with_etag_and_range(client, alice, settings):
    media = await ready_media(client, alice, encoded("PNG", 300, 300))
    url = media["sizes"]["original"]["jpeg_url"]
    resp = await fetch(client, url)
    assert resp.status == 200 and resp.content_type == "image/jpeg"
    assert "immutable" in resp.headers["Cache-Control"]
    assert "max-age=31536000" in resp.headers["Cache-Control"]
    body = await resp.read()
    etag = resp.headers["ETag"]
    again = await fetch(client, url, headers={"If-None-Match": etag})
    assert again.status == 304
    part = await fetch(client, url, headers={"Range": "bytes=10-109"})
    assert part.status == 206 and await part.read() == body[10:110]
    assert part.headers["Content-Range"] == f"bytes 10-109/{len(body)}"
    # Uploads waiting for processing, other paths and traversal are never served.
    for path in (
        f"/media/incoming/{media['id']}",
        "/media/m/nope/original.jpg",
        "/media/m/../jwt-secret",
        "/media/..%2Fjwt-secret",
    ):
        assert (await client.get(path)).status == 404, path
