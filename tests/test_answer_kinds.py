"""The kind of answer a question asks for (``respond/kinds.py``): a reply holding none of it abstains."""

from __future__ import annotations

import pytest

from videoqa.respond.answer import AnswerOptions, answer, video_times
from videoqa.respond.kinds import kind_asked, lacks_kind_asked
from videoqa.retrieval.retrieve import Evidence, EvidenceSet

from helpers import ScriptedLlm


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("What time does the train to Oslo arrive?", "a time of day"),
        ("At what time did the shop close?", "a time of day"),
        ("what time's the meeting", "a time of day"),
        ("In which year did the museum open?", "a year"),
        ("What year was the bridge built?", "a year"),
        ("What is the phone number of the library?", "a phone number"),
        ("Which number to call for a taxi?", "a phone number"),
        ("What colour is the door?", "a colour"),
        ("Which color does Anna like best?", "a colour"),
        ("How old is Peter?", "an age"),
        ("How much does the ticket cost?", "an amount"),
        # forms whose answer may be of several kinds are not checked
        ("When does the train leave?", None),
        ("How long has the museum been around?", None),
        ("What time of year is it?", None),
        ("How much did she enjoy the film?", None),
        ("What does the sign say?", None),
    ],
)
def test_the_kind_a_question_asks_for(question: str, kind: str | None) -> None:
    found = kind_asked(question)
    assert (found.name if found is not None else None) == kind


@pytest.mark.parametrize(
    ("question", "reply", "lacks"),
    [
        ("What time does the train to Oslo arrive?", "The train to Oslo arrives at platform 2.", True),
        ("What time does the train to Oslo arrive?", "It leaves from platform seven.", True),
        ("What time does the train to Oslo arrive?", "At 7:30.", False),
        ("What time does the train to Oslo arrive?", "The train arrives at 7.30 pm.", False),
        ("What time does the meeting start?", "The meeting starts at noon.", False),
        ("What time does the meeting start?", "At half past nine.", False),
        ("What time does the meeting start?", "It starts at seven.", False),
        ("What time does the meeting start?", "It starts at 9 in the morning.", False),
        ("What time does the shop close?", "The shop closes at six o'clock.", False),
        ("What is the phone number of the library?", "The phone number of the library is 1942.", True),
        ("What is the phone number of the library?", "Call 555 0192.", False),
        ("What is the phone number of the library?", "It is (020) 7946-0018.", False),
        ("In which year did the museum open?", "The museum opened in 1873.", False),
        ("In which year did the museum open?", "MUSEUM - EST. 1873", False),
        ("In which year did the museum open?", "The museum opened on platform 4.", True),
        ("What colour is the door?", "The door is dark green.", False),
        ("What colour is the door?", "The door is greyish.", False),
        ("What colour is the door?", "The door is made of oak.", True),
        ("How old is Peter?", "Peter is forty-two.", False),
        ("How old is Peter?", "Peter is a pilot.", True),
        ("How much does the ticket cost?", "The ticket costs 12 euros.", False),
        ("How much does the ticket cost?", "The ticket is sold at the station.", True),
        ("Who fixed the bike?", "Tom fixed the bike.", False),  # no kind asked: nothing to lack
    ],
)
def test_whether_a_reply_holds_the_kind_asked(question: str, reply: str, lacks: bool) -> None:
    assert lacks_kind_asked(reply, question) is lacks


def _found(text: str) -> EvidenceSet:
    item = Evidence(
        channel="speech",
        start_s=20.0,
        end_s=23.0,
        text=text,
        scene=0,
        similarity=0.6,
        fused=0.03,
        role="match",
    )
    return EvidenceSet(items=(item,), relation="none", anchor=None, best_similarity=0.6)


def test_a_grounded_reply_of_the_wrong_kind_abstains_and_the_right_kind_is_kept() -> None:
    found = _found("The train to Oslo leaves from platform 2.")
    always = AnswerOptions(min_relevance=0.0, quote_above=0.0)  # a quote would not answer either
    reply = "The train to Oslo leaves from platform 2."
    wrong = answer("What time does the train to Oslo leave?", found, ScriptedLlm(reply), always, {})
    assert wrong.abstained and wrong.model_reply == reply
    right = answer("Which platform does the train to Oslo leave from?", found, ScriptedLlm(reply), always, {})
    assert not right.abstained and "platform 2" in right.text


def test_the_time_in_the_video_a_reply_gives_is_not_a_time_of_day() -> None:
    question = "What time does the train to Denver arrive?"
    reply = "The train to Denver arrives at platform 61 at 1:18."
    assert lacks_kind_asked(reply, question, video_times=("1:18", "1:21"))
    assert not lacks_kind_asked("It arrives at 7:30 (seen at 1:18).", question, video_times=("1:18",))


def test_a_video_time_that_a_passage_states_is_kept() -> None:
    sign = Evidence(
        channel="screen",
        start_s=450.0,
        end_s=455.0,
        text="OPEN UNTIL 7:30",
        scene=0,
        similarity=0.6,
        fused=0.03,
        role="match",
    )
    assert video_times([sign]) == frozenset({"7:35"})  # 7:30 is the sign's own text


def test_a_quote_that_holds_no_answer_of_the_kind_asked_abstains() -> None:
    found = _found("BOOKSHOP - EST. 2004")
    # the reply invents a time, so it would be replaced by a quote of the sign, which holds none either
    quoting = AnswerOptions(min_relevance=0.0, quote_above=0.0)
    result = answer(
        "What time does the bookshop close?", found, ScriptedLlm("It closes at 6 pm."), quoting, {}
    )
    assert result.abstained and not result.quoted
    asked_year = answer("What year did the bookshop open?", found, ScriptedLlm("In 1999."), quoting, {})
    assert asked_year.quoted and "2004" in asked_year.text
