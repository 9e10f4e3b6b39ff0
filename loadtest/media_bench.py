"""Media benchmarks (issue 11): server memory while a 100 MB upload streams in, processing time
of a 12-megapixel JPEG (and, where the build has video processing, of a 30 s 1080p clip), and
the gateway's heartbeat round trip while 20 uploads run at once.

    python -m loadtest.media_bench [--database-url URL] [--uploads 20] [--skip-video]

The server is `python -m server serve` in its own process (the real app, local storage under
var/loadtest-media, the in-process job worker on so uploads are processed while measured);
image / video processing times are measured in this process on the same functions the job runs.
Results go to stdout and var/loadtest/media-<run>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from PIL import Image

from loadtest.harness import (
    DEFAULT_DATABASE_URL,
    ROOT,
    Report,
    ServerProcess,
    bulk_users,
    ensure_database,
    free_port,
    new_secret,
    percentile,
    run_id,
    server_env,
)

MB = 1024 * 1024
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
DATA_DIR = ROOT / "var" / "loadtest-media"


def photo_12mp() -> bytes:
    """A 4000x3000 JPEG with texture (noise over a gradient), as a phone camera makes."""
    base = Image.linear_gradient("L").resize((4000, 3000)).convert("RGB")
    noise = Image.effect_noise((4000, 3000), 40).convert("RGB")
    out = io.BytesIO()
    Image.blend(base, noise, 0.5).save(out, "JPEG", quality=92)
    return out.getvalue()


async def _stream_body(total: int, head: bytes):
    yield head
    sent = len(head)
    chunk = os.urandom(MB)
    while sent < total:
        piece = chunk[: min(MB, total - sent)]
        sent += len(piece)
        yield piece


async def rss_during_upload(server: ServerProcess, token: str, size: int) -> dict[str, Any]:
    """Stream `size` bytes through the resumable endpoint (one PATCH) while sampling the
    server's RSS every 20 ms. The body starts like an MP4 so the 100 MB video limit applies;
    the server refuses it once complete (it is not a decodable video) — the memory while
    receiving is what is measured."""
    headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    samples: list[int] = []
    baseline = server.rss()
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append(server.rss())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/api/media/uploads", headers={**headers, "Upload-Length": str(size)}
        ) as resp:
            assert resp.status == 201, await resp.text()
            location = resp.headers["Location"]
        async with http.patch(
            server.url + location,
            data=_stream_body(size, MP4_HEAD),
            headers={
                **headers,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(size),
            },
        ) as resp:
            status = resp.status
    elapsed = time.perf_counter() - started
    stop.set()
    await sampler
    return {
        "bytes": size,
        "final_status": status,
        "seconds": round(elapsed, 2),
        "rss_before_mb": round(baseline / MB, 1),
        "rss_peak_mb": round(max(samples) / MB, 1),
        "rss_growth_mb": round((max(samples) - baseline) / MB, 1),
    }


def image_processing(data: bytes, rounds: int) -> dict[str, Any]:
    from server.media import images

    times_validate, times_variants = [], []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src.jpg"
        src.write_bytes(data)
        for n in range(rounds):
            t0 = time.perf_counter()
            images.validate_image(src, max_pixels=50_000_000)
            t1 = time.perf_counter()
            images.render_variants(src, Path(tmp) / f"out{n}", max_pixels=50_000_000)
            t2 = time.perf_counter()
            times_validate.append(t1 - t0)
            times_variants.append(t2 - t1)
    return {
        "bytes": len(data),
        "validate_s_best": round(min(times_validate), 2),
        "variants_s_best": round(min(times_variants), 2),
        "variants_s_worst": round(max(times_variants), 2),
        "rounds": rounds,
    }


def video_processing() -> dict[str, Any]:
    """A 30 s 1080p H.264 clip (made with PyAV) into every rendition."""
    try:
        import av

        from server.media import optional_module

        video = optional_module("video")
    except ImportError:
        return {"skipped": "this build has no video processing"}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.mp4"
        base = Image.linear_gradient("L").resize((1920, 1080)).convert("RGB")
        with av.open(str(src), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=30)
            stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
            for n in range(30 * 30):
                frame = av.VideoFrame.from_image(base.rotate(n % 360))
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        t0 = time.perf_counter()
        result = video.transcode_video(src, Path(tmp) / "out")
        elapsed = time.perf_counter() - t0
    return {
        "source_bytes": src.stat().st_size if src.exists() else None,
        "renditions": [r.height for r in result.renditions],
        "transcode_s": round(elapsed, 1),
    }


async def heartbeat_rtts(url: str, token: str, stop: asyncio.Event, every_s: float) -> list[float]:
    """Heartbeat round trips (ms) on one gateway socket until `stop`."""
    rtts: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.receive()  # hello
        await ws.send_bytes(orjson.dumps({"op": "identify", "d": {"token": token}}))
        while (orjson.loads((await ws.receive()).data)).get("op") != "ready":
            pass
        while not stop.is_set():
            sent = time.perf_counter()
            await ws.send_str(orjson.dumps({"op": "heartbeat"}).decode())
            while True:
                frame = orjson.loads((await ws.receive()).data)
                if frame.get("op") == "heartbeat_ack":
                    break
            rtts.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(every_s)
    return rtts


async def upload_once(http: aiohttp.ClientSession, base: str, token: str, data: bytes) -> float:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="photo.jpg", content_type="image/jpeg")
    started = time.perf_counter()
    async with http.post(
        f"{base}/api/media", data=form, headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        assert resp.status == 201, await resp.text()
    return time.perf_counter() - started


async def heartbeat_under_uploads(
    server: ServerProcess, tokens: list[str], photo: bytes, uploads: int
) -> dict[str, Any]:
    ws_url = server.url.replace("http", "ws") + "/api/gateway/ws"
    stop = asyncio.Event()
    idle = asyncio.create_task(heartbeat_rtts(ws_url, tokens[0], stop, 0.05))
    await asyncio.sleep(3)
    stop.set()
    idle_rtts = await idle

    stop = asyncio.Event()
    busy = asyncio.create_task(heartbeat_rtts(ws_url, tokens[0], stop, 0.05))
    await asyncio.sleep(0.5)
    started = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        times = await asyncio.gather(
            *(upload_once(http, server.url, tokens[1 + i], photo) for i in range(uploads))
        )
    upload_wall = time.perf_counter() - started
    await asyncio.sleep(2)  # processing jobs (in-process worker) keep running meanwhile
    stop.set()
    busy_rtts = await busy
    return {
        "uploads": uploads,
        "upload_bytes_each": len(photo),
        "all_uploads_wall_s": round(upload_wall, 2),
        "upload_p50_s": round(percentile(times, 50), 2),
        "upload_max_s": round(max(times), 2),
        "heartbeat_idle_p50_ms": round(percentile(idle_rtts, 50), 2),
        "heartbeat_idle_p99_ms": round(percentile(idle_rtts, 99), 2),
        "heartbeat_busy_p50_ms": round(percentile(busy_rtts, 50), 2),
        "heartbeat_busy_p99_ms": round(percentile(busy_rtts, 99), 2),
        "heartbeat_busy_max_ms": round(max(busy_rtts), 2),
        "heartbeats_busy": len(busy_rtts),
    }


async def run(args: argparse.Namespace) -> Report:
    report = Report("media", {"uploads": args.uploads, "database_url": args.database_url})
    ensure_database(args.database_url)
    secret = new_secret()
    users = await bulk_users(args.database_url, args.uploads + 1, secret)
    tokens = [token for _, token in users]
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    # Heartbeats every 50 ms: far above the default per-socket frame budget.
    env = server_env(args.database_url, secret, {"frame_budget": 1_000_000})
    env.update(
        {
            "NEXGATE_SERVER_DATA_DIR": str(DATA_DIR),
            "NEXGATE_JOBS_IN_PROCESS_WORKER": "true",
            "NEXGATE_RATE_LIMITS_API": "1000000/3600",
            "NEXGATE_MEDIA_UPLOAD_RATE": "100000/3600",
            "NEXGATE_MEDIA_QUOTA_BYTES": str(50 * 1024 * MB),
        }
    )
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    server = ServerProcess("server", free_port(), env, DATA_DIR / "server.log")
    try:
        await server.wait_ready()
        report.results["rss_10mb_upload"] = await rss_during_upload(server, tokens[0], 10 * MB)
        report.results["rss_100mb_upload"] = await rss_during_upload(server, tokens[0], 100 * MB)
        photo = photo_12mp()
        report.results["jpeg_12mp"] = await asyncio.to_thread(image_processing, photo, 3)
        report.results["concurrent_uploads"] = await heartbeat_under_uploads(
            server, tokens, photo, args.uploads
        )
        if not args.skip_video:
            report.results["video_30s_1080p"] = await asyncio.to_thread(video_processing)
    finally:
        server.stop()
    report.finish()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--skip-video", action="store_true")
    args = parser.parse_args(argv)
    random.seed(7)
    report = asyncio.run(run(args))
    print(report.table())
    out = ROOT / "var" / "loadtest" / f"media-{run_id()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report.as_dict(), indent=2, default=str))
    print(f"(saved {out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
