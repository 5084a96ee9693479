"""Temporal relations in questions, over many phrasings, and the scenes they select."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest

from videoqa.errors import QuestionError
from videoqa.retrieval.temporal import (
    MAX_QUESTION_CHARS,
    check_question,
    order_in_sentence,
    parse_question,
    select_scenes,
)

PHRASINGS = [
    ("What happens after the swim?", "after", "the swim", "What happens"),
    (
        "what happens right after the dog jumps into the lake",
        "after",
        "the dog jumps into the lake",
        "what happens",
    ),
    ("After the speech, what does the crowd do?", "after", "the speech", "what does the crowd do"),
    ("What did she do once the train left?", "after", "the train left", "What did she do"),
    ("What follows the cooking scene?", "after", "the cooking scene", ""),
    ("what comes after the title card", "after", "the title card", ""),
    ("Following the interview, where do they go?", "after", "the interview", "where do they go"),
    ("What happened before the car crash?", "before", "the car crash", "What happened"),
    (
        "what was on the table just before she left the room",
        "before",
        "she left the room",
        "what was on the table",
    ),
    ("What led up to the argument?", "before", "the argument", "What"),
    ("Prior to the goal, who had the ball?", "before", "the goal", "who had the ball"),
    ("What precedes the ending credits?", "before", "the ending credits", ""),
    ("When does the man open the door for the first time?", "first", "the man open the door", ""),
    ("What color is the car the first time it appears?", "first", "it appears", "What color is the car"),
    ("The first time the bell rings, who answers?", "first", "the bell rings", "who answers"),
    ("When did the dog first bark?", "first", "the dog bark", ""),
    ("What does she say the last time she speaks?", "last", "she speaks", "What does she say"),
    ("When does the cat appear for the last time?", "last", "the cat appear", ""),
    ("the final time the phone rings, who picks up", "last", "the phone rings", "who picks up"),
    ("When does the presenter mention the budget?", "when", "the presenter mention the budget", ""),
    ("At what point is the password shown?", "when", "the password shown", ""),
    ("What time does the meeting start?", "when", "the meeting start", ""),
    ("when is the red car visible", "when", "the red car visible", ""),
    ("What is written on the sign?", "none", None, "What is written on the sign"),
    ("Who is the speaker?", "none", None, "Who is the speaker"),
]


@pytest.mark.parametrize(("question", "relation", "anchor", "rest"), PHRASINGS)
def test_phrasings(question: str, relation: str, anchor: str | None, rest: str) -> None:
    parsed = parse_question(question)
    assert (parsed.relation, parsed.anchor, parsed.rest) == (relation, anchor, rest)


@pytest.mark.parametrize(
    ("question", "relation", "anchor"),
    [
        ("What did Emma do when the yoga class ended?", "after", "the yoga class"),
        ("What did he do as soon as the meeting was over?", "after", "the meeting"),
        ("What word is written after LOCKER on the sign?", "none", None),
        ("Which name is listed after the teacher?", "none", None),
        # "since" asking for a date is not "after": the answer is the date, not what followed
        ("Since what year has the museum been open?", "none", None),
        ("What has she done since the accident?", "after", "the accident"),
    ],
)
def test_the_end_of_an_event_and_position_words(question: str, relation: str, anchor: str | None) -> None:
    parsed = parse_question(question)
    assert (parsed.relation, parsed.anchor if relation != "none" else None) == (relation, anchor)


@pytest.mark.parametrize(
    ("sentence", "order"),
    [
        (
            "After the swim, Henry rode a bicycle to the market.",
            ("the swim", "Henry rode a bicycle to the market"),
        ),
        ("Henry rode home after the piano lesson.", ("the piano lesson", "Henry rode home")),
        ("Before the exam, Lucy drank a coffee.", ("Lucy drank a coffee", "the exam")),
        (
            "Lucy finished the exam and then cooked a big pot of soup.",
            ("Lucy finished the exam", "cooked a big pot of soup"),
        ),
        ("Lucy finished the exam, then she slept.", ("Lucy finished the exam", "she slept")),
        ("The train was late again.", None),
        ("After that, Maria baked a cake.", ("that", "Maria baked a cake")),  # "that": the sentence before
    ],
)
def test_a_sentence_that_orders_two_events(sentence: str, order: tuple[str, str] | None) -> None:
    assert order_in_sentence(sentence) == order


def test_a_question_that_is_only_a_relation_word_has_no_anchor() -> None:
    assert parse_question("after?").relation == "none"


def test_white_space_does_not_change_the_reading() -> None:
    parsed = parse_question("  what  happens\tright after\n the   swim ? ")
    assert (parsed.relation, parsed.anchor, parsed.rest) == ("after", "the swim", "what happens")


def test_question_words_are_not_read_inside_longer_words() -> None:
    # "do" is a question word after "when"; the "do" of "dogs" is not.
    assert parse_question("when dogs bark").anchor == "dogs bark"
    assert parse_question("so when does?").relation == "none"


def _repeated(unit: str) -> Callable[[int], str]:
    return lambda length: (unit * (length // len(unit) + 1))[:length]


# Shapes that made the old patterns backtrack from every word: no relation at all, a relation whose
# closing words never come ("when does X" with no "first"), and many candidate starts.
ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "plain words": _repeated("what happens "),
    "for the, never first": _repeated("x for the "),
    "after, then words": lambda length: "after " + _repeated("the swim ")(length - 6),
    "when does, never first": _repeated("when does it "),
    "punctuation then a word": lambda length: "?" * (length - 1) + "x",
    "a long white space": lambda length: "after" + " " * (length - 9) + "swim",
}


@pytest.mark.parametrize("shape", sorted(ADVERSARIAL))
def test_long_questions_are_read_in_linear_time(shape: str) -> None:
    # Beyond MAX_QUESTION_CHARS on purpose: parse_question has no cap (search texts may be longer). The
    # quadratic patterns took 7 to 19 s at 25,000 characters; linear ones take about 0.03 s.
    question = ADVERSARIAL[shape](25_000)
    started = time.perf_counter()
    parse_question(question)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("shape", sorted(ADVERSARIAL))
def test_a_question_of_the_longest_length_is_read_well_under_a_second(shape: str) -> None:
    question = ADVERSARIAL[shape](MAX_QUESTION_CHARS)
    started = time.perf_counter()
    parse_question(check_question(question))
    assert time.perf_counter() - started < 1.0


def test_a_question_too_long_or_empty_is_refused_in_one_line() -> None:
    started = time.perf_counter()
    with pytest.raises(
        QuestionError,
        match=r"^the question is 100,000 characters long; ask in at most "
        r"2,000$",
    ):
        check_question(("what happens after the swim? " * 3449)[:100_000])
    assert time.perf_counter() - started < 1.0
    with pytest.raises(QuestionError, match="the question is empty"):
        check_question(" \n ")
    assert check_question("x" * MAX_QUESTION_CHARS) == "x" * MAX_QUESTION_CHARS


SCORES = np.array([0.10, 0.31, 0.20, 0.30, 0.05, 0.12])


@pytest.mark.parametrize(
    ("relation", "expected"),
    [
        ("after", [2, 3]),
        ("before", [0]),
        ("first", [1]),
        ("last", [3]),
        ("when", [1]),
        ("none", [1]),
    ],
)
def test_select_scenes(relation: str, expected: list[int]) -> None:
    assert select_scenes(relation, SCORES, window=2, tolerance=0.02) == expected


def test_select_scenes_edges() -> None:
    assert select_scenes("after", np.array([0.1, 0.9])) == []  # nothing follows the last scene
    assert select_scenes("before", np.array([0.9, 0.1])) == []
    assert select_scenes("when", np.array([])) == []
    with pytest.raises(ValueError, match="relation"):
        select_scenes("during", SCORES)
