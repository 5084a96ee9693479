"""Needle in a video haystack: how well a long video's facts are found, by length and by depth.

A haystack is real footage (cut into shots, shuffled, looped) with everyday narration every half minute
and, at each requested depth (0 % = the start, 100 % = the end), needles: a spoken sentence (espeak-ng)
and/or a sign on screen, each a seeded fact (``facts.py``: names, numbers, places) with its question.
The narration is spoken by espeak-ng or by Piper's neural voice with quiet noise under it; asked for both,
each voice gets its own haystack of the same facts at the same times, so their results compare directly.
One haystack a length holds the needles of every depth and kind — different facts, at least 6 s apart
— so a length is rendered and indexed once; each needle's question is then asked through the very path
``videoqa ask`` takes. A needle is found when the answer states its fact and cites evidence within
``tolerance_s`` of when it was said or shown.

Haystacks are cached by everything that shapes them (length, depths, kinds, seed, footage, voice, format
version), so a rerun with another model reuses them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videoqa.errors import OptionsError
from videoqa.media.formats import VIDEO_SUFFIXES
from videoqa.store.paths import user_dir
from videoqa.testmedia import facts, voices
from videoqa.testmedia.story import StoryOptions, TimedEvent, filler, render_events

if TYPE_CHECKING:
    from videoqa.assistant import Assistant
    from videoqa.respond.answer import Answer

log = logging.getLogger("videoqa")

KINDS = ("speech", "text")
DEFAULT_LENGTHS_MIN = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0)
DEFAULT_DEPTHS = (0, 25, 50, 75, 100)
_FORMAT_VERSION = 1
NEEDLE_S = 4.0  # how long a needle is heard or shown
EDGE_S = 2.0  # depth 0 starts this far in, depth 100 ends this far before the end
_KIND_GAP_S = 6.0  # a depth's text needle is shown this long after (or before) its spoken one
_FILLER_EVERY_S = 30.0
_FILLER_CLEARANCE_S = 8.0  # no filler sentence this close to a needle: the needle must be heard alone
_CHUNK_S = 300.0


@dataclass(frozen=True)
class NeedleOptions:
    """Which haystacks to build and how answers are judged."""

    lengths_min: tuple[float, ...] = DEFAULT_LENGTHS_MIN
    depths: tuple[int, ...] = DEFAULT_DEPTHS
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    tolerance_s: float = 5.0  # a cited passage must lie within this of the needle
    voices: tuple[str, ...] = (voices.ESPEAK,)  # who speaks each haystack: one haystack a length and voice

    def __post_init__(self) -> None:
        if not self.voices or len(set(self.voices)) != len(self.voices):
            raise OptionsError(f"voices must be one or more, without repeats, got {list(self.voices)}")
        for voice in self.voices:
            voices.check_voice(voice)
        if not self.lengths_min or any(not 0.5 <= length <= 600 for length in self.lengths_min):
            raise OptionsError(f"lengths must be minutes within 0.5..600, got {list(self.lengths_min)}")
        if not self.depths or any(not 0 <= depth <= 100 for depth in self.depths):
            raise OptionsError(f"depths must be percentages within 0..100, got {list(self.depths)}")
        if len(set(self.depths)) != len(self.depths) or len(set(self.lengths_min)) != len(self.lengths_min):
            raise OptionsError("lengths and depths must not repeat")
        if not self.kinds or any(kind not in KINDS for kind in self.kinds):
            raise OptionsError(f"kinds must be among {', '.join(KINDS)}, got {list(self.kinds)}")
        if self.tolerance_s < 0:
            raise OptionsError(f"tolerance_s must be 0 or more, got {self.tolerance_s}")


@dataclass(frozen=True)
class Needle:
    """A fact hidden in a haystack, and the question that should find it."""

    kind: str  # "speech" or "text"
    depth: int  # percent of the video
    start_s: float
    end_s: float
    text: str  # the sentence spoken or the sign shown
    question: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class Haystack:
    path: Path
    duration_s: float
    needles: tuple[Needle, ...]


@dataclass(frozen=True)
class NeedleResult:
    """One needle's question, asked and judged."""

    length_min: float
    voice: str
    needle: Needle
    answer: str
    states_fact: bool
    cites_needle: bool
    seconds: float

    @property
    def found(self) -> bool:
        return self.states_fact and self.cites_needle


# --- placing needles -------------------------------------------------------------------------------


def needle_start(depth: int, duration_s: float) -> float:
    """When a needle at ``depth`` percent starts: EDGE_S in at 0 %, ending EDGE_S before the end at 100 %,
    moved earlier when it would cross a render chunk's end."""
    span_s = max(duration_s - NEEDLE_S - 2 * EDGE_S, 0.0)
    return _inside_chunk(EDGE_S + depth / 100 * span_s)


def _inside_chunk(start_s: float) -> float:
    chunk_end = (start_s // _CHUNK_S + 1) * _CHUNK_S
    return min(start_s, chunk_end - NEEDLE_S - 0.5)


def _kind_start(kind: str, depth: int, duration_s: float, kinds: Sequence[str]) -> float:
    """Speech at the depth's time; text beside it (after, or before near the end) when both are asked."""
    start_s = needle_start(depth, duration_s)
    if kind == "speech" or "speech" not in kinds:
        return start_s
    later = start_s + _KIND_GAP_S
    fits = later + NEEDLE_S + EDGE_S <= duration_s and _inside_chunk(later) == later
    return later if fits else _inside_chunk(max(start_s - _KIND_GAP_S, 0.5))


def plan_needles(
    duration_s: float, depths: Sequence[int], kinds: Sequence[str], rng: random.Random
) -> list[Needle]:
    """A different seeded fact for every (depth, kind), placed at its depth."""
    needles: list[Needle] = []
    used: set[str] = set()
    for depth in depths:
        for kind in kinds:
            fact = _fresh_fact(kind, rng, used)
            start_s = _kind_start(kind, depth, duration_s, kinds)
            if any(n.kind == kind and abs(n.start_s - start_s) < NEEDLE_S for n in needles):
                start_s = needle_start(depth, duration_s)  # no room beside: shown while its sentence is said
            needles.append(
                Needle(
                    kind,
                    depth,
                    round(start_s, 2),
                    round(start_s + NEEDLE_S, 2),
                    fact.text,
                    fact.question,
                    fact.answers,
                )
            )
    return needles


def _fresh_fact(kind: str, rng: random.Random, used: set[str]) -> facts.Fact:
    """A fact whose question (and answers) no other needle of the haystack has."""
    make = facts.spoken_fact if kind == "speech" else facts.screen_fact
    for _ in range(1000):
        fact = make(rng)
        keys = {fact.question, *fact.answers}
        if not keys & used:
            used.update(keys)
            return fact
    raise OptionsError("too many needles for the fact generator to keep them apart; ask for fewer depths")


def _fillers(duration_s: float, needles: Sequence[Needle], rng: random.Random) -> list[TimedEvent]:
    """Everyday narration every half minute, kept clear of the needles and of chunk ends."""
    events = []
    at_s = 10.0
    while at_s + NEEDLE_S + EDGE_S < duration_s:
        clear = all(abs(at_s - n.start_s) >= _FILLER_CLEARANCE_S for n in needles)
        if clear and _inside_chunk(at_s) == at_s:
            events.append(TimedEvent(at_s, "speech", filler(rng)))
        at_s += _FILLER_EVERY_S
    return events


# --- building haystacks ----------------------------------------------------------------------------


def haystack_dir() -> Path:
    """Where haystacks are kept: ``$VIDEOQA_BENCH_CACHE`` or the platform's cache folder."""
    return user_dir("VIDEOQA_BENCH_CACHE", "cache", "bench") / "needles"


def build_haystack(
    length_min: float,
    options: NeedleOptions,
    footage: Sequence[str],
    folder: Path | None = None,
    voice: str | None = None,
) -> Haystack:
    """The haystack of ``length_min`` minutes spoken by ``voice`` (default: the options' first voice):
    the cached one, or rendered now. The needles and their times do not depend on the voice."""
    folder = folder or haystack_dir()
    voice = voices.check_voice(voice or options.voices[0])
    recipe = {
        "v": _FORMAT_VERSION,
        "length_min": length_min,
        "depths": list(options.depths),
        "kinds": list(options.kinds),
        "seed": options.seed,
        "footage": _footage_identity(footage),
        "voice": voice,
    }
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    path = folder / f"haystack-{key}.mp4"
    manifest = path.with_suffix(".json")
    if path.is_file() and manifest.is_file():
        return _load(path, manifest)
    duration_s = length_min * 60.0
    rng = random.Random(f"{options.seed}:{length_min}")
    needles = plan_needles(duration_s, options.depths, options.kinds, rng)
    events = [TimedEvent(n.start_s, "speech" if n.kind == "speech" else "screen", n.text) for n in needles]
    events = sorted(events + _fillers(duration_s, needles, rng), key=lambda e: e.start_s)
    story = StoryOptions(
        duration_s=duration_s,
        seed=options.seed,
        footage=tuple(footage),
        chunk_s=_CHUNK_S,
        card_s=NEEDLE_S,
        voice=voice,
    )
    folder.mkdir(parents=True, exist_ok=True)
    render_events(story, events, rng, path)
    haystack = Haystack(path, duration_s, tuple(needles))
    partial = manifest.with_suffix(".partial")
    partial.write_text(
        json.dumps(
            {"duration_s": duration_s, "recipe": recipe, "needles": [asdict(n) for n in needles]}, indent=2
        )
    )
    partial.replace(manifest)  # written last: a haystack without its manifest is rebuilt
    return haystack


def _footage_identity(footage: Sequence[str]) -> list[tuple[str, int]]:
    return [(Path(f).name, Path(f).stat().st_size) for f in footage]


def _load(path: Path, manifest: Path) -> Haystack:
    data = json.loads(manifest.read_text())
    needles = tuple(Needle(**{**n, "answers": tuple(n["answers"])}) for n in data["needles"])
    return Haystack(path, float(data["duration_s"]), needles)


def footage_files(folder: Path | None) -> tuple[str, ...]:
    """The videos to cut haystacks from: the files in ``folder``, or the sample clips."""
    if folder is None:
        from videoqa.testmedia.samples import sample_path

        return tuple(str(sample_path(name)) for name in ("bikes.mp4", "vtest.avi", "tree.avi"))
    if not folder.is_dir():
        raise OptionsError(f"{folder}: no such footage folder")
    found = sorted(str(p) for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not found:
        raise OptionsError(f"{folder}: no videos ({', '.join(VIDEO_SUFFIXES)}) to cut a haystack from")
    from videoqa.media.video import probe

    for file in found:
        probe(file)  # a file that cannot be read fails here, with its name, not in the middle of a render
    return tuple(found)


# --- asking and judging ----------------------------------------------------------------------------


def judge(answer: Answer, needle: Needle, tolerance_s: float) -> tuple[bool, bool]:
    """(the answer states the needle's fact, it cites evidence within ``tolerance_s`` of the needle)."""
    states = facts.answer_matches(answer.text, needle.answers) and not answer.abstained
    cites = any(
        item.start_s <= needle.end_s + tolerance_s and item.end_s >= needle.start_s - tolerance_s
        for item in answer.evidence
    )
    return states, cites


@dataclass(frozen=True)
class LengthRun:
    """One haystack (a length and a voice): how long building, indexing and answering took, and the
    results."""

    length_min: float
    voice: str
    build_s: float
    index_s: float
    peak_mib: float  # the process's peak resident memory by the end of this length
    results: tuple[NeedleResult, ...]


def run_needles(
    assistant: Assistant,
    options: NeedleOptions,
    footage: Sequence[str],
    folder: Path | None = None,
    on_result: Callable[[NeedleResult], None] | None = None,
) -> Iterator[LengthRun]:
    """Build (or reuse) the haystack of each length and voice, index it, ask every needle's question, judge
    the answers. The voices of a length come one after the other."""
    for length_min in options.lengths_min:
        for voice in options.voices:
            yield _run_haystack(assistant, length_min, voice, options, footage, folder, on_result)


def _run_haystack(
    assistant: Assistant,
    length_min: float,
    voice: str,
    options: NeedleOptions,
    footage: Sequence[str],
    folder: Path | None,
    on_result: Callable[[NeedleResult], None] | None,
) -> LengthRun:
    started = time.perf_counter()
    haystack = build_haystack(length_min, options, footage, folder, voice)
    built = time.perf_counter()
    assistant.knowledge(haystack.path)
    indexed = time.perf_counter()
    results = []
    for needle in haystack.needles:
        asked = time.perf_counter()
        answer = assistant.ask(haystack.path, needle.question)
        states, cites = judge(answer, needle, options.tolerance_s)
        result = NeedleResult(
            length_min, voice, needle, answer.text, states, cites, time.perf_counter() - asked
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return LengthRun(length_min, voice, built - started, indexed - built, peak_rss_mib(), tuple(results))


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


# --- reports -------------------------------------------------------------------------------------------


def accuracy_grid(
    runs: Sequence[LengthRun], depths: Sequence[int], kind: str | None = None
) -> list[list[float | None]]:
    """Share of needles found, one row a depth and one column a run (a length and voice; None: none
    asked)."""
    grid: list[list[float | None]] = []
    for depth in depths:
        row: list[float | None] = []
        for run in runs:
            picked = [r for r in run.results if r.needle.depth == depth and kind in (None, r.needle.kind)]
            row.append(sum(r.found for r in picked) / len(picked) if picked else None)
        grid.append(row)
    return grid


def table_rows(runs: Sequence[LengthRun], depths: Sequence[int]) -> list[dict[str, Any]]:
    """A row per length, depth and voice: accuracy, by kind, median seconds a question, peak memory."""
    rows = []
    for run in runs:
        for depth in depths:
            picked = [r for r in run.results if r.needle.depth == depth]
            by_kind = {
                kind: sum(r.found for r in picked if r.needle.kind == kind)
                / max(1, sum(1 for r in picked if r.needle.kind == kind))
                for kind in sorted({r.needle.kind for r in picked})
            }
            rows.append(
                {
                    "length_min": run.length_min,
                    "voice": run.voice,
                    "depth": depth,
                    "asked": len(picked),
                    "found": sum(r.found for r in picked),
                    "accuracy": sum(r.found for r in picked) / len(picked) if picked else 0.0,
                    "by_kind": by_kind,
                    "median_question_s": statistics.median(r.seconds for r in picked) if picked else 0.0,
                    "index_s": run.index_s,
                    "peak_mib": run.peak_mib,
                }
            )
    return rows


def report_json(
    runs: Sequence[LengthRun], options: NeedleOptions, footage: Sequence[str], models: dict[str, str]
) -> dict[str, Any]:
    return {
        "options": {**asdict(options), "footage": [Path(f).name for f in footage]},
        "models": models,
        "rows": table_rows(runs, options.depths),
        "lengths": [
            {
                "length_min": r.length_min,
                "voice": r.voice,
                "build_s": round(r.build_s, 2),
                "index_s": round(r.index_s, 2),
                "peak_mib": round(r.peak_mib, 1),
            }
            for r in runs
        ],
        "needles": [
            {
                **asdict(r.needle),
                "length_min": r.length_min,
                "voice": r.voice,
                "answer": r.answer,
                "states_fact": r.states_fact,
                "cites_needle": r.cites_needle,
                "found": r.found,
                "seconds": round(r.seconds, 3),
            }
            for run in runs
            for r in run.results
        ],
    }


def save_heatmap(runs: Sequence[LengthRun], options: NeedleOptions, path: Path, title: str) -> None:
    """The accuracy heatmap the long-video papers draw: depth down, length across (each voice beside the
    other when there are two), one panel a kind."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    panels = [(None, "all needles")] + ([(k, k) for k in options.kinds] if len(options.kinds) > 1 else [])
    width = 1.5 + len(panels) * (1.2 + 0.7 * len(runs))
    figure, axes = plt.subplots(
        1, len(panels), figsize=(width, 4.0), squeeze=False, sharey=True, constrained_layout=True
    )
    for index, (axis, (kind, label)) in enumerate(zip(axes[0], panels, strict=True)):
        grid = accuracy_grid(runs, options.depths, kind)
        values = [[float("nan") if v is None else v for v in row] for row in grid]
        image = axis.imshow(values, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
        axis.set_xticks(range(len(runs)), [_run_label(r, options) for r in runs])
        axis.set_yticks(range(len(options.depths)), [f"{d}%" for d in options.depths])
        axis.set_xlabel("video length (minutes)")
        if index == 0:
            axis.set_ylabel("needle depth")
        axis.set_title(label)
        for row_index, row in enumerate(grid):
            for column, value in enumerate(row):
                if value is not None:
                    axis.text(column, row_index, f"{value:.0%}", ha="center", va="center", fontsize=8)
    figure.colorbar(image, ax=axes[0].tolist(), label="found (fact stated and cited within tolerance)")
    figure.suptitle(title, fontsize=9)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _run_label(run: LengthRun, options: NeedleOptions) -> str:
    return f"{run.length_min:g}" if len(options.voices) == 1 else f"{run.length_min:g}\n{run.voice}"
