"""What every embedder offers, the options that pick its device and precision, and the names registered.

Kept free of torch and transformers so that naming, validating and listing embedders costs nothing; the
backends (``pixel.py``, ``clip.py``) import what they need when one is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from videoqa.errors import OptionsError, VideoqaError
from videoqa.store import registry
from videoqa.store.devices import devices_for

DEVICES = devices_for(registry.IMAGE_EMBEDDING)
DTYPES = ("auto", "float32", "float16", "bfloat16")


class EmbedderError(VideoqaError):
    """An embedder cannot be loaded or cannot do what was asked (a missing model, text on pixels)."""


class ImageEmbedder(Protocol):
    """Turns frames (and, for joint image-text models, texts) into unit vectors in one space."""

    @property
    def id(self) -> str:
        """Names the model and its preprocessing; embeddings with equal ids are interchangeable."""
        ...

    @property
    def dim(self) -> int:
        """Length of each embedding."""
        ...

    def embed_images(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(n, height, width, 3) uint8 RGB frames -> (n, dim) float32 rows of unit length."""
        ...

    def embed_texts(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """n texts -> (n, dim) float32 rows of unit length; raises EmbedderError if it has no text side."""
        ...


@dataclass(frozen=True)
class EmbedOptions:
    """Where and how a model embeds; the pixel embedder ignores device and dtype."""

    device: str = "auto"  # "auto" picks cuda, then mps, then cpu
    dtype: str = "auto"  # "auto": float16 on cuda, float32 elsewhere (bf16 on CPU measured 4x slower)
    batch_size: int = 32  # frames or texts per forward pass; halved for good on CUDA out-of-memory

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise OptionsError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.dtype not in DTYPES:
            raise OptionsError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise OptionsError(f"batch_size must be a whole number of at least 1, got {self.batch_size!r}")


@dataclass(frozen=True)
class EmbedderSpec:
    """A registered embedder: which backend builds it and where its weights come from."""

    backend: str  # "pixel" (no weights) or "clip" (CLIP/SigLIP family through transformers)
    summary: str  # one line for listings
    hub_id: str | None = None  # hub repository a networked machine downloads the weights from


@dataclass(frozen=True)
class ModelSource:
    """Where a transformers model comes from: ``local_dir`` when it exists, else ``hub_id`` (downloaded)."""

    label: str  # what ids and messages call the model
    local_dir: Path
    hub_id: str | None = None


def _embedder_spec(spec: registry.ModelSpec) -> EmbedderSpec:
    """How an image embedder in the model registry is built: no weights -> pixel; a hub model -> clip."""
    if isinstance(spec.source, registry.Hub):
        return EmbedderSpec("clip", spec.summary, spec.source.hub_id)
    if isinstance(spec.source, registry.BuiltIn):
        return EmbedderSpec("pixel", spec.summary)
    raise ValueError(f"image embedder {spec.name}: no backend reads a model from {spec.source.label}")


# The image embedders of the model registry, by name, with their backends.
REGISTRY: dict[str, EmbedderSpec] = {
    name: _embedder_spec(spec) for name, spec in registry.of_kind(registry.IMAGE_EMBEDDING).items()
}


def check_pixels(pixels: npt.NDArray[np.uint8]) -> None:
    """Raise ValueError unless ``pixels`` is a (n, height, width, 3) uint8 array."""
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(
            f"frames must be a (n, height, width, 3) uint8 RGB array, got shape {pixels.shape} {pixels.dtype}"
        )
