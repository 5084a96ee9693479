"""Relevance: one calibrated probability that the chosen evidence answers a question, from the dense
similarity, the rare words shared with the evidence and the names and numbers it lacks."""

from __future__ import annotations

import random

import numpy as np
import pytest

from videoqa.retrieval.relevance import (
    MIN_PROBABILITY,
    content_words,
    fit_logistic,
    measure,
    named_words,
    probability,
    rarity,
)
from videoqa.testmedia.facts import answer_matches, question_set

PASSAGES = [
    "It was a quiet Monday in Lisbon.",
    "Maria bought seventeen apples at the market.",
    "PLATFORM 7 - TRAINS TO OSLO",
    "Maria looked out of the window for a while.",
    "The train was late again.",
    "CITY LIBRARY - EST. 1987",
]


def test_frame_words_are_not_content() -> None:
    assert content_words("What is written on the screen at the start?") == ["start"]
    assert content_words("Which platform do the trains to Oslo leave from?") == [
        "platform",
        "trains",
        "oslo",
        "leave",
    ]


def test_names_and_numbers_but_not_a_sentence_start() -> None:
    assert named_words("Laura went where? And what did Tom buy?") == {"tom"}
    assert named_words("How many apples did Maria buy at gate 42?") == {"maria", "42"}
    assert named_words("what did she buy") == set()


def test_rare_words_weigh_more_than_common_ones() -> None:
    idf = rarity(PASSAGES)
    assert idf["oslo"] > idf["maria"]
    assert "elephant" not in idf


def test_a_terse_sign_sharing_only_its_rare_word_is_likely_to_answer() -> None:
    # 0.60: all-MiniLM-L6-v2's similarity of this question and the sign as indexed ("On screen: ...")
    idf = rarity([*PASSAGES, "MUSEUM - EST. 2004"])
    sign = measure("What year was the museum founded?", 0.60, ["MUSEUM - EST. 2004"], idf)
    unrelated = measure("What year was the museum founded?", 0.60, [PASSAGES[4]], idf)
    assert sign.coverage > unrelated.coverage == 0.0
    assert sign.probability >= MIN_PROBABILITY and sign.probability > unrelated.probability


def test_a_question_about_someone_the_evidence_never_names_is_unlikely_to_be_answered() -> None:
    idf = rarity(PASSAGES)
    asked = measure("How many apples did Maria buy?", 0.75, [PASSAGES[1]], idf)
    near_miss = measure("How many apples did Laura buy?", 0.72, [PASSAGES[1]], idf)
    assert (asked.missing, near_miss.missing) == (0.0, 1.0)
    assert asked.probability > 0.5 > near_miss.probability


def test_inflections_count_as_held() -> None:
    held = measure("How many tickets did Tom sell?", 0.6, ["Tom sold one ticket."], {})
    assert held.coverage == pytest.approx(2 / 3)  # tickets~ticket, tom; not sell/sold


def test_probability_rises_with_each_good_signal() -> None:
    base = probability((0.5, 0.5, 0.0))
    assert probability((0.7, 0.5, 0.0)) > base
    assert probability((0.5, 0.9, 0.0)) > base
    assert probability((0.5, 0.5, 1.0)) < base


def test_the_logistic_fit_recovers_known_weights() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(4000, 3))
    truth, bias = np.array([2.0, -1.0, 0.5]), -0.5
    chance = 1 / (1 + np.exp(-(features @ truth + bias)))
    labels = (rng.random(4000) < chance).astype(np.float64)
    weights, fitted_bias = fit_logistic(features, labels, l2=1e-3)
    assert np.allclose(weights, truth, atol=0.2) and abs(fitted_bias - bias) < 0.2


def test_question_sets_are_seeded_and_hold_every_family() -> None:
    first, again, other = question_set(3, facts=20), question_set(3, facts=20), question_set(4, facts=20)
    assert first == again and first != other
    families = {q.family for q in first.questions}
    assert families == {"speech", "screen", "terse sign", "after", "near miss", "absent"}
    for asked in first.questions:
        if asked.passage is None:
            assert asked.answers == ()
        else:  # the passage it points at holds the answer
            assert answer_matches(first.passages[asked.passage][1], asked.answers), asked


def test_near_misses_are_not_answered_by_any_passage() -> None:
    found = question_set(random.Random(5).randint(0, 99), facts=30)
    texts = [set(content_words(text)) for _, text, _, _ in found.passages]
    for asked in found.questions:
        if asked.family == "near miss":
            assert not any(set(content_words(asked.question)) <= words for words in texts)


def test_no_two_facts_of_a_set_are_asked_the_same_way() -> None:
    # A spoken "train to Berlin leaves from platform 2" and a sign "PLATFORM 37 - TRAINS TO BERLIN" in one
    # set would make "Where do I catch the train to Berlin?" ambiguous; and a near miss that is another
    # fact's own question ("When was the bookshop established?") is answerable.
    for seed in range(6):
        found = question_set(seed, facts=30)
        by_question: dict[str, set[int | None]] = {}
        for asked in found.questions:
            by_question.setdefault(asked.question, set()).add(asked.passage)
        assert all(len(passages) == 1 for passages in by_question.values()), seed
