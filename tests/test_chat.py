"""The chat session (history within a budget, follow-ups, transcripts) and the REPL driven by scripted
input, with the offline default models or a scripted fake behind the same protocol."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from videoqa.assistant import Assistant, AssistantOptions
from videoqa.cli.chat import _LineHistory, _repl
from videoqa.respond.chat import ChatOptions, ChatSession
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
