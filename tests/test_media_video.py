"""Video probing and HLS transcoding on real clips made with PyAV in the test (loadtest/
media_clips.py): what a user would notice is an upload refused for the right reason, and a
video that plays: a master playlist a player can parse, renditions that decode at the sizes
announced, upright, never upscaled, with sound when the source had it."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import pytest

from loadtest.media_clips import write_clip
from server.media.video import VideoRejected, probe_video, transcode_video

ROOMY = {"max_duration_s": 600.0, "max_pixels": 3840 * 2160}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Short, small clips (the whole module stays well under 30 s on a quiet box)."""
    folder = tmp_path_factory.mktemp("clips")
    return {
        "mp4_720p": write_clip(
            folder / "a.mp4", container="mp4", width=1280, height=720, seconds=2
        ),
        "mov_360p_silent": write_clip(
            folder / "b.mov", container="mov", width=640, height=360, seconds=2, audio=False
        ),
        "webm_360p": write_clip(
            folder / "c.webm", container="webm", width=640, height=360, seconds=1
        ),
        "mp4_faststart": write_clip(
            folder / "d.mp4", container="mp4", width=320, height=180, seconds=3, faststart=True
        ),
        # A phone holding the camera upright stores landscape pixels and a display rotation
        # of 90° clockwise (-90 counterclockwise).
        "mp4_portrait": write_clip(
            folder / "e.mp4", width=640, height=360, seconds=1, audio=False, rotation=-90
        ),
    }


def _copy(src: Path, dest: Path, *, keep: float = 1.0) -> Path:
    data = src.read_bytes()
    dest.write_bytes(data[: int(len(data) * keep)])
    return dest


def _png(path: Path) -> Path:
    with av.open(str(path), "w", format="image2", options={"update": "1"}) as out:
        stream = out.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "rgb24"
        frame = av.VideoFrame(64, 64, "rgb24")
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


# --- probing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "expected"),
    [
        ("mp4_720p", ("mp4", 1280, 720, "h264", "aac")),
        ("mov_360p_silent", ("mov", 640, 360, "h264", None)),
        ("webm_360p", ("webm", 640, 360, "vp9", "opus")),
    ],
)
def test_probe_describes_each_accepted_format(clips, clip, expected):
    info = probe_video(clips[clip], **ROOMY)

    assert (info.container, info.width, info.height, info.video_codec, info.audio_codec) == (
        expected
    )
    seconds = 1.0 if clip == "webm_360p" else 2.0
    assert info.duration_s == pytest.approx(seconds, abs=0.1)


def test_probe_trusts_the_bytes_not_the_name(clips, tmp_path):
    disguised = _copy(clips["webm_360p"], tmp_path / "holiday.mp4")

    assert probe_video(disguised, **ROOMY).container == "webm"


def test_probe_reports_the_display_size_of_a_rotated_clip(clips):
    info = probe_video(clips["mp4_portrait"], **ROOMY)

    assert (info.width, info.height) == (360, 640)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda d, clips: (d / "notes.mp4").write_text("just some text\n") and d / "notes.mp4",
         "not a video"),
        (lambda d, clips: _png(d / "picture.mp4"), "not a video"),
        (lambda d, clips: (d / "empty.mov").write_bytes(b"") or d / "empty.mov", "not a video"),
        # moov atom at the end (as recorders write it): cut, the index is gone.
        (lambda d, clips: _copy(clips["mp4_720p"], d / "cut.mp4", keep=0.5),
         "truncated or corrupt"),
        # moov first (streaming-ready): cut, the media data ends before the index says.
        (lambda d, clips: _copy(clips["mp4_faststart"], d / "cut.mp4", keep=0.5),
         "truncated or corrupt"),
        (lambda d, clips: _copy(clips["webm_360p"], d / "cut.webm", keep=0.5),
         "truncated or corrupt"),
    ],
    ids=["text", "png-named-mp4", "empty", "mp4-cut", "faststart-mp4-cut", "webm-cut"],
)  # fmt: skip
def test_probe_refuses_bad_files_naming_why(clips, tmp_path, make, reason):
    path = make(tmp_path, clips)

    with pytest.raises(VideoRejected) as refused:
        probe_video(path, **ROOMY)
    assert refused.value.reason == reason


def test_probe_refuses_a_container_outside_mp4_mov_webm(tmp_path):
    mkv = tmp_path / "clip.webm"
    with av.open(str(mkv), "w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(5):
            frame = av.VideoFrame(64, 64, "yuv420p")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))

    with pytest.raises(VideoRejected) as refused:
        probe_video(mkv, **ROOMY)
    assert refused.value.reason == "unsupported container"


def test_probe_enforces_duration_and_pixel_limits(clips):
    with pytest.raises(VideoRejected) as too_long:
        probe_video(clips["mp4_720p"], max_duration_s=1.5, max_pixels=3840 * 2160)
    assert too_long.value.reason == "longer than 1.5 s"

    with pytest.raises(VideoRejected) as too_big:
        probe_video(clips["mp4_720p"], max_duration_s=600, max_pixels=1280 * 719)
    assert too_big.value.reason.startswith("frame larger than")

    # Exactly at the limits is fine.
    assert probe_video(clips["mp4_720p"], max_duration_s=2.1, max_pixels=1280 * 720)


# --- transcoding ----------------------------------------------------------------------------


def _attributes(line: str) -> dict[str, str]:
    return {
        key: value.strip('"')
        for key, value in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])
    }


def parse_master(text: str) -> list[dict[str, str]]:
    """The variants of an HLS master playlist: each STREAM-INF's attributes plus its URI."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U"
    variants = []
    for index, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            variant = _attributes(line)
            variant["URI"] = lines[index + 1]
            assert not variant["URI"].startswith("#")
            variants.append(variant)
    return variants


def parse_media(text: str) -> list[tuple[float, str]]:
    """The segments of an HLS VOD media playlist: (duration, URI)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-ENDLIST" in lines  # complete: a player can seek anywhere
    target = int(next(ln for ln in lines if ln.startswith("#EXT-X-TARGETDURATION:")).split(":")[1])
    segments = []
    for index, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",")[0])
            assert duration <= target + 0.5
            segments.append((duration, lines[index + 1]))
    return segments


def _decode_segment(path: Path) -> tuple[list[av.VideoFrame], list[str]]:
    with av.open(str(path)) as segment:
        audio = [s.codec_context.name for s in segment.streams.audio]
        frames = list(segment.decode(video=0))
    return frames, audio


def _luma(frame: av.VideoFrame, x0: float, y0: float, x1: float, y1: float) -> float:
    """Mean brightness of a region given in fractions of the frame."""
    gray = frame.reformat(format="gray")
    plane, stride = bytes(gray.planes[0]), gray.planes[0].line_size
    xs = range(int(x0 * gray.width), int(x1 * gray.width))
    rows = range(int(y0 * gray.height), int(y1 * gray.height))
    values = [plane[y * stride + x] for y in rows for x in xs]
    assert values
    return sum(values) / len(values)


def check_hls(out_dir: Path, output, *, seconds: float, audio: bool) -> list[dict[str, str]]:
    """Everything a player relies on: returns the master playlist's variants."""
    variants = parse_master((out_dir / output.master_playlist).read_text())
    assert [v["URI"] for v in variants] == [r.playlist for r in output.renditions]
    on_disk = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    assert sorted(output.files) == on_disk
    for variant, rendition in zip(variants, output.renditions, strict=True):
        width, height = (int(n) for n in variant["RESOLUTION"].split("x"))
        assert (width, height) == (rendition.width, rendition.height)
        assert width % 2 == 0 and height % 2 == 0
        assert int(variant["BANDWIDTH"]) == rendition.bandwidth > 0
        codecs = variant["CODECS"].split(",")
        assert codecs[0].startswith("avc1.")
        assert ("mp4a.40.2" in codecs) is audio
        playlist = out_dir / variant["URI"]
        segments = parse_media(playlist.read_text())
        assert sum(d for d, _ in segments) == pytest.approx(seconds, abs=0.15)
        for _, uri in segments:
            frames, audio_codecs = _decode_segment(playlist.parent / uri)
            assert frames and frames[0].key_frame  # each segment starts playback alone
            assert {(f.width, f.height) for f in frames} == {(width, height)}
            assert audio_codecs == (["aac"] if audio else [])
    return variants


def test_transcode_makes_renditions_the_source_reaches_and_a_playable_master(clips, tmp_path):
    out_dir = tmp_path / "out"

    output = transcode_video(clips["mp4_720p"], out_dir, segment_s=1.0)

    variants = check_hls(out_dir, output, seconds=2.0, audio=True)
    # 1080p is above a 720p source: never upscaled.
    assert [v["RESOLUTION"] for v in variants] == ["854x480", "1280x720"]
    assert variants[0]["CODECS"] == "avc1.64001f,mp4a.40.2"  # High profile, level 3.1
    assert len(parse_media((out_dir / "720p/index.m3u8").read_text())) == 2
    assert (out_dir / output.poster).read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG
    with av.open(str(out_dir / output.poster)) as poster:
        assert poster.streams.video[0].codec_context.name == "mjpeg"
        frame = next(poster.decode(video=0))
    assert (frame.width, frame.height) == (output.poster_width, output.poster_height)
    assert (output.poster_width, output.poster_height) == (1280, 720)


def test_a_small_silent_source_gets_one_rendition_at_its_own_size(clips, tmp_path):
    out_dir = tmp_path / "out"

    output = transcode_video(clips["mov_360p_silent"], out_dir, segment_s=1.0)

    variants = check_hls(out_dir, output, seconds=2.0, audio=False)
    assert [v["RESOLUTION"] for v in variants] == ["640x360"]
    assert output.renditions[0].playlist == "360p/index.m3u8"


def test_webm_vp9_opus_becomes_h264_aac(clips, tmp_path):
    out_dir = tmp_path / "out"

    output = transcode_video(clips["webm_360p"], out_dir)

    check_hls(out_dir, output, seconds=1.0, audio=True)


def test_a_rotated_phone_clip_is_turned_upright(clips, tmp_path):
    out_dir = tmp_path / "out"

    output = transcode_video(clips["mp4_portrait"], out_dir, heights=(240, 360))

    variants = check_hls(out_dir, output, seconds=1.0, audio=False)
    # Portrait: named by the short side, width x height as displayed.
    assert [v["RESOLUTION"] for v in variants] == ["240x426", "360x640"]
    assert (output.poster_width, output.poster_height) == (360, 640)
    # The white box painted over the top-left of the stored (landscape) picture ends up at
    # the top right once turned 90° clockwise, as the phone showed it.
    with av.open(str(out_dir / output.poster)) as poster:
        upright = next(poster.decode(video=0))
    frames, _ = _decode_segment(out_dir / "360p" / "segment00000.ts")
    for frame in (upright, frames[0]):
        assert _luma(frame, 0.80, 0.0, 1.0, 0.15) > 200
        assert _luma(frame, 0.0, 0.0, 0.2, 0.15) < 200


def test_a_file_that_is_not_a_video_leaves_nothing_behind(tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "kept.txt").write_text("the caller's own file")
    text = tmp_path / "clip.mp4"
    text.write_text("not a video at all")

    with pytest.raises(VideoRejected) as refused:
        transcode_video(text, out_dir)

    assert refused.value.reason == "not a video"
    assert [p.name for p in out_dir.iterdir()] == ["kept.txt"]


def test_timestamps_survive_variable_frame_rate(tmp_path):
    """A clip whose frames are unevenly spaced (as phones record in low light) keeps its
    length: the renditions are timed by the source's timestamps, not a frame counter."""
    source = tmp_path / "vfr.mp4"
    with av.open(str(source), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        at_ms = 0
        for index in range(45):
            frame = av.VideoFrame(320, 180, "yuv420p")
            frame.pts, frame.time_base = at_ms, Fraction(1, 1000)
            out.mux(stream.encode(frame))
            at_ms += 33 if index % 2 else 100  # ~15 fps on average, uneven
        out.mux(stream.encode(None))
    seconds = probe_video(source, **ROOMY).duration_s
    out_dir = tmp_path / "out"

    output = transcode_video(source, out_dir, segment_s=1.0)

    check_hls(out_dir, output, seconds=seconds, audio=False)
