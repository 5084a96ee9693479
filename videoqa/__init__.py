"""videoqa: ask questions about long videos, caption them as they play, and chat about them - locally.

The public API is ``videoqa.load(...)``, which gives an ``Assistant`` (see ``videoqa.assistant``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Assistant", "__version__", "load"]

if TYPE_CHECKING:
    from videoqa.assistant import Assistant, load


def __getattr__(name: str) -> object:
    """``load`` and ``Assistant``, imported from ``videoqa.assistant`` on first use: ``import videoqa``,
    as the CLI's ``--help`` does, must stay instant (no numpy, no torch)."""
    if name in ("load", "Assistant"):
        from videoqa import assistant

        return getattr(assistant, name)
    raise AttributeError(f"module 'videoqa' has no attribute {name!r}")
