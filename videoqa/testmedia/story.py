"""Narrated test videos of any length: real footage, spoken facts and text cards at known times.

``build_story`` lays seeded facts (``facts.py``) along a timeline — a spoken fact, a sign on screen, or
two events in order for an "after" question, with filler narration between them — over shots cut from
real footage, renders it in chunks of a few minutes (``synth.py``) and joins them without re-encoding,
so an hour-long video costs an hour of footage at the renderer's speed and memory stays small. The
questions come back with the accepted answers and the time each answer is said or shown. The lines are
spoken by espeak-ng or by Piper's neural voice (``StoryOptions.voice``). Stories are cached by their
options, the voice included: a second run, or another model, reuses the file.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from videoqa.errors import OptionsError
from videoqa.testmedia import facts, voices
from videoqa.testmedia.synth import (
    SpokenLine,
    SynthError,
    SynthScene,
    SynthSpec,
    TextCard,
    pattern_scenes,
    render,
)

# Sentences between the facts, as real narration has: they name people and places too, so retrieval has
# to find the right sentence rather than the only one.
_FILLERS = (
    "It was a quiet {weekday} in {city}.",
    "{name} looked out of the window for a while.",
    "The streets were busy that afternoon.",
    "Nobody said much on the way home.",
    "{name} called an old friend from {city}.",
    "The light changed slowly over the hills.",
    "Everyone agreed it had been a long week.",
    "{name} made a cup of tea and sat down.",
)
_FORMAT_VERSION = 3
# Timeline of one slot: the fact at 0 s (a sequel's second event at 9 s, ending by 15 s); filler
# narration at 16 s when the slot is long enough to hold it without two voices overlapping.
_THEN_AT_S = 9.0
_SEQUEL_S = 15.0
_FILLER_AT_S = 16.0
_FILLER_ROOM_S = 22.0
# Each run of ten slots holds this mix of kinds, shuffled: any story of ten slots or more asks all three.
_KIND_BAG = ("speech",) * 5 + ("screen",) * 3 + ("after",) * 2


@dataclass(frozen=True)
class StoryOptions:
    """What story to make."""

    duration_s: float
    seed: int = 0
    fact_every_s: float = 30.0  # one planted fact (or half of a before/after pair) per this many seconds
    card_s: float = 4.0  # how long a sign stays on screen
    shot_s: tuple[float, float] = (6.0, 20.0)  # shortest and longest shot of footage
    footage: tuple[str, ...] = ()  # video files to cut shots from; none = generated patterns
    width: int = 640
    height: int = 360
    fps: float = 25.0
    chunk_s: float = 300.0  # rendered in pieces of this length, then joined
    voice: str = voices.ESPEAK  # what speaks: "espeak" (espeak-ng) or "piper" (neural, noise under it)
    # espeak-ng's voice. Whisper tiny.en recovered 74 % of the words of generated fact sentences spoken by
    # en-gb+m3, against 60-66 % for en-us and its other variants (2026-11-21, espeak-ng 1.51).
    espeak_voice: str = "en-gb+m3"

    def __post_init__(self) -> None:
        voices.check_voice(self.voice)
        if self.duration_s < 30:
            raise OptionsError(f"a story needs at least 30 s, got {self.duration_s}")
        if self.fact_every_s < _SEQUEL_S:
            raise OptionsError(f"fact_every_s must be at least {_SEQUEL_S} s, got {self.fact_every_s}")
        if not 2 <= self.shot_s[0] <= self.shot_s[1]:
            raise OptionsError(f"shot_s must be (shortest, longest) with shortest >= 2 s, got {self.shot_s}")
        if self.chunk_s < 60:
            raise OptionsError(f"chunk_s must be at least 60 s, got {self.chunk_s}")


@dataclass(frozen=True)
class PlantedQuestion:
    """A question about a story, its accepted answers, and when the answer is said or shown."""

    question: str
    answers: tuple[str, ...]  # empty for a question the video cannot answer
    kind: str  # "speech", "screen", "after" or "absent"
    start_s: float  # when the answer starts being said or shown (-1 for "absent")
    end_s: float


@dataclass(frozen=True)
class Story:
    """A rendered story and its questions."""

    path: Path
    duration_s: float
    questions: tuple[PlantedQuestion, ...]
    lines: tuple[tuple[float, str], ...]  # every sentence spoken, with its start time
    cards: tuple[tuple[float, str], ...]  # every sign shown, with its start time


@dataclass(frozen=True)
class TimedEvent:
    """A sentence spoken (channel "speech") or a sign shown (channel "screen") from ``start_s``."""

    start_s: float
    channel: str
    text: str


def build_story(options: StoryOptions, folder: Path, absent: int = 2) -> Story:
    """The story for ``options`` in ``folder``: rendered now, or the cached one from an earlier run."""
    key = hashlib.sha256(
        json.dumps({"v": _FORMAT_VERSION, **asdict(options), "absent": absent}, sort_keys=True).encode()
    ).hexdigest()[:16]
    path = folder / f"story-{key}.mp4"
    manifest = path.with_suffix(".json")
    if path.is_file() and manifest.is_file():
        return _load(path, manifest)
    rng = random.Random(options.seed)
    events, questions = _plan(options, rng)
    questions += [PlantedQuestion(text, (), "absent", -1.0, -1.0) for text in _absent(rng, absent)]
    folder.mkdir(parents=True, exist_ok=True)
    render_events(options, events, rng, path)
    story = Story(
        path=path,
        duration_s=options.duration_s,
        questions=tuple(questions),
        lines=tuple((e.start_s, e.text) for e in events if e.channel == "speech"),
        cards=tuple((e.start_s, e.text) for e in events if e.channel == "screen"),
    )
    manifest.write_text(json.dumps(_manifest(story), indent=2))
    return story


def _plan(options: StoryOptions, rng: random.Random) -> tuple[list[TimedEvent], list[PlantedQuestion]]:
    """Facts on a timeline: every ``fact_every_s`` a fact, a sign, or the first half of a sequel."""
    events: list[TimedEvent] = []
    questions: list[PlantedQuestion] = []
    used: set[str] = set()
    kinds: list[str] = []
    slot_s = 4.0
    while slot_s + options.fact_every_s <= options.duration_s:
        if not kinds:
            kinds = rng.sample(_KIND_BAG, len(_KIND_BAG))
        if _room_in_chunk(slot_s, options):
            planted = _plant(kinds.pop(), slot_s, options, rng, used)
            if planted is not None:
                events += planted[0]
                questions.append(planted[1])
            if options.fact_every_s >= _FILLER_ROOM_S:
                events.append(TimedEvent(slot_s + _FILLER_AT_S, "speech", filler(rng)))
        slot_s += options.fact_every_s
    return sorted(events, key=lambda e: e.start_s), questions


def _room_in_chunk(start_s: float, options: StoryOptions) -> bool:
    """Whether a slot's events end inside the chunk they start in."""
    return (start_s % options.chunk_s) + min(options.fact_every_s, _FILLER_ROOM_S) < options.chunk_s


def _plant(
    kind: str, at_s: float, options: StoryOptions, rng: random.Random, used: set[str]
) -> tuple[list[TimedEvent], PlantedQuestion] | None:
    if kind == "after":
        pair = facts.sequel(rng)
        if pair.question in used:
            return None
        used.add(pair.question)
        then_s = at_s + _THEN_AT_S
        return (
            [TimedEvent(at_s, "speech", pair.first), TimedEvent(then_s, "speech", pair.then)],
            PlantedQuestion(pair.question, pair.answers, "after", then_s, then_s + 4.0),
        )
    fact = facts.spoken_fact(rng) if kind == "speech" else facts.screen_fact(rng)
    if fact.question in used:  # the same question twice would have two right answers
        return None
    used.add(fact.question)
    length_s = options.card_s if kind == "screen" else 4.0
    return (
        [TimedEvent(at_s, kind, fact.text)],
        PlantedQuestion(fact.question, fact.answers, kind, at_s, at_s + length_s),
    )


def _absent(rng: random.Random, count: int) -> list[str]:
    """``count`` different questions about things the story does not hold."""
    chosen: list[str] = []
    while len(chosen) < count:
        question = facts.absent_question(rng)
        if question not in chosen:
            chosen.append(question)
    return chosen


def filler(rng: random.Random) -> str:
    """A sentence of everyday narration that answers no planted question."""
    return rng.choice(_FILLERS).format(
        weekday=rng.choice(facts.WEEKDAYS), city=rng.choice(facts.CITIES), name=rng.choice(facts.NAMES)
    )


def render_events(options: StoryOptions, events: list[TimedEvent], rng: random.Random, path: Path) -> None:
    """Render ``events`` over shots of ``options.footage`` (or patterns) to ``path``, in chunks of
    ``options.chunk_s`` joined without re-encoding. An event must end inside the chunk it starts in."""
    with tempfile.TemporaryDirectory(prefix="videoqa-story-", dir=path.parent) as tmp:
        pieces: list[Path] = []
        start_s = 0.0
        while start_s < options.duration_s - 1e-6:
            length_s = min(options.chunk_s, options.duration_s - start_s)
            inside = [e for e in events if start_s <= e.start_s < start_s + length_s]
            spec = SynthSpec(
                scenes=_shots(length_s, options, rng),
                cards=tuple(
                    TextCard(e.start_s - start_s, options.card_s, e.text)
                    for e in inside
                    if e.channel == "screen"
                ),
                speech=tuple(
                    SpokenLine(e.start_s - start_s, e.text) for e in inside if e.channel == "speech"
                ),
                width=options.width,
                height=options.height,
                fps=options.fps,
                voice=options.voice,
                espeak_voice=options.espeak_voice,
                keyframe_interval=round(options.fps * 10),
            )
            pieces.append(render(spec, Path(tmp) / f"chunk{len(pieces):04d}.mp4").path)
            start_s += length_s
        _join(pieces, Path(tmp) / "list.txt", path)


def _shots(length_s: float, options: StoryOptions, rng: random.Random) -> tuple[SynthScene, ...]:
    durations, left = [], length_s
    while left > 1e-6:
        shot = min(left, rng.uniform(*options.shot_s))
        if left - shot < options.shot_s[0]:  # no sliver of a shot at the end
            shot = left
        durations.append(shot)
        left -= shot
    if not options.footage:
        offset = rng.randrange(len(durations))
        return pattern_scenes(durations[offset:] + durations[:offset])
    return tuple(
        SynthScene(d, rng.choice(options.footage), offset_s=round(rng.uniform(0, 5), 2)) for d in durations
    )


def _join(pieces: list[Path], list_file: Path, out: Path) -> None:
    """Concatenate the chunks without re-encoding (ffmpeg's concat demuxer)."""
    list_file.write_text("".join(f"file '{p.name}'\n" for p in pieces))
    # ffmpeg runs in the list's folder (the list names the chunks by name): a relative output path
    # would land there instead of where the caller meant
    partial = out.absolute().with_suffix(".partial.mp4")
    out = out.absolute()
    command = [
        "ffmpeg",
        "-v",
        "error",
        "-y",
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        str(list_file),
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        str(partial),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=list_file.parent, timeout=3600)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise SynthError(f"ffmpeg could not join the story's chunks: {result.stderr.strip()[-200:]}")
    partial.replace(out)


def _manifest(story: Story) -> dict[str, object]:
    return {
        "duration_s": story.duration_s,
        "questions": [asdict(q) for q in story.questions],
        "lines": story.lines,
        "cards": story.cards,
    }


def _load(path: Path, manifest: Path) -> Story:
    data = json.loads(manifest.read_text())
    return Story(
        path=path,
        duration_s=float(data["duration_s"]),
        questions=tuple(PlantedQuestion(**{**q, "answers": tuple(q["answers"])}) for q in data["questions"]),
        lines=tuple((float(t), str(s)) for t, s in data["lines"]),
        cards=tuple((float(t), str(s)) for t, s in data["cards"]),
    )
