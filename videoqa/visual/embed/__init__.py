"""Frame and text embedders behind one protocol, found by name (see ``load_embedder``).

    from videoqa.visual.embed import load_embedder
    embedder = load_embedder("pixel")                # no weights: the offline default, images only
    embedder = load_embedder("checkpoints/my-clip")  # a CLIP or SigLIP folder saved with save_pretrained
    vectors = embedder.embed_images(frames)          # (n, embedder.dim) float32, rows of unit length

Importing this package imports neither torch nor transformers; loading a model does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from videoqa.store.devices import ALWAYS_AVAILABLE
from videoqa.store.registry import CHECKPOINTS_DIR, HUB_PREFIX
from videoqa.visual.embed.base import (
    DEVICES,
    DTYPES,
    REGISTRY,
    EmbedderError,
    EmbedderSpec,
    EmbedOptions,
    ImageEmbedder,
    ModelSource,
)

__all__ = [
    "DEVICES",
    "DTYPES",
    "REGISTRY",
    "EmbedOptions",
    "EmbedderError",
    "EmbedderSpec",
    "ImageEmbedder",
    "device_problem",
    "load_embedder",
]


def load_embedder(name_or_path: str | os.PathLike[str], options: EmbedOptions | None = None) -> ImageEmbedder:
    """Load an embedder by registered name (see ``REGISTRY``: "pixel", "clip-vit-b32", ...), as
    ``hf-hub:ORG/MODEL``, or from a folder holding a CLIP or SigLIP model saved with save_pretrained.

    Raises EmbedderError, saying what to do, when the model cannot be found or loaded.
    """
    name = os.fspath(name_or_path)
    spec = REGISTRY.get(name)
    # Anything not registered names a transformers model: a hub id or a folder.
    backend = spec.backend if spec is not None else "clip"
    return _BACKENDS[backend](name, options or EmbedOptions())


def device_problem(device: str) -> str | None:
    """Why torch cannot run models on ``device`` (one of DEVICES), or None when it can.

    "auto" and "cpu" always can, and are answered without importing torch; "cuda" and "mps" import it.
    """
    if device in ALWAYS_AVAILABLE:
        return None
    import torch

    if device == "cuda":
        if torch.cuda.is_available():
            return None
        if torch.version.cuda is None and torch.version.hip is None:
            return "no CUDA device is visible to torch (this torch build is CPU-only)"
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else f"ROCm {torch.version.hip}"
        return f"no CUDA device is visible to torch (a {build} build: check the driver, CUDA_VISIBLE_DEVICES)"
    if device == "mps":
        if torch.backends.mps.is_available():
            return None
        if not torch.backends.mps.is_built():
            return "this torch build has no MPS (Apple GPU) support"
        return "no Apple GPU (MPS) is available to torch on this machine"
    return f"not a device torch knows here; devices: {', '.join(DEVICES)}"


def _model_source(name: str) -> ModelSource:
    """Where the transformers model called ``name`` comes from.

    A registered name is read from checkpoints/NAME/ when that folder exists, else downloaded from its hub
    id; ``hf-hub:ORG/MODEL`` likewise from checkpoints/MODEL/ or the hub; anything else is a folder path.
    """
    spec = REGISTRY.get(name)
    if spec is not None:
        return ModelSource(label=name, local_dir=CHECKPOINTS_DIR / name, hub_id=spec.hub_id)
    if name.startswith(HUB_PREFIX):
        hub_id = name.removeprefix(HUB_PREFIX).strip("/")
        if not hub_id:
            raise EmbedderError(
                f"{name!r}: name a hub repository after {HUB_PREFIX}, e.g. "
                f"{HUB_PREFIX}openai/clip-vit-base-patch32"
            )
        return ModelSource(label=hub_id, local_dir=CHECKPOINTS_DIR / hub_id.rsplit("/", 1)[-1], hub_id=hub_id)
    folder = Path(name).expanduser()
    return ModelSource(label=folder.resolve().name, local_dir=folder)


def _load_pixel(name: str, options: EmbedOptions) -> ImageEmbedder:
    from videoqa.visual.embed.pixel import PixelEmbedder

    return PixelEmbedder()


def _load_clip(name: str, options: EmbedOptions) -> ImageEmbedder:
    from videoqa.visual.embed.clip import load_clip

    return load_clip(_model_source(name), options)


# Backends by the name a registry entry gives; each imports its heavy modules only when called.
_BACKENDS: dict[str, Callable[[str, EmbedOptions], ImageEmbedder]] = {
    "pixel": _load_pixel,
    "clip": _load_clip,
}
