"""Language models behind one protocol (see ``base.py``), found by name (see ``load_llm``).

    from videoqa.llm import load_llm
    llm = load_llm("smollm2-135m-instruct")        # a model-store name: the offline default
    llm = load_llm("checkpoints/qwen2.5-3b-q4.gguf")  # any GGUF file
    for piece in llm.generate([Message("user", "Hello")]):
        print(piece, end="")

Importing this package imports no model runtime; loading a model does.
"""

from __future__ import annotations

from videoqa.llm.base import (
    DEFAULT_LLM,
    DTYPES,
    LLM_DEVICES,
    QUANTIZATIONS,
    VISUAL_SLOT,
    Frame,
    GenerationOptions,
    LlmError,
    LlmOptions,
    Message,
    TextGenerator,
    VisualGenerator,
    is_visual,
)
from videoqa.llm.loading import check_llm, load_llm

__all__ = [
    "DEFAULT_LLM",
    "DTYPES",
    "LLM_DEVICES",
    "QUANTIZATIONS",
    "VISUAL_SLOT",
    "Frame",
    "GenerationOptions",
    "LlmError",
    "LlmOptions",
    "Message",
    "TextGenerator",
    "VisualGenerator",
    "check_llm",
    "is_visual",
    "load_llm",
]
