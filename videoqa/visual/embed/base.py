"""What every embedder offers, the options that pick its device and precision, and the registry of names.

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

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "float16", "bfloat16")
# Registered models are looked for here first (checkpoints/NAME/), then downloaded from their hub id.
CHECKPOINTS_DIR = Path("checkpoints")
# Prefix that names any hub repository directly, as open_clip does: "hf-hub:org/model".
HUB_PREFIX = "hf-hub:"


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


REGISTRY: dict[str, EmbedderSpec] = {
    "pixel": EmbedderSpec("pixel", "colour histogram + 16x16 thumbnail; no weights, cannot embed text"),
    "clip-vit-b32": EmbedderSpec("clip", "OpenAI CLIP ViT-B/32, 224 px", "openai/clip-vit-base-patch32"),
    "clip-vit-b16": EmbedderSpec("clip", "OpenAI CLIP ViT-B/16, 224 px", "openai/clip-vit-base-patch16"),
    "clip-vit-l14": EmbedderSpec("clip", "OpenAI CLIP ViT-L/14, 224 px", "openai/clip-vit-large-patch14"),
    "siglip-b16-224": EmbedderSpec(
        "clip", "Google SigLIP base, patch 16, 224 px", "google/siglip-base-patch16-224"
    ),
}


def check_pixels(pixels: npt.NDArray[np.uint8]) -> None:
    """Raise ValueError unless ``pixels`` is a (n, height, width, 3) uint8 array."""
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(
            f"frames must be a (n, height, width, 3) uint8 RGB array, got shape {pixels.shape} {pixels.dtype}"
        )
