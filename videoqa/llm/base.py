"""The protocol every language model backend implements, and the options shared by all of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from videoqa.errors import OptionsError, VideoqaError
from videoqa.host.cores import available_cores
from videoqa.store.devices import QUANTIZATIONS as QUANTIZATIONS  # re-exported: llm.QUANTIZATIONS
from videoqa.store.devices import devices_for
from videoqa.store.registry import ANSWER
from videoqa.store.registry import DEFAULT_LLM as DEFAULT_LLM  # re-exported: llm.DEFAULT_LLM

LLM_DEVICES = devices_for(ANSWER)  # the same for VLMs, which LlmOptions load too (tests/test_registry.py)
DTYPES = ("auto", "float32", "bfloat16", "float16")  # "auto": bf16 (or fp16) on a GPU, fp32 on the CPU
# Where injected visual tokens go in the last user message; without it they go before its text.
VISUAL_SLOT = "<visual>"

Frame = npt.NDArray[np.uint8]  # one RGB picture, (height, width, 3)
ROLES = ("system", "user", "assistant")


class LlmError(VideoqaError):
    """A language model cannot be found, loaded or run."""


@dataclass(frozen=True)
class Message:
    """One turn of a chat."""

    role: str  # "system", "user" or "assistant"
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, got {self.role!r}")


@dataclass(frozen=True)
class GenerationOptions:
    """How one reply is generated."""

    max_tokens: int = 128  # reply length cap, in tokens
    # 0 picks the most likely token every time: answers are reproducible and stick to the evidence
    temperature: float = 0.0
    seed: int = 0  # for sampling when temperature > 0

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise OptionsError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise OptionsError(f"temperature must be within 0..2, got {self.temperature}")


@dataclass(frozen=True)
class LlmOptions:
    """How a model is loaded."""

    device: str = "auto"  # "auto" puts every layer on the GPU when the runtime was built with one
    threads: int = 0  # CPU threads; 0 = one per available core
    context_tokens: int = 4096  # the context window reserved; prompts are budgeted to fit it
    quantize: str = "none"  # transformers models: "4bit" / "8bit" load the weights through bitsandbytes
    dtype: str = "auto"  # transformers models: the weights' dtype (see DTYPES)
    mmproj: str | None = None  # GGUF models: the vision projector file; None looks beside the model

    def __post_init__(self) -> None:
        if self.device not in LLM_DEVICES:
            raise OptionsError(f"device must be one of {', '.join(LLM_DEVICES)}, got {self.device!r}")
        if self.quantize not in QUANTIZATIONS:
            raise OptionsError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {self.quantize!r}")
        if self.dtype not in DTYPES:
            raise OptionsError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.threads < 0:
            raise OptionsError(f"threads must be 0 (one per core) or more, got {self.threads}")
        if self.context_tokens < 256:
            raise OptionsError(f"context_tokens must be at least 256, got {self.context_tokens}")

    @property
    def resolved_threads(self) -> int:
        return self.threads or available_cores()


class TextGenerator(Protocol):
    """A chat model that streams its reply as text pieces."""

    @property
    def id(self) -> str:
        """Names the model file(s), for reports and cache keys."""
        ...

    @property
    def context_tokens(self) -> int:
        """How many tokens prompt and reply may hold together."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in this model's vocabulary."""
        ...

    def generate(self, messages: Sequence[Message], options: GenerationOptions) -> Iterator[str]:
        """The reply to ``messages``, piece by piece as it is generated."""
        ...


class VisualGenerator(TextGenerator, Protocol):
    """A chat model that also reads pictures: given as frames, or as visual tokens already in the model's
    input-embedding space (memory tokens, pooled scene tokens) that are injected as input embeddings."""

    @property
    def hidden_size(self) -> int:
        """Width of the language model's input embeddings (the width of injected visual tokens)."""
        ...

    @property
    def accepts_visual_tokens(self) -> bool:
        """Whether ``generate`` takes ``visual_tokens`` (GGUF models read frames only)."""
        ...

    def image_tokens(self, frames: Sequence[Frame]) -> list[npt.NDArray[np.float32]]:
        """Each frame's visual tokens as the language model receives them: one (tokens, hidden_size)
        array a frame, after the vision tower and projector."""
        ...

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        images: Sequence[Frame] = (),
        visual_tokens: npt.NDArray[np.float32] | None = None,
    ) -> Iterator[str]:
        """The reply, piece by piece. ``images`` are shown with the last user message, before its text,
        the way the model's own processor does it. ``visual_tokens`` (n, hidden_size) are placed where
        that message holds ``VISUAL_SLOT`` (else before its text) as input embeddings. Not both."""
        ...


def is_visual(model: TextGenerator) -> bool:
    """Whether ``model`` reads pictures too (implements ``VisualGenerator``)."""
    return callable(getattr(model, "image_tokens", None))
