"""Indexing speed against the naive loop, re-query time on a warm 3-hour index, and thread settings.

Usage:
    python benchmarks/index.py speed     # 10-minute video, random CLIP ViT-B/32 image tower
    python benchmarks/index.py requery   # 3-hour video, warm cache: search time with and without the CLI
    python benchmarks/index.py threads [--minutes 10] [--repeat 2] [--settings S ...]   # thread settings

speed: the same image model architecture on the same file, two ways.
  naive   the seed demo's loop: every frame decoded, one at a time through transformers' image processor
          and the model. It costs the same for every frame, so it is timed on the first NAIVE_PREFIX_S
          seconds and scaled to the whole video (printed as such).
  videoqa index_video: 1 frame per second, resized while decoding, normalised with torch, batched,
          decoding overlapped with the model.
requery: index a 3-hour video once (a CLIP whose image tower is tiny but whose embeddings are 512-wide
  like ViT-B/32, so retrieval does the real amount of work), then time a search with the cache warm:
  retrieval alone, everything but loading the model, and the whole `videoqa search` command.
threads: a narrated story (benchmarks/ask.py's) indexed from scratch with the default models, every channel,
  under each setting of THREAD_SETTINGS (speech recognition's CTranslate2 threads beside the frame side's
  FFmpeg / onnxruntime / torch threads), each in a fresh process, the settings interleaved; then the
  answering model (llama.cpp) answers three questions with 1 and with 2 threads. Prints wall and CPU
  seconds, and each side's wall seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the random-model builders the tests use

from decode import sixty_minute_video, ten_minute_video  # noqa: E402

from videoqa.testmedia.synth import loop_video  # noqa: E402

from models import TINY_TOWER, VIT_B32_TOWER, save_random_clip  # noqa: E402

NAIVE_PREFIX_S = 20.0
REQUERY_RUNS = 5


def naive_seconds_per_frame(video: Path, model_dir: Path) -> tuple[float, int]:
    """The seed demo's loop over the first NAIVE_PREFIX_S seconds: (seconds per frame, frames)."""
    import av
    import torch
    from transformers import CLIPImageProcessor, CLIPModel

    model: Any = CLIPModel.from_pretrained(model_dir, use_safetensors=True)
    model.eval()
    processor = CLIPImageProcessor.from_pretrained(model_dir)
    frames = 0
    start = time.perf_counter()
    with av.open(str(video)) as container, torch.inference_mode():
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= NAIVE_PREFIX_S:
                break
            inputs = processor(images=frame.to_image(), return_tensors="pt")
            model.get_image_features(**inputs)
            frames += 1
    return (time.perf_counter() - start) / frames, frames


def videoqa_seconds(video: Path, model_dir: Path) -> tuple[float, int]:
    """Our indexer from scratch (empty cache): (seconds, frames embedded)."""
    from videoqa.store.cache import IndexCache
    from videoqa.visual.embed import EmbedOptions, load_embedder
    from videoqa.visual.index import index_video

    embedder = load_embedder(str(model_dir), EmbedOptions(device="cpu"))
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        result = index_video(video, embedder, cache=IndexCache(Path(cache)))
        return time.perf_counter() - start, len(result.timestamps_s)


def speed() -> None:
    from videoqa.media.video import probe

    video = ten_minute_video()
    info = probe(video)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = save_random_clip(Path(folder) / "random-vit-b32", VIT_B32_TOWER, projection_dim=512)
        ours_s, ours_frames = videoqa_seconds(video, model_dir)
        per_frame_s, naive_frames = naive_seconds_per_frame(video, model_dir)
    naive_total_s = per_frame_s * info.frame_count
    print(
        f"video: {video.name}, {info.duration_s:.0f} s, {info.frame_count} frames, "
        f"{info.width}x{info.height}; model: random CLIP ViT-B/32 image tower, CPU, "
        f"{torch_threads()} threads"
    )
    print(f"{'method':<10} {'frames':>7} {'seconds':>9}  note")
    print(
        f"{'naive':<10} {info.frame_count:>7} {naive_total_s:>9.0f}  {per_frame_s * 1000:.0f} ms/frame "
        f"measured on the first {naive_frames} frames, scaled to all"
    )
    print(
        f"{'videoqa':<10} {ours_frames:>7} {ours_s:>9.1f}  {ours_frames / ours_s:.1f} frames/s, 1 fps sampled"
    )
    print(f"speed-up: {naive_total_s / ours_s:.0f}x")


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def three_hour_video() -> Path:
    path = sixty_minute_video().with_name("synth-180min.mp4")
    if not path.exists():
        loop_video(sixty_minute_video(), 3, path)
    return path


def requery() -> None:
    from videoqa.retrieval.retrieve import top_scenes
    from videoqa.store.cache import IndexCache
    from videoqa.visual.embed import EmbedOptions, load_embedder
    from videoqa.visual.index import index_video

    video = three_hour_video()
    model_dir = ten_minute_video().with_name("requery-clip-512")
    if not model_dir.exists():
        save_random_clip(model_dir, {**TINY_TOWER, "image_size": 32, "patch_size": 8}, projection_dim=512)
    cache = IndexCache(model_dir.with_name("requery-cache"))
    load_start = time.perf_counter()
    embedder = load_embedder(str(model_dir), EmbedOptions(device="cpu"))
    load_s = time.perf_counter() - load_start
    build_start = time.perf_counter()
    index = index_video(video, embedder, cache=cache)  # builds once; later runs find it in the cache
    build_s = time.perf_counter() - build_start
    timings: dict[str, list[float]] = {"retrieval": [], "search without model load": []}
    for _ in range(REQUERY_RUNS):
        start = time.perf_counter()
        warm = index_video(video, embedder, cache=cache)
        query = embedder.embed_texts(["a red car at night"])[0]
        middle = time.perf_counter()
        top_scenes(warm, query, 5)
        end = time.perf_counter()
        timings["retrieval"].append(end - middle)
        timings["search without model load"].append(end - start)
    command_s = _command_seconds(video, model_dir, cache.root)
    print(
        f"video: {video.name}, {index.info.duration_s / 3600:.1f} h, {len(index.timestamps_s)} frames "
        f"indexed ({'from cache' if index.cached else f'built in {build_s:.0f} s'}), "
        f"{len(index.scenes)} scenes, {index.frame_embeddings.shape[1]}-d float16 embeddings"
    )
    print(f"{'measure':<28} {'median ms':>10}")
    for name, values in timings.items():
        print(f"{name:<28} {sorted(values)[len(values) // 2] * 1000:>10.1f}")
    print(
        f"{'model load (excluded)':<28} {load_s * 1000:>10.1f}  (first load: importing torch and "
        "transformers included)"
    )
    print(
        f"{'whole videoqa search command':<28} {command_s * 1000:>10.1f}  (process start, imports and "
        "model load included)"
    )


def _command_seconds(video: Path, model_dir: Path, cache_root: Path) -> float:
    env: dict[str, Any] = {**os.environ, "VIDEOQA_CACHE": str(cache_root)}
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "videoqa",
                "search",
                "a red car at night",
                str(video),
                "--embedder",
                str(model_dir),
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        runs.append(time.perf_counter() - start)
    return sorted(runs)[1]


# name: (CTranslate2 threads for speech, FFmpeg's and torch's threads while speech runs beside them,
# onnxruntime's threads for the screen-text reader)
THREAD_SETTINGS: dict[str, tuple[int, int, int]] = {
    "speech 1, frames 1, OCR 1": (1, 1, 1),
    "speech 1, frames 1, OCR 2": (1, 1, 2),
    "speech 2, frames 1, OCR 1": (2, 1, 1),
    "speech 1, frames 2, OCR 2": (1, 2, 2),
    "every runtime 2 (one per core)": (2, 2, 2),
}
LLAMA_THREADS = (1, 2)


def threads_one(minutes: float, setting: str) -> dict[str, Any]:
    """In this process: index the story from scratch under ``setting``, then time answers."""
    import dataclasses
    import resource

    from ask import BENCH_DIR, FOOTAGE

    import videoqa.knowledge.build as build
    from videoqa.assistant import Assistant, AssistantOptions
    from videoqa.channels.ocr import OcrOptions
    from videoqa.channels.speech import SpeechOptions
    from videoqa.host.cores import ThreadPlan
    from videoqa.llm import LlmOptions, load_llm
    from videoqa.respond.answer import answer
    from videoqa.store.cache import IndexCache
    from videoqa.testmedia.samples import sample_path
    from videoqa.testmedia.story import StoryOptions, build_story

    speech, frames, ocr = THREAD_SETTINGS[setting]
    # this setting's split, in place of the plan the pass asks for (build's own name for it)
    build.thread_plan = lambda cores=None: ThreadPlan(speech=speech, frames=frames)  # type: ignore[attr-defined]
    footage = tuple(str(sample_path(name)) for name in FOOTAGE)
    story = build_story(StoryOptions(minutes * 60, seed=1, footage=footage), BENCH_DIR / "stories")
    reports: list[Any] = []
    options = AssistantOptions(
        device="cpu", speech=SpeechOptions(cpu_threads=speech), ocr=OcrOptions(threads=ocr)
    )
    with tempfile.TemporaryDirectory() as cache:
        assistant = Assistant(options, cache=IndexCache(Path(cache)), on_report=reports.append)
        assistant.load_models()
        start, cpu_start = time.perf_counter(), time.process_time()
        assistant.knowledge(story.path)
        index_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        answers: dict[int, float] = {}
        questions = [q.question for q in story.questions if q.answers][:3]
        for count in LLAMA_THREADS:
            llm = load_llm(options.llm, LlmOptions(device="cpu", threads=count))
            found = [assistant.evidence(story.path, question) for question in questions]
            start = time.perf_counter()
            for question, evidence in zip(questions, found, strict=True):
                answer(question, evidence, llm, options.answering, assistant.model_names())
            answers[count] = (time.perf_counter() - start) / len(questions)
    report = dataclasses.asdict(reports[0])
    return {
        "setting": setting,
        "index_s": index_s,
        "cpu_s": cpu_s,
        "frames_s": report["frames_s"],
        "speech_s": report["speech_s"],
        "answer_s": answers,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def threads(minutes: float, repeat: int, settings: list[str]) -> None:
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in settings}
    for _ in range(repeat):
        for setting in settings:
            command = [
                sys.executable,
                __file__,
                "threads-one",
                "--setting",
                setting,
                "--minutes",
                str(minutes),
            ]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            rows[setting].append(json.loads(output.strip().splitlines()[-1]))
            print(f"done: {setting}", file=sys.stderr)
    print(
        f"{'setting':<32} {'index s':>8} {'CPU s':>7} {'frames s':>9} {'speech s':>9} "
        + " ".join(f"{f'answer s, llama {n}':>17}" for n in LLAMA_THREADS)
    )
    for setting, runs in rows.items():

        def median(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return float(statistics.median(run[key] for run in runs))

        answers = " ".join(
            f"{statistics.median(run['answer_s'][str(n)] for run in runs):>17.2f}" for n in LLAMA_THREADS
        )
        print(
            f"{setting:<32} {median('index_s'):>8.1f} {median('cpu_s'):>7.1f} {median('frames_s'):>9.1f} "
            f"{median('speech_s'):>9.1f} {answers}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("which", choices=("speed", "requery", "threads", "threads-one"))
    parser.add_argument("--minutes", type=float, default=10.0, help="threads: the story's length")
    parser.add_argument("--repeat", type=int, default=2, help="threads: runs of each setting (median)")
    parser.add_argument(
        "--settings",
        nargs="+",
        choices=list(THREAD_SETTINGS),
        default=list(THREAD_SETTINGS),
        metavar="SETTING",
        help="threads: the settings to run (default: all of THREAD_SETTINGS)",
    )
    parser.add_argument("--setting", choices=list(THREAD_SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.which == "threads-one":
        print(json.dumps(threads_one(args.minutes, args.setting)))
    elif args.which == "threads":
        threads(args.minutes, args.repeat, args.settings)
    else:
        speed() if args.which == "speed" else requery()


if __name__ == "__main__":
    main()
