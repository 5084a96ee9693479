"""A conversation about one video, or about a library of videos: the index and the memory are reused
across turns, and earlier turns are part of each question's context, newest first, within
``history_tokens``.

A follow-up such as "and after that?" says too little to search the video with, so a question with few
words of its own is searched for together with the question before it. In a library, a follow-up stays
in the video the last answer came from: "and after that?" moves on in time within that video.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from videoqa.errors import InputError, OptionsError
from videoqa.llm import Message
from videoqa.media.video import check_file
from videoqa.respond.answer import Answer, Feed
from videoqa.respond.prompt import load_prompt
from videoqa.respond.writers import (
    Conversation,
    conversation_record,
    format_for_file,
    formats_holding,
    writer,
)
from videoqa.retrieval.temporal import check_question
from videoqa.retrieval.textindex import STOPWORDS, tokenize
from videoqa.store.paths import replace_atomically

if TYPE_CHECKING:
    from videoqa.knowledge.build import VideoKnowledge
    from videoqa.library.passages import PassageLibrary
    from videoqa.llm import TextGenerator
    from videoqa.types import Scene

# A question with at most this many words beyond stop words, pointing back with one of _POINTERS
# ("and after that?", "what did she say next?"), is taken as a follow-up of the one before.
_FOLLOW_UP_WORDS = 2
_POINTERS = frozenset(
    (
        "he",
        "she",
        "it",
        "they",
        "them",
        "his",
        "her",
        "their",
        "that",
        "this",
        "those",
        "these",
        "then",
        "next",
        "after",
        "before",
        "else",
        "more",
        "again",
    )
)
_ONWARDS = frozenset(("after", "next", "then", "later"))
_SCENE_NOTE_WORDS = 12


@dataclass(frozen=True)
class ChatOptions:
    """How much of the conversation each question carries."""

    history_tokens: int = 512  # earlier turns kept in the context, newest first, up to this many tokens

    def __post_init__(self) -> None:
        if self.history_tokens < 0:
            raise OptionsError(f"history_tokens must be 0 or more, got {self.history_tokens}")


@dataclass(frozen=True)
class Turn:
    question: str
    answer: Answer


def _what_was_found(turn: Turn) -> str:
    """The words the turn's answer rests on: its best evidence line, else the answer itself."""
    texts = [e for e in turn.answer.evidence if e.text is not None and e.role != "anchor"]
    if texts:
        return " ".join(max(texts, key=lambda e: e.fused).text.split()).rstrip(".?!")  # type: ignore[union-attr]
    return turn.answer.text.rstrip(".?!")


@dataclass(frozen=True)
class SceneNote:
    """A scene as ``/scenes`` lists it: its span and the first words said or shown in it."""

    scene: Scene
    text: str


class Answerer(Protocol):
    """What a chat needs from the assistant behind it (``videoqa.Assistant`` is one)."""

    @property
    def llm(self) -> TextGenerator: ...

    def knowledge(self, video: str | os.PathLike[str]) -> VideoKnowledge: ...

    def ask(
        self,
        video: str | os.PathLike[str],
        question: str,
        feed: Feed | None = None,
        history: Sequence[Message] = (),
        search: str | None = None,
        system: str | None = None,
    ) -> Answer: ...


class LibraryReply(Protocol):
    """An answer from a library (``assistant.LibraryAnswer`` is one)."""

    @property
    def video(self) -> str | None: ...  # the video it rests on, relative to the library; None: abstained

    @property
    def answer(self) -> Answer: ...


class LibraryAnswerer(Protocol):
    """What a chat about a library needs from the assistant behind it (``videoqa.Assistant`` is one)."""

    @property
    def llm(self) -> TextGenerator: ...

    def knowledge(self, video: str | os.PathLike[str]) -> VideoKnowledge: ...

    def library(self, folder: str | os.PathLike[str]) -> PassageLibrary: ...

    def ask_library(
        self,
        folder: str | os.PathLike[str],
        question: str,
        feed: Feed | None = None,
        history: Sequence[Message] = (),
        search: str | None = None,
        system: str | None = None,
        within: str | None = None,
    ) -> LibraryReply: ...


class Chat:
    """What every chat shares: the turns, the history given to the model, follow-ups, transcripts."""

    def __init__(self, llm_owner: Answerer | LibraryAnswerer, subject: Path, options: ChatOptions | None):
        self._llm_owner = llm_owner
        self.subject = subject  # the video, or the library's folder: what a saved transcript names
        self.options = options or ChatOptions()
        self.turns: list[Turn] = []

    def clear(self) -> None:
        """Forget the conversation; the index and memory stay."""
        self.turns.clear()

    def history(self) -> list[Message]:
        """The latest turns, oldest first, that fit ``history_tokens``."""
        llm = self._llm_owner.llm
        kept: list[Message] = []
        used = 0
        for turn in reversed(self.turns):
            pair = [Message("user", turn.question), Message("assistant", turn.answer.text)]
            cost = sum(llm.count_tokens(m.content) for m in pair)
            if used + cost > self.options.history_tokens:
                break
            kept[:0] = pair
            used += cost
        return kept

    def search_text(self, question: str) -> str:
        """What the video is searched for: the question itself, unless it is a follow-up. "And after
        that?" / "what came before?" become "what happens after/before <what the last answer rests on>";
        other follow-ups are searched together with the question before."""
        own = [t for t in tokenize(question) if t not in STOPWORDS]
        words = set(re.findall(r"[a-z]+", question.lower()))
        if not self.turns or len(own) > _FOLLOW_UP_WORDS or not _POINTERS & words:
            return question
        last = self.turns[-1]
        direction = "before" if "before" in words else "after" if words & _ONWARDS else None
        if direction is not None and not last.answer.abstained:
            return f"What happens {direction} {_what_was_found(last)}?"
        return f"{last.question} {question}"

    def _asked(self, question: str) -> tuple[str, str]:
        """(what the model is asked, what the video is searched for). A follow-up resolved to a full
        question ("what happens after <the last answer>?") is asked in those words: a small model given
        just "and after that?" tends to repeat its last answer."""
        check_question(question)  # empty, or longer than MAX_QUESTION_CHARS: QuestionError
        search = self.search_text(question)
        asked = search if search.startswith("What happens") and search != question else question
        return asked, search

    # --- transcripts -------------------------------------------------------------------------------

    def transcript(self) -> Conversation:
        return Conversation(self.subject, tuple(self.turns))

    def as_markdown(self) -> str:
        return writer("markdown").render(self.transcript())

    def as_json(self) -> dict[str, Any]:
        return conversation_record(self.transcript())

    def save(self, path: Path) -> str:
        """Write the conversation in the format the file's suffix picks (markdown or JSON); returns the
        format's name."""
        chosen = format_for_file(path, Conversation)
        if chosen is None:
            suffixes = " or ".join(spec.suffixes[0] for spec in formats_holding(Conversation))
            raise InputError(f"{path}: save the conversation as {suffixes}")
        if not path.parent.is_dir():
            raise InputError(f"{path}: the folder {path.parent} does not exist")
        text = chosen.writer.render(self.transcript())
        replace_atomically(path, lambda target: target.write_text(text, encoding="utf-8"))
        return chosen.name


class ChatSession(Chat):
    """Questions about one video, each answered with the earlier turns in mind."""

    def __init__(
        self, assistant: Answerer, video: str | os.PathLike[str], options: ChatOptions | None = None
    ) -> None:
        self.video = check_file(video)
        super().__init__(assistant, self.video, options)
        self.assistant = assistant

    def prepare(self) -> None:
        """Index the video now (or read its index), rather than at the first question."""
        self.assistant.knowledge(self.video)

    def ask(self, question: str, feed: Feed | None = None) -> Answer:
        """Answer ``question``; the turn is remembered only once the answer is complete."""
        asked, search = self._asked(question)
        answer = self.assistant.ask(
            self.video,
            asked,
            feed,
            history=self.history(),
            search=search,
            system=load_prompt("chat").section("system"),
        )
        self.turns.append(Turn(question, answer))
        return answer

    def scenes(self) -> list[SceneNote]:
        return scene_notes(self.assistant.knowledge(self.video))


class LibraryChatSession(Chat):
    """Questions about every indexed video of a folder: each answer rests on one video and names it; a
    follow-up is asked of the video the last answer came from."""

    def __init__(
        self, assistant: LibraryAnswerer, folder: str | os.PathLike[str], options: ChatOptions | None = None
    ) -> None:
        self.folder = Path(folder)
        super().__init__(assistant, self.folder, options)
        self.assistant = assistant
        self.current: str | None = None  # the video the conversation is on: where the last answer came from

    def videos(self) -> dict[str, Any]:
        """The library manifest's record of each indexed video, by its path relative to the folder."""
        return self.assistant.library(self.folder).videos

    def prepare(self) -> None:
        """Check the folder has indexed videos (OptionsError saying how to index them, if not)."""
        if not self.videos():
            raise OptionsError(
                f"{self.folder}: no indexed videos; index them first: videoqa index {self.folder}"
            )

    def ask(self, question: str, feed: Feed | None = None) -> Answer:
        """Answer ``question`` from the likeliest video, or, for a follow-up, from the video the last
        answer came from; the turn is remembered only once the answer is complete."""
        asked, search = self._asked(question)
        within = self.current if search != question else None
        reply = self.assistant.ask_library(
            self.folder,
            asked,
            feed,
            history=self.history(),
            search=search,
            system=load_prompt("chat").section("system"),
            within=within,
        )
        # A follow-up that found nothing in the video keeps the conversation on it; a new question that
        # found nothing anywhere leaves no video to follow up in.
        if reply.video is not None or within is None:
            self.current = reply.video
        self.turns.append(Turn(question, reply.answer))
        return reply.answer

    def clear(self) -> None:
        """Forget the conversation and the video it was about; the library stays indexed."""
        super().clear()
        self.current = None

    def scenes(self) -> list[SceneNote]:
        """The scenes of the video the last answer came from."""
        if self.current is None:
            raise InputError(
                "/scenes lists the scenes of the video the last answer came from; no answer has named one yet"
            )
        return scene_notes(self.assistant.knowledge(self.folder / self.current))


def scene_notes(known: VideoKnowledge) -> list[SceneNote]:
    """Each scene with the first words said or shown in it."""
    notes = []
    for scene in known.visual.scenes:
        inside = [p.text for p in known.passages if scene.start_s <= p.start_s < scene.end_s]
        words = " ".join(inside).split()
        text = " ".join(words[:_SCENE_NOTE_WORDS]) + (" …" if len(words) > _SCENE_NOTE_WORDS else "")
        notes.append(SceneNote(scene, text))
    return notes
