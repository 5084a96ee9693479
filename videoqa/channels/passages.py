"""Passages: the pieces of text a question is matched against — whole spoken sentences, and each text
on screen for as long as it stays visible.

    from videoqa.channels.passages import build_passages
    passages = build_passages(transcript.segments, screen_texts)

A recogniser cuts its segments where its 30-s windows and pauses fall, not where sentences end: one
segment ends "…left her umbrella at the", the next starts "station. Then the train…", and a question
that matches the half sentence misses the answer in the other half. Sentences are therefore cut from
the timed words across segment boundaries (``sentences``): after a word that ends a sentence, at a long
pause, and inside an unpunctuated run too long to cite. A piece of one or two words is not a passage of
its own: it joins the neighbour it belongs to, unless long pauses set it apart (a lone "Yes." is real
speech). Segments without words (another transcriber, an old cache) get word times shared out by
characters, so they are cut by the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from videoqa.channels.ocr import ScreenText, same_text
from videoqa.channels.speech import SpeechSegment, SpeechWord
from videoqa.types import Passage

_SENTENCE_END = (".", "?", "!", "…")
# Closing quotes and brackets may follow a sentence's last mark: 'He said "stop." Then…'.
_CLOSERS = "\"'\u201d\u2019)]}\u00bb"  # typographic quotes, guillemets
_OPENERS = "\"'\u201c\u2018([{\u00ab"  # typographic quotes, guillemets
# Words that end in a full stop without ending the sentence: titles before a name, "e.g." before an
# example. Lower-case, with their full stop.
_ABBREVIATIONS = frozenset(
    {
        "mr.",
        "mrs.",
        "ms.",
        "dr.",
        "prof.",
        "st.",
        "mt.",
        "jr.",
        "sr.",
        "vs.",
        "e.g.",
        "i.e.",
        "cf.",
        "approx.",
        "fig.",
    }
)
# Abbreviations that end sentences as often as not ("…at 4 p.m."): a sentence end only before a capital.
_END_BEFORE_CAPITAL = frozenset({"a.m.", "p.m.", "etc."})
# A pause this long ends a sentence even without a full stop (and is how the recogniser's segments are
# split, ``speech._PAUSE_SPLIT_S``).
_PAUSE_S = 1.0
# An unpunctuated run longer than this is cut at its longest pause, to keep citations precise.
_MAX_SENTENCE_S = 20.0
# A piece of fewer words than this is a fragment: it joins a neighbour unless pauses isolate it.
_MIN_WORDS = 3
# An unfinished sentence (no closing mark) is picked up by a fragment this long after it at most.
_CONTINUE_PAUSE_S = 3.0
# Screen readings of the same text this close together are one showing: a sign seen across a cut.
_SCREEN_GAP_S = 1.0


def build_passages(segments: Sequence[SpeechSegment], screen: Iterable[ScreenText]) -> tuple[Passage, ...]:
    """Speech sentences and screen texts as passages, in time order (speech first at equal starts)."""
    passages = [Passage("speech", s.start_s, s.end_s, s.text) for s in sentences(segments)]
    passages += screen_passages(screen)
    return tuple(sorted(passages, key=lambda p: (p.start_s, p.channel)))


def sentences(segments: Sequence[SpeechSegment]) -> list[SpeechSegment]:
    """The transcript as sentences, timed from their first word's start to their last word's end.

    Cut after a word that ends a sentence (see ``ends_sentence``), at a pause of _PAUSE_S or more, and
    where an unpunctuated run passes _MAX_SENTENCE_S (at its longest pause between words, leaving at
    least _MIN_WORDS words each side). Fragments are then joined to a neighbour (``_absorb_fragments``).
    The sentences hold no words: those of segments without words would be made up.
    """
    pieces = [cut for piece in _split(_words(segments)) for cut in _cut_long(piece)]
    return [
        SpeechSegment(piece[0].start_s, piece[-1].end_s, _text(piece)) for piece in _absorb_fragments(pieces)
    ]


def ends_sentence(word: SpeechWord, following: SpeechWord | None) -> bool:
    """Whether ``word`` ends a sentence, given the word after it (None at the end of speech).

    A full stop, question or exclamation mark (then maybe closing quotes or brackets) ends one, except
    in an abbreviation (Mr., e.g.) or a number split after its point ("3." "5").
    """
    core = word.text.strip().rstrip(_CLOSERS)
    if not core.endswith(_SENTENCE_END):
        return False
    if not core.endswith(".") or core.endswith(".."):
        return True
    key = core.lstrip(_OPENERS).casefold()
    next_text = following.text.strip().lstrip(_OPENERS) if following is not None else ""
    if key in _ABBREVIATIONS:
        return False
    if key in _END_BEFORE_CAPITAL:
        return following is None or next_text[:1].isupper()
    return not (core[-2:-1].isdigit() and next_text[:1].isdigit())


def screen_passages(screen: Iterable[ScreenText]) -> list[Passage]:
    """One passage per showing of a text: neighbouring readings of the same text (up to OCR noise) are
    joined over the whole time it was visible, the longest reading kept. Lines are joined with " / "."""
    shown: list[ScreenText] = []
    for reading in sorted(screen, key=lambda s: s.start_s):
        if not reading.text.strip():
            continue
        last = shown[-1] if shown else None
        if (
            last is not None
            and reading.start_s - last.end_s <= _SCREEN_GAP_S
            and same_text(last.text, reading.text)
        ):
            text = reading.text if len(reading.text) > len(last.text) else last.text
            shown[-1] = ScreenText(last.start_s, max(last.end_s, reading.end_s), text, last.frame_s)
        else:
            shown.append(reading)
    return [
        Passage(
            "screen",
            s.start_s,
            s.end_s,
            " / ".join(line.strip() for line in s.text.splitlines() if line.strip()),
        )
        for s in shown
    ]


def _words(segments: Sequence[SpeechSegment]) -> list[SpeechWord]:
    """Every word of the transcript in order, each after the first starting with a space."""
    words: list[SpeechWord] = []
    for segment in segments:
        own = [w for w in segment.words if w.text.strip()] or _interpolated(segment)
        if own and words and not own[0].text[:1].isspace():
            own[0] = SpeechWord(own[0].start_s, own[0].end_s, f" {own[0].text}")
        words += own
    return words


def _interpolated(segment: SpeechSegment) -> list[SpeechWord]:
    """Words for a segment without them, timed by their share of its characters (one space between
    words): the first starts with the segment, the last ends with it."""
    tokens = segment.text.split()
    total = sum(len(token) for token in tokens) + len(tokens) - 1
    per_char_s = (segment.end_s - segment.start_s) / max(total, 1)
    words, offset = [], 0
    for token in tokens:
        words.append(
            SpeechWord(
                segment.start_s + offset * per_char_s,
                segment.start_s + (offset + len(token)) * per_char_s,
                f" {token}",
            )
        )
        offset += len(token) + 1
    return words


def _split(words: list[SpeechWord]) -> list[list[SpeechWord]]:
    """Runs of words ended by a sentence-ending word or a long pause (none for no words: a video
    without audio, or silence)."""
    pieces: list[list[SpeechWord]] = []
    run: list[SpeechWord] = []
    for word, following in zip(words, [*words[1:], None], strict=False):  # the last has no following
        run.append(word)
        if following is None or ends_sentence(word, following) or following.start_s - word.end_s >= _PAUSE_S:
            pieces.append(run)
            run = []
    return pieces


def _cut_long(piece: list[SpeechWord]) -> list[list[SpeechWord]]:
    """``piece`` cut in two at its longest pause (of equal ones, the one nearest its middle) while it
    lasts over _MAX_SENTENCE_S, never leaving fewer than _MIN_WORDS words on a side."""
    if piece[-1].end_s - piece[0].start_s <= _MAX_SENTENCE_S or len(piece) < 2 * _MIN_WORDS:
        return [piece]
    middle_s = (piece[0].start_s + piece[-1].end_s) / 2

    def preference(cut: int) -> tuple[float, float]:
        # Whisper times words in 20-ms steps: gaps that differ by less are the same.
        return round(piece[cut].start_s - piece[cut - 1].end_s, 2), -abs(piece[cut].start_s - middle_s)

    cut = max(range(_MIN_WORDS, len(piece) - _MIN_WORDS + 1), key=preference)
    return _cut_long(piece[:cut]) + _cut_long(piece[cut:])


def _absorb_fragments(pieces: list[list[SpeechWord]]) -> list[list[SpeechWord]]:
    """Pieces with each fragment (fewer than _MIN_WORDS words) joined to the neighbour it belongs to."""
    kept: list[list[SpeechWord]] = []
    carried: list[SpeechWord] = []  # a fragment waiting to start the next piece
    for index, piece in enumerate(pieces):
        piece, carried = carried + piece, []
        if len(piece) >= _MIN_WORDS:
            kept.append(piece)
            continue
        following = pieces[index + 1] if index + 1 < len(pieces) else None
        home = _fragment_home(kept[-1] if kept else None, piece, following)
        if home == "previous":
            kept[-1] = kept[-1] + piece
        elif home == "next":
            carried = piece
        else:
            kept.append(piece)
    return kept


def _fragment_home(
    previous: list[SpeechWord] | None, fragment: list[SpeechWord], following: list[SpeechWord] | None
) -> str:
    """Where a fragment goes: "previous", "next" or "alone".

    A fragment that finishes an unfinished sentence joins it; one that is itself unfinished starts the
    next; one set apart by long pauses on both sides stays alone (an answer, a greeting); any other joins
    the neighbour nearer in time (the next one at equal distance).
    """
    before_s = fragment[0].start_s - previous[-1].end_s if previous else math.inf
    after_s = following[0].start_s - fragment[-1].end_s if following else math.inf
    if previous and before_s <= _CONTINUE_PAUSE_S and not ends_sentence(previous[-1], fragment[0]):
        return "previous"
    if following and after_s <= _CONTINUE_PAUSE_S and not ends_sentence(fragment[-1], following[0]):
        return "next"
    if before_s >= _PAUSE_S and after_s >= _PAUSE_S:
        return "alone"
    return "next" if after_s <= before_s else "previous"


def _text(words: list[SpeechWord]) -> str:
    return "".join(word.text for word in words).strip()
