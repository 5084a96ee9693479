"""Time to first answer, time for a second question, peak memory and accuracy of ``ask`` by video length.

Each length gets a narrated story (``videoqa.testmedia.story``: real sample footage, a planted fact, sign or
before/after pair every 30 s, filler narration between them), rendered once and cached under
~/.cache/videoqa/bench. Each length runs in a fresh process with an empty index cache, so "first" is what
a user's first question about a new video costs: loading the speech and OCR models, indexing every
channel, then answering. As ``videoqa ask`` does, the answering model is checked before indexing and
loaded after it (so it is not in memory beside the speech and screen-text models, which are let go once
the video is indexed); its loading is timed apart ("model load s"), being paid once per session. The
narration is spoken by espeak-ng, Piper's neural voice (quiet noise under it), or each in turn
(``--voice both``: the same story, one row per length and voice).

The stage breakdown comes from the pipeline's report (``knowledge.build.IndexReport``): the frames and
speech run side by side in one pass, so their wall seconds overlap; "look+read CPU s" is what the screen
text cost of the frame side, and "looks / reads" how many frames were looked at and read. The load
average of the machine before each row is printed with it (a figure taken on a busy machine is slower).

    python benchmarks/ask.py [--minutes 10 30 60] [--questions 12] [--no-screen-text] [--voice both]
    python benchmarks/ask.py --seed-method [--minutes 10 60]   # the seed's frame loop, timed on 2 minutes
    python benchmarks/ask.py --minutes 10 60 --before /tmp/old --seed-method   # before/after, one run

``--seed-method`` times the seed's way of indexing frames (every frame decoded at full size and given to
the default image model one at a time) on the first 2 minutes of the story and scales it to each length.

``--before CHECKOUT`` runs each length a second time with an earlier videoqa (a checkout of another
commit, e.g. ``git worktree add /tmp/old 21d9769^``: the last commit before the one-pass indexing), just
before the current one, each in a fresh process on the same story, and adds a side-by-side table with the
ratios. The earlier checkout runs its own ``benchmarks/ask.py --one``; only the fields every version
reports (first and second answer, peak memory, accuracy) are compared.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
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
    reports: list[Any] = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as cache_dir:
        options = AssistantOptions(device="cpu") if screen_text else AssistantOptions(device="cpu", ocr=None)
        assistant = Assistant(options, cache=IndexCache(Path(cache_dir)), on_report=reports.append)
        # As `videoqa ask` does: the answering model is checked first and loaded once the video is
        # indexed (so it is not in memory beside the speech and screen-text models). Loading it is
        # counted apart: it is paid once per session, not per video.
        assistant.check_models()
        picked = [q for q in story.questions if q.answers][:questions] + [
            q for q in story.questions if not q.answers
        ]
        started, cpu_started = time.perf_counter(), time.process_time()
        assistant.knowledge(story.path)
        loading, cpu_loading = time.perf_counter(), time.process_time()
        assistant.load_models()
        llm_load_s, llm_load_cpu_s = time.perf_counter() - loading, time.process_time() - cpu_loading
        first = assistant.ask(story.path, picked[0].question)
        first_s = time.perf_counter() - started - llm_load_s
        first_cpu_s = time.process_time() - cpu_started - llm_load_cpu_s
        started = time.perf_counter()
        assistant.ask(story.path, picked[1].question)
        second_s = time.perf_counter() - started
        right = 0
        for question in picked:
            answer = first if question is picked[0] else assistant.ask(story.path, question.question)
            right += answer_matches(answer.text, question.answers) if question.answers else answer.abstained
    report = dataclasses.asdict(reports[0])
    return {
        "minutes": minutes,
        "voice": voice,
        "first_s": first_s,
        "first_cpu_s": first_cpu_s,
        "llm_load_s": llm_load_s,
        "second_s": second_s,
        "report": report,
        "accuracy": right / len(picked),
        "questions": len(picked),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load": load,
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
    parser.add_argument(
        "--seed-method", action="store_true", help="time the seed's frame loop on 2 minutes, scaled"
    )
    parser.add_argument(
        "--before", type=Path, metavar="CHECKOUT", help="an earlier videoqa checkout to run side by side"
    )
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)  # a child process's single run
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(run_one(args.one, args.questions, not args.no_screen_text, args.voice or "espeak")))
        return
    if args.before is not None and not (args.before / "benchmarks" / "ask.py").is_file():
        raise SystemExit(f"error: {args.before} is not a videoqa checkout (it has no benchmarks/ask.py)")
    if args.seed_method and args.before is None:
        seed_method(args.minutes)
        return
    pairs = [
        (
            _child(minutes, voice, args, args.before) if args.before else None,
            _child(minutes, voice, args, ROOT),
        )
        for minutes in args.minutes
        for voice in _voices(args.voice)
    ]
    rows = [after for _, after in pairs]
    print(
        "| video | voice | first answer s | its CPU s | pass s | frames side s | speech side s |"
        " look+read CPU s | looks / reads | passages s | second answer s | peak MiB | accuracy | load |"
        " model load s |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for row in rows:
        report = row["report"]
        screen = report["screen"]
        print(
            f"| {row['minutes']:g} min | {row['voice']} | {row['first_s']:.1f} | {row['first_cpu_s']:.0f} | "
            f"{report['pass_s']:.1f} | "
            f"{report['frames_s']:.1f} | {report['speech_s']:.1f} | {report['screen_cpu_s']:.1f} | "
            f"{screen['looks']} / {screen['reads']} | {report['passages_s']:.1f} | {row['second_s']:.2f} | "
            f"{row['peak_mib']:.0f} | {row['accuracy']:.0%} of {row['questions']} | {row['load']:.1f} | "
            f"{row['llm_load_s']:.1f} |"
        )
    if args.before is not None:
        print_side_by_side([(before, after) for before, after in pairs if before is not None], args.before)
    if args.seed_method:
        print()
        seed_method(args.minutes)


def print_side_by_side(pairs: list[tuple[dict[str, Any], dict[str, Any]]], before: Path) -> None:
    """Each length's figures from the earlier checkout beside this one's, with after/before ratios."""
    print(
        f"\nbefore: {before} ({_commit(before)}), after: this checkout ({_commit(ROOT)})\n\n"
        "| video | voice | first answer s before | after | after/before | second answer s before | after |"
        " peak MiB before | after | accuracy before | after |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    for old, new in pairs:
        print(
            f"| {new['minutes']:g} min | {new['voice']} | {old['first_s']:.1f} | {new['first_s']:.1f} | "
            f"{new['first_s'] / old['first_s']:.2f} | {old['second_s']:.2f} | {new['second_s']:.2f} | "
            f"{old['peak_mib']:.0f} | {new['peak_mib']:.0f} | {old['accuracy']:.0%} | {new['accuracy']:.0%} |"
        )


def _commit(checkout: Path) -> str:
    """The short commit a checkout is at ("unknown" outside git), marked when it has changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(checkout), "describe", "--always", "--dirty"], capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return head.stdout.strip() or "unknown"


SEED_PREFIX_S = 120.0


def seed_method(lengths: list[float]) -> None:
    """The seed's loop: every frame of the first SEED_PREFIX_S seconds decoded at full size and embedded
    alone by the default image model; its cost scaled to each length (it is the same for every frame)."""
    import av

    from videoqa.store.registry import DEFAULT_IMAGE_EMBEDDER
    from videoqa.testmedia.samples import sample_path
    from videoqa.testmedia.story import StoryOptions, build_story
    from videoqa.visual.embed import load_embedder

    footage = tuple(str(sample_path(name)) for name in FOOTAGE)
    story = build_story(
        StoryOptions(duration_s=min(lengths) * 60, seed=1, footage=footage), BENCH_DIR / "stories"
    )
    embedder = load_embedder(DEFAULT_IMAGE_EMBEDDER)
    frames = 0
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with av.open(str(story.path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= SEED_PREFIX_S:
                break
            embedder.embed_images(frame.to_ndarray(format="rgb24")[None])
            frames += 1
    seconds = time.perf_counter() - started
    print(
        f"seed method ({embedder.id}, batch 1): {frames} frames of the first {SEED_PREFIX_S:g} s in "
        f"{seconds:.1f} s ({1000 * seconds / frames:.1f} ms a frame; load {load:.1f})"
    )
    for minutes in lengths:
        print(
            f"  {minutes:g} min: {seconds * minutes * 60 / SEED_PREFIX_S:.0f} s for the frames alone, scaled"
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


def _child(minutes: float, voice: str, args: argparse.Namespace, checkout: Path) -> dict[str, Any]:
    """One length and voice in a fresh process running ``checkout``'s videoqa: its index cache and
    memory peak are its own."""
    extra = ["--no-screen-text"] if args.no_screen_text else []
    command = [
        sys.executable,
        str(checkout / "benchmarks" / "ask.py"),
        "--one",
        str(minutes),
        "--questions",
        str(args.questions),
        "--voice",
        voice,
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": str(checkout)}  # that checkout's package, not the installed one
    child = subprocess.run(command, capture_output=True, text=True, env=env)
    if child.returncode != 0:
        raise SystemExit(f"error: {minutes:g} min ({checkout}) failed: {child.stderr.strip()[-500:]}")
    print(f"done: {minutes:g} min, {voice}, {checkout}", file=sys.stderr)
    row: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return row


if __name__ == "__main__":
    main()
