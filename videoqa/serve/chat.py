"""A chat request answered as the terminal answers it: a question on its own as ``videoqa ask`` does,
one after earlier exchanges as ``videoqa chat`` answers a turn: the exchanges become the session's turns,
so a follow-up ("and after that?") is searched for and asked exactly as in the terminal.

The API is stateless (each request carries the whole chat), but a follow-up in the terminal rests on the
evidence of the turn before, which a client does not send back. The server keeps its latest answers and
finds a turn's own answer by its question and text; a turn it did not answer (another server's, or one
edited by the client) is taken at its word.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from videoqa.respond.answer import Answer, says_not_in_video
from videoqa.respond.chat import ChatSession, Turn
from videoqa.respond.prompt import load_prompt
from videoqa.serve.engine import Engine
from videoqa.serve.openai_api import ChatTurns, Reply
from videoqa.serve.videos import VideoEntry

REMEMBERED_ANSWERS = 512


class AnswerMemo:
    """The answers given lately, by (video id, question, reply text); the oldest are forgotten."""

    def __init__(self, size: int = REMEMBERED_ANSWERS) -> None:
        self._size = size
        self._answers: OrderedDict[tuple[str, str, str], Answer] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, video_id: str, question: str, answer: Answer) -> None:
        """Keep ``answer`` to ``question`` as the user asked it (a follow-up may have been asked as the
        full question it stands for)."""
        with self._lock:
            self._answers[(video_id, question, answer.text)] = answer
            while len(self._answers) > self._size:
                self._answers.popitem(last=False)

    def recall(self, video_id: str, question: str, text: str) -> Answer | None:
        with self._lock:
            return self._answers.get((video_id, question, text))


def earlier_turn(memo: AnswerMemo, video_id: str, question: str, reply: str) -> Turn:
    """A turn of the chat so far: the server's own answer when it remembers it, else the reply as sent."""
    remembered = memo.recall(video_id, question, reply)
    if remembered is not None:
        return Turn(question, remembered)
    abstained = reply == load_prompt("abstain").section("answer") or says_not_in_video(reply)
    told = Answer(
        question=question,
        text=reply,
        evidence=(),
        abstained=abstained,
        quoted=False,
        relation="none",
        best_similarity=-1.0,
        model_reply=None,
        models={},
    )
    return Turn(question, told)


@dataclass(frozen=True)
class ChatRunner:
    """Answers chat requests with the engine's assistant, one at a time."""

    engine: Engine
    memo: AnswerMemo

    def answer(self, entry: VideoEntry, turns: ChatTurns) -> Reply:
        """Answer the request's question about the (indexed) video: on its own as ``videoqa ask``
        answers it, or after earlier exchanges as a turn of ``videoqa chat``."""
        with self.engine.lock:
            if turns.history:
                session = ChatSession(self.engine.assistant, entry.path)
                session.turns = [earlier_turn(self.memo, entry.id, q, a) for q, a in turns.history]
                answer = session.ask(turns.question)
            else:
                answer = self.engine.assistant.ask(entry.path, turns.question)
            llm = self.engine.assistant.llm
            asked = [turns.question, *(text for pair in turns.history for text in pair)]
            prompt_tokens = sum(llm.count_tokens(text) for text in asked)
            completion_tokens = llm.count_tokens(answer.text)
        self.memo.remember(entry.id, turns.question, answer)
        return Reply(answer, entry.id, entry.name, self.engine.model_name, prompt_tokens, completion_tokens)
