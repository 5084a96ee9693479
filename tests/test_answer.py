"""Answering: abstention, grounding checks, the prompt the model sees, and evidence selection."""

from __future__ import annotations

import numpy as np
import pytest

from videoqa.errors import OptionsError
from videoqa.respond.answer import (
    Answer,
    AnswerOptions,
    answer,
    citations,
    counts_something_else,
    evidence_line,
    is_grounded,
    says_not_in_video,
    with_time,
)
from videoqa.respond.prompt import load_prompt, parse_prompt
from videoqa.retrieval.retrieve import (
    Evidence,
    EvidenceSet,
    RetrievalOptions,
    ScoredPassages,
    anchor_scores,
    choose_evidence,
    rrf,
    time_window,
)
from videoqa.retrieval.textindex import PassageScores, lexical_scores, tokenize
from videoqa.types import Passage, Scene

from helpers import ScriptedLlm

MODELS = {"llm": "scripted-llm"}


def _evidence(
    text: str,
    start_s: float,
    role: str = "match",
    channel: str = "speech",
    similarity: float = 0.6,
    fused: float = 0.03,
) -> Evidence:
    return Evidence(
        channel=channel,
        start_s=start_s,
        end_s=start_s + 3,
        text=text,
        scene=0,
        similarity=similarity,
        fused=fused,
        role=role,
    )


def _found(*items: Evidence, relation: str = "none", best: float = 0.6) -> EvidenceSet:
    return EvidenceSet(items=items, relation=relation, anchor=None, best_similarity=best)


def _ask(reply: str, found: EvidenceSet, question: str = "How many apples did Tom buy?") -> Answer:
    return answer(question, found, ScriptedLlm(reply), AnswerOptions(), MODELS)


def test_a_grounded_reply_is_kept_and_the_prompt_holds_the_evidence_in_time_order() -> None:
    llm = ScriptedLlm("Tom bought 17 apples.")
    found = _found(
        _evidence("Tom bought seventeen apples at the market.", 62.0),
        _evidence("SALE TODAY", 190.0, channel="screen"),
    )
    result = answer("How many apples did Tom buy?", found, llm, AnswerOptions(), MODELS)
    assert (result.text, result.quoted, result.abstained) == ("Tom bought 17 apples (at 1:02).", False, False)
    assert [e.start_s for e in result.evidence] == [62.0]  # the sign the reply does not use is not cited
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
    found = _found(
        _evidence("Maria finished the swim.", 10.0, role="anchor"),
        _evidence("After that, Maria baked a cake.", 19.0, role="after"),
        _evidence("Nobody said much.", 40.0, role="after"),
        relation="after",
    )
    result = _ask("The weather was 99 degrees.", found, "What does Maria do after the swim?")
    assert result.quoted and "baked a cake" in result.text


@pytest.mark.parametrize(
    ("reply", "grounded"),
    [
        ("Tom bought 17 apples.", True),
        ("Tom bought seventeen apples at the market.", True),
        ("Tom bought 18 apples.", False),
        ("", False),
        ("The person bought apples.", True),
        ("Elephants dance in Paris tonight.", False),
        ("The video shows a scene where Tom buys 17 apples at the market.", True),  # one word paraphrased
        ("Tom buys 17 apples in Lisbon.", False),  # two words the evidence lacks
    ],
)
def test_grounding(reply: str, grounded: bool) -> None:
    assert is_grounded(reply, ["Tom bought seventeen apples at the market."], "How many apples?") is grounded


def test_a_reply_in_the_questions_words_inflected_is_grounded() -> None:
    # "opened" answers "did the museum open": the question's own word, inflected, adds nothing to check.
    assert is_grounded(
        "The museum opened in 1873.", ["MUSEUM - EST. 1873"], "In which year did the museum open?"
    )
    assert not is_grounded("The museum opened in 1874.", ["MUSEUM - EST. 1873"], "In which year did it open?")


def test_a_reply_about_someone_the_cited_passage_does_not_name_abstains() -> None:
    # Asked about Clara, the model restates Peter's purchase as hers: every added word is grounded, but
    # the passage it rests on is about somebody else.
    found = _found(_evidence("Peter bought 61 tickets at the bakery.", 20.0), best=0.55)
    # past the relevance model (which doubts it already), and with quotes for any ungrounded reply
    always = AnswerOptions(min_relevance=0.0, quote_above=0.0)
    result = answer(
        "How many tickets did Clara buy?", found, ScriptedLlm("Clara bought 61 tickets."), always, MODELS
    )
    assert result.abstained and result.model_reply == "Clara bought 61 tickets."
    kept = answer(
        "How many tickets did Peter buy?", found, ScriptedLlm("Peter bought 61 tickets."), always, MODELS
    )
    assert not kept.abstained and kept.text == "Peter bought 61 tickets (at 0:20)."


def test_a_name_held_only_by_the_anchor_of_an_after_question_is_grounded() -> None:
    found = _found(
        _evidence("Jack finished the yoga class.", 10.0, role="anchor"),
        _evidence("After that, he went to the cinema.", 15.0, role="after"),
        relation="after",
    )
    result = _ask("Jack went to the cinema.", found, "What does Jack do after the yoga class?")
    assert not result.abstained and not result.quoted and "cinema" in result.text


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
    return [
        Scene(
            index=i,
            start_s=20.0 * i,
            end_s=20.0 * (i + 1),
            first_frame=20 * i,
            stop_frame=20 * (i + 1),
            keyframe=20 * i,
            keyframe_s=20.0 * i,
        )
        for i in range(3)
    ]


def _scores(*dense: float) -> PassageScores:
    return PassageScores(dense=np.asarray(dense, dtype=np.float32), lexical=np.zeros(len(dense)))


@pytest.mark.parametrize(
    ("relation", "expected"),
    [
        ("after", [(2, "anchor"), (3, "after"), (4, "after"), (5, "after")]),  # three within 30 s
        ("before", [(0, "before"), (1, "before"), (2, "anchor")]),
        ("when", [(2, "match")]),
        ("first", [(2, "match")]),
        ("last", [(4, "match")]),
    ],
)
def test_choose_evidence_applies_the_temporal_relation(
    relation: str, expected: list[tuple[int, str]]
) -> None:
    scores = _scores(0.1, 0.2, 0.8, 0.3, 0.78, 0.1)
    found = choose_evidence(
        relation, "x", ScoredPassages(_passages(), scores), _scenes(), None, RetrievalOptions()
    )
    assert [(round(e.start_s / 10), e.role) for e in found.items] == expected
    assert found.best_similarity == pytest.approx(0.8)
    assert all(e.scene == int(e.start_s // 20) for e in found.items)


def test_choose_evidence_leaves_out_weak_matches_and_keeps_time_order() -> None:
    scores = _scores(0.5, 0.1, 0.7, 0.62, 0.3, 0.66)
    found = choose_evidence(
        "none", None, ScoredPassages(_passages(), scores), _scenes(), None, RetrievalOptions(top_k=3)
    )
    assert [e.start_s for e in found.items] == [20, 30, 50]


def test_choose_evidence_without_passages_is_empty() -> None:
    found = choose_evidence("none", None, ScoredPassages([], _scores()), _scenes(), None, RetrievalOptions())
    assert found.items == () and found.best_similarity == -1.0


def test_evidence_line_format() -> None:
    assert evidence_line(_evidence("hi", 3725.0)) == '[1:02:05-1:02:08] speech: "hi"'


def test_prompt_templates_parse_and_fill() -> None:
    template = parse_prompt(
        "t", "# comment\n[system]\nBe brief.\n[user]\n$evidence {braces} stay\nQ: $question\n"
    )
    assert template.section("system") == "Be brief."
    assert template.fill("user", evidence="E", question="Q?") == "E {braces} stay\nQ: Q?"
    with pytest.raises(KeyError):
        template.fill("user", evidence="E")
    with pytest.raises(ValueError, match="before the first"):
        parse_prompt("t", "stray\n[system]\nx")


@pytest.mark.parametrize("threshold", [2.0, -0.5])
def test_answer_options_are_checked(threshold: float) -> None:
    with pytest.raises(OptionsError):
        AnswerOptions(min_relevance=threshold)
    with pytest.raises(OptionsError):
        AnswerOptions(quote_above=threshold)


@pytest.mark.parametrize(
    "bad",
    [
        {"top_k": 0},
        {"rrf_k": 0},
        {"keep_within": -1},
        {"window": 0},
        {"window_s": -1},
        {"repeat_tolerance": 2},
    ],
)
def test_retrieval_options_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetrievalOptions(**bad)  # type: ignore[arg-type]


def test_a_reply_that_only_repeats_the_question_is_not_an_answer() -> None:
    question = "What is the favourite colour of Daniel?"
    assert not is_grounded(
        "The favourite colour of Daniel is Daniel.", ["The favorite color on Daniel's yellow."], question
    )


def test_the_anchor_is_cited_but_not_shown_to_the_model() -> None:
    llm = ScriptedLlm("Maria baked a cake.")
    found = _found(
        _evidence("Maria finished the swim.", 10.0, role="anchor"),
        _evidence("After that, Maria baked a cake.", 19.0, role="after"),
        relation="after",
    )
    result = answer("What does Maria do after the swim?", found, llm, AnswerOptions(), MODELS)
    assert "finished the swim" not in llm.prompts[0][1].content
    assert [e.role for e in result.evidence] == ["anchor", "after"]
    assert result.text == "Maria baked a cake (at 0:19)."


def test_an_ungrounded_reply_over_a_moderate_match_abstains() -> None:
    found = _found(
        _evidence("The concert will take place in Lisbon next Sunday.", 79.0, similarity=0.42), best=0.42
    )
    question = "Who won the tennis tournament in Lisbon?"
    asked = AnswerOptions(min_relevance=0.0)  # the model is asked however weak the evidence
    result = answer(question, found, ScriptedLlm("The tournament was won by Alexia Petrova."), asked, MODELS)
    assert result.relevance is not None and result.relevance < asked.quote_above
    assert result.abstained and result.evidence == ()
    assert result.model_reply == "The tournament was won by Alexia Petrova."


@pytest.mark.parametrize(
    ("reply", "abstains"),
    [
        ("Not in the video.", True),
        ("not in the notes", True),
        ("It is not mentioned in the video.", True),
        ("Tom did not buy apples in the video.", False),
        ("Not in the morning: Tom bought 17 at noon.", False),
    ],
)
def test_the_model_may_say_the_notes_do_not_answer(reply: str, abstains: bool) -> None:
    assert says_not_in_video(reply) is abstains


def test_a_model_that_says_not_in_the_video_abstains_and_its_words_are_kept() -> None:
    found = _found(_evidence("Tom bought seventeen apples.", 5.0), best=0.7)
    result = _ask("Not in the video.", found, "How much did Tom pay for the apples?")
    assert result.relevance is not None and result.relevance > 0.5  # the scores alone would answer
    assert result.abstained and result.evidence == () and result.model_reply == "Not in the video."


def test_a_near_miss_abstains_on_its_scores_without_asking_the_model() -> None:
    llm = ScriptedLlm()  # no reply queued
    found = _found(_evidence("Laura's favourite colour is green.", 5.0), best=0.62)
    result = answer("What is Daniel's favourite colour?", found, llm, AnswerOptions(), MODELS)
    assert result.abstained and llm.prompts == [] and result.relevance is not None and result.relevance < 0.5


def test_after_cites_the_anchor_and_the_item_that_holds_the_answer() -> None:
    found = _found(
        _evidence("Maria finished the swim.", 10.0, role="anchor"),
        _evidence("Oscar went for a short walk.", 19.0, role="after"),
        _evidence("Later, Maria baked a cake.", 25.0, role="after"),
        relation="after",
    )
    result = _ask("Maria baked a cake.", found, "What does Maria do after the swim?")
    assert not result.quoted and result.text == "Maria baked a cake (at 0:25)."
    assert [(e.start_s, e.role) for e in result.evidence] == [(10.0, "anchor"), (25.0, "after")]


def test_a_reply_that_says_its_time_gets_no_second_one() -> None:
    item = _evidence("The bus leaves at noon.", 75.0)
    assert (
        with_time("At 1:15 she says the bus leaves at noon.", [item])
        == "At 1:15 she says the bus leaves at noon."
    )
    assert with_time("The bus leaves at noon!", [item]) == "The bus leaves at noon (at 1:15)!"
    anchor_only = [_evidence("x", 3.0, role="anchor")]
    assert with_time("The bus leaves at noon", anchor_only) == "The bus leaves at noon"


def test_citations_keep_the_items_the_reply_uses() -> None:
    found = _found(
        _evidence("Tom bought seventeen apples.", 5.0),
        _evidence("The sky was grey.", 9.0),
        _evidence("Tom paid with a coin.", 12.0),
    )
    assert [e.start_s for e in citations("Tom bought 17 apples.", found)] == [5.0]
    assert [e.start_s for e in citations("Elephants.", found)] == [5.0]  # nothing used: the best item


def _timed(*spans: tuple[float, float, str]) -> list[Passage]:
    return [Passage("speech", start, end, text) for start, end, text in spans]


def test_the_window_after_an_anchor_is_several_passages_within_its_seconds() -> None:
    passages = _timed((0, 3, "a"), (4, 6, "b"), (7, 9, "c"), (10, 12, "d"), (50, 52, "e"), (90, 93, "f"))
    assert time_window(passages, 0, "after", 3, 30.0) == [1, 2, 3]
    assert time_window(passages, 3, "after", 3, 30.0) == [4]  # the next is taken however far
    assert time_window(passages, 4, "after", 3, 30.0) == [5]
    assert time_window(passages, 3, "before", 2, 30.0) == [1, 2]
    repeated = _timed((0, 3, "GATE 4"), (3, 6, "GATE 4"), (7, 9, "c"))
    assert time_window(repeated, 0, "after", 1, 30.0) == [2]  # a sign still showing is not "after"


def test_the_anchor_naming_the_person_asked_about_wins_a_near_tie() -> None:
    dense = np.array([0.70, 0.68], dtype=np.float32)
    lexical = np.array([0.5, 2.0])
    assert int(np.argmax(anchor_scores(dense, lexical))) == 1
    assert int(np.argmax(anchor_scores(np.array([0.9, 0.5], dtype=np.float32), lexical))) == 0


def test_an_after_question_is_answered_from_the_anchor_sentence_itself() -> None:
    passages = _timed(
        (0, 3, "After the swim, Henry rode a bicycle to the market."),
        (5, 8, "Nobody said much on the way home."),
    )
    scores = PassageScores(dense=np.array([0.8, 0.1], dtype=np.float32), lexical=np.zeros(2))
    found = choose_evidence(
        "after", "the swim", ScoredPassages(passages, scores), _scenes(), None, RetrievalOptions()
    )
    assert [(e.role, e.text, e.in_anchor_sentence) for e in found.items] == [
        ("anchor", passages[0].text, False),
        ("after", "Henry rode a bicycle to the market", True),
        ("after", "Nobody said much on the way home.", False),
    ]


@pytest.mark.parametrize(
    ("question", "reply", "evidence", "elsewhere"),
    [
        (
            "How many books did Jack buy?",
            "Jack bought 68 books.",
            "Jack bought 68 blankets at the bakery.",
            True,
        ),
        (
            "How many blankets did Jack buy?",
            "Jack bought 68 blankets.",
            "Jack bought sixty-eight blankets.",
            False,
        ),
        (
            "What number of apples did Tom purchase?",
            "Tom purchased 5 apples.",
            "Tom bought five red apples.",
            False,
        ),
        ("How many apples are on the sign?", "The sign says 17.", "APPLES: 17", False),
        ("How many chairs are there?", "There are 4 chairs.", "Room 4 has tables.", True),
        ("Which platform does the train leave from?", "Platform 7.", "PLATFORM 7 - TRAINS TO OSLO", False),
    ],
)
def test_a_count_must_be_of_the_thing_the_question_counts(
    question: str, reply: str, evidence: str, elsewhere: bool
) -> None:
    assert counts_something_else(reply, question, [_evidence(evidence, 3.0)]) is elsewhere


def test_a_count_of_something_else_abstains() -> None:
    found = _found(_evidence("Jack bought 68 blankets at the bakery.", 20.0), best=0.55)
    always = AnswerOptions(min_relevance=0.0, quote_above=0.0)  # a quote would not answer either
    result = answer(
        "How many books did Jack buy?", found, ScriptedLlm("Jack bought 68 books."), always, MODELS
    )
    assert result.abstained and result.model_reply == "Jack bought 68 books."
