"""Video processing benchmark (not a test): probe + transcode of a generated clip (default: 30 s,
1920x1080, 30 fps, with stereo sound) into every rendition, on this box.

    .venv/bin/python -m loadtest.video_bench [--seconds 30] [--width 1920] [--height 1080]

Prints a Markdown report (append it to loadtest/RESULTS.md): wall and CPU time of each step,
how many times real time the transcode runs, peak memory, the renditions written, and
`/proc/loadavg` before and after (the box may be shared: read the numbers with it).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import av

from loadtest.media_clips import write_clip
from server.media.video import probe_video, transcode_video


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "n/a"


def timed(step):
    wall, cpu = time.perf_counter(), os.times()
    result = step()
    after = os.times()
    return result, time.perf_counter() - wall, (after.user - cpu.user) + (after.system - cpu.system)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.video_bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="nexgate-media-bench-") as tmp:
        folder = Path(tmp)
        source, make_s, _ = timed(
            lambda: write_clip(
                folder / "source.mp4",
                width=args.width,
                height=args.height,
                seconds=args.seconds,
                fps=args.fps,
            )
        )
        load_before = loadavg()
        info, probe_s, probe_cpu = timed(
            lambda: probe_video(source, max_duration_s=600, max_pixels=3840 * 2160)
        )
        output, transcode_s, transcode_cpu = timed(lambda: transcode_video(source, folder / "out"))
        load_after = loadavg()
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out = folder / "out"
        total_bytes = sum((out / name).stat().st_size for name in output.files)

        print(f"### probe + transcode: {args.seconds:g} s {args.width}x{args.height} clip")
        print()
        print(f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}), {os.cpu_count()} CPUs;")
        size_mb = source.stat().st_size / 1e6
        print(f"source: H.264 + AAC MP4, {size_mb:.1f} MB (made in {make_s:.1f} s)")
        print()
        print(f"- load average before: `{load_before}`")
        print(f"- load average after: `{load_after}`")
        print()
        print("| step | wall | CPU (user+sys) | × real time |")
        print("|---|---|---|---|")
        print(f"| probe_video | {probe_s * 1000:.0f} ms | {probe_cpu * 1000:.0f} ms | |")
        print(
            f"| transcode_video ({len(output.renditions)} renditions + poster) | "
            f"{transcode_s:.1f} s | {transcode_cpu:.1f} s | {info.duration_s / transcode_s:.2f} |"
        )
        print()
        print(
            f"Peak RSS of the process: {peak_rss_mb:.0f} MB. Output: {len(output.files)} files, "
            f"{total_bytes / 1e6:.1f} MB."
        )
        print()
        print("| rendition | peak BANDWIDTH | segments |")
        print("|---|---|---|")
        for rendition in output.renditions:
            segments = sum(
                1
                for name in output.files
                if name.startswith(rendition.playlist.split("/")[0] + "/") and name.endswith(".ts")
            )
            print(
                f"| {rendition.width}x{rendition.height} | {rendition.bandwidth / 1e6:.2f} Mbit/s "
                f"| {segments} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
