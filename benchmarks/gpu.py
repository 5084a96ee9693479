"""What a GPU buys (issue 16, item 4): one prepared script, each part skipped with one line when this
machine cannot run it.

Usage:
    python benchmarks/gpu.py [--minutes 60] [--skip-first-answer]
    python benchmarks/gpu.py --device cpu --minutes 2   # the same parts on the CPU: checks the script

Parts, in order (each prints one row; a part that cannot run prints why and the script goes on):
  embed     a CLIP ViT-B/32-size image tower (random weights: the real compute, no download), fp16 on
            CUDA, batched, decoding overlapped (``index_video`` on the 10-minute generated video): frames/s
  whisper   the default speech model on CUDA (float16) transcribing the 10-minute story's audio (one
            10-minute chunk, as indexing cuts them): seconds and times realtime
  llama     the default answering model with every layer offloaded (n_gpu_layers=-1): tokens/s of prompt
            and of generation; needs a llama-cpp-python built with CUDA (CMAKE_ARGS="-DGGML_CUDA=on")
  first     a first answer about the --minutes story (benchmarks/ask.py's) with ``device="cuda"``: wall
            seconds, the pass's breakdown, peak host memory
Each part runs in this process one after the other; the CPU figures for the same work are in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from videoqa.testmedia.story import Story

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the random-model builders the tests use

WHISPER_SECONDS = 600.0
LLAMA_PROMPT_TOKENS = 512
LLAMA_NEW_TOKENS = 64


class Skipped(Exception):
    """This part cannot run here; the message says why."""


def cuda_devices() -> str | None:
    """The CUDA device torch sees, or None."""
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def _need_cuda(device: str) -> None:
    if device == "cuda" and cuda_devices() is None:
        raise Skipped("no CUDA device (torch.cuda.is_available() is False)")


def part_embed(device: str) -> str:
    from decode import ten_minute_video

    from videoqa.store.cache import IndexCache
    from videoqa.visual.embed import EmbedOptions, load_embedder
    from videoqa.visual.index import index_video

    from models import VIT_B32_TOWER, save_random_clip

    _need_cuda(device)
    video = ten_minute_video()
    with tempfile.TemporaryDirectory() as folder:
        model = save_random_clip(Path(folder) / "vit-b32", VIT_B32_TOWER, projection_dim=512)
        embedder = load_embedder(str(model), EmbedOptions(device=device))
        start = time.perf_counter()
        index = index_video(video, embedder, cache=IndexCache(Path(folder) / "cache"))
        seconds = time.perf_counter() - start
    frames = len(index.timestamps_s)
    return f"{frames} frames in {seconds:.1f} s: {frames / seconds:.0f} frames/s ({embedder.id})"


def part_whisper(device: str) -> str:
    import ctranslate2

    from videoqa.channels.speech import SpeechOptions, audio_chunks, load_transcriber
    from videoqa.media.video import probe

    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise Skipped("no CUDA device for CTranslate2 (get_cuda_device_count() is 0)")
    chunk = next(iter(audio_chunks(probe(_story(WHISPER_SECONDS / 60).path), WHISPER_SECONDS)))
    transcriber = load_transcriber(SpeechOptions(device=device))
    start = time.perf_counter()
    segments = transcriber.transcribe(chunk.samples)
    seconds = time.perf_counter() - start
    heard_s = chunk.end_s - chunk.start_s
    speed = heard_s / seconds
    return f"{heard_s:.0f} s of audio in {seconds:.1f} s ({speed:.0f}x realtime, {len(segments)} segments)"


def part_llama(device: str) -> str:
    import llama_cpp

    from videoqa.host.cores import available_cores
    from videoqa.store.models import DEFAULT_LLM, model_dir

    if device == "cuda" and not llama_cpp.llama_supports_gpu_offload():
        raise Skipped(
            "this llama-cpp-python build cannot offload layers to a GPU; rebuild it with "
            'CMAKE_ARGS="-DGGML_CUDA=on"'
        )
    path = next(model_dir(DEFAULT_LLM).glob("*.gguf"))
    llama = llama_cpp.Llama(
        model_path=str(path),
        n_gpu_layers=-1 if device == "cuda" else 0,
        n_ctx=2048,
        n_threads=available_cores(),  # as videoqa runs it (llama-cpp-python's own default is half)
        verbose=False,
        seed=0,
    )
    prompt = " ".join(["the meeting starts at noon"] * (LLAMA_PROMPT_TOKENS // 6))
    prompt_s, first = _timed_completion(llama, prompt, 1)
    total_s, more = _timed_completion(llama, prompt, LLAMA_NEW_TOKENS)
    prompt_tokens = first["usage"]["prompt_tokens"]
    made = more["usage"]["completion_tokens"] - 1  # past the first token, which the prompt run made too
    where = "every layer offloaded" if device == "cuda" else "on the CPU"
    return (
        f"prompt {prompt_tokens / prompt_s:.0f} tokens/s ({prompt_tokens} tokens), generation "
        f"{made / (total_s - prompt_s):.0f} tokens/s ({made} tokens), {where} ({path.name})"
    )


def _timed_completion(llama: Any, prompt: str, max_tokens: int) -> tuple[float, Any]:
    """Seconds for one greedy completion from an empty context (nothing of an earlier prompt reused)."""
    llama.reset()
    start = time.perf_counter()
    reply = llama(prompt, max_tokens=max_tokens, temperature=0.0)
    return time.perf_counter() - start, reply


def part_first_answer(minutes: float, device: str) -> str:
    import dataclasses

    from videoqa.assistant import Assistant, AssistantOptions
    from videoqa.knowledge.build import IndexReport
    from videoqa.store.cache import IndexCache

    _need_cuda(device)
    story = _story(minutes)
    reports: list[IndexReport] = []
    with tempfile.TemporaryDirectory() as cache:
        options = AssistantOptions(device=device)
        assistant = Assistant(options, IndexCache(Path(cache)), on_report=reports.append)
        for load_model in (lambda: assistant.llm, lambda: assistant.text_embedder):
            load_model()  # loaded before the clock, as benchmarks/ask.py does
        question = next(q for q in story.questions if q.answers)
        start = time.perf_counter()
        answer = assistant.ask(story.path, question.question)
        seconds = time.perf_counter() - start
    report = dataclasses.asdict(reports[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (
        f"{minutes:g} min: first answer in {seconds:.1f} s (pass {report['pass_s']:.1f} s: frames side "
        f"{report['frames_s']:.1f} s, speech side {report['speech_s']:.1f} s), peak {peak:.0f} MiB host "
        f"memory; answer: {answer.text[:60]!r}"
    )


def _story(minutes: float) -> Story:
    from ask import BENCH_DIR, FOOTAGE

    from videoqa.testmedia.samples import sample_path
    from videoqa.testmedia.story import StoryOptions, build_story

    footage = tuple(str(sample_path(name)) for name in FOOTAGE)
    return build_story(StoryOptions(duration_s=minutes * 60, seed=1, footage=footage), BENCH_DIR / "stories")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the first-answer story")
    parser.add_argument("--skip-first-answer", action="store_true", help="leave the first-answer part out")
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda", help="cpu: run the parts on the CPU (a check)"
    )
    args = parser.parse_args()
    device = args.device
    parts: list[tuple[str, Callable[[], str]]] = [
        ("embed", lambda: part_embed(device)),
        ("whisper", lambda: part_whisper(device)),
        ("llama", lambda: part_llama(device)),
    ]
    if not args.skip_first_answer:
        parts.append(("first", lambda: part_first_answer(args.minutes, device)))
    shown = "the CPU (--device cpu)" if device == "cpu" else cuda_devices()
    print(f"device: {shown or 'no CUDA device: the CUDA parts are skipped'}", flush=True)
    for name, run in parts:
        try:
            print(f"{name:<8} {run()}", flush=True)
        except Skipped as why:
            print(f"{name:<8} skipped: {why}", flush=True)


if __name__ == "__main__":
    main()
