"""Temporal relations in questions: "what happens after X", "before X", "the first/last time X", "when X".

``parse_question`` splits a question into the relation, the *anchor* (the event the relation points
at) and the rest; ``select_scenes`` turns per-scene anchor scores into the scenes the question is
about: the ones following or preceding the best anchor scene, the earliest or latest scene that matches
the anchor about as well as the best one, or the best anchor scenes themselves. Plain rules, no model:
they are easy to test with many phrasings and fail in predictable ways.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from videoqa.errors import QuestionError

RELATIONS = ("none", "after", "before", "first", "last", "when")
# The longest question asked of a video: longer is a paste gone wrong, and it would crowd the evidence out
# of a small model's context (2,000 characters are about 500 tokens of smollm2's 2,048).
MAX_QUESTION_CHARS = 2_000

_VERBS = "does|did|do|is|was|are|were"  # after "when": "when does X happen"


@dataclass(frozen=True)
class _Rule:
    """The words that say a relation, and where its anchor lies around them.

    Rules read questions whose white space is single spaces. Each finds the first occurrence of its
    words with one regular expression without nested or overlapping repeats, then takes the anchor by
    position: so a question is read in time linear in its length (the old one-pattern rules backtracked
    from every word of the question, quadratically: 18 s for 25,000 characters).
    """

    relation: str  # one of RELATIONS
    words: re.Pattern[str]
    anchor: str  # "after": the rest of the question; "before": from its start; "between": up to ``closing``
    closing: re.Pattern[str] | None = None  # "between": the word that ends the anchor; what follows is kept


def _rule(relation: str, words: str, anchor: str, closing: str | None = None) -> _Rule:
    return _Rule(
        relation,
        re.compile(words, re.IGNORECASE),
        anchor,
        re.compile(closing, re.IGNORECASE) if closing is not None else None,
    )


# Tried in order. First/last come before "when" so that "when does X happen for the first time" is a
# "first" question.
_RULES = (
    _rule("first", r"\b(?:the )?first time (?:that )?", "after"),
    _rule("first", r" for the first time\b", "before"),
    _rule("first", rf"\bwhen (?:{_VERBS}) ", "between", r" first\b"),
    _rule("last", r"\b(?:the )?(?:last|final) time (?:that )?", "after"),
    _rule("last", r" for the (?:last|final) time\b", "before"),
    _rule("last", rf"\bwhen (?:{_VERBS}) ", "between", r" (?:last|finally)\b"),
    # "what did she do when the class ended": the moment the event is over, so what follows it.
    _rule(
        "after",
        r"\b(?:when|once|as soon as) ",
        "between",
        r" (?:ended|finished|was over|were over|had ended|had finished|stopped|was done|were done)\b",
    ),
    _rule("after", r"\bwhat (?:follows|comes after|came after) ", "after"),
    # Not "written after LOCKER" or "listed after the name": there "after" is about position, not time;
    # nor "since what year has it been open": there "since" asks for a date, not what followed.
    _rule(
        "after",
        r"(?<!written )(?<!printed )(?<!shown )(?<!listed )(?<!displayed )(?<!appears )"
        r"(?<!appear )(?<!comes )\b(?:(?:right|just|immediately|shortly|soon) )?"
        r"(?:after|following|once|since(?! (?:what|which|when|how)\b)) ",
        "after",
    ),
    _rule("before", r"\bwhat (?:precedes|preceded|comes before|came before) ", "after"),
    _rule(
        "before",
        r"\b(?:(?:right|just|immediately|shortly) )?"
        r"(?:before|prior to|until|leading up to|led up to) ",
        "after",
    ),
    _rule(
        "when",
        rf"\b(?:when|at what (?:time|point|moment)|what time|at which (?:point|moment)|"
        rf"how far (?:in|into the video)) (?:(?:{_VERBS}|will)\b ?)?",
        "after",
    ),
)
_WORD_CHAR = re.compile(r"\w")
_TRAILING = " ?.!,;:"
_LEADING = re.compile(r"^[ ,;:]*(?:the moment |the point )?", re.IGNORECASE)
# "when does the man open the door for the first time": the anchor is the event, not the question words.
_QUESTION_WORDS = re.compile(rf"^(?:when|what time|at what (?:time|point)) (?:{_VERBS}|will) ", re.IGNORECASE)


@dataclass(frozen=True)
class TemporalQuestion:
    """A question split by its temporal relation."""

    relation: str  # one of RELATIONS
    anchor: str | None  # the event the relation points at ("the swim"); None when relation is "none"
    rest: str  # the question without the relation and its anchor ("what happens")


@dataclass(frozen=True)
class _Found:
    """Where a rule matched: the relation's words with the anchor, and the anchor (its text and tail)."""

    start: int
    end: int
    anchor_start: int
    anchor: str
    tail: str = ""  # words after the closing word, part of the event ("first" in "when did X first bark")


def check_question(question: str) -> str:
    """``question`` when it can be asked: not empty, at most MAX_QUESTION_CHARS long; else QuestionError."""
    if not question.strip():
        raise QuestionError("the question is empty; ask something about the video")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(question):,} characters long; ask in at most {MAX_QUESTION_CHARS:,}"
        )
    return question


def parse_question(question: str) -> TemporalQuestion:
    """Find the first temporal relation in ``question`` and the anchor event it points at.

    Takes time linear in the length of ``question``.
    """
    text = " ".join(question.split())
    for rule in _RULES:
        found = _find(rule, text)
        if found is None:
            continue
        clause = _clause(found.anchor)
        anchor = _clean(_QUESTION_WORDS.sub("", clause.strip()) + " " + found.tail)
        if not anchor:
            continue
        # What the relation does not take is the rest: before the match, and after a comma that ended
        # the anchor ("after the swim, what does she do").
        cut = found.anchor_start + len(clause) if len(clause) < len(found.anchor) else found.end
        rest = _clean(text[: found.start] + " " + text[cut:])
        return TemporalQuestion(relation=rule.relation, anchor=anchor, rest=rest)
    return TemporalQuestion(relation="none", anchor=None, rest=_clean(text))


def _find(rule: _Rule, text: str) -> _Found | None:
    """The first match of ``rule`` in ``text`` (single-spaced), with an anchor of at least one character.

    The first occurrence of the words is the only one to try: when it has no anchor, none after it has.
    """
    if rule.anchor == "before":
        # The anchor runs from the first word of the question to the relation's words.
        first_word = _WORD_CHAR.search(text)
        if first_word is None:
            return None
        words = rule.words.search(text, first_word.start() + 1)
        if words is None:
            return None
        start = first_word.start()
        return _Found(start, words.end(), start, text[start : words.start()])
    words = rule.words.search(text)
    if words is None or words.end() == len(text):
        return None
    if rule.closing is None:
        return _Found(words.start(), len(text), words.end(), text[words.end() :])
    closing = rule.closing.search(text, words.end() + 1)
    if closing is None:
        return None
    return _Found(
        words.start(), len(text), words.end(), text[words.end() : closing.start()], text[closing.end() :]
    )


def _clause(anchor: str) -> str:
    """Cut the anchor at a comma: in "after the swim, what does she do?" the event ends at the comma."""
    return anchor.split(",", 1)[0]


def _clean(text: str) -> str:
    return _LEADING.sub("", " ".join(text.split()).rstrip(_TRAILING))


_THEN = re.compile(r",? (?:and |but )?(?:then|afterwards|after that|later),? ", re.IGNORECASE)


def order_in_sentence(text: str) -> tuple[str, str] | None:
    """The (earlier, later) events of a sentence that orders two, else None.

    "After X, Y" and "Y after X" give (X, Y); "Before X, Y" and "Y before X" give (Y, X); "X, then Y"
    and "X and then Y" give (X, Y). This is how a sentence that mentions the anchor of "what happens
    after X" can itself hold the answer.
    """
    parsed = parse_question(text)
    if (
        parsed.relation in ("after", "before")
        and parsed.anchor
        and parsed.rest
        and _WORD_CHAR.search(parsed.rest)
    ):
        if parsed.relation == "after":
            return parsed.anchor, parsed.rest
        return parsed.rest, parsed.anchor
    single = " ".join(text.split())
    then = _THEN.search(single, 1)
    if then is not None:
        earlier, later = _clean(single[: then.start()]), _clean(single[then.end() :])
        if earlier and later:
            return earlier, later
    return None


def select_scenes(
    relation: str, anchor_scores: npt.NDArray[np.floating], window: int = 2, tolerance: float = 0.02
) -> list[int]:
    """Indices of the scenes a question with ``relation`` is about, in time order.

    ``anchor_scores`` (n_scenes,) says how well each scene (in time order) matches the anchor. "after"
    and "before" take up to ``window`` scenes following or preceding the best anchor scene; "first" and
    "last" take the earliest or latest scene scoring within ``tolerance`` of the best; "when" and
    "none" take the best scene.
    """
    if relation not in RELATIONS:
        raise ValueError(f"relation must be one of {', '.join(RELATIONS)}, got {relation!r}")
    scores = np.asarray(anchor_scores, dtype=np.float64)
    if len(scores) == 0:
        return []
    best = int(np.argmax(scores))
    if relation == "after":
        return list(range(best + 1, min(len(scores), best + 1 + window)))
    if relation == "before":
        return list(range(max(0, best - window), best))
    if relation in ("first", "last"):
        matching = np.flatnonzero(scores >= scores[best] - tolerance)
        return [int(matching[0] if relation == "first" else matching[-1])]
    return [best]
