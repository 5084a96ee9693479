"""GGUF models through llama-cpp-python: the offline default and the choice for CPU users."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from videoqa.llm.base import GenerationOptions, LlmError, LlmOptions, Message

_GGUF_MAGIC = b"GGUF"


class LlamaCppGenerator:
    """A GGUF chat model; the chat template is the one stored in the GGUF file."""

    def __init__(self, model_path: Path, options: LlmOptions) -> None:
        check_gguf(model_path)
        from llama_cpp import Llama

        try:
            self._llama = Llama(
                model_path=str(model_path),
                n_ctx=options.context_tokens,
                n_threads=options.resolved_threads,
                n_threads_batch=options.resolved_threads,
                n_gpu_layers=0 if options.device == "cpu" else -1,
                seed=0,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LlmError(f"{model_path}: llama.cpp cannot load it ({exc})") from None
        stat = model_path.stat()
        self._id = f"gguf:{model_path.name}:{stat.st_size}"

    @property
    def id(self) -> str:
        return self._id

    @property
    def context_tokens(self) -> int:
        return int(self._llama.n_ctx())

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode(), add_bos=False, special=False))

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Iterator[str]:
        chat: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
        return stream_chat(self._llama, chat, options)


def stream_chat(llama: Any, chat: list[Any], options: GenerationOptions) -> Iterator[str]:
    """Start a streamed chat completion now (so a prompt llama.cpp refuses raises here) and give its
    text pieces as they come.

    The context is emptied first: llama-cpp-python otherwise reuses the part of the last prompt this
    one starts with, and logits computed over a different split of the prompt differ in their last bits,
    enough to tip a near tie of a greedy reply. The same question then got two answers depending on
    which question came before it (tests/test_serve_load.py, ten clients at once); re-reading the shared
    system prompt costs a few tens of milliseconds.
    """
    llama.reset()
    stream = llama.create_chat_completion(
        messages=chat,
        max_tokens=options.max_tokens,
        temperature=options.temperature,
        seed=options.seed,
        stream=True,
    )
    return (str(piece) for chunk in stream if (piece := chunk["choices"][0]["delta"].get("content")))


def check_gguf(path: Path) -> None:
    """Refuse anything but a readable GGUF file before llama.cpp prints its own noise about it."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise LlmError(f"{path}: cannot read it ({exc.strerror})") from None
    if magic != _GGUF_MAGIC:
        raise LlmError(f"{path}: not a GGUF file (llama.cpp models end in .gguf)")
    if os.path.getsize(path) < 1024:
        raise LlmError(f"{path}: too small to be a model")
