"""videoqa: ask questions about long videos, caption them as they play, and chat about them - locally."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from videoqa.assistant import Assistant


def load(*args: Any, **kwargs: Any) -> Assistant:
    """``videoqa.load(model=..., embedder=..., device=...)``: see ``videoqa.assistant.load``."""
    from videoqa.assistant import load as load_assistant

    return load_assistant(*args, **kwargs)
