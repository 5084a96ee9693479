"""Answer quality of the answering models side by side, text only: the same retrieval, the same prompt.

``testmedia.facts.question_set`` lays seeded facts among filler narration (spoken facts, signs, events told
in several sentence forms, a similar fact about someone else right beside some of them) and asks each fact
in six phrasings, with near misses (the same words about someone or something else) and questions about
absent things. Every question goes through the real retrieval (``retrieve.find_evidence``, the default
text embedder) and ``answer.answer`` with each model, as ``videoqa ask`` does after indexing; a video's
speech recognition and screen reading are left out (``benchmarks/ask.py`` and ``bench needle`` measure
those), so the table shows what the evidence choice, the relevance model and the answering model do.

Each question is put to the model once, whatever its relevance; the operating points (``ask`` abstains
without asking the model below a relevance probability, relevance.MIN_PROBABILITY) are then applied to
the same replies, so the rows of one model differ only in the threshold. Reported per model and
threshold: answerable questions answered right (the reply states an accepted answer), answered wrong,
abstained on; unanswerable ones (near misses, absent) abstained on; paraphrase consistency (of the
facts, the share whose phrasings all get the same verdict: all right, or all not); and the seconds per
answer the model was asked for, once it is loaded (median and 95th percentile).

    python benchmarks/answers.py [--models smollm2-135m-instruct qwen2.5-coder-0.5b-instruct]
                                 [--seed 1] [--facts 20] [--without-kind-check]

``--without-kind-check`` judges the same replies (remembered, not asked again) a second time without the
check that a reply holds the kind of answer asked for, and prints those rows beside the others.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from videoqa.channels.text_embedder import embedding_text, load_text_embedder
from videoqa.llm import GenerationOptions, LlmOptions, Message, TextGenerator, load_llm
from videoqa.respond.answer import AnswerOptions, answer
from videoqa.retrieval.relevance import MIN_PROBABILITY
from videoqa.retrieval.retrieve import EvidenceSet, RetrievalOptions, find_evidence
from videoqa.store import models
from videoqa.testmedia.facts import AskedQuestion, answer_matches, question_set
from videoqa.types import Passage

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.5)


@dataclass(frozen=True)
class Verdict:
    asked: AskedQuestion
    right: bool  # answerable: answered with an accepted answer; unanswerable: abstained
    abstained: bool
    quoted: bool  # the model's reply failed the grounding check and a passage was quoted instead
    seconds: float
    text: str
    relevance: float


class Replayed:
    """A model whose replies are remembered, so a second pass over the same questions with other answer
    checks gets the same replies without asking again."""

    def __init__(self, llm: TextGenerator) -> None:
        self.llm = llm
        self._replies: dict[tuple[tuple[str, str], ...], list[str]] = {}

    @property
    def id(self) -> str:
        return self.llm.id

    @property
    def context_tokens(self) -> int:
        return self.llm.context_tokens

    def count_tokens(self, text: str) -> int:
        return self.llm.count_tokens(text)

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Iterator[str]:
        key = tuple((m.role, m.content) for m in messages)
        if key not in self._replies:
            self._replies[key] = list(self.llm.generate(messages, options))
        return iter(self._replies[key])


def judge(asked: AskedQuestion, found: EvidenceSet, llm: TextGenerator, check_kind: bool = True) -> Verdict:
    """The model's answer to one question, asked whatever the evidence's relevance."""
    start = time.perf_counter()
    options = AnswerOptions(min_relevance=0.0, check_kind=check_kind)
    result = answer(asked.question, found, llm, options, {"llm": "benchmark"})
    return verdict(
        asked,
        result.abstained,
        result.quoted,
        result.text,
        time.perf_counter() - start,
        result.relevance if result.relevance is not None else 0.0,
    )


def verdict(
    asked: AskedQuestion, abstained: bool, quoted: bool, text: str, seconds: float, relevance: float
) -> Verdict:
    right = abstained if not asked.answers else not abstained and answer_matches(text, asked.answers)
    return Verdict(asked, right, abstained, quoted, seconds, text, relevance)


def at_threshold(verdicts: list[Verdict], threshold: float) -> list[Verdict]:
    """The verdicts had ``ask`` abstained, without asking the model, below ``threshold``."""
    return [
        v if v.relevance >= threshold else verdict(v.asked, True, False, "", 0.0, v.relevance)
        for v in verdicts
    ]


def consistency(verdicts: list[Verdict]) -> float:
    """Of the facts asked in several phrasings, the share whose phrasings all get the same verdict."""
    by_fact: dict[int, set[bool]] = defaultdict(set)
    for verdict in verdicts:
        if verdict.asked.passage is not None:
            by_fact[verdict.asked.passage].add(verdict.right)
    return sum(len(outcomes) == 1 for outcomes in by_fact.values()) / max(len(by_fact), 1)


def share(flags: list[bool]) -> str:
    return f"{sum(flags) / len(flags):.1%}" if flags else "-"


def report(name: str, threshold: float, verdicts: list[Verdict]) -> str:
    answerable = [v for v in verdicts if v.asked.answers]
    unanswerable = [v for v in verdicts if not v.asked.answers]
    seconds = [v.seconds for v in verdicts if v.seconds > 0] or [0.0]
    p95 = float(np.percentile(seconds, 95))
    return (
        f"| {name} | {threshold:.1f} | {share([v.right for v in answerable])} | "
        f"{share([not v.right and not v.abstained for v in answerable])} | "
        f"{share([v.abstained for v in answerable])} | {share([v.right for v in unanswerable])} | "
        f"{share([v.quoted for v in verdicts if not v.abstained])} | {consistency(verdicts):.1%} | "
        f"{statistics.median(seconds):.2f} / {p95:.2f} |"
    )


def by_family(name: str, verdicts: list[Verdict]) -> list[str]:
    families = sorted({v.asked.family for v in verdicts})
    return [
        f"| {name} | {family} | {len(chosen)} | {share([v.right for v in chosen])} |"
        for family in families
        for chosen in [[v for v in verdicts if v.asked.family == family]]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"]
    )
    parser.add_argument("--seed", type=int, default=1, help="question-set seed (0 is the relevance fit's)")
    parser.add_argument("--facts", type=int, default=20)
    parser.add_argument("--show-wrong", action="store_true", help="print each wrong answer")
    parser.add_argument(
        "--without-kind-check",
        action="store_true",
        help="add rows for the same replies judged without the answer-kind check (respond/kinds.py)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="llama.cpp threads (0: one per core; 1 when something else runs beside it)",
    )
    args = parser.parse_args()
    questions = question_set(args.seed, args.facts)
    embedder = load_text_embedder(fetch=models.pull)
    passages = [Passage(channel, start, end, text) for channel, text, start, end in questions.passages]
    vectors = embedder.embed([embedding_text(p) for p in passages])
    found = [
        find_evidence(q.question, passages, vectors, embedder, (), RetrievalOptions())
        for q in questions.questions
    ]
    results: dict[str, list[Verdict]] = {}
    for name in args.models:
        llm = Replayed(load_llm(name, LlmOptions(threads=args.threads), fetch=models.pull))
        results[name] = [judge(q, f, llm) for q, f in zip(questions.questions, found, strict=True)]
        if args.without_kind_check:
            results[f"{name} without kind check"] = [
                judge(q, f, llm, check_kind=False) for q, f in zip(questions.questions, found, strict=True)
            ]
        if args.show_wrong:
            for wrong in (v for v in results[name] if not v.right):
                print(
                    f"{name}: {wrong.asked.family}: p={wrong.relevance:.2f} {wrong.asked.question} -> "
                    f"{wrong.text}"
                )
    print(
        f"\nseed {args.seed}: {len(passages)} passages, {len(questions.questions)} questions "
        f"({sum(bool(q.answers) for q in questions.questions)} answerable)\n"
    )
    print(
        "| model | min relevance | answerable: right | wrong | abstained | unanswerable: abstained | "
        "answers quoted | paraphrase-consistent facts | s per answer asked (median / p95) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, verdicts in results.items():
        for threshold in sorted({*THRESHOLDS, MIN_PROBABILITY}):
            print(report(name, threshold, at_threshold(verdicts, threshold)))
    print(
        f"\nat ask's min relevance {MIN_PROBABILITY}:\n\n| model | family | questions | right |\n"
        "|---|---|---|---|"
    )
    for name, verdicts in results.items():
        print("\n".join(by_family(name, at_threshold(verdicts, MIN_PROBABILITY))))


if __name__ == "__main__":
    main()
