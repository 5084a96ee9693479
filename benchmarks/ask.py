"""Time to first answer, time for a second question, peak memory and accuracy of ``ask`` by video length.

Each length gets a narrated story (``videoqa.testmedia.story``: real sample footage, a planted fact, sign or
before/after pair every 30 s, filler narration between them), rendered once and cached under
~/.cache/videoqa/bench. Each length runs in a fresh process with an empty index cache, so "first" is what
a user's first question about a new video costs: indexing every channel, then answering. Stage times
come from the progress callbacks. The narration is spoken by espeak-ng, Piper's neural voice (quiet noise
under it), or each in turn (``--voice both``: the same story, one row per length and voice).

    python benchmarks/ask.py [--minutes 10 30 60] [--questions 12] [--no-screen-text] [--voice both]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path.home() / ".cache" / "videoqa" / "bench"
FOOTAGE = ("bikes.mp4", "vtest.avi", "tree.avi", "Megamind.avi")


def run_one(minutes: float, questions: int, screen_text: bool, voice: str) -> dict[str, Any]:
    """In this process: build or load the story, index it from scratch, answer its questions."""
    from videoqa.assistant import Assistant, AssistantOptions
    from videoqa.store.cache import IndexCache
    from videoqa.testmedia.facts import answer_matches
    from videoqa.testmedia.samples import sample_path
    from videoqa.testmedia.story import StoryOptions, build_story

    footage = tuple(str(sample_path(name)) for name in FOOTAGE)
    story = build_story(
        StoryOptions(duration_s=minutes * 60, seed=1, footage=footage, voice=voice), BENCH_DIR / "stories"
    )
    stage_s: dict[str, float] = {}

    def progress(label: str) -> Any:
        started = time.perf_counter()

        def update(done: float, total: float) -> None:
            stage_s[label] = time.perf_counter() - started

        return update

    with tempfile.TemporaryDirectory() as cache_dir:
        options = AssistantOptions(device="cpu") if screen_text else AssistantOptions(device="cpu", ocr=None)
        assistant = Assistant(options, cache=IndexCache(Path(cache_dir)), progress=progress)
        for load in (lambda: assistant.llm, lambda: assistant.text_embedder):
            load()  # model loading is counted apart: it is paid once per session, not per video
        picked = [q for q in story.questions if q.answers][:questions] + [
            q for q in story.questions if not q.answers
        ]
        started = time.perf_counter()
        first = assistant.ask(story.path, picked[0].question)
        first_s = time.perf_counter() - started
        started = time.perf_counter()
        assistant.ask(story.path, picked[1].question)
        second_s = time.perf_counter() - started
        right = 0
        for question in picked:
            answer = first if question is picked[0] else assistant.ask(story.path, question.question)
            right += answer_matches(answer.text, question.answers) if question.answers else answer.abstained
    return {
        "minutes": minutes,
        "voice": voice,
        "first_s": first_s,
        "second_s": second_s,
        "stages_s": stage_s,
        "accuracy": right / len(picked),
        "questions": len(picked),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 60])
    parser.add_argument("--questions", type=int, default=12, help="answerable questions per video")
    parser.add_argument("--no-screen-text", action="store_true", help="leave the OCR channel out")
    parser.add_argument(
        "--voice",
        choices=["espeak", "piper", "both"],
        default=None,
        help="who narrates (default: both when piper-tts is installed, else espeak)",
    )
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)  # a child process's single run
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.questions, not args.no_screen_text, args.voice or "espeak")))
        return
    rows = [_child(minutes, voice, args) for minutes in args.minutes for voice in _voices(args.voice)]
    print(
        "| video | voice | first answer s | frames s | speech s | screen text s | second answer s |"
        " peak MiB | accuracy |\n|---|---|---|---|---|---|---|---|---|"
    )
    for row in rows:
        stages = row["stages_s"]
        print(
            f"| {row['minutes']:g} min | {row['voice']} | {row['first_s']:.1f} | "
            f"{stages.get('frames', 0):.1f} | {stages.get('speech', 0):.1f} | "
            f"{stages.get('screen text', 0):.1f} | {row['second_s']:.2f} | {row['peak_mib']:.0f} | "
            f"{row['accuracy']:.0%} of {row['questions']} |"
        )


def _voices(choice: str | None) -> tuple[str, ...]:
    """The voices to run; a missing piper-tts is an error when asked for, one warning when defaulted."""
    from videoqa.errors import VideoqaError
    from videoqa.testmedia.voices import piper_installed, resolve_voices

    if choice is None and not piper_installed():
        print("warning: piper-tts is not installed; only espeak-ng narrates", file=sys.stderr)
        return ("espeak",)
    try:
        return resolve_voices(choice)
    except VideoqaError as exc:
        raise SystemExit(f"error: {exc}") from None


def _child(minutes: float, voice: str, args: argparse.Namespace) -> dict[str, Any]:
    """One length and voice in a fresh process: its index cache and memory peak are its own."""
    extra = ["--no-screen-text"] if args.no_screen_text else []
    command = [
        sys.executable,
        __file__,
        "--one",
        str(minutes),
        "--questions",
        str(args.questions),
        "--voice",
        voice,
        *extra,
    ]
    child = subprocess.run(command, capture_output=True, text=True, check=True)
    print(f"done: {minutes:g} min, {voice}", file=sys.stderr)
    row: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return row


if __name__ == "__main__":
    main()
