"""Video uploads through the pipeline: probed at upload, poster and HLS renditions made by the
`media.process` job, the playlists served and their segments decodable (PyAV). Runs where the
build has video processing (server/media/video.py and PyAV)."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from urllib.parse import urljoin

import pytest
from PIL import ImageChops

from tests.helpers import expect_problem
from tests.media_support import (
    MEDIA_SETTINGS,
    fetch_image,
    get_media,
    gradient,
    path_of,
    upload,
    upload_ok,
)
from tests.messaging_support import gateway, next_of, open_dm, send
from tests.notifications_support import run_jobs

pytestmark = [
    pytest.mark.app_settings(**MEDIA_SETTINGS),
    pytest.mark.skipif(
        importlib.util.find_spec("server.media.video") is None
        or importlib.util.find_spec("av") is None,
        reason="this build has no video processing",
    ),
]


def make_clip(path: Path, width: int, height: int, seconds: float = 2.0, fps: int = 24) -> bytes:
    """An H.264 MP4 made with PyAV: a gradient sliding sideways."""
    import av

    base = gradient(width, height)
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for n in range(int(seconds * fps)):
            picture = ImageChops.offset(base, n * 8, 0)
            for packet in video.encode(av.VideoFrame.from_image(picture)):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
    return path.read_bytes()


def playlist_uris(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


async def test_a_video_becomes_a_poster_and_a_playable_hls_ladder(client, alice, bob, tmp_path):
    import av

    data = make_clip(tmp_path / "clip.mp4", 1280, 720)
    gw = await gateway(client, alice)
    try:
        media = await upload_ok(client, alice, data, "clip.mp4")
        assert media["media_type"] == "video" and media["content_type"] == "video/mp4"
        assert (media["width"], media["height"]) == (1280, 720)
        assert 1.5 <= media["duration_s"] <= 2.5
        await run_jobs(client, timeout_s=600)
        event = await next_of(gw, "media.ready", wait_s=30)
    finally:
        await gw.close()
    media = await get_media(client, alice, media["id"])
    assert event.data["media"]["id"] == media["id"] and media["status"] == "ready"
    poster = await fetch_image(client, media["poster"]["jpeg_url"])
    assert poster.format == "JPEG" and poster.size[0] > 0
    assert media["thumbnail_url"] == media["poster"]["jpeg_url"]

    # Only the renditions the 720p source reaches.
    heights = sorted(r["height"] for r in media["hls"]["renditions"])
    assert heights == [480, 720]
    master_path = path_of(media["hls"]["master_url"])
    resp = await client.get(master_path)
    assert resp.status == 200
    master = await resp.text()
    assert master.startswith("#EXTM3U") and "#EXT-X-STREAM-INF" in master
    variants = playlist_uris(master)
    assert len(variants) == 2
    for variant in variants:
        playlist_path = urljoin(master_path, variant)
        text = await (await client.get(playlist_path)).text()
        assert "#EXT-X-ENDLIST" in text
        segments = playlist_uris(text)
        assert segments
        first = await client.get(urljoin(playlist_path, segments[0]))
        assert first.status == 200
        with av.open(io.BytesIO(await first.read())) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            frame = next(container.decode(video=0))
            assert frame.height in (480, 720)

    # A video message shows the playlist and the poster.
    conversation_id = await open_dm(client, alice, bob)
    message = await send(
        client, alice, conversation_id, "", message_type="video", media_ids=[media["id"]]
    )
    assert message["message_type"] == "video"
    assert message["media"][0]["media_url"] == media["hls"]["master_url"]
    assert message["media"][0]["thumbnail_url"] == media["poster"]["jpeg_url"]


async def test_truncated_and_fake_videos_are_refused(client, alice, tmp_path):
    data = make_clip(tmp_path / "clip.mp4", 320, 240, seconds=1)
    problem = await expect_problem(await upload(client, alice, data[: len(data) // 3]), 422)
    assert problem["errors"]["file"]
    fake = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 4000
    await expect_problem(await upload(client, alice, fake, "clip.mp4"), 422)
