"""Answering: the evidence in time order goes to the language model, and the reply is checked against it.

A small local model is good at restating a line it was given and bad at knowing when it was given
nothing useful, so the decisions that keep answers honest are made here, not left to the model:

* **Abstain** when the best-matching passage is less similar to the question than ``abstain_below`` —
  the model is not called, and the answer says the video does not seem to show or say it. The default
  threshold is calibrated by ``benchmarks/calibrate.py`` (see the constant below).
* **Check grounding**: every number in the reply, and most of the other words it adds to the question,
  must occur in the evidence. A reply that fails — an invented date, a misread sign — is replaced by the
  best evidence line quoted with its time, which is always true to the video; but when that line matched
  the question only moderately (below ``quote_above``), the failed reply is taken as a second sign that
  the evidence does not answer the question, and the answer abstains instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from videoqa.errors import OptionsError
from videoqa.llm import GenerationOptions, Message, TextGenerator
from videoqa.prompt import load_prompt
from videoqa.retrieve import Evidence, EvidenceSet
from videoqa.textindex import tokenize, word_list
from videoqa.timefmt import format_clock

# Cosine similarity (all-MiniLM-L6-v2) between a question and its best passage, below which we abstain.
# benchmarks/calibrate.py (120 generated facts, 14 unanswerable questions): answerable questions match
# their passage at a median of 0.74 (5th percentile 0.49); unanswerable ones reach 0.33 (95th: 0.45).
# 0.40 keeps every clean answerable question and abstains on 79 % of the unanswerable; it sits below 0.45
# (93 %) because recognition errors pull real passages' similarity down.
ABSTAIN_BELOW = 0.40
# Best similarity below which an ungrounded reply makes the answer abstain rather than quote; the 5th
# percentile of answerable questions in benchmarks/calibrate.py is 0.49.
QUOTE_ABOVE = 0.50
# Share of the words a reply adds to the question (numbers aside: those must all occur) that must occur in
# the evidence. Small models pad replies with plausible inventions ("in New York City"); this catches them.
_MIN_GROUNDED_SHARE = 0.75
# Words a faithful reply uses that the evidence need not contain.
_REPLY_WORDS = frozenset(word_list(
    "answer person people someone man woman narrator speaker screen text sign card reads read shown "
    "appears appear mentions mention mentioned tells told according notes note then next after before "
    "first last time yes no"))

Feed = Callable[[str], None]  # receives the answer's text piece by piece as it is generated


@dataclass(frozen=True)
class AnswerOptions:
    """How the answer is produced from the evidence."""

    abstain_below: float = ABSTAIN_BELOW  # see ABSTAIN_BELOW; -1 never abstains
    quote_above: float = QUOTE_ABOVE  # see QUOTE_ABOVE; -1 always quotes an ungrounded reply
    generation: GenerationOptions = field(default_factory=lambda: GenerationOptions(max_tokens=96))
    check_grounding: bool = True  # replace replies the evidence does not support by a quote

    def __post_init__(self) -> None:
        for name in ("abstain_below", "quote_above"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise OptionsError(f"{name} must be within -1..1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Answer:
    """An answer and what it rests on."""

    question: str
    text: str
    evidence: tuple[Evidence, ...]  # in time order; empty when abstaining
    abstained: bool  # nothing in the video matched well enough; the model was not asked
    quoted: bool  # the model's reply was not supported by the evidence and was replaced by a quote
    relation: str  # the question's temporal relation (see temporal.RELATIONS)
    best_similarity: float  # of the best-matching passage to the question (or its anchor event)
    model_reply: str | None  # the model's own words, kept when they were replaced by a quote
    models: dict[str, str]  # which models produced the index and the answer


def evidence_line(item: Evidence) -> str:
    """``[m:ss-m:ss] channel: "text"``: one evidence line as the prompt and the CLI show it."""
    span = f"[{format_clock(item.start_s, 0)}-{format_clock(item.end_s, 0)}]"
    what = f'"{item.text}"' if item.text is not None else "(a scene that looks like the question)"
    return f"{span} {item.channel}: {what}"


def answer(question: str, found: EvidenceSet, llm: TextGenerator, options: AnswerOptions,
           models: dict[str, str], feed: Feed | None = None, history: Sequence[Message] = (),
           system: str | None = None) -> Answer:
    """Answer ``question`` from ``found``: abstain, or ask the model and check its reply.

    ``history`` (earlier turns of a chat) goes between the system prompt — ``system``, or the answer
    prompt's own — and the question.
    """
    texts = [e for e in found.items if e.text is not None]
    common = {"question": question, "relation": found.relation,
              "best_similarity": found.best_similarity, "models": models}
    abstain = load_prompt("abstain").section("answer")
    if not texts or found.best_similarity < options.abstain_below:
        return Answer(text=abstain, evidence=(), abstained=True, quoted=False, model_reply=None,
                      **common)  # type: ignore[arg-type]
    reply = _generate(question, found.items, llm, options, feed, history, system)
    if options.check_grounding and not is_grounded(reply, [e.text or "" for e in texts], question):
        if found.best_similarity < options.quote_above:
            return Answer(text=abstain, evidence=(), abstained=True, quoted=False, model_reply=reply,
                          **common)  # type: ignore[arg-type]
        return Answer(text=quote(_best(found)), evidence=found.items, abstained=False, quoted=True,
                      model_reply=reply, **common)  # type: ignore[arg-type]
    return Answer(text=reply, evidence=found.items, abstained=False, quoted=False, model_reply=None,
                  **common)  # type: ignore[arg-type]


def _generate(question: str, items: Sequence[Evidence], llm: TextGenerator, options: AnswerOptions,
              feed: Feed | None, history: Sequence[Message], system: str | None) -> str:
    template = load_prompt("answer")
    # The anchor of "what happens after X" is cited but not shown: given X and what followed, a small
    # model tends to retell X.
    evidence = "\n".join(evidence_line(item) for item in items
                         if item.text is not None and item.role != "anchor")
    messages = [Message("system", system or template.section("system")), *history,
                Message("user", template.fill("user", evidence=evidence, question=question))]
    return collect_reply(llm.generate(messages, options.generation), feed)


def collect_reply(pieces: Iterable[str], feed: Feed | None) -> str:
    """A streamed reply, shown to ``feed`` piece by piece, up to its first blank line: small models tend
    to ramble on after answering."""
    collected = []
    for piece in pieces:
        collected.append(piece)
        if feed is not None:
            feed(piece)
    return "".join(collected).strip().split("\n\n", 1)[0].strip()


def is_grounded(reply: str, evidence_texts: Sequence[str], question: str,
                allowed: frozenset[str] = frozenset()) -> bool:
    """Whether the reply says something beyond the question and what it adds comes from the evidence:
    every number, and most other words, that the reply has and the question has not. ``allowed`` are
    more words a faithful reply may use freely."""
    asked = set(tokenize(question))
    known = {token for text in evidence_texts for token in tokenize(text)}
    added = [t for t in tokenize(reply) if t not in _REPLY_WORDS and t not in allowed and t not in asked]
    if not added:  # "the colour of Daniel is Daniel" answers nothing
        return False
    if any(t.isdigit() and t not in known for t in added):
        return False
    words = [t for t in added if not t.isdigit()]
    supported = sum(1 for t in words if any(_same_word(t, k) for k in known))
    return not words or supported / len(words) >= _MIN_GROUNDED_SHARE


def _same_word(a: str, b: str) -> bool:
    """Equal, or one an inflection of the other ("rode"/"ride" aside): a shared stem of 4+ letters."""
    if a == b:
        return True
    stem = min(len(a), len(b))
    return stem >= 4 and a[:stem] == b[:stem] and abs(len(a) - len(b)) <= 3


def _best(found: EvidenceSet) -> Evidence:
    """The item that answers: what follows/precedes the anchor for after/before, else the closest match."""
    texts = [e for e in found.items if e.text is not None]
    answering = [e for e in texts if e.role != "anchor"] or texts
    if found.relation == "before":
        return answering[-1]
    if found.relation == "after":
        return answering[0]
    return max(answering, key=lambda e: (e.fused, e.similarity))


def quote(item: Evidence) -> str:
    """The evidence line as an answer: what was said or shown, and when."""
    when = format_clock(item.start_s, 0)
    if item.channel == "speech":
        return f'At {when} someone says: "{item.text}"'
    return f'At {when} the screen shows: "{item.text}"'
