"""The messages the answering model is given, pinned: the text path (answer.py) and the seeing path
(videollm.py) build them with one function, so the same evidence reads the same to both."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from videoqa.llm import VISUAL_SLOT, Frame, GenerationOptions, Message
from videoqa.respond.answer import AnswerOptions, Asking, answer, answer_messages
from videoqa.respond.prompt import load_prompt
from videoqa.respond.videollm import Sight, answer_looking
from videoqa.retrieval.retrieve import Evidence, EvidenceSet

from helpers import ScriptedLlm

MODELS = {"llm": "scripted-llm"}
QUESTION = "How many apples did Tom buy?"
SYSTEM = load_prompt("answer").section("system")
HISTORY = (Message("user", "Who is at the market?"), Message("assistant", "Tom is (at 1:00)."))


def _item(text: str | None, start_s: float, role: str = "match", channel: str = "speech") -> Evidence:
    return Evidence(channel, start_s, start_s + 3, text, 0, 0.6, 0.03, role)


def _found(*items: Evidence, relation: str = "none") -> EvidenceSet:
    return EvidenceSet(items=items, relation=relation, anchor=None, best_similarity=0.6)


def _user(notes: str, question: str = QUESTION) -> str:
    return f"Notes from the video, in time order:\n{notes}\n\nQuestion: {question}"


APPLES = _found(
    _item("Tom bought seventeen apples at the market.", 62.0),
    _item(None, 100.0, channel="visual"),
    _item("SALE TODAY", 190.0, channel="screen"),
)
APPLES_NOTES = (
    '[1:02-1:05] speech: "Tom bought seventeen apples at the market."\n[3:10-3:13] screen: "SALE TODAY"'
)
AFTER_SWIM = _found(
    _item("Maria finished the swim.", 10.0, role="anchor"),
    _item("After that, Maria baked a cake.", 19.0, role="after"),
    relation="after",
)


class _SeeingModel:
    """A model that sees, behind the real protocol: replies from a script, every call recorded."""

    id = "seeing"
    context_tokens = 4096
    hidden_size = 4
    accepts_visual_tokens = True

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls: list[tuple[list[Message], dict[str, Any]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def image_tokens(self, frames: Sequence[Any]) -> list[npt.NDArray[np.float32]]:
        return [np.zeros((2, self.hidden_size), np.float32) for _ in frames]

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        images: Sequence[Frame] = (),
        visual_tokens: npt.NDArray[np.float32] | None = None,
    ) -> Iterator[str]:
        self.calls.append((list(messages), {"images": images, "visual_tokens": visual_tokens}))
        yield self.reply


def _text_messages(
    found: EvidenceSet, history: Sequence[Message] = (), system: str | None = None
) -> list[Any]:
    llm = ScriptedLlm("Tom bought 17 apples.")
    # min_relevance 0: the model is asked whatever the evidence, so its prompt can be read
    asking = Asking(history=history, system=system)
    answer(QUESTION, found, llm, AnswerOptions(min_relevance=0.0), MODELS, asking)
    return list(llm.prompts[0])


def _seeing_call(
    found: EvidenceSet, tokens: bool, history: Sequence[Message] = (), system: str | None = None
) -> tuple[list[Message], dict[str, Any]]:
    model = _SeeingModel("Tom bought 17 apples.")
    context = np.zeros((3, 4), np.float32) if tokens else None
    frames = () if tokens else [np.zeros((2, 2, 3), np.uint8)]
    sight = Sight(context=context, keyframes=frames)
    answer_looking(QUESTION, found, model, sight, GenerationOptions(), MODELS, Asking(history, system))
    return model.calls[0]


def test_the_text_path_shows_the_text_evidence_in_time_order_then_the_question() -> None:
    assert _text_messages(APPLES) == [Message("system", SYSTEM), Message("user", _user(APPLES_NOTES))]


def test_the_text_path_puts_the_history_between_the_system_prompt_and_the_question() -> None:
    messages = _text_messages(APPLES, HISTORY, "Answer briefly.")
    assert messages == [Message("system", "Answer briefly."), *HISTORY, Message("user", _user(APPLES_NOTES))]


def test_the_text_path_holds_the_anchor_back() -> None:
    expected = _user('[0:19-0:22] speech: "After that, Maria baked a cake."')
    assert _text_messages(AFTER_SWIM)[1] == Message("user", expected)


def test_the_text_path_with_only_an_anchor_to_show_shows_no_notes() -> None:
    only_anchor = _found(_item("Maria finished the swim.", 10.0, role="anchor"), relation="after")
    assert _text_messages(only_anchor)[1] == Message("user", _user(""))


def test_the_seeing_path_reads_the_same_prompt_as_the_text_path() -> None:
    messages, pictures = _seeing_call(APPLES, tokens=False, history=HISTORY, system="Answer briefly.")
    assert messages == _text_messages(APPLES, HISTORY, "Answer briefly.")
    assert len(pictures["images"]) == 1


def test_injected_tokens_go_where_the_visual_slot_is_before_the_notes() -> None:
    messages, pictures = _seeing_call(APPLES, tokens=True)
    assert messages == [Message("system", SYSTEM), Message("user", f"{VISUAL_SLOT}\n{_user(APPLES_NOTES)}")]
    assert pictures["visual_tokens"].shape == (3, 4)


def test_the_seeing_path_without_text_evidence_says_so_and_still_asks() -> None:
    messages, _ = _seeing_call(_found(_item(None, 5.0, channel="visual")), tokens=False)
    assert messages[1] == Message("user", _user("(no speech or on-screen text matched the question)"))


def test_the_seeing_path_holds_the_anchor_back_as_the_text_path_does() -> None:
    messages, _ = _seeing_call(AFTER_SWIM, tokens=False)
    assert messages == _text_messages(AFTER_SWIM)


def test_answer_messages_is_what_both_paths_send() -> None:
    items = AFTER_SWIM.items
    assert answer_messages(QUESTION, items, HISTORY) == _text_messages(AFTER_SWIM, HISTORY)
    with_slot = answer_messages(QUESTION, items, pictures="tokens")
    assert with_slot == _seeing_call(AFTER_SWIM, tokens=True)[0]
    assert with_slot[-1].content.startswith(f"{VISUAL_SLOT}\n")
