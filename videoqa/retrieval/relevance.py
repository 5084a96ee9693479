"""Whether the evidence chosen for a question can answer it: one probability from all the evidence.

A single dense-similarity threshold abstains on a perfectly read sign whose few words ("PLATFORM 7 -
TRAINS TO OSLO") sit far from a long question in embedding space, and answers a near miss ("the favourite
colour of Laura" when only Maria's is said) because the sentence is otherwise the same. So three signals
are combined by a logistic model:

* ``dense``: how similar the best passage is to the question (sentence embeddings);
* ``coverage``: the share of the question's content words that the evidence holds, each weighted by how
  rare it is among the video's passages, so a shared rare word ("Oslo", "locker") counts more than a
  common one;
* ``missing``: the share of the question's names and numbers (capitalised words inside the question,
  digits and number words) that the evidence does not hold: a question about somebody or something the
  evidence never names is about something else.

Words that frame a question about a video rather than its content ("screen", "number", "name", "happen")
are not counted: they are rarely said or written in the video itself.

The weights come from ``benchmarks/calibrate.py``, fitted on generated facts asked in many phrasings beside
near-miss and absent questions (seed 0, the first phrasings of each kind) and checked on another seed with
phrasings it was not fitted on; the benchmark prints the reliability curve the operating point is read from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from videoqa.retrieval.textindex import tokenize, word_list

# Question-frame words: how people ask about a video, not what it holds.
FRAME_WORDS = frozenset(
    word_list(
        "screen onscreen sign signs caption captions card title text written write writes displayed display "
        "displays appear appears appeared number numbers name named names called call kind type sort "
        "happen happens happened happening occur occurs occurred go goes going went come comes came "
        "tell know mention mentioned mentions say saying talk talks talked speak speaks spoke spoken "
        "according exactly please again also just really any some thing things something anything "
        "much many long old time moment point part clip footage scene film recording camera viewer "
        "one get gets got make makes made see seen look looks like want give given"
    )
)

# Fitted by benchmarks/calibrate.py (seed 0, fitting phrasings); see the module docstring.
WEIGHTS = {"dense": 13.12, "coverage": 1.19, "missing": -3.33}
BIAS = -7.81
# Probability below which `ask` abstains without asking the model, read from the reliability curve of
# benchmarks/calibrate.py on the held-out seed and phrasings: 0.2 is the highest point that still answers
# over 97 % of the answerable questions (98.0 %; it abstains on 30 % of the unanswerable ones, most of
# those about absent things); 0.3 answers 97.0 %, 0.4 93.5 %. The rest of the unanswerable questions are
# left to the grounding check (benchmarks/answers.py measures the two together, per answering model; on
# seeds 1-3, 0.1 would answer 3.6 points more of the answerable and 3.8 fewer of the unanswerable).
MIN_PROBABILITY = 0.2

_CAPITALISED = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][a-zA-Z]+")


@dataclass(frozen=True)
class Relevance:
    """How well the chosen evidence matches a question, and the probability that it answers it."""

    dense: float  # best cosine similarity of a passage to the question (or its anchor event)
    coverage: float  # rarity-weighted share of the question's content words the evidence holds, 0..1
    missing: float  # share of the question's names and numbers the evidence lacks, 0..1 (0 when none)
    probability: float  # that the evidence answers the question

    def features(self) -> tuple[float, float, float]:
        return (self.dense, self.coverage, self.missing)


def content_words(question: str) -> list[str]:
    """The question's words that say what it is about: tokens without stop words and frame words."""
    return [token for token in tokenize(question) if token not in FRAME_WORDS]


def named_words(question: str) -> set[str]:
    """Names and numbers in the question: capitalised words that do not start a sentence, and digits
    (number words are folded into digits by ``tokenize``)."""
    names = {token for match in _CAPITALISED.finditer(question) for token in tokenize(match.group())}
    numbers = {token for token in tokenize(question) if token.isdigit()}
    return (names | numbers) - FRAME_WORDS


def rarity(passages: Sequence[str]) -> dict[str, float]:
    """Each token's inverse document frequency over the video's passages (absent tokens: not listed)."""
    counts: dict[str, int] = {}
    for text in passages:
        for token in set(tokenize(text)):
            counts[token] = counts.get(token, 0) + 1
    total = len(passages)
    return {token: math.log((total + 1) / (count + 0.5)) for token, count in counts.items()}


def _holds(token: str, known: set[str]) -> bool:
    """The token, or an inflection of it ("tickets"/"ticket", "leaves"/"leave"), is among ``known``."""
    if token in known:
        return True
    return len(token) >= 4 and any(
        len(k) >= 4 and (k.startswith(token) or token.startswith(k)) and abs(len(k) - len(token)) <= 2
        for k in known
    )


def measure(question: str, dense: float, evidence_texts: Sequence[str], idf: dict[str, float]) -> Relevance:
    """The relevance features of the evidence for a question, and their probability of answering it."""
    known = {token for text in evidence_texts for token in tokenize(text)}
    words = content_words(question)
    top = max(idf.values(), default=1.0) + 1.0  # a word the video never holds weighs most
    weights = [idf.get(word, top) for word in words]
    held = [w for word, w in zip(words, weights, strict=True) if _holds(word, known)]
    coverage = sum(held) / sum(weights) if weights else 0.0
    names = named_words(question)
    missing = sum(1 for name in names if not _holds(name, known)) / len(names) if names else 0.0
    return Relevance(
        dense=dense, coverage=coverage, missing=missing, probability=probability((dense, coverage, missing))
    )


FEATURES = ("dense", "coverage", "missing")


def probability(features: tuple[float, ...]) -> float:
    """The calibrated logistic model's probability for the FEATURES, in that order."""
    logit = BIAS + sum(WEIGHTS[name] * value for name, value in zip(FEATURES, features, strict=True))
    return 1.0 / (1.0 + math.exp(-logit))


def fit_logistic(
    features: npt.NDArray[np.float64], labels: npt.NDArray[np.float64], l2: float = 1e-2, steps: int = 50
) -> tuple[npt.NDArray[np.float64], float]:
    """Weights and bias of an L2-regularised logistic regression, by Newton's method (a few features,
    a few thousand examples: exact and fast, no solver needed)."""
    rows, columns = features.shape
    design = np.hstack([features, np.ones((rows, 1))])
    theta = np.zeros(columns + 1)
    penalty = np.eye(columns + 1) * l2
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        predicted = 1.0 / (1.0 + np.exp(-design @ theta))
        gradient = design.T @ (predicted - labels) + penalty @ theta
        hessian = (design * (predicted * (1 - predicted))[:, None]).T @ design + penalty
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-9:
            break
    return theta[:-1], float(theta[-1])
