"""Answering: the evidence in time order goes to the language model, and the reply is checked against it.

The decisions that keep answers honest are made around the model, not left to it:

* **Abstain** when the evidence is unlikely to answer the question: ``relevance.py`` combines the
  dense similarity, the rare words the question shares with the evidence and the names and numbers it
  lacks into one calibrated probability; below ``min_relevance`` the model is not called, and the
  answer says the video does not seem to show or say it.
* **Let the model abstain**: a reply "Not in the video" is an abstention. The default prompt does not ask
  for it: the small default models said it mostly when the notes did answer (benchmarks/answers.py), so
  a custom prompt (``prompts/``) for a capable model may.
* **Check grounding**: every number in the reply, and most of the other words it adds to the question,
  must occur in the evidence. A reply that fails — an invented date, a misread sign — is replaced by the
  best evidence line quoted with its time, which is always true to the video; but when the evidence was
  only moderately likely to answer (below ``quote_above``), the failed reply is taken as a second sign
  that it does not, and the answer abstains instead.
* **Check the reply is about what was asked**: the question's names and numbers that the reply repeats
  must occur in the items it rests on, and a count must be of the thing the question counts. A reply
  that tells somebody else's purchase as the asked person's, or 68 blankets as 68 books, rests on a
  passage about something else, so the answer abstains (a quote of that passage would not answer either).
  Likewise a reply that holds none of the kind of answer the question asks for (a time of day, a year,
  a phone number, a colour, an age, an amount: ``kinds.py``), such as a platform for "what time".
* **Cite what the reply rests on**: of the items the model was shown, the answer keeps the ones whose
  words the reply uses (and the anchor of "after X"), and states the time of the first when the reply
  does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from videoqa.errors import OptionsError
from videoqa.llm import VISUAL_SLOT, GenerationOptions, Message, TextGenerator
from videoqa.media.timefmt import format_clock
from videoqa.respond.kinds import lacks_kind_asked
from videoqa.respond.prompt import load_prompt
from videoqa.retrieval.relevance import MIN_PROBABILITY, measure, named_words
from videoqa.retrieval.retrieve import Evidence, EvidenceSet
from videoqa.retrieval.textindex import tokenize, word_list

# Probability of answering (relevance.py) below which an ungrounded reply makes the answer abstain
# rather than quote: such evidence is at best a loose match, and the model could not use it. At 0.7, 85 %
# of the quotes hold the answer (benchmarks/calibrate.py, held-out seed; 89 % at 0.8, 77 % at 0.4).
QUOTE_ABOVE = 0.7
# Share of the words a reply adds to the question (numbers aside: those must all occur) that must occur in
# the evidence. Small models pad replies with plausible inventions ("in New York City"); this catches them.
_MIN_GROUNDED_SHARE = 0.75
_PARAPHRASE_SUPPORT = 2
# Words a faithful reply uses that the evidence need not contain.
_REPLY_WORDS = frozenset(
    word_list(
        "answer person people someone man woman narrator speaker screen text sign card reads read shown "
        "appears appear mentions mention mentioned tells told according notes note then next after before "
        "first last time yes no video notes note at around show shows showed showing scene scenes clip "
        "footage says said say saying speaks spoke see seen sees displayed display displays written "
        "writes wrote"
    )
)
_NOT_IN_VIDEO = re.compile(
    r"^\W*(?:it is |it's |this is )?not (?:in|shown in|said in|mentioned in) the "
    r"(?:video|notes)\b",
    re.IGNORECASE,
)
_CLOCK = re.compile(r"\b\d{1,2}:\d{2}\b")
# What a count question counts: "how many books", "what number of apples", "the quantity of tickets".
_COUNTED = re.compile(r"\b(?:how many|number of|quantity of)\s+([a-z]+)")
_COUNT_REACH = 2  # words between a count and the thing counted ("68 red blankets", "APPLES: 17")
# The notes a model that sees is given when no speech or screen text matched the question.
_NO_NOTES = "(no speech or on-screen text matched the question)"

Feed = Callable[[str], None]  # receives the answer's text piece by piece as it is generated
# What an answering model is given besides the text: nothing, pictures, or visual tokens (videollm.py)
Pictures = Literal["none", "frames", "tokens"]


@dataclass(frozen=True)
class AnswerOptions:
    """How the answer is produced from the evidence."""

    min_relevance: float = MIN_PROBABILITY  # abstain below this probability of answering; 0 never does
    quote_above: float = QUOTE_ABOVE  # see QUOTE_ABOVE; 0 always quotes an ungrounded reply
    generation: GenerationOptions = field(default_factory=lambda: GenerationOptions(max_tokens=96))
    check_grounding: bool = True  # replace replies the evidence does not support by a quote
    check_kind: bool = True  # abstain on a reply without the kind of answer asked for (kinds.py)

    def __post_init__(self) -> None:
        for name in ("min_relevance", "quote_above"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise OptionsError(f"{name} must be within 0..1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Answer:
    """An answer and what it rests on."""

    question: str
    text: str
    evidence: tuple[Evidence, ...]  # in time order; empty when abstaining
    abstained: bool  # the evidence does not answer the question (by its scores, or the model said so)
    quoted: bool  # the model's reply was not supported by the evidence and was replaced by a quote
    relation: str  # the question's temporal relation (see temporal.RELATIONS)
    best_similarity: float  # of the best-matching passage to the question (or its anchor event)
    model_reply: str | None  # the model's own words, kept when they were replaced by a quote
    models: dict[str, str]  # which models produced the index and the answer
    relevance: float | None = None  # probability that the evidence answers the question (relevance.py)


def evidence_line(item: Evidence) -> str:
    """``[m:ss-m:ss] channel: "text"``: one evidence line as the prompt and the CLI show it."""
    span = f"[{format_clock(item.start_s, 0)}-{format_clock(item.end_s, 0)}]"
    what = f'"{item.text}"' if item.text is not None else "(a scene that looks like the question)"
    return f"{span} {item.channel}: {what}"


@dataclass(frozen=True)
class Asking:
    """How a question is put: the chat so far, whose instructions, who sees the reply as it comes."""

    history: Sequence[Message] = ()  # earlier turns of a chat: between the system prompt and the question
    system: str | None = None  # replaces the answer prompt's own system message
    feed: Feed | None = None  # receives the reply piece by piece as it is generated


ASKED_ALONE = Asking()  # a question on its own: no chat before it, the answer prompt, no live feed


def answer(
    question: str,
    found: EvidenceSet,
    llm: TextGenerator,
    options: AnswerOptions,
    models: dict[str, str],
    asking: Asking = ASKED_ALONE,
) -> Answer:
    """Answer ``question`` from ``found``: abstain, or ask the model and check its reply."""
    texts = [e for e in found.items if e.text is not None]
    likely = relevance_of(question, found)
    abstained = Answer(
        question=question,
        text=load_prompt("abstain").section("answer"),
        evidence=(),
        abstained=True,
        quoted=False,
        model_reply=None,
        relation=found.relation,
        best_similarity=found.best_similarity,
        models=models,
        relevance=likely,
    )
    if not texts or likely < options.min_relevance:
        return abstained
    messages = answer_messages(question, found.items, asking.history, asking.system)
    reply = collect_reply(llm.generate(messages, options.generation), asking.feed)
    if says_not_in_video(reply):
        return replace(abstained, model_reply=reply)
    shown = [e.text or "" for e in texts if e.role != "anchor"] or [e.text or "" for e in texts]
    cited = citations(reply, found)
    if options.check_grounding and (
        names_elsewhere(reply, question, cited)
        or counts_something_else(reply, question, cited)
        or (options.check_kind and lacks_kind_asked(reply, question, video_times(found.items)))
    ):  # about someone or something else, or not the kind of answer asked for ("platform 2" for a
        # time): the passage it rests on does not answer, so quoting it would not either
        return replace(abstained, model_reply=reply)
    grounded = is_grounded(reply, shown, question, clock_words(found.items))
    if options.check_grounding and not grounded:
        if likely < options.quote_above:
            return replace(abstained, model_reply=reply)
        best = _best(found)
        if options.check_kind and lacks_kind_asked(best.text or "", question):
            return replace(abstained, model_reply=reply)  # the quote would not answer either
        cited = tuple(e for e in found.items if e is best or e.role == "anchor" or e.text is None)
        return replace(
            abstained, text=quote(best), evidence=cited, abstained=False, quoted=True, model_reply=reply
        )
    return replace(abstained, text=with_time(reply, cited), evidence=cited, abstained=False)


def relevance_of(question: str, found: EvidenceSet) -> float:
    """The evidence's probability of answering: as retrieval measured it, or measured here from the
    items alone (without the video's word rarity) when an evidence set was built by hand."""
    if found.relevance is not None:
        return found.relevance.probability
    texts = [e.text for e in found.items if e.text is not None]
    return measure(question, found.best_similarity, texts, {}).probability


def says_not_in_video(reply: str) -> bool:
    """The model's own abstention, as the answer prompt asks for it ("Not in the video.")."""
    return bool(_NOT_IN_VIDEO.match(reply))


def video_times(items: Sequence[Evidence]) -> frozenset[str]:
    """The items' times in the video as the prompt shows them ("4:20"), but for any that an item's own
    text states (a clock on a sign is what it says, not when it was seen)."""
    clocks = {format_clock(t, 0) for e in items for t in (e.start_s, e.end_s)}
    texts = " ".join(e.text or "" for e in items)
    return frozenset(clock for clock in clocks if clock not in texts)


def clock_words(items: Sequence[Evidence]) -> frozenset[str]:
    """The tokens of the items' times as the prompt shows them ("4:20" -> "4", "20"): a reply may say when."""
    clocks = [format_clock(t, 0) for e in items for t in (e.start_s, e.end_s)]
    return frozenset(token for clock in clocks for token in tokenize(clock.replace(":", " ")))


def citations(reply: str, found: EvidenceSet) -> tuple[Evidence, ...]:
    """The items a grounded reply rests on, in time order: those of the shown items that hold most of the
    reply's own words (the best one, and any close to it), with the anchor of "after/before X"."""
    shown = [e for e in found.items if e.text is not None and e.role != "anchor"]
    if not shown:
        return found.items
    words = set(tokenize(reply))
    support = [sum(1 for t in set(tokenize(e.text or "")) if t in words) for e in shown]
    top = max(support)
    if top == 0:
        chosen = [_best(found)]
    else:
        chosen = [e for e, n in zip(shown, support, strict=True) if n >= max(1, top - 1) and n * 2 >= top]
        if found.relation in ("after", "before"):  # the nearest of the equally supported ones
            best = [e for e, n in zip(shown, support, strict=True) if n == top]
            chosen = [best[0] if found.relation == "after" else best[-1]]
    anchors = [e for e in found.items if e.role == "anchor"]
    visual = [e for e in found.items if e.text is None]
    return tuple(
        sorted(
            {id(e): e for e in (*anchors, *chosen, *visual)}.values(), key=lambda e: (e.start_s, e.channel)
        )
    )


def with_time(reply: str, cited: Sequence[Evidence]) -> str:
    """The reply with the time of what it rests on, unless it says a time itself."""
    answering = [e for e in cited if e.role != "anchor" and e.text is not None]
    if not answering or _CLOCK.search(reply):
        return reply
    when = format_clock(answering[0].start_s, 0)
    body = reply.rstrip()
    end = body[-1] if body and body[-1] in ".!?" else "."
    return f"{body.rstrip('.!?')} (at {when}){end}"


def answer_messages(
    question: str,
    items: Sequence[Evidence],
    history: Sequence[Message] = (),
    system: str | None = None,
    pictures: Pictures = "none",
) -> list[Message]:
    """What an answering model is given, from the answer prompt: the system prompt (``system``, or the
    prompt's own), ``history`` (earlier turns of a chat), then the notes (a line for each of ``items``
    that ``shown_to_model`` keeps) and the question. The text and the seeing paths both send these.

    ``pictures`` says what else a model that sees is given: "frames" (pictures, placed by its chat
    template) or "tokens" (visual tokens, injected where ``VISUAL_SLOT`` opens the question). Either way
    it is asked even when no text matched, as it has the scenes to look at; the notes say so.
    """
    template = load_prompt("answer")
    evidence = "\n".join(evidence_line(item) for item in shown_to_model(items))
    if pictures != "none":
        evidence = evidence or _NO_NOTES
    user = template.fill("user", evidence=evidence, question=question)
    if pictures == "tokens":
        user = f"{VISUAL_SLOT}\n{user}"
    return [Message("system", system or template.section("system")), *history, Message("user", user)]


def shown_to_model(items: Sequence[Evidence]) -> list[Evidence]:
    """The items an answering model reads: those with text, but not the anchor of "what happens after X".
    Given X and what followed, a small model tends to retell X; what its own sentence says followed it is
    shown (role "after"). The anchor is still cited."""
    return [item for item in items if item.text is not None and item.role != "anchor"]


def collect_reply(pieces: Iterable[str], feed: Feed | None) -> str:
    """A streamed reply, shown to ``feed`` piece by piece, up to its first blank line: small models tend
    to ramble on after answering."""
    collected = []
    for piece in pieces:
        collected.append(piece)
        if feed is not None:
            feed(piece)
    return "".join(collected).strip().split("\n\n", 1)[0].strip()


def is_grounded(
    reply: str, evidence_texts: Sequence[str], question: str, allowed: frozenset[str] = frozenset()
) -> bool:
    """Whether the reply says something beyond the question and what it adds comes from the evidence:
    every number, and most other words, that the reply has and the question has not (nor an inflection
    of them). ``allowed`` are more words a faithful reply may use freely."""
    asked = set(tokenize(question))
    known = {token for text in evidence_texts for token in tokenize(text)}
    added = [
        t
        for t in tokenize(reply)
        if t not in _REPLY_WORDS and t not in allowed and not any(_same_word(t, q) for q in asked)
    ]
    if not added:  # "the colour of Daniel is Daniel" answers nothing
        return False
    if any(t.isdigit() and t not in known for t in added):
        return False
    words = [t for t in added if not t.isdigit()]
    supported = sum(1 for t in words if any(_same_word(t, k) for k in known))
    # One unsupported word among several supported ones is a paraphrase ("buys" for "bought"), not an
    # invention.
    return (
        not words
        or supported / len(words) >= _MIN_GROUNDED_SHARE
        or (supported >= _PARAPHRASE_SUPPORT and len(words) - supported <= 1)
    )


def counts_something_else(reply: str, question: str, cited: Sequence[Evidence]) -> bool:
    """Whether a count question ("how many books…", "what number of apples…") is answered with a number
    that the items it rests on give as a count of something else: "Jack bought 68 books" from "Jack
    bought 68 blankets". Each number the reply states must stand next to the counted thing (within two
    words before or after it) somewhere in those items."""
    counted = _COUNTED.search(question.lower())
    if counted is None or not (thing := tokenize(counted.group(1))):
        return False
    texts = [tokenize(item.text or "") for item in cited if item.text is not None]
    for number in {t for t in tokenize(reply) if t.isdigit()}:
        beside = [
            words[max(0, i - _COUNT_REACH) : i + _COUNT_REACH + 1]
            for words in texts
            for i, word in enumerate(words)
            if word == number
        ]
        if beside and not any(_same_word(thing[0], word) for near in beside for word in near):
            return True
    return False


def names_elsewhere(reply: str, question: str, cited: Sequence[Evidence]) -> bool:
    """Whether the reply repeats a name or number of the question that the items it rests on (``cited``,
    with the anchor of "after X") do not hold: asked how many tickets Clara bought, "Clara bought 61
    tickets" resting on a note that Peter did is about somebody else, however well grounded its words."""
    names = named_words(question)
    known = {token for item in cited for token in tokenize(item.text or "")}
    return any(t in names and not any(_same_word(t, k) for k in known) for t in tokenize(reply))


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
