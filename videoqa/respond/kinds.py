"""The kind of answer a question asks for, and whether a reply holds one.

"What time does the train arrive?" is answered by a time of day, "What is the phone number of the
library?" by a phone number. A small model shown a passage about something close (the train's platform,
the library's founding year) often answers with what the passage does hold — "The train arrives at
platform 2", "The phone number of the library is 1942" — and every word of such a reply is grounded, so
the grounding check lets it through. A reply that holds nothing of the kind asked for does not answer
the question, however true its words are; ``answer.py`` then abstains.

Only question forms whose answer kind is unambiguous are listed: "when" may be a year, a day or "after
the swim", "how long has it been open" may be answered by a year, so neither is checked. The kinds are
data (``ANSWER_KINDS``); each is a question pattern and a test of the reply's text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from videoqa.retrieval.textindex import tokenize, word_list


@dataclass(frozen=True)
class AnswerKind:
    """A kind of answer: the questions that ask for it, and whether a reply's text holds one."""

    name: str
    asked_by: re.Pattern[str]  # searched in the lower-cased question
    held_by: Callable[[str], bool]  # given the reply's text


_HOURS = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_TIME_OF_DAY = re.compile(
    r"\b\d{1,2}[:.]\d{2}\b"  # 7:30, 7.30
    r"|\b\d{1,2}\s*(?:am|pm|a\.m\.|p\.m\.)"  # 7 pm, 7pm
    rf"|\b(?:\d{{1,2}}|{_HOURS})\s*(?:am|pm|a\.m\.|p\.m\.|o'?clock|in the (?:morning|afternoon|evening))"
    r"|\b(?:noon|midday|midnight)\b"
    r"|\b(?:half past|quarter (?:past|to))\b"
    # "at seven", "until 6": a bare hour after a word that puts it in time (not "platform 2")
    rf"|\b(?:at|by|until|till|from|before|after|around|about)\s+(?:\d{{1,2}}|{_HOURS})\b(?!\s*(?:%|percent))",
    re.IGNORECASE,
)
_YEAR = re.compile(r"(?<![\d.,])(?:1[0-9]|20|21)\d{2}(?![\d.,]\d)|'\d{2}s?\b")
_PHONE_PIECE = re.compile(r"\+?\(?\d[\d\s().-]*\d")
_PHONE_DIGITS = 6  # fewer is a number, not a phone number ("1942", "555")
_COLOURS = frozenset(
    word_list(
        "red orange yellow green blue purple violet pink brown black white grey gray silver gold golden "
        "beige cream turquoise teal navy indigo maroon crimson scarlet magenta cyan lime olive tan ivory "
        "lavender lilac amber bronze copper khaki burgundy peach coral mauve ochre rust charcoal"
    )
)


def _holds_number(reply: str) -> bool:
    return any(token.isdigit() for token in tokenize(reply))  # number words count: tokenize makes digits


def _holds_phone_number(reply: str) -> bool:
    return any(sum(ch.isdigit() for ch in piece) >= _PHONE_DIGITS for piece in _PHONE_PIECE.findall(reply))


def _holds_colour(reply: str) -> bool:
    words = re.findall(r"[a-z]+", reply.lower())
    return any(word in _COLOURS or word.removesuffix("ish") in _COLOURS for word in words)


ANSWER_KINDS: tuple[AnswerKind, ...] = (
    AnswerKind(
        "a time of day",
        re.compile(r"\b(?:what|which) time\b(?! of (?:the )?(?:day|year|month|week))|\bat what hour\b"),
        lambda reply: _TIME_OF_DAY.search(reply) is not None,
    ),
    AnswerKind(
        "a year",
        re.compile(r"\b(?:what|which) year\b"),
        lambda reply: _YEAR.search(reply) is not None,
    ),
    AnswerKind(
        "a phone number",
        re.compile(r"\b(?:tele)?phone number\b|\bnumber to (?:call|ring|dial)\b"),
        _holds_phone_number,
    ),
    AnswerKind(
        "a colour",
        re.compile(r"\b(?:what|which) colou?r\b"),
        _holds_colour,
    ),
    AnswerKind(
        "an age",
        re.compile(r"\bhow old\b"),
        _holds_number,
    ),
    AnswerKind(
        "an amount",
        re.compile(r"\bhow much\b.*\b(?:cost|costs|costed|pay|paid|charge|charged|price|spend|spent)\b"),
        _holds_number,
    ),
)


def kind_asked(question: str) -> AnswerKind | None:
    """The kind of answer ``question`` asks for, when its form says so unambiguously; else None."""
    lowered = question.lower()
    return next((kind for kind in ANSWER_KINDS if kind.asked_by.search(lowered)), None)


def lacks_kind_asked(reply: str, question: str, video_times: Collection[str] = ()) -> bool:
    """Whether ``question`` asks for a kind of answer that ``reply`` holds none of ("What time does the
    train arrive?" answered "at platform 2"). ``video_times`` are the evidence's times in the video as
    the model was shown them ("1:18"): a reply that says when something is seen or said holds no time of
    day by that."""
    kind = kind_asked(question)
    if kind is None:
        return False
    for time in video_times:
        reply = re.sub(rf"(?<![\d:.]){re.escape(time)}(?![\d:])", " ", reply)
    return not kind.held_by(reply)
