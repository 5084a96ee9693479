"""What `videoqa caption` gives on a narrated video, and what it costs, with real models.

A narrated story (``testmedia.story``: real sample footage, a planted fact, sign or before/after pair every
30 s, filler narration between them) is rendered once and indexed once (cached under
~/.cache/videoqa/bench). Then, for each model, in this process with the models loaded once: the
captions of the already-indexed video are made with an empty caption cache ("cold": every scene
captioned by the model) and again ("warm": the cached captions), as `videoqa caption` makes them
(``cli_caption.scene_captions``, quiet scenes merged). Each cue is then judged against what the story
really says and shows in its span (the script, not the transcript), by checks written apart from the
captioner's own guards:

- repeated: a sentence, or a run of 4 words, comes twice in the cue;
- doubled sign: a word of a sign shown in the span comes more often in the cue than in the signs and
  lines of the span together;
- grounded: every number, and 3 in 4 of the other words, of the cue are in the span's lines and signs;
- facts: the planted facts (spoken or shown) whose answer the cue covering their time states.

    python benchmarks/captions.py [--minutes 20] [--models smollm2-135m-instruct qwen2.5-coder-0.5b-instruct]
"""

from __future__ import annotations

import argparse
import logging
import re
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from videoqa.respond.captions import CaptionEvent
    from videoqa.testmedia.story import Story

BENCH_DIR = Path.home() / ".cache" / "videoqa" / "bench"
FOOTAGE = ("bikes.mp4", "vtest.avi", "tree.avi", "Megamind.avi")
DEFAULT_MODELS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct")
# Words a caption may use that the script need not hold: our quote labels and plain caption verbs.
_FREE = frozenset(
    re.findall(
        r"\S+",
        "a an the is are was were of to in on at and or speech screen says "
        "said shows shown sign reads someone scene video while about with for by from "
        "it this that",
    )
)


@dataclass(frozen=True)
class Row:
    model: str
    scenes: int
    cues: int
    empty: int
    repeated: int
    doubled: int
    grounded: int
    from_model: int
    facts: tuple[int, int]  # stated, planted
    models_s: float
    cold_s: float
    warm_s: float


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def repeated(text: str) -> bool:
    sentences = [tuple(_words(s)) for s in re.split(r"[.!?]", text) if len(_words(s)) >= 2]
    words = _words(text)
    runs = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    return len(set(sentences)) < len(sentences) or len(set(runs)) < len(runs)


def _in_span(timed: tuple[tuple[float, str], ...], start_s: float, end_s: float) -> list[str]:
    return [text for at_s, text in timed if start_s - 1.0 <= at_s < end_s]


def doubled(text: str, signs: list[str], lines: list[str]) -> bool:
    said = Counter(_words(text))
    allowed = Counter(w for t in signs + lines for w in _words(t))
    return any(said[w] > allowed[w] for sign in signs for w in _words(sign))


def grounded(text: str, truth: list[str]) -> bool:
    known = {w for t in truth for w in _words(t)}
    added = [w for w in _words(text) if w not in _FREE]
    if any(w.isdigit() and w not in known for w in added):
        return False
    others = [w for w in added if not w.isdigit()]
    return not others or sum(w in known for w in others) / len(others) >= 0.75


def judge(model: str, story: Story, scenes: int, cues: list[CaptionEvent], times: tuple[float, ...]) -> Row:
    from videoqa.testmedia.facts import answer_matches

    shown = [c for c in cues if c.source != "empty"]
    spans = [
        (_in_span(story.cards, c.start_s, c.end_s), _in_span(story.lines, c.start_s, c.end_s)) for c in shown
    ]
    planted = [q for q in story.questions if q.kind in ("speech", "screen")]
    stated = sum(
        1
        for q in planted
        for c in shown
        if c.start_s <= q.start_s + 0.5 < c.end_s and answer_matches(c.text, q.answers)
    )
    return Row(
        model,
        scenes,
        len(shown),
        len(cues) - len(shown),
        sum(repeated(c.text) for c in shown),
        sum(doubled(c.text, signs, lines) for c, (signs, lines) in zip(shown, spans, strict=True)),
        sum(grounded(c.text, signs + lines) for c, (signs, lines) in zip(shown, spans, strict=True)),
        sum(c.source == "model" for c in shown),
        (stated, len(planted)),
        *times,
    )


class Refusals(logging.Handler):
    """The model captions the captioner refused, as it logs them: scene index -> (why, the reply)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.by_scene: dict[int, tuple[str, str]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == REFUSED and isinstance(record.args, tuple):
            index, fault, reply = record.args
            self.by_scene[int(index)] = (str(fault), str(reply))  # type: ignore[call-overload]


REFUSED = "scene %d: caption refused (%s): %s"  # the captioner's log line (videoqa/respond/captions.py)


def show_refused(cues: list[CaptionEvent], refusals: Refusals) -> None:
    """For each quoted cue, the model's reply that was refused and why; and a count of the reasons."""
    reasons: Counter[str] = Counter()
    for cue in cues:
        if cue.source != "quote":
            continue
        first, last = cue.covers
        for index in range(first, last + 1):
            if index in refusals.by_scene:
                fault, reply = refusals.by_scene[index]
                reasons[fault] += 1
                print(f"  [{cue.span}] refused ({fault}): {reply!r}\n      speech: {cue.speech!r}")
                if cue.screen:
                    print(f"      screen: {cue.screen!r}")
    print("  refused: " + (", ".join(f"{n} {fault}" for fault, n in reasons.most_common()) or "none"))


def run_model(model: str, story: Story, index_cache: Path, show_rejected: bool = False) -> Row:
    from videoqa.assistant import Assistant, AssistantOptions
    from videoqa.cli.caption import scene_captions
    from videoqa.respond.captions import merge_quiet
    from videoqa.store.cache import IndexCache

    started = time.perf_counter()
    assistant = Assistant(AssistantOptions(llm=model, device="cpu"), cache=IndexCache(index_cache))
    assistant.load_models()
    models_s = time.perf_counter() - started
    quiet_s = assistant.options.captioning.quiet_merge_s
    with tempfile.TemporaryDirectory() as folder:
        captions = IndexCache(Path(folder))
        runs = []
        refusals = Refusals()
        logger = logging.getLogger("videoqa")
        logger.addHandler(refusals)
        level = logger.level
        logger.setLevel(logging.DEBUG)
        for _ in ("cold", "warm"):
            started = time.perf_counter()
            cues = list(merge_quiet(scene_captions(assistant, str(story.path), False, captions), quiet_s))
            runs.append(time.perf_counter() - started)
            logger.removeHandler(refusals)  # the warm run reads the cache: nothing is refused again
            logger.setLevel(level)
    scenes = len(assistant.knowledge(story.path).visual.scenes)
    for cue in cues:
        print(f"  [{cue.span}] {cue.text}")
    if show_rejected:
        show_refused(cues, refusals)
    return judge(model, story, scenes, cues, (models_s, *runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--show-rejected",
        action="store_true",
        help="print each quoted cue's refused model caption and the check that refused it",
    )
    args = parser.parse_args()

    from videoqa.assistant import Assistant, AssistantOptions
    from videoqa.store import models
    from videoqa.store.cache import IndexCache
    from videoqa.testmedia.samples import sample_path
    from videoqa.testmedia.story import StoryOptions, build_story

    footage = tuple(str(sample_path(name)) for name in FOOTAGE)
    story = build_story(
        StoryOptions(duration_s=args.minutes * 60, seed=args.seed, footage=footage), BENCH_DIR / "stories"
    )
    index_cache = BENCH_DIR / "caption-index"
    started = time.perf_counter()
    Assistant(AssistantOptions(device="cpu"), cache=IndexCache(index_cache)).knowledge(story.path)
    print(
        f"{story.path.name}: {args.minutes:g} min, indexed (or read from the cache) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    rows = []
    for model in args.models:
        models.pull(model)
        print(f"{model}:")
        rows.append(run_model(model, story, index_cache, args.show_rejected))
        print_table(rows[-1:], args.minutes)  # each model's row as soon as it is known: a run may be long
    if len(rows) > 1:
        print_table(rows, args.minutes)


def print_table(rows: list[Row], minutes: float) -> None:
    print(
        "| model | scenes | cues | empty cues | repeated | doubled sign | grounded | by the model | "
        "facts stated | models s | cold s | cold s/scene | cold s/video-min | warm s |"
    )
    print("|---" * 14 + "|")
    for r in rows:
        print(
            f"| {r.model} | {r.scenes} | {r.cues} | {r.empty} | {r.repeated} | {r.doubled} | "
            f"{r.grounded / max(r.cues, 1):.0%} | {r.from_model / max(r.cues, 1):.0%} | "
            f"{r.facts[0]}/{r.facts[1]} | {r.models_s:.1f} | {r.cold_s:.0f} | {r.cold_s / r.scenes:.2f} | "
            f"{r.cold_s / minutes:.1f} | {r.warm_s:.2f} |"
        )


if __name__ == "__main__":
    main()
