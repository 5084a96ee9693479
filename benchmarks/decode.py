"""Decode benchmark: sampled frames per second and peak memory, per backend, on the same files.

Usage:
    python benchmarks/decode.py                 # 10-minute generated video + the real sample clips
    python benchmarks/decode.py --long          # also a 60-minute video: memory flat in length, seeking
    python benchmarks/decode.py --files a.mp4   # your own files

Every measurement runs in a fresh Python process so peak memory (max RSS) belongs to that measurement
alone. Rows:
  videoqa-auto      what ``videoqa.media.video.sample_frames`` does by default (the product)
  videoqa-pyav      our PyAV decoder (seeks only when the next target is past the next keyframe)
  videoqa-decord    our decord decoder (decord's batched seeking)
  pyav-sequential   PyAV decoding every frame, keeping the ones at the target times (reference)
  opencv-sequential OpenCV grab() every frame, retrieve() the targets (reference)
  ffmpeg            the ffmpeg program with -vf fps=N, raw RGB piped out (reference)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from videoqa.testmedia.samples import sample_path
from videoqa.testmedia.synth import SynthSpec, loop_video, pattern_scenes, render

METHODS = ("videoqa-auto", "videoqa-pyav", "videoqa-decord", "pyav-sequential", "opencv-sequential", "ffmpeg")
REAL_CLIPS = ("vtest.avi", "bikes.mp4", "bigbuckbunny.mp4")
SHORT_RUN_REPEATS = 9


def bench_media_dir() -> Path:
    from platformdirs import user_cache_path

    return user_cache_path("videoqa") / "bench"


def ten_minute_video() -> Path:
    """A 10-minute 640x360 30 fps h264 video: 60 generated scenes of 10 s, x264's default GOP."""
    path = bench_media_dir() / "synth-10min.mp4"
    if not path.exists():
        spec = SynthSpec(scenes=pattern_scenes([10.0] * 60), audio=False)
        render(spec, path)
    return path


def sixty_minute_video() -> Path:
    path = bench_media_dir() / "synth-60min.mp4"
    if not path.exists():
        loop_video(ten_minute_video(), 6, path)
    return path


def measure(method: str, path: str, fps: float) -> dict[str, Any]:
    """Run one measurement in this process; return frames, seconds and peak RSS.

    Libraries are imported before the clock starts, so short clips compare decoding, not start-up.
    """
    import av  # noqa: F401
    import numpy  # noqa: F401

    import videoqa.media.video  # noqa: F401

    if method == "opencv-sequential":
        import cv2  # noqa: F401
    start = time.perf_counter()
    if method.startswith("videoqa-"):
        frames = _videoqa(path, fps, method.removeprefix("videoqa-"))
    elif method == "pyav-sequential":
        frames = _pyav_sequential(path, fps)
    elif method == "opencv-sequential":
        frames = _opencv_sequential(path, fps)
    else:
        frames = _ffmpeg(path, fps)
    seconds = time.perf_counter() - start
    peak_kib = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {"frames": frames, "seconds": seconds, "peak_mib": peak_kib / 1024}


def _videoqa(path: str, fps: float, backend: str) -> int:
    from videoqa.media.video import SamplingOptions, sample_frames

    options = SamplingOptions(fps=fps, backend=backend)
    return sum(len(batch) for batch in sample_frames(path, options))


def _targets(path: str, fps: float) -> tuple[list[float], float]:
    from videoqa.media.video import SamplingOptions, plan_times, probe

    info = probe(path)
    return plan_times(info, SamplingOptions(fps=fps)).tolist(), info.start_s


def _pyav_sequential(path: str, fps: float) -> int:
    import av

    targets, start_s = _targets(path, fps)
    count, index, previous = 0, 0, None
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            time_s = float(frame.time) - start_s
            while index < len(targets) and time_s > targets[index]:
                if previous is not None:
                    previous.to_ndarray(format="rgb24")
                    count += 1
                index += 1
            previous = frame
    return count + (1 if index < len(targets) and previous is not None else 0)


def _opencv_sequential(path: str, fps: float) -> int:
    import cv2

    targets, _ = _targets(path, fps)
    capture = cv2.VideoCapture(path)
    count, index = 0, 0
    while index < len(targets) and capture.grab():
        time_s = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if time_s >= targets[index]:
            ok, _ = capture.retrieve()
            count += int(ok)
            while index < len(targets) and targets[index] <= time_s:
                index += 1
    capture.release()
    return count


def _ffmpeg(path: str, fps: float) -> int:
    from videoqa.media.video import probe

    info = probe(path)
    frame_bytes = info.width * info.height * 3
    process = subprocess.Popen(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            path,
            "-vf",
            f"fps={fps}",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    total = 0
    while chunk := process.stdout.read(1 << 20):
        total += len(chunk)
    process.wait()
    return total // frame_bytes


def run_isolated(method: str, path: Path, fps: float, repeat: int) -> dict[str, Any]:
    """Median of ``repeat`` runs, each in a fresh process (2-core machines are noisy).

    Runs under a second are repeated at least SHORT_RUN_REPEATS times: their noise is larger.
    """
    runs: list[dict[str, Any]] = []
    while len(runs) < (repeat if not runs or runs[0]["seconds"] >= 1.0 else max(repeat, SHORT_RUN_REPEATS)):
        output = subprocess.run(
            [sys.executable, __file__, "--one", method, str(path), str(fps)],
            capture_output=True,
            text=True,
            check=False,
        )
        if output.returncode != 0:
            return {"error": (output.stderr.strip().splitlines() or ["failed"])[-1]}
        runs.append(json.loads(output.stdout))
    runs.sort(key=lambda run: run["seconds"])
    result: dict[str, Any] = runs[len(runs) // 2]
    result["peak_mib"] = max(run["peak_mib"] for run in runs)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "FILE", "FPS"), help=argparse.SUPPRESS)
    parser.add_argument("--files", nargs="*", type=Path, help="benchmark these files instead")
    parser.add_argument(
        "--long",
        action="store_true",
        help="add the 60-minute video at 1 fps, and at 0.05 fps (sparse, seeking)",
    )
    parser.add_argument("--rates", default="1,4", help="sampling rates in frames/s (default 1,4)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.one:
        method, path, fps = args.one
        print(json.dumps(measure(method, path, float(fps))))
        return
    rates = [float(r) for r in args.rates.split(",")]
    files = args.files or [ten_minute_video(), *(sample_path(name) for name in REAL_CLIPS)]
    jobs = [(path, rate) for path in files for rate in rates]
    if args.long:
        jobs += [(sixty_minute_video(), 1.0), (sixty_minute_video(), 0.05)]
    rows = []
    header = (
        f"{'file':<22} {'fps':>4} {'method':<18} {'frames':>6} {'seconds':>8} {'frames/s':>9} "
        f"{'vs best':>7} {'peak MiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for path, rate in jobs:
        results = {m: run_isolated(m, path, rate, args.repeat) for m in args.methods.split(",")}
        speeds = [r["frames"] / r["seconds"] for r in results.values() if "error" not in r]
        best = max(speeds, default=0.0)
        for method, result in results.items():
            rows.append({"file": path.name, "fps": rate, "method": method, **result})
            print(_format_row(path.name, rate, method, result, best), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def _format_row(name: str, rate: float, method: str, result: dict[str, Any], best: float) -> str:
    if "error" in result:
        return f"{name:<22} {rate:>4g} {method:<18} error: {result['error']}"
    speed = result["frames"] / result["seconds"]
    return (
        f"{name:<22} {rate:>4g} {method:<18} {result['frames']:>6} {result['seconds']:>8.2f} "
        f"{speed:>9.1f} {speed / best:>7.2f} {result['peak_mib']:>9.0f}"
    )


if __name__ == "__main__":
    main()
