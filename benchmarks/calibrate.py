"""Calibrate when ``ask`` abstains: fit the relevance model (``videoqa/retrieval/relevance.py``) and print its
reliability curve on questions it was not fitted on.

Text only (no video, no answering model): ``testmedia.facts.question_set`` lays seeded facts (spoken facts,
signs, events told in several sentence forms, similar facts about someone else right beside some of them)
among filler narration, and asks each fact in six phrasings, plus near misses (the same words about
another person, city or thing) and questions about absent things that share words with the video. Every
question goes through the real retrieval (``retrieve.find_evidence``, the default text embedder); a
question is *answerable* when the evidence it gets holds an accepted answer.

The model is fitted on seed ``--fit-seed`` with the first ``--fit-phrasings`` phrasings of each fact, and
checked on seed ``--check-seed`` with the other phrasings only: names, numbers, pairings and wordings it
never saw. The table gives, per threshold, the share of answerable questions answered, the share of
unanswerable ones abstained on, and the accuracy of what is answered; the old single threshold (dense
similarity 0.40) is shown for comparison.

    python benchmarks/calibrate.py [--facts 60] [--fit-seed 0] [--check-seed 1]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from videoqa.channels.text_embedder import TextEmbedder, embedding_text, load_text_embedder
from videoqa.retrieval.relevance import FEATURES, MIN_PROBABILITY, fit_logistic
from videoqa.retrieval.retrieve import RetrievalOptions, find_evidence
from videoqa.store import models
from videoqa.testmedia.facts import AskedQuestion, QuestionSet, answer_matches, question_set
from videoqa.types import Passage

OLD_THRESHOLD = 0.40


@dataclass(frozen=True)
class Measured:
    question: AskedQuestion
    features: tuple[float, ...]
    holds_answer: bool  # the evidence shown to the model holds an accepted answer


def measure_set(questions: QuestionSet, embedder: TextEmbedder) -> list[Measured]:
    passages = [Passage(channel, start, end, text) for channel, text, start, end in questions.passages]
    vectors = embedder.embed([embedding_text(p) for p in passages])
    measured = []
    for asked in questions.questions:
        found = find_evidence(asked.question, passages, vectors, embedder, (), RetrievalOptions())
        assert found.relevance is not None
        shown = [e.text for e in found.items if e.text is not None and e.role != "anchor"]
        holds = bool(asked.answers) and any(answer_matches(text, asked.answers) for text in shown)
        measured.append(Measured(asked, found.relevance.features(), holds))
    return measured


def curve(rows: list[Measured], probabilities: np.ndarray, label: str) -> None:
    answerable = np.array([bool(r.question.answers) for r in rows])
    holds = np.array([r.holds_answer for r in rows])
    dense = np.array([r.features[0] for r in rows])
    print(
        f"\n{label}: {answerable.sum()} answerable, {(~answerable).sum()} unanswerable questions; "
        f"retrieval finds the answer for {holds[answerable].mean():.1%} of the answerable\n"
    )
    print("| rule | answerable answered | unanswerable abstained | answered with the answer in view |")
    print("|---|---|---|---|")

    def row(name: str, answered: np.ndarray) -> None:
        right = (answered & holds).sum() / max(answered.sum(), 1)
        print(
            f"| {name} | {answered[answerable].mean():.1%} | {(~answered)[~answerable].mean():.1%} | "
            f"{right:.1%} |"
        )

    row(f"dense >= {OLD_THRESHOLD:.2f} (old)", dense >= OLD_THRESHOLD)
    for threshold in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        row(f"p >= {threshold:.1f}", probabilities >= threshold)
    families = sorted({r.question.family for r in rows})
    print(
        f"\n| family | questions | mean p | p >= 0.5 | p >= {MIN_PROBABILITY} (ask's) |\n"
        "|---|---|---|---|---|"
    )
    for family in families:
        chosen = np.array([r.question.family == family for r in rows])
        print(
            f"| {family} | {chosen.sum()} | {probabilities[chosen].mean():.2f} | "
            f"{(probabilities[chosen] >= 0.5).mean():.1%} | "
            f"{(probabilities[chosen] >= MIN_PROBABILITY).mean():.1%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=60, help="facts in each stand-in video")
    parser.add_argument("--fit-seed", type=int, default=0)
    parser.add_argument("--check-seed", type=int, default=1)
    parser.add_argument(
        "--fit-phrasings",
        type=int,
        default=3,
        help="phrasings of each fact fitted on; the check uses the others",
    )
    args = parser.parse_args()
    embedder = load_text_embedder(fetch=models.pull)
    fit = [
        r
        for r in measure_set(question_set(args.fit_seed, args.facts), embedder)
        if r.question.phrasing < args.fit_phrasings
    ]
    check = [
        r
        for r in measure_set(question_set(args.check_seed, args.facts), embedder)
        if not r.question.answers or r.question.phrasing >= args.fit_phrasings
    ]
    features = np.array([r.features for r in fit], dtype=np.float64)
    weights, bias = fit_logistic(features, np.array([float(r.holds_answer) for r in fit]))
    print(
        "fitted: WEIGHTS = {"
        + ", ".join(f'"{n}": {w:.2f}' for n, w in zip(FEATURES, weights, strict=True))
        + f"}}, BIAS = {bias:.2f}"
    )

    def predict(rows: list[Measured]) -> np.ndarray:
        x = np.array([r.features for r in rows], dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-(x @ weights + bias)))

    curve(fit, predict(fit), f"fitted on (seed {args.fit_seed}, phrasings < {args.fit_phrasings})")
    curve(check, predict(check), f"held out (seed {args.check_seed}, phrasings >= {args.fit_phrasings})")


if __name__ == "__main__":
    main()
