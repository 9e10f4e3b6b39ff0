"""HLS output for video transcoding: which renditions a source gets, and one rendition's
H.264 (+ AAC) encoders writing MPEG-TS segments and a VOD media playlist through FFmpeg's HLS
muxer. Used by server/media/video.py (transcode_video), which decodes the source once and
feeds every rendition."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

TS_TIME_BASE = Fraction(1, 90000)  # MPEG-TS's clock: any frame timing survives it
_AAC_CODECS = "mp4a.40.2"  # AAC-LC
# Peak video bit rate (kbit/s) per rendition short side: what a mobile link is asked to carry.
_MAXRATE_KBPS = ((480, 1400), (720, 3000), (1080, 6000))
# H.264 levels: (level_idc, max macroblocks per frame, max macroblocks per second).
_H264_LEVELS = (
    (30, 1620, 40500), (31, 3600, 108000), (32, 5120, 216000), (40, 8192, 245760),
    (42, 8704, 522240), (50, 22080, 589824), (51, 36864, 983040), (52, 36864, 2073600),
)  # fmt: skip


@dataclass(frozen=True)
class RenditionTarget:
    name: str  # "720p": the short side
    width: int
    height: int


def even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def plan_renditions(width: int, height: int, heights: Sequence[int]) -> list[RenditionTarget]:
    """The renditions of a `width` x `height` (display) source: each requested size its short
    side reaches, never above it; a source below them all gets one rendition of its own size."""
    short, long = min(width, height), max(width, height)
    sizes = sorted({h for h in heights if 0 < h <= short}) or [short]
    targets = []
    for size in sizes:
        side, other = even(size), even(long * size / short)
        w, h = (other, side) if width >= height else (side, other)
        targets.append(RenditionTarget(f"{side}p", w, h))
    return targets


def _h264_level(width: int, height: int, fps: float) -> int:
    per_frame = math.ceil(width / 16) * math.ceil(height / 16)
    for level, max_frame, max_rate in _H264_LEVELS:
        if per_frame <= max_frame and per_frame * fps <= max_rate:
            return level
    return _H264_LEVELS[-1][0]


def h264_encoder() -> str:
    """libx264 when the FFmpeg build has it (PyAV's wheel does), else another H.264 encoder."""
    for name in ("libx264", "libopenh264"):
        try:
            av.Codec(name, "w")
        except (av.codec.codec.UnknownCodecError, ValueError):
            continue
        return name
    raise RuntimeError("this FFmpeg build has no H.264 encoder")


def _maxrate_kbps(short_side: int) -> int:
    for size, kbps in _MAXRATE_KBPS:
        if short_side <= size:
            return kbps
    return _MAXRATE_KBPS[-1][1]


class HlsRendition:
    """One rendition: an H.264 (+ AAC) encoder pair writing MPEG-TS segments and a VOD media
    playlist through FFmpeg's HLS muxer, into `<out_dir>/<name>/`."""

    def __init__(
        self,
        out_dir: Path,
        target: RenditionTarget,
        *,
        encoder: str,
        fps: Fraction,
        audio_rate: int | None,
        segment_s: float,
    ) -> None:
        self.target = target
        self.dir = out_dir / target.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.playlist = f"{target.name}/index.m3u8"
        self.output = av.open(
            str(out_dir / self.playlist),
            "w",
            format="hls",
            options={
                "hls_time": f"{segment_s:g}",
                "hls_list_size": "0",
                "hls_playlist_type": "vod",
                "hls_segment_type": "mpegts",
                "hls_segment_filename": str(self.dir / "segment%05d.ts"),
                "hls_flags": "independent_segments",
            },
        )
        short = min(target.width, target.height)
        maxrate = _maxrate_kbps(short)
        self.level = _h264_level(target.width, target.height, float(fps))
        options = {"maxrate": f"{maxrate}k", "bufsize": f"{2 * maxrate}k"}
        if encoder == "libx264":
            self.codecs = f"avc1.6400{self.level:02x}"  # High profile
            options |= {
                "preset": "veryfast",
                "crf": "23",
                "profile": "high",
                "level": str(self.level),
                "forced-idr": "1",  # the keyframes we force start segments: make them IDR
            }
        else:
            self.codecs = f"avc1.42e0{self.level:02x}"  # Constrained Baseline
            options |= {"b": f"{maxrate * 3 // 4}k"}
        video = self.output.add_stream(encoder, rate=fps, options=options)
        assert isinstance(video, VideoStream)
        self.video = video
        self.video.width, self.video.height = target.width, target.height
        self.video.pix_fmt = "yuv420p"
        self.video.codec_context.time_base = TS_TIME_BASE
        self.scaler = VideoReformatter()
        self.audio: AudioStream | None = None
        if audio_rate is not None:
            self.audio = self.output.add_stream("aac", rate=audio_rate)
            assert isinstance(self.audio, AudioStream)
            self.audio.layout = "stereo"
            self.audio.bit_rate = 96_000 if short <= 480 else 128_000
            self.codecs += f",{_AAC_CODECS}"

    def add_video(self, frame: VideoFrame, pts: int, keyframe: bool) -> None:
        scaled = self.scaler.reformat(
            frame,
            width=self.target.width,
            height=self.target.height,
            format="yuv420p",
            interpolation="AREA",
        )
        scaled.pts, scaled.time_base = pts, TS_TIME_BASE
        # A decoded frame keeps its source picture type, which libx264 would obey.
        scaled.pict_type = PictureType.I if keyframe else PictureType.NONE
        self.output.mux(self.video.encode(scaled))

    def add_audio(self, frame: AudioFrame) -> None:
        if self.audio is not None:
            self.output.mux(self.audio.encode(frame))

    def close(self) -> None:
        self.output.mux(self.video.encode(None))
        if self.audio is not None:
            self.output.mux(self.audio.encode(None))
        self.output.close()

    def bandwidth(self, out_dir: Path) -> tuple[int, int]:
        """(peak, average) bits per second over the segments the playlist lists."""
        peak = total_bits = 0.0
        total_s = 0.0
        duration = 0.0
        for line in (out_dir / self.playlist).read_text().splitlines():
            if line.startswith("#EXTINF:"):
                duration = float(line.removeprefix("#EXTINF:").split(",")[0])
            elif line and not line.startswith("#"):
                bits = (self.dir / line).stat().st_size * 8
                total_bits, total_s = total_bits + bits, total_s + duration
                if duration > 0:
                    peak = max(peak, bits / duration)
        average = total_bits / total_s if total_s else 0.0
        return math.ceil(peak), math.ceil(average)
