"""Output writers, one a format (text, JSON, JSON lines, SRT, WebVTT, Markdown), picked by name or suffix.

A command hands a writer what it produced (an answer, captions, a conversation, subtitle cues, search
hits) and prints or saves the text it gets back; it builds no JSON of its own. The records (field names,
the rounding of times and scores) are made here and nowhere else, so ``ask --json``, ``caption --json``,
``search --json`` and a saved chat agree on what a time or an evidence item looks like.

Text and JSON lines are line formats: writing captions one at a time gives the same text as writing them
together, which is how a stream prints each caption as it comes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from videoqa.media.timefmt import format_clock

if TYPE_CHECKING:
    from videoqa.respond.answer import Answer
    from videoqa.respond.captions import CaptionEvent
    from videoqa.retrieval.retrieve import Evidence

SECONDS_DECIMALS = 3  # times in seconds: to the millisecond, finer than a frame
SCORE_DECIMALS = 4  # similarities and probabilities
# Fused scores are reciprocal-rank sums around 1/60: one more place than a similarity keeps ranks apart.
FUSED_DECIMALS = 5


# --- what commands write -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds each step of ``ask`` took, as measured (records round them)."""

    models_s: float  # loading the models
    index_s: float  # indexing the video, or reading its index
    answer_s: float  # finding the evidence and answering


@dataclass(frozen=True)
class AskResult:
    """An answer to one question about ``video`` (named as the user typed it)."""

    video: str
    answer: Answer
    timing: Timing
    clips: tuple[str, ...] | None = None  # the clips saved of its moments (ask --save-clips); None: not asked


@dataclass(frozen=True)
class Captions:
    """Captions of ``video`` by ``model``: all of them, or those just made while a stream goes on."""

    video: str
    model: str
    events: tuple[CaptionEvent, ...]


class Exchange(Protocol):
    """A question and its answer: one turn of a conversation (``respond.chat.Turn`` is one)."""

    @property
    def question(self) -> str: ...

    @property
    def answer(self) -> Answer: ...


@dataclass(frozen=True)
class Conversation:
    """The turns of a chat about ``video``, oldest first."""

    video: Path
    turns: tuple[Exchange, ...]


@dataclass(frozen=True)
class Cue:
    """One subtitle: text shown from ``start_s`` to ``end_s``."""

    start_s: float
    end_s: float
    text: str

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < self.end_s:
            raise ValueError(f"a cue needs 0 <= start < end, got {self.start_s}..{self.end_s}")


@dataclass(frozen=True)
class Subtitles:
    """Subtitle cues in time order, none overlapping the next."""

    cues: tuple[Cue, ...]


@dataclass(frozen=True)
class SearchHit:
    """One moment ``search`` found: a passage of speech or screen text, or a scene an image-text model
    matched (``channel`` "visual", no text)."""

    video: str  # as the user typed it, or relative to the library folder
    channel: str  # "speech", "screen" or "visual"
    start_s: float
    end_s: float
    frame_s: float  # the moment to look at: a visual hit's best frame, a passage's middle
    text: str | None
    scene: int | None  # index of the scene it lies in
    similarity: float  # cosine to the query in the channel's space (sentence or image-text embeddings)
    lexical: float | None  # BM25 of the query's words in a passage; None for a visual hit
    score: float  # reciprocal-rank fusion across the channels: what the hits are ranked by


@dataclass(frozen=True)
class SearchResults:
    """What ``search`` found, best first."""

    hits: tuple[SearchHit, ...]


Result = AskResult | Captions | Conversation | Subtitles | SearchResults


# --- records: the JSON form of results -----------------------------------------------------------------


def seconds(value: float) -> float:
    """A time in seconds as records give it: ``8.123456`` -> ``8.123``."""
    return round(value, SECONDS_DECIMALS)


def clock(value: float) -> str:
    """A time as people read it in records: ``79.5`` -> ``"1:20"``, ``3725`` -> ``"1:02:05"``."""
    return format_clock(value, 0)


def _seconds_span(start_s: float, end_s: float) -> dict[str, float]:
    return {"start_s": seconds(start_s), "end_s": seconds(end_s)}


def _clock_span(start_s: float, end_s: float) -> dict[str, str]:
    return {"start": clock(start_s), "end": clock(end_s)}


def evidence_record(item: Evidence) -> dict[str, Any]:
    """An evidence item as ``ask --json`` gives it: where, what, and how it was found."""
    # An item from a library of videos names its video (library.passages.LibraryEvidence).
    video: str | None = getattr(item, "video", None)
    return {
        **({"video": video} if video is not None else {}),
        "channel": item.channel,
        **_seconds_span(item.start_s, item.end_s),
        **_clock_span(item.start_s, item.end_s),
        "text": item.text,
        "scene": item.scene,
        "similarity": round(item.similarity, SCORE_DECIMALS),
        "fused": round(item.fused, FUSED_DECIMALS),
        "role": item.role,
    }


def cited_record(item: Evidence) -> dict[str, Any]:
    """An evidence item as a saved conversation keeps it: where and what, without the scores."""
    return {
        "channel": item.channel,
        **_clock_span(item.start_s, item.end_s),
        **_seconds_span(item.start_s, item.end_s),
        "text": item.text,
    }


def answer_record(result: AskResult) -> dict[str, Any]:
    answer = result.answer
    return {
        "video": result.video,
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "quoted": answer.quoted,
        "model_reply": answer.model_reply,
        "relation": answer.relation,
        "best_similarity": round(answer.best_similarity, SCORE_DECIMALS),
        "relevance": round(answer.relevance, SCORE_DECIMALS) if answer.relevance is not None else None,
        "evidence": [evidence_record(item) for item in answer.evidence],
        # only when clips were asked for: without them the record stays as it was
        **({"clips": list(result.clips)} if result.clips is not None else {}),
        "models": answer.models,
        "timing": {name: seconds(value) for name, value in asdict(result.timing).items()},
    }


def caption_record(event: CaptionEvent) -> dict[str, Any]:
    """One caption: its scene, span, the scenes it stands for, its words and the text they came from."""
    return {
        "scene": event.index,
        **_seconds_span(event.start_s, event.end_s),
        "span": event.span,
        "scenes": list(event.covers),
        "caption": event.text,
        "source": event.source,
        "speech": event.speech,
        "screen": event.screen,
    }


def captions_record(captions: Captions) -> dict[str, Any]:
    return {
        "video": captions.video,
        "captions": [caption_record(event) for event in captions.events],
        "model": captions.model,
    }


def conversation_record(conversation: Conversation) -> dict[str, Any]:
    return {
        "video": str(conversation.video),
        "turns": [
            {
                "question": turn.question,
                "answer": turn.answer.text,
                "abstained": turn.answer.abstained,
                "evidence": [cited_record(item) for item in turn.answer.evidence],
            }
            for turn in conversation.turns
        ],
    }


def search_hit_record(hit: SearchHit) -> dict[str, Any]:
    """A search hit as ``search --json`` gives it: where, what, and how well it matched."""
    return {
        "video": hit.video,
        "channel": hit.channel,
        **_seconds_span(hit.start_s, hit.end_s),
        **_clock_span(hit.start_s, hit.end_s),
        "best_frame_s": seconds(hit.frame_s),
        "text": hit.text,
        "scene": hit.scene,
        "similarity": round(hit.similarity, SCORE_DECIMALS),
        "lexical": round(hit.lexical, SCORE_DECIMALS) if hit.lexical is not None else None,
        "score": round(hit.score, FUSED_DECIMALS),
    }


def cue_of(event: CaptionEvent) -> Cue | None:
    """The subtitle a caption shows; None for a span of no length or one saying there is nothing."""
    if event.end_s <= event.start_s or event.source == "empty":
        return None
    return Cue(event.start_s, event.end_s, event.text)


# --- writers --------------------------------------------------------------------------------------------


class Writer(Protocol):
    """One output format: the text of a result of a kind it ``holds``."""

    holds: ClassVar[tuple[type, ...]]

    def render(self, result: Result) -> str: ...


def _unheld(writer: Writer, result: Result) -> TypeError:
    # a command asking a format for what it cannot hold is a bug, not bad input
    return TypeError(f"{type(writer).__name__} cannot write {type(result).__name__}")


class TextWriter:
    """What a person reads on a terminal: an answer and its evidence; a ``[span] caption`` line a caption."""

    holds: ClassVar[tuple[type, ...]] = (AskResult, Captions, SearchResults)

    def render(self, result: Result) -> str:
        match result:
            case AskResult():
                return _answer_text(result.answer)
            case Captions():
                return "".join(f"[{event.span}] {event.text}\n" for event in result.events)
            case SearchResults():
                return "".join(_search_hit_line(hit) + "\n" for hit in result.hits)
        raise _unheld(self, result)


def _answer_text(answer: Answer) -> str:
    from videoqa.respond.answer import evidence_line

    lines = [answer.text]
    if answer.evidence:
        lines += ["", "evidence:"]
        lines += [f"  {evidence_line(item)}{_scene_note(item.scene)}" for item in answer.evidence]
    return "\n".join(lines) + "\n"


def _search_hit_line(hit: SearchHit) -> str:
    """``0.03252  talk.mp4  screen  0:05.0-0:07.0  scene 1     "GATE 42"``: score first, so lines sort."""
    span = f"{format_clock(hit.start_s):>9}-{format_clock(hit.end_s):<9}"
    scene = f"scene {hit.scene:<4}" if hit.scene is not None else " " * 10
    what = json.dumps(hit.text, ensure_ascii=False) if hit.text is not None else ""
    frame = f"best frame {format_clock(hit.frame_s)}" if hit.channel == "visual" else ""
    return f"{hit.score:.5f}  {hit.video}  {hit.channel:<6}  {span}  {scene}  {what or frame}".rstrip()


def _scene_note(scene: int | None) -> str:
    return f"  (scene {scene + 1})" if scene is not None else ""


class JsonWriter:
    """One JSON document, indented."""

    holds: ClassVar[tuple[type, ...]] = (AskResult, Captions, Conversation, SearchResults)

    def render(self, result: Result) -> str:
        record: Any
        match result:
            case AskResult():
                record = answer_record(result)
            case Captions():
                record = captions_record(result)
            case Conversation():
                record = conversation_record(result)
            case SearchResults():  # a list, as search --json has always printed
                record = [search_hit_record(hit) for hit in result.hits]
            case _:
                raise _unheld(self, result)
        return json.dumps(record, indent=2) + "\n"


class JsonLinesWriter:
    """One JSON object a line, a caption each."""

    holds: ClassVar[tuple[type, ...]] = (Captions,)

    def render(self, result: Result) -> str:
        if not isinstance(result, Captions):
            raise _unheld(self, result)
        return "".join(json.dumps(caption_record(event)) + "\n" for event in result.events)


class MarkdownWriter:
    """A conversation to read or share: each question, its answer, and the evidence under it."""

    holds: ClassVar[tuple[type, ...]] = (Conversation,)

    def render(self, result: Result) -> str:
        if not isinstance(result, Conversation):
            raise _unheld(self, result)
        from videoqa.respond.answer import evidence_line

        lines = [f"# Chat about {result.video.name}", ""]
        for turn in result.turns:
            lines += [f"**You:** {turn.question}", "", f"**videoqa:** {turn.answer.text}", ""]
            lines += [f"- {evidence_line(item)}" for item in turn.answer.evidence]
            lines += [""] if turn.answer.evidence else []
        return "\n".join(lines).rstrip() + "\n"


def subtitle_time(seconds: float, separator: str) -> str:
    """``3725.5`` -> ``01:02:05,500`` (SRT, separator ",") or ``01:02:05.500`` (WebVTT, ".")."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str) -> str:
    """Text that cannot end a cue early: a blank line would, so lines are kept and blanks dropped."""
    lines = [line.strip() for line in text.strip().splitlines()]
    return "\n".join(line for line in lines if line) or "…"


def render_srt(cues: Sequence[Cue]) -> str:
    blocks = [
        f"{number}\n{subtitle_time(cue.start_s, ',')} --> {subtitle_time(cue.end_s, ',')}\n"
        f"{_cue_text(cue.text)}\n"
        for number, cue in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def render_vtt(cues: Sequence[Cue]) -> str:
    # "-->" inside WebVTT cue text would read as a timing line; the arrow is spelled out instead
    blocks = [
        f"{subtitle_time(cue.start_s, '.')} --> {subtitle_time(cue.end_s, '.')}\n"
        f"{_cue_text(cue.text).replace('-->', '->')}\n"
        for cue in cues
    ]
    return "\n".join(["WEBVTT\n", *blocks])


class SrtWriter:
    holds: ClassVar[tuple[type, ...]] = (Subtitles,)

    def render(self, result: Result) -> str:
        if not isinstance(result, Subtitles):
            raise _unheld(self, result)
        return render_srt(result.cues)


class VttWriter:
    holds: ClassVar[tuple[type, ...]] = (Subtitles,)

    def render(self, result: Result) -> str:
        if not isinstance(result, Subtitles):
            raise _unheld(self, result)
        return render_vtt(result.cues)


# --- the registry ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Format:
    """An output format: its name, its writer, and the file suffixes (lower case) that choose it."""

    name: str
    writer: Writer
    suffixes: tuple[str, ...]


# In the order messages list them ("save as .md or .json", "one of srt, vtt").
FORMATS: dict[str, Format] = {
    spec.name: spec
    for spec in (
        Format("text", TextWriter(), (".txt",)),
        Format("markdown", MarkdownWriter(), (".md", ".markdown")),
        Format("json", JsonWriter(), (".json",)),
        Format("jsonl", JsonLinesWriter(), (".jsonl",)),
        Format("srt", SrtWriter(), (".srt",)),
        Format("vtt", VttWriter(), (".vtt",)),
    )
}


def writer(name: str) -> Writer:
    """The writer of the format called ``name`` (a key of ``FORMATS``)."""
    return FORMATS[name].writer


def formats_holding(kind: type) -> list[Format]:
    """The formats that can write results of ``kind``, in registry order."""
    return [spec for spec in FORMATS.values() if kind in spec.writer.holds]


def format_for_file(path: Path, kind: type) -> Format | None:
    """The format ``path``'s suffix picks among those holding ``kind``; None when it picks none."""
    suffix = path.suffix.lower()
    return next((spec for spec in formats_holding(kind) if suffix in spec.suffixes), None)
