"""Calibrate the abstention threshold: how similar is a question to the passage that answers it, and to
the best passage of a video that cannot answer it?

Text only (no video): a seeded set of generated facts (``videoqa.facts``) and filler sentences stands in
for a long video's passages, questions about the facts are answerable, questions from the absent pool
are not. For each threshold the table shows the share of answerable questions still answered and of
unanswerable ones abstained on. ``videoqa.answer.ABSTAIN_BELOW`` comes from this table.

    python benchmarks/calibrate.py [--facts 120] [--seed 0]
"""

from __future__ import annotations

import argparse
import random

import numpy as np

from videoqa import facts, models
from videoqa.story import _FILLERS
from videoqa.textindex import embedding_text, load_text_embedder
from videoqa.types import Passage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", type=int, default=120, help="facts in the stand-in video")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    planted = [facts.spoken_fact(rng) if i % 3 else facts.screen_fact(rng) for i in range(args.facts)]
    fillers = [f.format(weekday=rng.choice(facts.WEEKDAYS), city=rng.choice(facts.CITIES),
                        name=rng.choice(facts.NAMES)) for f in _FILLERS for _ in range(3)]
    passages = [Passage(f.channel, 0, 1, f.text) for f in planted]
    passages += [Passage("speech", 0, 1, text) for text in fillers]
    embedder = load_text_embedder(fetch=models.pull)
    vectors = embedder.embed([embedding_text(p) for p in passages])
    asked = embedder.embed([f.question for f in planted])
    own = np.einsum("ij,ij->i", asked, vectors[:len(planted)])  # each question vs the fact it asks about
    absent_questions = sorted({q.format(colour=c, city=t) for q in facts.ABSENT_QUESTIONS
                               for c in facts.COLOURS[:2] for t in facts.CITIES[:2]})
    absent_best = (embedder.embed(absent_questions) @ vectors.T).max(axis=1)
    print(f"{len(planted)} answerable questions: similarity to their own passage, median "
          f"{np.median(own):.2f}, 5th percentile {np.percentile(own, 5):.2f}")
    print(f"{len(absent_questions)} unanswerable questions: best similarity to any passage, median "
          f"{np.median(absent_best):.2f}, 95th percentile {np.percentile(absent_best, 95):.2f}")
    print("\n| threshold | answerable kept | unanswerable abstained |\n|---|---|---|")
    for threshold in np.arange(0.20, 0.55, 0.05):
        kept, abstained = np.mean(own >= threshold), np.mean(absent_best < threshold)
        print(f"| {threshold:.2f} | {kept:.0%} | {abstained:.0%} |")


if __name__ == "__main__":
    main()
