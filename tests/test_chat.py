"""The chat session (history within a budget, follow-ups, transcripts) and the REPL driven by scripted
input, with the offline default models or a scripted fake behind the same protocol."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from videoqa.assistant import Assistant, AssistantOptions, LibraryAnswer
from videoqa.cli.chat import _LineHistory, _repl
from videoqa.errors import InputError, OptionsError
from videoqa.library.passages import LibraryEvidence
from videoqa.respond.answer import Answer
from videoqa.respond.chat import ChatOptions, ChatSession, LibraryChatSession
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthVideo

from helpers import ScriptedLlm, assert_one_line_error, run_cli


@pytest.fixture
def scripted_chat(
    narrated: SynthVideo, installed_models: None, tmp_path: Path
) -> tuple[ChatSession, ScriptedLlm]:
    assistant = Assistant(AssistantOptions(device="cpu"), cache=IndexCache(tmp_path / "cache"))
    llm = ScriptedLlm(*["The meeting starts at noon."] * 8)
    assistant._llm = llm  # the fake stands in for the model the assistant would load
    return assistant.chat(narrated.path, ChatOptions(history_tokens=25)), llm


def test_earlier_turns_reach_the_model_within_the_budget(
    scripted_chat: tuple[ChatSession, ScriptedLlm],
) -> None:
    session, llm = scripted_chat
    for _ in range(4):
        answer = session.ask("When does the meeting start?")
        assert "noon" in answer.text
    last_prompt = llm.prompts[-1]
    assert last_prompt[0].role == "system" and "conversation" in last_prompt[0].content
    history = last_prompt[1:-1]
    assert [m.role for m in history] == ["user", "assistant"] * (len(history) // 2)
    assert len(history) == 4  # 3 earlier turns of 10 tokens were asked; a 25-token budget holds the last 2
    assert history[-1].content == "The meeting starts at noon (at 0:08)."  # as the user read it
    session.clear()
    session.ask("When does the meeting start?")
    assert len(llm.prompts[-1]) == 2  # system + question: the conversation was forgotten


def test_a_short_follow_up_is_searched_with_the_question_before(
    scripted_chat: tuple[ChatSession, ScriptedLlm],
) -> None:
    session, _ = scripted_chat
    assert session.search_text("and then?") == "and then?"  # nothing before it yet
    session.ask("When does the meeting start?")
    # "after that" points at what the last answer rests on
    assert session.search_text("and after that?") == "What happens after The meeting starts at noon?"
    assert session.search_text("what came before?").startswith("What happens before The meeting")
    assert session.search_text("who said it?") == "When does the meeting start? who said it?"
    for standalone in ("Which gate number is shown on the card?", "who is the pilot?"):
        assert session.search_text(standalone) == standalone


def test_the_conversation_saves_as_markdown_or_json(
    scripted_chat: tuple[ChatSession, ScriptedLlm], tmp_path: Path
) -> None:
    session, _ = scripted_chat
    session.ask("When does the meeting start?")
    assert session.save(tmp_path / "talk.md") == "markdown"
    text = (tmp_path / "talk.md").read_text()
    assert "**You:** When does the meeting start?" in text and "noon" in text
    session.save(tmp_path / "talk.json")
    saved = json.loads((tmp_path / "talk.json").read_text())
    assert saved["turns"][0]["evidence"][0]["start"].startswith("0:")
    with pytest.raises(ValueError, match=r"\.md or \.json"):
        session.save(tmp_path / "talk.txt")


class _Session:
    """A chat session stand-in for the REPL: the first answer is interrupted (Ctrl-C), later ones work."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.turns: list[object] = []

    def ask(self, question: str) -> object:
        self.asked.append(question)
        if len(self.asked) == 1:
            raise KeyboardInterrupt
        from videoqa.respond.answer import Answer

        return Answer(question, "fine", (), False, False, "none", 0.9, None, {})


def test_ctrl_c_stops_the_answer_not_the_session(capsys: pytest.CaptureFixture[str]) -> None:
    lines: Iterator[str] = iter(["first question", "second question"])

    def read() -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    _repl(_Session(), read)  # type: ignore[arg-type]
    out, err = capsys.readouterr()
    assert "(answer stopped)" in err and out.strip() == "fine"


def test_the_question_history_is_kept_for_the_next_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import readline

    monkeypatch.setenv("VIDEOQA_CHAT_HISTORY", str(tmp_path / "history"))
    readline.clear_history()
    with _LineHistory(enabled=True):
        readline.add_history("who speaks first?")
    readline.clear_history()
    with _LineHistory(enabled=True):
        assert readline.get_history_item(1) == "who speaks first?"
    readline.clear_history()


def test_chat_repl_driven_by_piped_input(
    narrated: SynthVideo, installed_models: None, tmp_path: Path
) -> None:
    transcript = tmp_path / "chat.md"
    script = "\n".join(
        [
            "When does the meeting start?",
            "/scenes",
            "/bogus",
            "and after that?",
            f"/save {transcript}",
            "/clear",
            "/help",
            "",
        ]
    )
    result = run_cli("chat", str(narrated.path), "--device", "cpu", input=script)
    assert result.code == 0, result.stderr
    assert "noon" in result.stdout.lower()
    assert "scene 3" in result.stderr and "unknown command /bogus" in result.stderr
    assert "saved 2 turns" in result.stderr and "/scenes" in result.stderr
    assert "Traceback" not in result.stderr
    assert transcript.read_text().count("**You:**") == 2


def test_chat_about_a_missing_video_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("chat", str(tmp_path / "gone.mp4"), input=""), "gone.mp4")


def test_and_after_that_moves_on_from_what_the_last_answer_rests_on(installed_models: None) -> None:
    from videoqa.channels.text_embedder import embedding_text, load_text_embedder
    from videoqa.retrieval.retrieve import RetrievalOptions, find_evidence
    from videoqa.store import models
    from videoqa.types import Passage

    said = [
        "Henry finished the morning run.",
        "Then Henry cooked a big pot of soup.",
        "After lunch, Henry rode a bicycle to the harbour.",
        "In the evening he read a book.",
    ]
    passages = [Passage("speech", 10.0 * i, 10.0 * i + 4, text) for i, text in enumerate(said)]
    embedder = load_text_embedder(fetch=models.pull)
    vectors = embedder.embed([embedding_text(p) for p in passages])
    # What ChatSession.search_text makes of "and after that?" when the last answer rests on said[1]
    found = find_evidence(
        f"What happens after {said[1].rstrip('.')}?", passages, vectors, embedder, (), RetrievalOptions()
    )
    assert [(e.start_s, e.role) for e in found.items] == [(10.0, "anchor"), (20.0, "after"), (30.0, "after")]


# --- a chat about a library ---------------------------------------------------------------------------


class _Library:
    """A library assistant stand-in behind the chat's protocol: replies from a script of (video or None,
    text, evidence text), each call recorded as (question, search, within)."""

    def __init__(self, *replies: tuple[str | None, str, str]) -> None:
        self.replies = list(replies)
        self.asked: list[tuple[str, str | None, str | None]] = []
        self.histories: list[int] = []
        self.llm = ScriptedLlm()  # counts the history's tokens
        self.indexed: dict[str, object] = {"garden.mp4": {}, "harbour.mp4": {}}

    def knowledge(self, video: str | os.PathLike[str]) -> Any:
        raise AssertionError("the chat reads no knowledge of its own to answer")

    def library(self, folder: str | os.PathLike[str]) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(videos=self.indexed)

    def ask_library(
        self,
        folder: object,
        question: str,
        feed: object = None,
        history: Sequence[object] = (),
        search: str | None = None,
        system: str | None = None,
        within: str | None = None,
    ) -> LibraryAnswer:
        self.asked.append((question, search, within))
        self.histories.append(len(history))
        video, text, said = self.replies.pop(0)
        evidence = (
            ()
            if video is None
            else (LibraryEvidence("speech", 1.0, 3.0, said, 0, 0.7, 0.03, "match", video=video),)
        )
        reply = Answer(
            question=question,
            text=text,
            evidence=evidence,
            abstained=video is None,
            quoted=False,
            relation="none",
            best_similarity=0.7,
            model_reply=None,
            models={},
        )
        return LibraryAnswer(video=video, answer=reply, searched=len(self.indexed))


def test_a_library_follow_up_stays_in_the_video_the_last_answer_came_from() -> None:
    assistant = _Library(
        ("garden.mp4", "In garden.mp4: Tomatoes (at 0:01).", "My grandmother planted tomatoes."),
        ("garden.mp4", "In garden.mp4: She painted the fence (at 0:05).", "She painted the fence blue."),
        ("harbour.mp4", "In harbour.mp4: At nine (at 0:01).", "The ferry leaves at nine."),
        (None, "None of the 2 indexed videos seems to show or say this.", ""),
        (None, "None of the 2 indexed videos seems to show or say this.", ""),
    )
    session = LibraryChatSession(assistant, Path("lib"))
    session.ask("What did the grandmother plant in the garden?")
    assert session.current == "garden.mp4"
    session.ask("and after that?")  # in the garden video, after what the last answer rests on
    after = "What happens after My grandmother planted tomatoes?"
    assert assistant.asked[1] == (after, after, "garden.mp4")
    session.ask("When does the ferry to the island leave?")  # a question of its own: the whole library
    assert assistant.asked[2][2] is None and session.current == "harbour.mp4"
    session.ask("Who is the submarine captain?")  # found nowhere: no video to follow up in
    assert session.current is None
    session.ask("and what did he do then?")
    assert assistant.asked[4] == (
        "and what did he do then?",
        "Who is the submarine captain? and what did he do then?",
        None,
    )
    assert assistant.histories == [0, 2, 4, 6, 8]  # every earlier turn, within the token budget
    assert session.transcript().video == Path("lib") and len(session.turns) == 5


def test_a_library_follow_up_that_finds_nothing_stays_on_the_video() -> None:
    assistant = _Library(
        ("garden.mp4", "In garden.mp4: Tomatoes (at 0:01).", "My grandmother planted tomatoes."),
        (None, "In garden.mp4: The video does not seem to show or say this.", ""),
        ("garden.mp4", "In garden.mp4: Blue (at 0:05).", "She painted the fence blue."),
    )
    session = LibraryChatSession(assistant, Path("lib"))
    session.ask("What did the grandmother plant in the garden?")
    session.ask("and what came before?")
    assert assistant.asked[1][2] == "garden.mp4" and session.current == "garden.mp4"
    session.ask("what colour was it?")
    assert assistant.asked[2][2] == "garden.mp4"
    session.clear()
    assert session.current is None and session.turns == []
    with pytest.raises(InputError, match="no answer has named one yet"):
        session.scenes()


def test_a_library_without_indexed_videos_says_how_to_index_it() -> None:
    assistant = _Library()
    assistant.indexed = {}
    with pytest.raises(OptionsError, match="no indexed videos; index them first: videoqa index lib"):
        LibraryChatSession(assistant, Path("lib")).prepare()
