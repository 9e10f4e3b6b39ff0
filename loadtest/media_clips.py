"""Synthetic video clips for the media benchmark and tests, made with PyAV (FFmpeg's `testsrc2`
pattern, which moves every frame, with a white box over its top-left quarter, and a sine
tone), so nothing is downloaded or checked in."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import av
import av.filter
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

Container = Literal["mp4", "mov", "webm"]


def _pull_all(graph_source: str, args: str, *, audio: bool) -> Iterator[VideoFrame | AudioFrame]:
    graph = av.filter.Graph()
    source = graph.add(graph_source, args)
    sink = graph.add("abuffersink" if audio else "buffersink")
    if audio:
        source.link_to(sink)
    else:
        # A white box over the top-left quarter: tests find it to check orientation.
        marker = graph.add("drawbox", "x=0:y=0:w=iw/4:h=ih/4:color=white:t=fill")
        pixel_format = graph.add("format", "yuv420p")
        source.link_to(marker)
        marker.link_to(pixel_format)
        pixel_format.link_to(sink)
    graph.configure()
    while True:
        try:
            yield sink.pull()
        except (av.error.EOFError, av.error.BlockingIOError):
            return


def write_clip(
    path: Path,
    *,
    container: Container = "mp4",
    width: int = 640,
    height: int = 360,
    seconds: float = 2.0,
    fps: int = 30,
    audio: bool = True,
    rotation: int = 0,
    faststart: bool = False,
) -> Path:
    """Write a clip: H.264 + AAC in MP4 / MOV, VP9 + Opus in WebM. `rotation` stores a display
    rotation (as phones do for portrait recordings) without turning the pixels; `faststart`
    puts the MP4 index before the media data (as streaming-ready files have it)."""
    options = {"movflags": "faststart"} if faststart and container != "webm" else {}
    with av.open(str(path), "w", format=container, options=options) as out:
        if container == "webm":  # VP9 in realtime mode: the quickest WebM encoder in the wheel
            video = out.add_stream(
                "libvpx-vp9",
                rate=fps,
                options={"deadline": "realtime", "cpu-used": "8", "row-mt": "1"},
            )
            video.bit_rate = 1_000_000
        else:
            video = out.add_stream(
                "libx264", rate=fps, options={"preset": "ultrafast", "crf": "28"}
            )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        sound = None
        if audio:
            sound = out.add_stream("libopus" if container == "webm" else "aac", rate=48000)
            sound.layout = "stereo"
        for frame in _pull_all(
            "testsrc2", f"size={width}x{height}:rate={fps}:duration={seconds}", audio=False
        ):
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            frame_size = sound.codec_context.frame_size or 1024
            resampler = av.AudioResampler(
                format=sound.format.name, layout="stereo", rate=48000, frame_size=frame_size
            )
            samples = 0
            for tone in _pull_all(
                "sine", f"frequency=440:sample_rate=48000:duration={seconds}", audio=True
            ):
                for chunk in resampler.resample(tone):
                    chunk.pts, samples = samples, samples + chunk.samples
                    out.mux(sound.encode(chunk))
            for chunk in resampler.resample(None):
                chunk.pts, samples = samples, samples + chunk.samples
                out.mux(sound.encode(chunk))
            out.mux(sound.encode(None))
    return path
