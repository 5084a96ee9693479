"""OpenAI's chat-completion shapes: the request as clients send it, the reply and its stream chunks.

A request's last user message carries the question (its text) and, in this message or an earlier one,
the video, as vLLM (``video_url``) or llama.cpp (``input_video``) put it. The messages before it are the
chat history: each user message with the assistant's reply after it.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from videoqa.respond.writers import seconds
from videoqa.serve.errors import ApiError

if TYPE_CHECKING:
    from videoqa.respond.answer import Answer

_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[^;,]*)*;base64,(?P<data>.*)$", re.DOTALL
)
_WORDS = re.compile(r"\s*\S+\s*")


class ChatMessage(BaseModel):
    """One message as OpenAI's API takes it; fields this server does not use are allowed and ignored."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``'s body. Sampling fields (temperature, ...) are accepted and ignored:
    the answer is made with the server's own settings."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


@dataclass(frozen=True)
class VideoRef:
    """Where a message says the video is: a path (from a file URL), a catalog id, or the bytes themselves."""

    kind: Literal["file", "id", "data"]
    value: str  # the file URL, the id, or the media type of the bytes ("video/mp4")
    data: bytes = b""
    param: str = "messages"


@dataclass(frozen=True)
class ChatTurns:
    """A chat request read: the question, the earlier exchanges, and the video they are about."""

    question: str
    history: tuple[tuple[str, str], ...]  # (user text, assistant reply), oldest first
    video: VideoRef
    stream: bool


def read_chat(request: ChatRequest, max_bytes: int) -> ChatTurns:
    """The question, history and video of a chat request; 400 when one is missing, 413 when the video
    given inline is over ``max_bytes``."""
    messages = request.messages
    last = len(messages) - 1
    if messages[last].role != "user":
        raise ApiError(400, "the last message must be the user's question", f"messages[{last}]")
    question = _text_of(messages[last], last)
    if not question:
        raise ApiError(400, "the last user message has no text: ask a question", f"messages[{last}].content")
    video = next(
        (
            ref
            for i in range(last, -1, -1)
            if messages[i].role == "user"
            for ref in _videos_in(messages[i], i, max_bytes)
        ),
        None,
    )
    if video is None:
        raise ApiError(
            400,
            'no video in the messages: add a content part {"type": "video_url", "video_url": {"url": '
            '"file:///path.mp4" | "videoqa://ID" | "data:video/mp4;base64,..."}}',
            "messages",
        )
    return ChatTurns(question, _history(messages[:last]), video, request.stream)


def _text_of(message: ChatMessage, index: int) -> str:
    content = message.content
    if content is None:
        return ""
    if isinstance(content, str):
        return content.strip()
    texts = []
    for number, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise ApiError(
                    400, "a text part needs a string 'text'", f"messages[{index}].content[{number}]"
                )
            texts.append(text.strip())
        elif kind not in ("video_url", "input_video"):
            raise ApiError(
                400,
                f"unsupported content part type {kind!r}: use text, video_url or input_video",
                f"messages[{index}].content[{number}]",
            )
    return "\n".join(text for text in texts if text)


def _videos_in(message: ChatMessage, index: int, max_bytes: int) -> Iterator[VideoRef]:
    """The videos in a message's parts, last first (the most recent wins)."""
    if not isinstance(message.content, list):
        return
    for number in range(len(message.content) - 1, -1, -1):
        part = message.content[number]
        param = f"messages[{index}].content[{number}]"
        if part.get("type") == "video_url":
            yield _from_url(_field(part, "video_url", "url", param), param, max_bytes)
        elif part.get("type") == "input_video":
            yield _from_input(part, param, max_bytes)


def _field(part: dict[str, Any], outer: str, inner: str, param: str) -> str:
    holder = part.get(outer)
    value = holder.get(inner) if isinstance(holder, dict) else None
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"a {outer} part needs {outer}.{inner}", param)
    return value


def _from_url(url: str, param: str, max_bytes: int) -> VideoRef:
    if url.startswith("file:"):
        return VideoRef("file", url, param=param)
    if url.startswith("videoqa://"):
        return VideoRef("id", url.removeprefix("videoqa://").strip("/"), param=param)
    if url.startswith("data:"):
        found = _DATA_URL.match(url)
        if found is None:
            raise ApiError(400, "a data URL must be base64: data:video/mp4;base64,...", param)
        return VideoRef(
            "data", found["mime"] or "video/mp4", _decoded(found["data"], param, max_bytes), param
        )
    raise ApiError(
        400,
        "video_url takes file:// URLs under a media root, videoqa://ID or data: URLs; "
        "the server fetches nothing from the network",
        param,
    )


def _from_input(part: dict[str, Any], param: str, max_bytes: int) -> VideoRef:
    data = _field(part, "input_video", "data", param)
    holder = part["input_video"]
    form = holder.get("format") if isinstance(holder.get("format"), str) else "mp4"
    return VideoRef("data", f"video/{form}", _decoded(data, param, max_bytes), param)


def _decoded(text: str, param: str, max_bytes: int) -> bytes:
    if len(text) * 3 // 4 > max_bytes + 3:
        raise ApiError(413, f"the video is larger than the upload limit ({max_bytes / 2**20:.0f} MiB)", param)
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "the video data is not valid base64", param) from None
    if not data:
        raise ApiError(400, "the video data is empty", param)
    if len(data) > max_bytes:
        raise ApiError(413, f"the video is larger than the upload limit ({max_bytes / 2**20:.0f} MiB)", param)
    return data


def _history(messages: Sequence[ChatMessage]) -> tuple[tuple[str, str], ...]:
    """User messages paired with the assistant reply after each; system messages and unanswered
    questions are left out (the server's own prompt says how to answer)."""
    pairs: list[tuple[str, str]] = []
    asked: str | None = None
    for index, message in enumerate(messages):
        if message.role == "user":
            asked = _text_of(message, index) or None
        elif message.role == "assistant" and asked is not None:
            reply = _text_of(message, index)
            if reply:
                pairs.append((asked, reply))
            asked = None
    return tuple(pairs)


# --- replies ---------------------------------------------------------------------------------------


def evidence_record(answer: Answer, video_name: str) -> list[dict[str, Any]]:
    return [
        {
            "video": video_name,
            "start_s": seconds(item.start_s),
            "end_s": seconds(item.end_s),
            "channel": item.channel,
            "text": item.text,
            "scene": item.scene,
        }
        for item in answer.evidence
    ]


@dataclass(frozen=True)
class Reply:
    """An answer to one chat request, with what the reply objects name."""

    answer: Answer
    video_id: str
    video_name: str
    model: str
    prompt_tokens: int  # the question and history the client sent (the evidence notes not counted)
    completion_tokens: int

    def extension(self) -> dict[str, Any]:
        """The ``videoqa`` field: the evidence, which standard clients ignore."""
        return {
            "video_id": self.video_id,
            "abstained": self.answer.abstained,
            "evidence": evidence_record(self.answer, self.video_name),
        }


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion(reply: Reply, id: str, created: int) -> dict[str, Any]:
    """The ``chat.completion`` object."""
    return {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": reply.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.answer.text},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
        "videoqa": reply.extension(),
    }


def chunk(
    id: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None
) -> dict[str, Any]:
    """One ``chat.completion.chunk``."""
    return {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def reply_chunks(reply: Reply, id: str, created: int) -> Iterator[dict[str, Any]]:
    """The reply's text a word at a time, then the chunk that ends it with the ``videoqa`` field."""
    for word in _WORDS.findall(reply.answer.text):
        yield chunk(id, created, reply.model, {"content": word})
    yield {**chunk(id, created, reply.model, {}, "stop"), "videoqa": reply.extension()}


def sse(data: dict[str, Any] | str) -> str:
    """One Server-Sent Event carrying ``data`` (JSON, or ``[DONE]``)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def now() -> int:
    return int(time.time())
