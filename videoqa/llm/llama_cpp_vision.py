"""Multimodal GGUF models through llama-cpp-python: a language model plus its vision projector (mmproj),
the way llama.cpp ships SmolVLM, LLaVA, Gemma 3 and the like for CPU users.

llama.cpp reads pictures, not embeddings: frames go in as images with the last user message, and the
projector turns them into the model's input tokens inside the C library.
"""

from __future__ import annotations

import base64
import ctypes
import io
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from videoqa.llm.base import Frame, GenerationOptions, LlmError, LlmOptions, Message
from videoqa.llm.llama_cpp import check_gguf, stream_chat

MMPROJ_MARK = "mmproj"  # how llama.cpp's converter and the model hubs name vision projector files
# Frames travel to llama.cpp as PNG: lossless, so the model sees the decoded frame exactly, and level 1
# compresses a 1080p frame in a few tens of milliseconds.
PNG_COMPRESS_LEVEL = 1

logger = logging.getLogger(__name__)
_c_log_callback: Any = None  # kept alive for as long as the C library may call it


class LlamaCppVisionGenerator:
    """A GGUF chat model with its vision projector; the chat template is the one stored in the model file.

    Implements ``VisualGenerator`` for frames only: ``accepts_visual_tokens`` is False.
    """

    def __init__(self, model_path: Path, mmproj_path: Path, options: LlmOptions) -> None:
        check_gguf(model_path)
        check_gguf(mmproj_path)
        _route_mtmd_logs_to_logging()
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import MTMDChatHandler

        on_gpu = options.device != "cpu"
        handler = MTMDChatHandler(clip_model_path=str(mmproj_path), verbose=False, use_gpu=on_gpu)
        try:
            self._llama = Llama(
                model_path=str(model_path),
                chat_handler=handler,
                n_ctx=options.context_tokens,
                n_threads=options.resolved_threads,
                n_threads_batch=options.resolved_threads,
                n_gpu_layers=-1 if on_gpu else 0,
                seed=0,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LlmError(f"{model_path}: llama.cpp cannot load it ({exc})") from None
        _load_projector(handler, self._llama, model_path, mmproj_path)
        self._id = (
            f"gguf:{model_path.name}:{model_path.stat().st_size}"
            f"+{mmproj_path.name}:{mmproj_path.stat().st_size}"
        )

    @property
    def id(self) -> str:
        return self._id

    @property
    def context_tokens(self) -> int:
        return int(self._llama.n_ctx())

    @property
    def hidden_size(self) -> int:
        return int(self._llama.n_embd())

    @property
    def accepts_visual_tokens(self) -> bool:
        return False

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode(), add_bos=False, special=False))

    def image_tokens(self, frames: Sequence[Frame]) -> list[npt.NDArray[np.float32]]:
        raise LlmError(
            f"{self._id}: a llama.cpp model reads frames only and cannot hand out their visual "
            "tokens; use a transformers model for memory or scene tokens"
        )

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        images: Sequence[Frame] = (),
        visual_tokens: npt.NDArray[np.float32] | None = None,
    ) -> Iterator[str]:
        """The reply, piece by piece; ``images`` (uint8 RGB, (height, width, 3)) are shown with the last
        user message, before its text."""
        if visual_tokens is not None:
            raise ValueError(
                "llama.cpp models take images, not visual tokens (accepts_visual_tokens is False)"
            )
        chat = _chat_with_images(messages, images)
        try:
            pieces = stream_chat(self._llama, chat, options)
        except ValueError as exc:  # the handler reports a prompt it cannot take (too long, bad image)
            raise LlmError(f"{self._id}: llama.cpp cannot read this prompt ({exc})") from None
        yield from pieces


def find_mmproj(model_path: Path) -> Path | None:
    """The vision projector beside ``model_path``: the one ``.gguf`` file in its folder whose name holds
    "mmproj" (``mmproj-model-f16.gguf``, ``SmolVLM-mmproj.gguf``). None when there is none; several are
    ambiguous and raise ``LlmError``."""
    candidates = sorted(
        path
        for path in model_path.parent.glob("*")
        if path.is_file()
        and path.suffix.lower() == ".gguf"
        and MMPROJ_MARK in path.name.lower()
        and path != model_path
    )
    if len(candidates) > 1:
        names = ", ".join(path.name for path in candidates)
        raise LlmError(
            f"{model_path.parent}: several vision projectors ({names}); name the one made for "
            f"{model_path.name} with the mmproj option"
        )
    return candidates[0] if candidates else None


def _load_projector(handler: Any, llama: Any, model_path: Path, mmproj_path: Path) -> None:
    """Open the projector now, so a wrong one fails at load time with one line, not at the first picture.

    The handler only opens it on its first chat, through this method; llama.cpp's explanation (a width that
    does not match the model's, a damaged file) goes to stderr, which the handler silences.
    """
    try:
        handler._init_mtmd_context(llama)
    except ValueError:
        raise LlmError(
            f"{mmproj_path}: llama.cpp cannot use it as the vision projector of "
            f"{model_path.name} (made for another model, or damaged)"
        ) from None


def _chat_with_images(messages: Sequence[Message], images: Sequence[Frame]) -> list[Any]:
    """The chat in the OpenAI form llama-cpp-python takes, the images as parts of the last user message."""
    chat: list[Any] = [{"role": m.role, "content": m.content} for m in messages]
    if not images:
        return chat
    users = [index for index, message in enumerate(messages) if message.role == "user"]
    if not users:
        raise ValueError("images need a user message to go with")
    last = chat[users[-1]]
    pictures = [{"type": "image_url", "image_url": {"url": _png_data_uri(frame)}} for frame in images]
    last["content"] = [*pictures, {"type": "text", "text": last["content"]}]
    return chat


def _png_data_uri(frame: Frame) -> str:
    from PIL import Image

    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"images must be uint8 RGB arrays (height, width, 3), got {frame.dtype} {frame.shape}"
        )
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _route_mtmd_logs_to_logging() -> None:
    """Send the multimodal library's messages to this module's logger (DEBUG) instead of stderr.

    libmtmd prints every prompt it tokenizes and a few lines per picture it encodes, whatever the Llama's
    ``verbose`` says; its log hooks are process-wide, so they are set once.
    """
    global _c_log_callback
    if _c_log_callback is not None:
        return
    import llama_cpp
    from llama_cpp import mtmd_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        logger.debug("%s", text.decode("utf-8", errors="replace").rstrip("\n"))

    _c_log_callback = forward
    mtmd_cpp.mtmd_log_set(forward, ctypes.c_void_p(0))
    mtmd_cpp.mtmd_helper_log_set(forward, ctypes.c_void_p(0))
