"""Video: probe an upload (container sniffed from its bytes, streams demuxed, the first and last
frames decoded) and transcode it into a poster and H.264 / AAC HLS renditions.

Everything runs on PyAV, whose wheel ships FFmpeg: no system package is needed. Both entry
points block (CPU and disk); the caller runs them in an executor.

Sizes: a rendition is named by its short side (480p / 720p / 1080p), as video sites do, so a
portrait phone clip gets 1080x1920 at "1080p" rather than a 608x1080 sliver. The source's
display orientation is what counts: a clip stored landscape with a 90° rotation flag is
portrait, its pixels are turned before scaling, and the poster shows it upright.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.error
import av.filter
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from server.media.hls import TS_TIME_BASE, HlsRendition, even, h264_encoder, plan_renditions

ContainerName = Literal["mp4", "mov", "webm"]


@dataclass(frozen=True)
class VideoInfo:
    """What probe_video found. `width` x `height` is the display size (rotation applied)."""

    duration_s: float
    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    container: str  # "mp4" | "mov" | "webm"


class VideoRejected(Exception):
    """The file cannot be accepted as a video; `reason` is user-facing ("not a video",
    "truncated or corrupt", "longer than 600 s", ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Rendition:
    height: int
    width: int
    bandwidth: int  # peak bits per second over the segments, as HLS's BANDWIDTH means it
    playlist: str  # relative to out_dir


@dataclass(frozen=True)
class VideoOutput:
    poster: str  # JPEG, relative to out_dir
    poster_width: int
    poster_height: int
    master_playlist: str  # relative to out_dir
    renditions: list[Rendition]
    files: list[str]  # every file written, relative to out_dir


# --- sniffing -------------------------------------------------------------------------------

_SNIFF_BYTES = 4096
_MP4_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
    b"M4V ", b"M4VP", b"M4VH", b"dash", b"mmp4", b"MSNV", b"XAVC", b"f4v ",
}  # fmt: skip
_QUICKTIME_BRAND = b"qt  "
# ISO files that are images (HEIC / AVIF), not videos.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}
# QuickTime files from before `ftyp` existed start with one of these atoms.
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_DEMUXER = {"mp4": "mov", "mov": "mov", "webm": "matroska"}


def _looks_like_other_video(head: bytes) -> bool:
    """Containers we recognise but do not take (AVI, FLV, MPEG-TS / PS, Ogg, ASF, 3GP...)."""
    return (
        (head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"))
        or head[:3] == b"FLV"
        or head[:4] in (b"OggS", b"\x00\x00\x01\xba", b"\x30\x26\xb2\x75")
        or (len(head) > 376 and head[0] == head[188] == head[376] == 0x47)
    )


def sniff_container(head: bytes) -> ContainerName:
    """The container of a file from its first bytes (never its name); raises VideoRejected."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        box_size = max(16, min(int.from_bytes(head[:4], "big"), len(head)))
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, box_size - 3, 4)}
        if head[8:12] == _QUICKTIME_BRAND:
            return "mov"
        if brands & _MP4_BRANDS:
            return "mp4"
        if _QUICKTIME_BRAND in brands:
            return "mov"
        if head[8:12] in _IMAGE_BRANDS:
            raise VideoRejected("not a video")
        raise VideoRejected("unsupported container")
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return "mov"
    if head[:4] == _EBML_MAGIC:
        # The EBML header names the document type; Matroska proper (.mkv) is not taken.
        if b"\x42\x82\x84webm" in head[:64]:
            return "webm"
        raise VideoRejected("unsupported container")
    if _looks_like_other_video(head):
        raise VideoRejected("unsupported container")
    raise VideoRejected("not a video")


def _open(path: Path) -> tuple[InputContainer, ContainerName]:
    with path.open("rb") as file:
        head = file.read(_SNIFF_BYTES)
    kind = sniff_container(head)
    try:
        container = av.open(str(path), format=_DEMUXER[kind], metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VideoRejected("truncated or corrupt") from exc
    return container, kind


# --- probing --------------------------------------------------------------------------------

# A file that ends this much (seconds) before the duration its header announces was cut short.
_TRUNCATION_SLACK_S = 0.25
# Packets decoded at the start before giving up on a first frame (codec delay is a few).
_FIRST_FRAME_PACKETS = 64
# The last group of pictures is decoded only up to this many packets (20 s at 30 fps): a clip
# with one keyframe at the start would otherwise be held in memory and decoded whole.
_TAIL_PACKETS = 600


def _rotation(frame: VideoFrame) -> int:
    """The display rotation, counterclockwise, snapped to 0 / 90 / 180 / 270."""
    try:
        angle = frame.rotation
    except (AttributeError, ValueError):
        return 0
    return (round((angle or 0) / 90) * 90) % 360


def _display_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    return (height, width) if rotation in (90, 270) else (width, height)


def _decode_one(stream: VideoStream, packets: Sequence[av.Packet]) -> list[VideoFrame]:
    frames: list[VideoFrame] = []
    for packet in packets:
        frames.extend(stream.decode(packet))
    return frames


def _end_s(packet: av.Packet) -> float | None:
    if packet.pts is None or packet.time_base is None:
        return None
    return float((packet.pts + (packet.duration or 0)) * packet.time_base)


def probe_video(path: Path, *, max_duration_s: float, max_pixels: int) -> VideoInfo:
    """Check that `path` is an MP4 / MOV / WebM video within the limits, and describe it.

    Cheap on purpose: every packet is demuxed (a cut or mangled file shows up as a corrupt
    packet, or as streams ending well before the announced duration), but only the first
    frame and the last group of pictures are decoded. Blocking; raises VideoRejected."""
    container, kind = _open(path)
    with container:
        if not container.streams.video:
            raise VideoRejected("no video track")
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        if video.codec_context is None or video.codec_context.name in ("", "none"):
            raise VideoRejected("unsupported video codec")
        width, height = video.codec_context.width, video.codec_context.height
        if width <= 0 or height <= 0:
            raise VideoRejected("truncated or corrupt")
        if width * height > max_pixels:
            raise VideoRejected(f"frame larger than {max_pixels} pixels")
        announced_s = container.duration / av.time_base if container.duration else None
        if announced_s is not None and announced_s > max_duration_s:
            raise VideoRejected(f"longer than {max_duration_s:g} s")
        first, end_s = _demux_checked(container, video, audio, max_duration_s, announced_s)
    rotation = _rotation(first)
    display_w, display_h = _display_size(width, height, rotation)
    return VideoInfo(
        duration_s=round(end_s, 3),
        width=display_w,
        height=display_h,
        video_codec=video.codec_context.name,
        audio_codec=audio.codec_context.name if audio is not None else None,
        container=kind,
    )


def _demux_checked(
    container: InputContainer,
    video: VideoStream,
    audio: AudioStream | None,
    max_duration_s: float,
    announced_s: float | None,
) -> tuple[VideoFrame, float]:
    """Demux every packet; decode the first frame and the last group of pictures. Returns the
    first frame and where the streams end (seconds from the first timestamp)."""
    first: VideoFrame | None = None
    start_s: float | None = None
    end_s = 0.0
    video_packets = 0
    last_gop: list[av.Packet] = []
    streams = [video] if audio is None else [video, audio]
    try:
        for packet in container.demux(streams):
            if packet.size == 0:
                continue  # the flush packet each stream ends with
            if packet.is_corrupt:
                raise VideoRejected("truncated or corrupt")
            packet_end = _end_s(packet)
            if packet_end is not None and packet.pts is not None and packet.time_base is not None:
                packet_start = float(packet.pts * packet.time_base)
                start_s = packet_start if start_s is None else min(start_s, packet_start)
                end_s = max(end_s, packet_end)
                if end_s - (start_s or 0.0) > max_duration_s:
                    raise VideoRejected(f"longer than {max_duration_s:g} s")
            if packet.stream.index != video.index:
                continue
            video_packets += 1
            if first is None:
                frames = _decode_one(video, [packet])
                if frames:
                    first = frames[0]
                elif video_packets > _FIRST_FRAME_PACKETS:
                    raise VideoRejected("truncated or corrupt")
            if packet.is_keyframe:
                last_gop = [packet]
            elif last_gop and len(last_gop) < _TAIL_PACKETS:
                last_gop.append(packet)
            else:
                last_gop = []  # too long to decode cheaply: the demux checks stand alone
        if first is None:
            frames = _decode_one(video, [av.Packet()])  # drain the decoder's delay
            if not frames:
                raise VideoRejected("truncated or corrupt")
            first = frames[0]
        # A fresh decoder state from the last keyframe: the tail must decode too.
        video.codec_context.flush_buffers()
        if last_gop and not _decode_one(video, [*last_gop, av.Packet()]):
            raise VideoRejected("truncated or corrupt")
    except av.error.FFmpegError as exc:
        raise VideoRejected("truncated or corrupt") from exc
    duration_s = end_s - (start_s or 0.0)
    if announced_s is not None and duration_s < announced_s - _TRUNCATION_SLACK_S:
        raise VideoRejected("truncated or corrupt")
    return first, duration_s


# --- transcoding ----------------------------------------------------------------------------

_MAX_FPS = 60
_POSTER_MAX_WIDTH = 1280
_POSTER_NAME = "poster.jpg"
_MASTER_NAME = "master.m3u8"


def _rotator(frame: VideoFrame, rotation: int) -> Any:
    """A filter graph turning frames upright (`rotation`: counterclockwise display angle)."""
    graph = av.filter.Graph()
    source = graph.add_buffer(
        width=frame.width,
        height=frame.height,
        format=frame.format,
        time_base=frame.time_base or TS_TIME_BASE,
    )
    if rotation == 180:
        steps = [graph.add("hflip"), graph.add("vflip")]
    else:
        steps = [graph.add("transpose", "cclock" if rotation == 90 else "clock")]
    sink = graph.add("buffersink")
    for upstream, downstream in zip([source, *steps], [*steps, sink], strict=True):
        upstream.link_to(downstream)
    graph.configure()
    return graph


def _write_poster(frame: VideoFrame, path: Path) -> tuple[int, int]:
    width = min(even(frame.width), _POSTER_MAX_WIDTH)
    height = even(frame.height * width / frame.width)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = Fraction(1, 1)
    encoder.qscale = True
    encoder.options = {"qmin": "2", "qmax": "4"}
    image = frame.reformat(width=width, height=height, format="yuvj420p", interpolation="AREA")
    image.pts, image.time_base = 0, Fraction(1, 1)
    image.pict_type = PictureType.I
    jpeg = b"".join(bytes(packet) for packet in [*encoder.encode(image), *encoder.encode(None)])
    path.write_bytes(jpeg)
    return width, height


def _output_rate(video: VideoStream) -> Fraction:
    rate = video.average_rate or video.guessed_rate or Fraction(30)
    return min(Fraction(rate), Fraction(_MAX_FPS)) if rate > 0 else Fraction(30)


def _audio_rate(audio: AudioStream) -> int:
    rate = audio.codec_context.sample_rate
    return rate if rate in (44100, 48000) else 48000


def _decoded(
    container: InputContainer, video: VideoStream, audio: AudioStream | None
) -> Iterator[VideoFrame | AudioFrame]:
    streams = [video] if audio is None else [video, audio]
    for packet in container.demux(streams):
        for frame in packet.decode():
            if isinstance(frame, VideoFrame | AudioFrame):
                yield frame


def transcode_video(
    src: Path,
    out_dir: Path,
    *,
    heights: Sequence[int] = (480, 720, 1080),
    segment_s: float = 4.0,
) -> VideoOutput:
    """Write a poster JPEG (first frame, at most 1280 wide) and HLS renditions (H.264 + AAC in
    MPEG-TS segments of about `segment_s`, a media playlist each, one master playlist) into
    `out_dir`. Blocking CPU work: run it in an executor. A source that fails to decode raises
    VideoRejected("truncated or corrupt"), and nothing it wrote is left behind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    before = set(out_dir.iterdir())
    try:
        return _Transcode(src, out_dir, heights, segment_s).run()
    except BaseException as exc:
        for created in set(out_dir.iterdir()) - before:
            if created.is_dir():
                shutil.rmtree(created, ignore_errors=True)
            else:
                created.unlink(missing_ok=True)
        if isinstance(exc, av.error.FFmpegError):
            raise VideoRejected("truncated or corrupt") from exc
        raise


class _Transcode:
    """One decode of the source feeding every rendition's encoders."""

    def __init__(self, src: Path, out_dir: Path, heights: Sequence[int], segment_s: float):
        if segment_s <= 0:
            raise ValueError("segment_s must be positive")
        self.src, self.out_dir, self.heights, self.segment_s = src, out_dir, heights, segment_s
        self.renditions: list[HlsRendition] = []
        self.rotation = 0
        self.rotate: Any = None
        self.poster_size = (0, 0)
        self.origin_s = 0.0
        self.last_pts = -1
        self.next_key_s = 0.0
        self.resampler: AudioResampler | None = None
        self.audio_samples = 0
        self.early_audio: list[AudioFrame] = []

    def run(self) -> VideoOutput:
        container, _ = _open(self.src)
        with container:
            if not container.streams.video:
                raise VideoRejected("no video track")
            video = container.streams.video[0]
            video.thread_type = "AUTO"
            audio = container.streams.audio[0] if container.streams.audio else None
            self.fps = _output_rate(video)
            self.audio_rate = _audio_rate(audio) if audio is not None else None
            if container.start_time is not None:
                self.origin_s = container.start_time / av.time_base
            try:
                for frame in _decoded(container, video, audio):
                    if isinstance(frame, VideoFrame):
                        self._video(frame)
                    elif self.renditions:
                        self._audio(frame)
                    else:
                        self.early_audio.append(frame)
                if not self.renditions:
                    raise VideoRejected("truncated or corrupt")
                self._audio(None)
            finally:
                for rendition in self.renditions:
                    rendition.close()
        return self._master()

    def _start(self, first: VideoFrame) -> None:
        self.rotation = _rotation(first)
        if self.rotation:
            self.rotate = _rotator(first, self.rotation)
        upright = self._upright(first)
        self.poster_size = _write_poster(upright, self.out_dir / _POSTER_NAME)
        encoder = h264_encoder()
        for target in plan_renditions(upright.width, upright.height, self.heights):
            self.renditions.append(
                HlsRendition(
                    self.out_dir,
                    target,
                    encoder=encoder,
                    fps=self.fps,
                    audio_rate=self.audio_rate,
                    segment_s=self.segment_s,
                )
            )
        if self.audio_rate is not None:
            self.resampler = AudioResampler(
                format="fltp", layout="stereo", rate=self.audio_rate, frame_size=1024
            )
        for frame in self.early_audio:
            self._audio(frame)
        self.early_audio.clear()

    def _upright(self, frame: VideoFrame) -> VideoFrame:
        if self.rotate is None:
            return frame
        self.rotate.push(frame)
        turned = self.rotate.pull()
        assert isinstance(turned, VideoFrame)
        return turned

    def _video(self, frame: VideoFrame) -> None:
        if not self.renditions:
            self._start(frame)
        at_s = (frame.time if frame.time is not None else 0.0) - self.origin_s
        pts = round(at_s * TS_TIME_BASE.denominator)
        # Frames before the start (edit-list pre-roll), repeated timestamps and frames above
        # the frame-rate cap are dropped: the encoder needs strictly increasing timestamps.
        if at_s < 0 or pts <= self.last_pts:
            return
        if self.last_pts >= 0 and pts - self.last_pts < 0.99 * 90000 / _MAX_FPS:
            return
        self.last_pts = pts
        keyframe = at_s >= self.next_key_s
        while self.next_key_s <= at_s:
            self.next_key_s += self.segment_s
        upright = self._upright(frame)
        for rendition in self.renditions:
            rendition.add_video(upright, pts, keyframe)

    def _audio(self, frame: AudioFrame | None) -> None:
        if self.resampler is None:
            return
        if frame is not None and self.audio_samples == 0 and frame.time is not None:
            # Audio starting after the video keeps its offset.
            self.audio_samples = max(0, round((frame.time - self.origin_s) * frame.sample_rate))
        for chunk in self.resampler.resample(frame):
            chunk.pts = self.audio_samples
            chunk.time_base = Fraction(1, chunk.sample_rate)
            self.audio_samples += chunk.samples
            for rendition in self.renditions:
                rendition.add_audio(chunk)

    def _master(self) -> VideoOutput:
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
        renditions = []
        files = [_POSTER_NAME, _MASTER_NAME]
        for rendition in self.renditions:
            peak, average = rendition.bandwidth(self.out_dir)
            target = rendition.target
            lines.append(
                f"#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},"
                f'RESOLUTION={target.width}x{target.height},CODECS="{rendition.codecs}"'
            )
            lines.append(rendition.playlist)
            renditions.append(
                Rendition(
                    height=target.height,
                    width=target.width,
                    bandwidth=peak,
                    playlist=rendition.playlist,
                )
            )
            files.extend(
                str(path.relative_to(self.out_dir)) for path in sorted(rendition.dir.iterdir())
            )
        (self.out_dir / _MASTER_NAME).write_text("\n".join(lines) + "\n")
        return VideoOutput(
            poster=_POSTER_NAME,
            poster_width=self.poster_size[0],
            poster_height=self.poster_size[1],
            master_playlist=_MASTER_NAME,
            renditions=renditions,
            files=files,
        )
