"""Scene-boundary benchmark: how well each method finds known cuts, and how long it takes.

Usage:
    python benchmarks/scenes.py                  # build the test videos once (cached), score every method
    python benchmarks/scenes.py --json out.json  # also write the rows, with every predicted cut time

The test videos are cut from the real single-shot clips (vtest.avi, tree.avi, carphone_pristine.mp4) with
generated patterns between them, joined by hard cuts and cross-fades of 0.5-2 s, so every cut time is
known (a fade's cut is its middle). They are rendered at 480x360, 25 fps, about 6 minutes in all:
  hard-cuts     real clips and patterns, hard cuts only
  cross-fades   mostly cross-fades between real clips and patterns
  static-long   75 s of vtest.avi (fixed camera, people walking) that must stay one scene
  short-shots   2.5-4 s shots, and 12 s of tree.avi in which a hand reaches into the frame (not a cut)
  one-cut       all of tree.avi, hand included, then a hard cut to vtest.avi: few cuts, so the hand's
                change is judged against a quiet video

A predicted cut is correct within 1 s of a true cut, matched one-to-one (videoqa.bench.boundaries). The total
rows add up each method's counts over all videos (micro-average). Seconds are the median wall clock of
``--repeat`` runs per video, decoding included, with models loaded and libraries imported beforehand.
Methods:
  tilling-pixel-1fps     videoqa's indexing (SceneTilling, default SceneOptions) with the pixel embedder,
                         frames sampled at 1 fps
  tilling-pixel-2fps     the same at 2 fps
  tilling-tiny-clip-1fps the same with a tiny CLIP of random weights: checks the wiring only; its scores
                         say nothing about what a trained CLIP would do
  pyscenedetect-content  PySceneDetect's ContentDetector, default settings, every frame (its default
                         OpenCV decoding)
  pyscenedetect-adaptive PySceneDetect's AdaptiveDetector, likewise
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the tests' tiny random CLIP

import scenedetect

from videoqa.bench.boundaries import BoundaryScore, score_boundaries
from videoqa.store.cache import IndexCache
from videoqa.testmedia.samples import sample_path
from videoqa.testmedia.synth import SynthScene, SynthSpec, render
from videoqa.visual.embed import ImageEmbedder, load_embedder
from videoqa.visual.index import IndexOptions, index_video

from models import save_tiny_model

TOLERANCE_S = 1.0
VTEST, TREE, CARPHONE = "vtest.avi", "tree.avi", "carphone_pristine.mp4"
# Seeded: these ffmpeg sources start from a random state otherwise, so each render would be another video.
CELLAUTO = "cellauto=rule=110:seed=1"
GRADIENTS = "gradients=c0=0x7030a0:c1=0xffd966:speed=0.02:seed=1"
LIFE = "life=mold=10:ratio=0.2:seed=1:death_color=#0a3d12:life_color=#e2f0d9"

Detector = Callable[[Path], list[float]]  # a video file -> predicted cut times in seconds


@dataclass(frozen=True)
class Row:
    """One method on one video."""

    video: str
    method: str
    score: BoundaryScore
    seconds: float
    predicted_s: tuple[float, ...]
    true_s: tuple[float, ...]


def clip(name: str, duration_s: float, offset_s: float = 0.0, fade_s: float = 0.0) -> SynthScene:
    """A stretch of a real single-shot sample clip; it must end before the clip does (no looping)."""
    return SynthScene(duration_s, str(sample_path(name)), offset_s=offset_s, fade_s=fade_s)


def pattern(source: str, duration_s: float, fade_s: float = 0.0) -> SynthScene:
    return SynthScene(duration_s, "lavfi:" + source, fade_s=fade_s)


def benchmark_specs() -> dict[str, SynthSpec]:
    """The test videos. Patterns sit between real clips, and a clip never follows itself."""
    videos = {
        "hard-cuts": (
            clip(VTEST, 15.0),
            pattern("testsrc2", 6.0),
            clip(TREE, 12.0),
            pattern("smptebars", 5.0),
            clip(CARPHONE, 3.5),
            pattern(CELLAUTO, 6.0),
            clip(VTEST, 12.0, offset_s=30.0),
            pattern(GRADIENTS, 6.0),
            clip(TREE, 12.0, offset_s=14.0),
            pattern(LIFE, 8.0),
        ),
        "cross-fades": (
            clip(TREE, 14.0, fade_s=1.0),
            clip(VTEST, 15.0, offset_s=10.0, fade_s=2.0),
            pattern("smptebars", 6.0, fade_s=0.5),
            clip(CARPHONE, 3.5),
            pattern("testsrc2", 7.0, fade_s=1.5),
            clip(TREE, 11.0, offset_s=12.0, fade_s=2.0),
            clip(VTEST, 15.0, offset_s=50.0, fade_s=1.0),
            pattern("rgbtestsrc", 6.0),
            pattern(CELLAUTO, 6.0, fade_s=0.5),
            clip(VTEST, 12.0, offset_s=66.0),
        ),
        "static-long": (
            clip(TREE, 6.0),
            clip(VTEST, 75.0, offset_s=2.0, fade_s=1.0),
            pattern("smptehdbars", 6.0),
        ),
        "short-shots": (
            clip(CARPHONE, 3.0),
            pattern("testsrc2", 3.0),
            clip(TREE, 4.0, offset_s=3.0, fade_s=0.5),
            clip(VTEST, 3.5, offset_s=20.0),
            pattern("color=c=0x1f4e79", 2.5),
            clip(CARPHONE, 3.0, offset_s=0.5, fade_s=0.5),
            pattern("smptehdbars", 3.0),
            clip(TREE, 12.0, offset_s=17.0),
            clip(VTEST, 4.0, offset_s=60.0, fade_s=1.0),
            pattern(GRADIENTS, 3.0),
            pattern(LIFE, 3.0),
            clip(CARPHONE, 2.5, offset_s=1.0),
        ),
        "one-cut": (clip(TREE, 29.0), clip(VTEST, 45.0)),
    }
    return {
        name: SynthSpec(scenes=scenes, width=480, height=360, fps=25.0, audio=False)
        for name, scenes in videos.items()
    }


def bench_media_dir() -> Path:
    from platformdirs import user_cache_path

    return user_cache_path("videoqa") / "bench" / "scenes"


def rendered(name: str, spec: SynthSpec) -> Path:
    """The video for ``spec``, rendered once; a changed spec gets a new file."""
    digest = hashlib.sha256(json.dumps(asdict(spec), sort_keys=True).encode()).hexdigest()[:12]
    path = bench_media_dir() / f"{name}-{digest}.mp4"
    # render() writes the manifest after the video, so a render cut short is redone.
    if not path.with_suffix(".json").exists():
        render(spec, path)
    return path


def scenetilling(embedder: ImageEmbedder, fps: float) -> Detector:
    """videoqa's own indexing path, each video indexed afresh into an empty cache."""
    defaults = IndexOptions()
    options = replace(defaults, sampling=replace(defaults.sampling, fps=fps))

    def detect(path: Path) -> list[float]:
        with tempfile.TemporaryDirectory(prefix="videoqa-bench-") as cache:
            index = index_video(path, embedder, options, cache=IndexCache(Path(cache)))
        return [scene.start_s for scene in index.scenes[1:]]

    return detect


def pyscenedetect(make_detector: Callable[[], Any]) -> Detector:
    """A PySceneDetect detector (a fresh one per video: they keep state) on every frame."""

    def detect(path: Path) -> list[float]:
        scenes = scenedetect.detect(str(path), make_detector())
        return [float(start.seconds) for start, _ in scenes[1:]]

    return detect


def methods(tiny_clip_dir: Path) -> dict[str, Detector]:
    """Every method by its row name, models loaded (the tiny CLIP is saved into ``tiny_clip_dir``)."""
    pixel = load_embedder("pixel")
    tiny_clip = load_embedder(save_tiny_model(tiny_clip_dir))
    return {
        "tilling-pixel-1fps": scenetilling(pixel, 1.0),
        "tilling-pixel-2fps": scenetilling(pixel, 2.0),
        "tilling-tiny-clip-1fps [wiring only]": scenetilling(tiny_clip, 1.0),
        "pyscenedetect-content": pyscenedetect(scenedetect.ContentDetector),
        "pyscenedetect-adaptive": pyscenedetect(scenedetect.AdaptiveDetector),
    }


def measure(video: str, method: str, detect: Detector, path: Path, true_s: list[float], repeat: int) -> Row:
    """Run ``detect`` ``repeat`` times; every method is deterministic, so only the seconds vary (median)."""
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        predicted = detect(path)
        seconds.append(time.perf_counter() - start)
    return Row(
        video,
        method,
        score_boundaries(predicted, true_s, TOLERANCE_S),
        statistics.median(seconds),
        tuple(predicted),
        tuple(true_s),
    )


HEADER = f"{'video':<12} {'method':<36} {'true':>5} {'pred':>5} {'P':>5} {'R':>5} {'F1':>5} {'seconds':>8}"


def format_row(video: str, method: str, score: BoundaryScore, seconds: float) -> str:
    return (
        f"{video:<12} {method:<36} {score.true:>5} {score.predicted:>5} {score.precision:>5.2f} "
        f"{score.recall:>5.2f} {score.f1:>5.2f} {seconds:>8.2f}"
    )


def print_totals(rows: list[Row]) -> None:
    """One row per method: counts and seconds summed over the videos."""
    for method in dict.fromkeys(row.method for row in rows):
        mine = [row for row in rows if row.method == method]
        total = sum((row.score for row in mine), start=BoundaryScore(0, 0, 0))
        print(format_row("TOTAL", method, total, sum(row.seconds for row in mine)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median time is shown")
    parser.add_argument("--json", type=Path, help="also write the rows, with predicted cut times, here")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    specs = benchmark_specs()
    paths = {name: rendered(name, spec) for name, spec in specs.items()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="videoqa-tiny-clip-") as tiny_clip_dir:
        detectors = methods(Path(tiny_clip_dir))
        print(HEADER)
        print("-" * len(HEADER))
        for name, path in paths.items():
            for method, detect in detectors.items():
                row = measure(name, method, detect, path, specs[name].cut_times_s, args.repeat)
                rows.append(row)
                print(format_row(row.video, row.method, row.score, row.seconds), flush=True)
    print("-" * len(HEADER))
    print_totals(rows)
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2))


if __name__ == "__main__":
    main()
