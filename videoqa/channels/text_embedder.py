"""The text channels' passage embedder: sentence embeddings of what was said and shown as text.

The offline default is all-MiniLM-L6-v2 from the model store. The passage vectors are built with the rest
of a video's knowledge and cached; ``videoqa.retrieval.textindex`` scores questions against them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

from videoqa.errors import VideoqaError
from videoqa.store.devices import devices_for
from videoqa.store.registry import DEFAULT_TEXT_EMBEDDER as DEFAULT_TEXT_EMBEDDER  # re-exported
from videoqa.store.registry import TEXT_EMBEDDING

if TYPE_CHECKING:
    from videoqa.types import Passage

TEXT_DEVICES = devices_for(TEXT_EMBEDDING)


class TextEmbedderError(VideoqaError):
    """A text embedding model cannot be found or loaded."""


class TextEmbedder(Protocol):
    """Turns texts into unit-length vectors that can be compared by dot product."""

    @property
    def id(self) -> str:
        """Names the model and its files, for cache keys."""
        ...

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """(len(texts), dim) float32, rows of unit length."""
        ...


class SentenceEmbedder:
    """A sentence-transformers model from a local folder (the model store's, checkpoints/, or a path)."""

    def __init__(self, folder: Path, device: str = "auto") -> None:
        if device not in TEXT_DEVICES:
            raise ValueError(f"device must be one of {', '.join(TEXT_DEVICES)}, got {device!r}")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # its weight-loading bar would garble our stderr
        resolved = _torch_device(device)
        try:
            self._model = SentenceTransformer(str(folder), device=resolved, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise TextEmbedderError(f"{folder}: not a sentence-transformers model ({exc})") from None
        from videoqa.store.models import folder_fingerprint

        self._id = f"sentence-transformers:{folder.name}:{folder_fingerprint(folder)}"

    @property
    def id(self) -> str:
        return self._id

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self._model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _torch_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


StoreFetcher = Callable[[str], Path]  # a model-store name -> its installed folder


def load_text_embedder(
    name_or_path: str = DEFAULT_TEXT_EMBEDDER, device: str = "auto", fetch: StoreFetcher | None = None
) -> TextEmbedder:
    """A model-store name (fetched through ``fetch`` when not installed) or a sentence-transformers folder."""
    from videoqa.store import models

    if name_or_path in models.REGISTRY:
        if models.REGISTRY[name_or_path].kind != TEXT_EMBEDDING:
            raise TextEmbedderError(f"{name_or_path} is not a text embedding model")
        folder = (fetch or models.model_dir)(name_or_path)
    else:
        folder = Path(name_or_path).expanduser()
        if not folder.is_dir():
            known = ", ".join(n for n, s in models.REGISTRY.items() if s.kind == TEXT_EMBEDDING)
            raise TextEmbedderError(f"{name_or_path}: no such folder, and not a known text model ({known})")
    return SentenceEmbedder(folder, device)


def embedding_text(passage: Passage) -> str:
    """What is embedded for a passage: screen text is marked as such. A sign's bare words ("WELCOME TO
    OSLO") sit far from a question about "the sign on the screen"; the marker closes much of that gap
    (cosine 0.29 -> 0.49 with all-MiniLM-L6-v2) without raising unrelated questions' scores."""
    return f"On screen: {passage.text}" if passage.channel == "screen" else passage.text
