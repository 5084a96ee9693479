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

RELATIONS = ("none", "after", "before", "first", "last", "when")

# Checked in order; each pattern captures the anchor as "anchor". First/last come before "when" so that
# "when does X happen for the first time" is a "first" question.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (relation, re.compile(pattern, re.IGNORECASE)) for relation, pattern in (
        ("first", r"\b(?:the\s+)?first\s+time\s+(?:that\s+)?(?P<anchor>.+)"),
        ("first", r"\b(?P<anchor>.+?)\s+for\s+the\s+first\s+time\b"),
        ("first", r"\bwhen\s+(?:does|did|do|is|was|are|were)\s+(?P<anchor>.+?)\s+first\b(?P<tail>.*)"),
        ("last", r"\b(?:the\s+)?(?:last|final)\s+time\s+(?:that\s+)?(?P<anchor>.+)"),
        ("last", r"\b(?P<anchor>.+?)\s+for\s+the\s+(?:last|final)\s+time\b"),
        ("last", r"\bwhen\s+(?:does|did|do|is|was|are|were)\s+(?P<anchor>.+?)\s+(?:last|finally)\b"
                 r"(?P<tail>.*)"),
        ("after", r"\bwhat\s+(?:follows|comes\s+after|came\s+after)\s+(?P<anchor>.+)"),
        ("after", r"\b(?:right\s+|just\s+|immediately\s+|shortly\s+|soon\s+)?"
                  r"(?:after|following|once|since)\s+(?P<anchor>.+)"),
        ("before", r"\bwhat\s+(?:precedes|preceded|comes\s+before|came\s+before)\s+(?P<anchor>.+)"),
        ("before", r"\b(?:right\s+|just\s+|immediately\s+|shortly\s+)?(?:before|prior\s+to|until|"
                   r"leading\s+up\s+to|led\s+up\s+to)\s+(?P<anchor>.+)"),
        ("when", r"\b(?:when|at\s+what\s+(?:time|point|moment)|what\s+time|at\s+which\s+(?:point|moment)|"
                 r"how\s+far\s+(?:in|into\s+the\s+video))\s+(?:does|did|do|is|was|are|were|will)?\s*"
                 r"(?P<anchor>.+)"),
    ))
_TRAILING = re.compile(r"[\s?.!,;:]+$")
_LEADING = re.compile(r"^[\s,;:]*(?:the\s+moment\s+|the\s+point\s+)?", re.IGNORECASE)
# "when does the man open the door for the first time": the anchor is the event, not the question words.
_QUESTION_WORDS = re.compile(r"^(?:when|what\s+time|at\s+what\s+(?:time|point))\s+"
                             r"(?:does|did|do|is|was|are|were|will)\s+", re.IGNORECASE)


@dataclass(frozen=True)
class TemporalQuestion:
    """A question split by its temporal relation."""

    relation: str  # one of RELATIONS
    anchor: str | None  # the event the relation points at ("the swim"); None when relation is "none"
    rest: str  # the question without the relation and its anchor ("what happens")


def parse_question(question: str) -> TemporalQuestion:
    """Find the first temporal relation in ``question`` and the anchor event it points at."""
    text = question.strip()
    for relation, pattern in _PATTERNS:
        found = pattern.search(text)
        if found is None:
            continue
        captured = found.group("anchor")
        clause = _clause(captured)
        tail = found.groupdict().get("tail") or ""
        anchor = _clean(_QUESTION_WORDS.sub("", clause.strip()) + " " + tail)
        if not anchor:
            continue
        # What the relation does not take is the rest: before the match, and after a comma that ended
        # the anchor ("after the swim, what does she do").
        cut = found.start("anchor") + len(clause) if len(clause) < len(captured) else found.end()
        rest = _clean(text[: found.start()] + " " + text[cut:])
        return TemporalQuestion(relation=relation, anchor=anchor, rest=rest)
    return TemporalQuestion(relation="none", anchor=None, rest=_clean(text))


def _clause(anchor: str) -> str:
    """Cut the anchor at a comma: in "after the swim, what does she do?" the event ends at the comma."""
    return anchor.split(",", 1)[0]


def _clean(text: str) -> str:
    return _LEADING.sub("", _TRAILING.sub("", " ".join(text.split())))


def select_scenes(relation: str, anchor_scores: npt.NDArray[np.floating], window: int = 2,
                  tolerance: float = 0.02) -> list[int]:
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
