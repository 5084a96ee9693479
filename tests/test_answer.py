"""Answering: abstention, grounding checks, the prompt the model sees, and evidence selection."""

from __future__ import annotations

import numpy as np
import pytest

from videoqa.answer import Answer, AnswerOptions, answer, evidence_line, is_grounded
from videoqa.prompt import load_prompt, parse_prompt
from videoqa.retrieve import Evidence, EvidenceSet, RetrievalOptions, choose_evidence, rrf
from videoqa.textindex import PassageScores, lexical_scores, tokenize
from videoqa.types import Passage, Scene

from helpers import ScriptedLlm

MODELS = {"llm": "scripted-llm"}


def _evidence(text: str, start_s: float, role: str = "match", channel: str = "speech",
              similarity: float = 0.6, fused: float = 0.03) -> Evidence:
    return Evidence(channel=channel, start_s=start_s, end_s=start_s + 3, text=text, scene=0,
                    similarity=similarity, fused=fused, role=role)


def _found(*items: Evidence, relation: str = "none", best: float = 0.6) -> EvidenceSet:
    return EvidenceSet(items=items, relation=relation, anchor=None, best_similarity=best)


def _ask(reply: str, found: EvidenceSet, question: str = "How many apples did Tom buy?") -> Answer:
    return answer(question, found, ScriptedLlm(reply), AnswerOptions(), MODELS)


def test_a_grounded_reply_is_kept_and_the_prompt_holds_the_evidence_in_time_order() -> None:
    llm = ScriptedLlm("Tom bought 17 apples.")
    found = _found(_evidence("Tom bought seventeen apples at the market.", 62.0),
                   _evidence("SALE TODAY", 190.0, channel="screen"))
    result = answer("How many apples did Tom buy?", found, llm, AnswerOptions(), MODELS)
    assert (result.text, result.quoted, result.abstained) == ("Tom bought 17 apples.", False, False)
    user = llm.prompts[0][1].content
    assert user.index('[1:02-1:05] speech: "Tom bought seventeen apples') < user.index("[3:10-3:13] screen")
    assert "Question: How many apples did Tom buy?" in user


def test_an_invented_number_is_replaced_by_a_quote_of_the_evidence() -> None:
    found = _found(_evidence("GATE 42", 5.0, channel="screen"))
    result = _ask("The gate sign is 12.", found, "What number is on the gate sign?")
    assert result.quoted and result.model_reply == "The gate sign is 12."
    assert result.text == 'At 0:05 the screen shows: "GATE 42"'


def test_a_reply_about_something_else_is_replaced_by_a_quote() -> None:
    found = _found(_evidence("The train to Lisbon leaves at nine.", 8.0))
    result = _ask("Paris is the capital of France and has many museums.", found, "Where does the train go?")
    assert result.quoted and result.text == 'At 0:08 someone says: "The train to Lisbon leaves at nine."'


def test_weak_evidence_abstains_without_asking_the_model() -> None:
    llm = ScriptedLlm()  # no reply queued: calling it would fail the test
    found = _found(_evidence("Nobody said much on the way home.", 3.0, similarity=0.1), best=0.1)
    result = answer("What did the astronaut eat?", found, llm, AnswerOptions(), MODELS)
    assert result.abstained and result.evidence == () and llm.prompts == []
    assert result.text == load_prompt("abstain").section("answer")


def test_after_questions_quote_what_follows_the_anchor() -> None:
    found = _found(_evidence("Maria finished the swim.", 10.0, role="anchor"),
                   _evidence("After that, Maria baked a cake.", 19.0, role="after"),
                   _evidence("Nobody said much.", 40.0, role="after"), relation="after")
    result = _ask("The weather was 99 degrees.", found, "What does Maria do after the swim?")
    assert result.quoted and "baked a cake" in result.text


@pytest.mark.parametrize(("reply", "grounded"), [
    ("Tom bought 17 apples.", True),
    ("Tom bought seventeen apples at the market.", True),
    ("Tom bought 18 apples.", False),
    ("", False),
    ("The person bought apples.", True),
    ("Elephants dance in Paris tonight.", False),
])
def test_grounding(reply: str, grounded: bool) -> None:
    assert is_grounded(reply, ["Tom bought seventeen apples at the market."], "How many apples?") is grounded


def test_tokenize_folds_number_words_and_drops_stop_words() -> None:
    assert tokenize("The gate is forty-two, not Twenty one!") == ["gate", "42", "not", "21"]
    assert tokenize("seventeen apples") == tokenize("17 apples")


def test_lexical_scores_only_credit_passages_holding_a_query_word() -> None:
    scores = lexical_scores("which gate is 42", ["GATE 42", "gate 24", "nothing here", ""])
    assert scores[0] > scores[1] > 0 and scores[2] == scores[3] == 0


def test_rrf_adds_reciprocal_ranks_and_skips_unranked() -> None:
    fused = rrf([np.array([0.9, 0.1, 0.5]), np.array([np.nan, 3.0, np.nan])], k=60)
    assert fused[0] == pytest.approx(1 / 61)
    assert fused[1] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)


def _passages() -> list[Passage]:
    return [Passage("speech", 10 * i, 10 * i + 3, f"line {i}") for i in range(6)]


def _scenes() -> list[Scene]:
    return [Scene(index=i, start_s=20.0 * i, end_s=20.0 * (i + 1), first_frame=20 * i,
                  stop_frame=20 * (i + 1), keyframe=20 * i, keyframe_s=20.0 * i) for i in range(3)]


def _scores(*dense: float) -> PassageScores:
    return PassageScores(dense=np.asarray(dense, dtype=np.float32), lexical=np.zeros(len(dense)))


@pytest.mark.parametrize(("relation", "expected"), [
    ("after", [(2, "anchor"), (3, "after")]),
    ("before", [(1, "before"), (2, "anchor")]),
    ("when", [(2, "match")]),
    ("first", [(2, "match")]),
    ("last", [(4, "match")]),
])
def test_choose_evidence_applies_the_temporal_relation(relation: str,
                                                      expected: list[tuple[int, str]]) -> None:
    scores = _scores(0.1, 0.2, 0.8, 0.3, 0.78, 0.1)
    found = choose_evidence(relation, "x", _passages(), scores, _scenes(), None, RetrievalOptions())
    assert [(round(e.start_s / 10), e.role) for e in found.items] == expected
    assert found.best_similarity == pytest.approx(0.8)
    assert all(e.scene == int(e.start_s // 20) for e in found.items)


def test_choose_evidence_leaves_out_weak_matches_and_keeps_time_order() -> None:
    scores = _scores(0.5, 0.1, 0.7, 0.62, 0.3, 0.66)
    found = choose_evidence("none", None, _passages(), scores, _scenes(), None, RetrievalOptions(top_k=3))
    assert [e.start_s for e in found.items] == [20, 30, 50]


def test_choose_evidence_without_passages_is_empty() -> None:
    found = choose_evidence("none", None, [], _scores(), _scenes(), None, RetrievalOptions())
    assert found.items == () and found.best_similarity == -1.0


def test_evidence_line_format() -> None:
    assert evidence_line(_evidence("hi", 3725.0)) == '[1:02:05-1:02:08] speech: "hi"'


def test_prompt_templates_parse_and_fill() -> None:
    template = parse_prompt(
        "t", "# comment\n[system]\nBe brief.\n[user]\n$evidence {braces} stay\nQ: $question\n")
    assert template.section("system") == "Be brief."
    assert template.fill("user", evidence="E", question="Q?") == "E {braces} stay\nQ: Q?"
    with pytest.raises(KeyError):
        template.fill("user", evidence="E")
    with pytest.raises(ValueError, match="before the first"):
        parse_prompt("t", "stray\n[system]\nx")


@pytest.mark.parametrize("threshold", [2.0, -1.5])
def test_answer_options_are_checked(threshold: float) -> None:
    with pytest.raises(ValueError):
        AnswerOptions(abstain_below=threshold)


@pytest.mark.parametrize("bad", [{"top_k": 0}, {"rrf_k": 0}, {"keep_within": -1}, {"window": 0},
                                 {"repeat_tolerance": 2}])
def test_retrieval_options_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetrievalOptions(**bad)  # type: ignore[arg-type]


def test_a_reply_that_only_repeats_the_question_is_not_an_answer() -> None:
    question = "What is the favourite colour of Daniel?"
    assert not is_grounded("The favourite colour of Daniel is Daniel.",
                           ["The favorite color on Daniel's yellow."], question)


def test_the_anchor_is_cited_but_not_shown_to_the_model() -> None:
    llm = ScriptedLlm("Maria baked a cake.")
    found = _found(_evidence("Maria finished the swim.", 10.0, role="anchor"),
                   _evidence("After that, Maria baked a cake.", 19.0, role="after"), relation="after")
    result = answer("What does Maria do after the swim?", found, llm, AnswerOptions(), MODELS)
    assert "finished the swim" not in llm.prompts[0][1].content
    assert [e.role for e in result.evidence] == ["anchor", "after"] and result.text == "Maria baked a cake."


def test_an_ungrounded_reply_over_a_moderate_match_abstains() -> None:
    found = _found(_evidence("The concert will take place in Lisbon next Sunday.", 79.0, similarity=0.42),
                   best=0.42)
    question = "Who won the tennis tournament in Lisbon?"
    result = _ask("The tournament was won by Alexia Petrova.", found, question)
    assert result.abstained and result.evidence == ()
    assert result.model_reply == "The tournament was won by Alexia Petrova."
