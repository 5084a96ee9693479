"""CLIP and SigLIP frame and text embeddings through transformers, from a local folder or a hub id.

Frames are resized, cropped and normalised with torch on the model's device rather than by transformers'
image processor: its PIL path ran at a third of the model's own speed on CPU (docs/offline-models.md).
A hub id is first downloaded to a local snapshot, so every model loads through the same folder code path.
Weights are loaded only from safetensors.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from videoqa.visual.embed.base import REGISTRY, EmbedderError, EmbedOptions, ModelSource, check_pixels

log = logging.getLogger("videoqa")
T = TypeVar("T")

_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# Files a model folder is made of; a hub download fetches only these (never pickled .bin weights).
_MODEL_FILES = ("*.json", "*.safetensors", "*.txt", "*.model")
# A folder needs one of these for its tokenizer: without any, AutoTokenizer quietly builds an empty one.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Devices in the order "auto" tries them, each with its availability check.
_DEVICES: dict[str, Callable[[], bool]] = {
    "cuda": torch.cuda.is_available,
    "mps": torch.backends.mps.is_available,
    "cpu": lambda: True,
}


@dataclass(frozen=True)
class Family:
    """What differs between model families, looked up by config.json's model_type."""

    text_padding: str  # "longest"; "max_length" for models trained on padded texts (SigLIP)
    image_mean: tuple[float, ...]  # used when the folder has no preprocessor_config.json
    image_std: tuple[float, ...]
    center_crop: bool  # when the preprocessor config does not say: crop (CLIP) or squash (SigLIP)


FAMILIES: dict[str, Family] = {
    "clip": Family("longest", _CLIP_MEAN, _CLIP_STD, center_crop=True),
    "siglip": Family("max_length", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), center_crop=False),
}


@dataclass(frozen=True)
class ImagePreprocess:
    """Frames to model input: bicubic antialiased resize, crop or squash to a square, normalise."""

    size: int  # side of the square the model sees (vision_config.image_size)
    mean: tuple[float, ...]  # per RGB channel, on the 0..1 scale
    std: tuple[float, ...]
    center_crop: bool  # True: shorter side to `size`, then the middle square; False: squash to the square

    def __post_init__(self) -> None:
        if self.size < 1 or len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise EmbedderError(f"unusable image preprocessing settings: {self}")

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """(n, height, width, 3) uint8 -> (n, 3, size, size) float32, normalised, on the same device."""
        images = frames.permute(0, 3, 1, 2).float()
        height, width = images.shape[-2:]
        out_h = out_w = self.size
        if self.center_crop:
            scale = self.size / min(height, width)
            out_h, out_w = max(self.size, round(height * scale)), max(self.size, round(width * scale))
        if (out_h, out_w) != (height, width):
            images = F.interpolate(
                images, size=(out_h, out_w), mode="bicubic", antialias=True, align_corners=False
            )
        top, left = (out_h - self.size) // 2, (out_w - self.size) // 2
        images = images[:, :, top : top + self.size, left : left + self.size]
        # Bicubic overshoots at edges; PIL, which these models were trained with, clips to the pixel range.
        images = images.clamp(0, 255) / 255
        mean = torch.tensor(self.mean, device=images.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=images.device).view(1, 3, 1, 1)
        return (images - mean) / std


class BatchBackoff:
    """Runs work in batches; on CUDA out-of-memory halves the batch size, for good, and retries."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def map(self, step: Callable[[int, int], T], total: int) -> list[T]:
        """``step(start, stop)`` over consecutive slices that cover range(total); the results in order.

        Raises EmbedderError when even a batch of one runs out of memory.
        """
        results: list[T] = []
        start = 0
        while start < total:
            stop = min(total, start + self.batch_size)
            failed = False
            try:
                results.append(step(start, stop))
            except torch.OutOfMemoryError:
                failed = True
            if failed:
                self._shrink(stop - start)  # outside the handler: the failed batch's tensors are freed
            else:
                start = stop
        return results

    def _shrink(self, failed_size: int) -> None:
        if failed_size == 1:
            raise EmbedderError(
                "out of GPU memory even one item at a time; free GPU memory, pick a smaller "
                "model or use device cpu"
            )
        self.batch_size = failed_size // 2
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        log.warning(
            "out of GPU memory embedding %d items at a time; using %d from now on",
            failed_size,
            self.batch_size,
        )


class ClipEmbedder:
    """Frame and text embeddings from a CLIP or SigLIP model; build one with ``load_clip``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        preprocess: ImagePreprocess,
        text_padding: str,
        name: str,
        batch_size: int,
    ) -> None:
        self._model = model
        self._tokenizer = tokenizer
        self._preprocess = preprocess
        self._text_padding = text_padding
        self._max_tokens = int(model.config.text_config.max_position_embeddings)
        self._batches = BatchBackoff(batch_size)
        # One blank frame gives the embedding width whatever the family, and proves the model runs on
        # this device and dtype before any video is decoded.
        blank = np.zeros((1, preprocess.size, preprocess.size, 3), dtype=np.uint8)
        self.dim = int(self._images(blank).shape[1])
        crop = "crop" if preprocess.center_crop else "squash"
        dtype = str(model.dtype).removeprefix("torch.")
        self.id = f"{name}:{preprocess.size}px-{crop}:{dtype}"

    def embed_images(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(n, height, width, 3) uint8 RGB frames -> (n, dim) float32 rows of unit length."""
        check_pixels(pixels)
        return self._stack(
            self._batches.map(lambda start, stop: self._images(pixels[start:stop]), len(pixels))
        )

    def embed_texts(self, texts: list[str]) -> npt.NDArray[np.float32]:
        """n texts -> (n, dim) float32 rows of unit length; longer texts are cut at the model's limit."""
        return self._stack(self._batches.map(lambda start, stop: self._texts(texts[start:stop]), len(texts)))

    def _images(self, pixels: npt.NDArray[np.uint8]) -> torch.Tensor:
        # torch.tensor copies: frames may come read-only or strided from the decoder.
        frames = torch.tensor(pixels).to(self._model.device)
        with torch.inference_mode():
            images = self._preprocess(frames).to(self._model.dtype)
            return _unit_rows(self._model.get_image_features(pixel_values=images))

    def _texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self._tokenizer(
            texts,
            padding=self._text_padding,
            truncation=True,
            max_length=self._max_tokens,
            return_tensors="pt",
        )
        inputs = {
            key: tokens[key].to(self._model.device)
            for key in ("input_ids", "attention_mask")
            if key in tokens
        }
        with torch.inference_mode():
            return _unit_rows(self._model.get_text_features(**inputs))

    def _stack(self, rows: list[torch.Tensor]) -> npt.NDArray[np.float32]:
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        stacked: npt.NDArray[np.float32] = torch.cat(rows).numpy()
        return stacked


def _unit_rows(output: Any) -> torch.Tensor:
    """Projected embeddings as float32 unit rows on the CPU.

    transformers 4 returns the projected tensor; transformers 5 returns a model output whose
    ``pooler_output`` holds it.
    """
    features = output if isinstance(output, torch.Tensor) else output.pooler_output
    return F.normalize(features.float(), dim=-1).cpu()


def load_clip(source: ModelSource, options: EmbedOptions) -> ClipEmbedder:
    """Load a CLIP or SigLIP model from ``source.local_dir``, or from ``source.hub_id`` when that folder
    does not exist. Raises EmbedderError, saying what to do, when no usable model is found."""
    device = resolve_device(options.device)  # before any download: a wrong device fails at once
    folder = _model_folder(source)
    model_type = _check_folder(folder)
    family = FAMILIES[model_type]
    model, tokenizer = _load_parts(folder, resolve_dtype(options.dtype, device))
    preprocess = _image_preprocess(folder, family, int(model.config.vision_config.image_size))
    name = f"{model_type}:{source.label}@{_fingerprint(folder)}"
    return ClipEmbedder(
        model.to(device).eval(), tokenizer, preprocess, family.text_padding, name, options.batch_size
    )


def resolve_device(name: str) -> torch.device:
    """ "auto" -> the first of cuda, mps and cpu that is present; a device named outright must be present."""
    if name == "auto":
        name = next(kind for kind, available in _DEVICES.items() if available())
    elif not _DEVICES[name]():
        raise EmbedderError(
            f"device {name!r} is not available to torch {torch.__version__} on this machine; "
            "use device auto or cpu"
        )
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """ "auto" -> float16 on CUDA, float32 elsewhere (half precision is slow or unsupported off CUDA)."""
    if name == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return _DTYPES[name]


def _model_folder(source: ModelSource) -> Path:
    if source.local_dir.is_dir():
        return source.local_dir
    if source.local_dir.exists():
        raise EmbedderError(
            f"{source.local_dir}: not a folder; give a folder holding a CLIP or SigLIP "
            "model saved with save_pretrained"
        )
    if source.hub_id is None:
        raise EmbedderError(
            f"{source.local_dir}: no such folder; give a folder holding a CLIP or SigLIP "
            f"model saved with save_pretrained, or one of: {', '.join(REGISTRY)}"
        )
    return _download(source.hub_id, source.local_dir)


def _download(hub_id: str, local_dir: Path) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(hub_id, allow_patterns=list(_MODEL_FILES)))
    except OSError as exc:
        raise EmbedderError(
            f"cannot download {hub_id} ({_first_line(exc)}); without a network, save the "
            f"model with save_pretrained into {local_dir}/ on another machine and copy "
            "that folder here"
        ) from None


def _check_folder(folder: Path) -> str:
    """The folder's model_type, once it is known to hold a supported model with safetensors weights."""
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise EmbedderError(
            f"{folder}: no config.json, so no model saved with save_pretrained; give a "
            "folder holding a CLIP or SigLIP model"
        )
    model_type = _read_json(config_file).get("model_type")
    if model_type not in FAMILIES:
        raise EmbedderError(
            f"{folder}: holds a {model_type!r} model; frames can be embedded only by "
            f"model types {', '.join(FAMILIES)}"
        )
    if not any(folder.glob("*.safetensors")):
        raise EmbedderError(
            f"{folder}: no .safetensors weights, and pickled weights (.bin, .pt) are not "
            "loaded; re-save the model with save_pretrained(folder, safe_serialization=True)"
        )
    if not any((folder / name).is_file() for name in _TOKENIZER_FILES):
        raise EmbedderError(
            f"{folder}: no tokenizer ({' or '.join(_TOKENIZER_FILES)}); save the model's "
            "tokenizer or processor into the folder with save_pretrained too"
        )
    return str(model_type)


def _load_parts(folder: Path, dtype: torch.dtype) -> tuple[Any, Any]:
    from safetensors import SafetensorError
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    # Our stderr carries one-line warnings and our own progress bars, not transformers' loading bars.
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    # ImportError comes from a tokenizer whose library is missing (SigLIP's needs sentencepiece).
    try:
        model = AutoModel.from_pretrained(folder, use_safetensors=True, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, ImportError, SafetensorError) as exc:
        raise EmbedderError(f"{folder}: cannot load the model or its tokenizer ({_first_line(exc)})") from exc
    return model, tokenizer


def _image_preprocess(folder: Path, family: Family, size: int) -> ImagePreprocess:
    """Mean, std and cropping from the folder's preprocessor_config.json, else the family's standard."""
    config_file = folder / "preprocessor_config.json"
    if config_file.is_file():
        settings = _read_json(config_file)
    else:
        log.warning(
            "%s: no preprocessor_config.json; using the standard mean, std and cropping of its model family",
            folder,
        )
        settings = {}
    return ImagePreprocess(
        size=size,
        mean=_per_channel(settings.get("image_mean", family.image_mean)),
        std=_per_channel(settings.get("image_std", family.image_std)),
        center_crop=bool(settings.get("do_center_crop", family.center_crop)),
    )


def _per_channel(value: Any) -> tuple[float, ...]:
    """A per-channel setting, which configs give as a list of three or as one number for all."""
    values = value if isinstance(value, (list, tuple)) else [value] * 3
    return tuple(float(item) for item in values)


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmbedderError(f"{file}: cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise EmbedderError(f"{file}: holds JSON but not an object of settings")
    return data


def _fingerprint(folder: Path) -> str:
    """12 hex digits that change when the model's files do (their names and content fingerprints).

    It goes into the embedder id, so re-saving a different model under the same folder name cannot
    reuse embeddings cached for the old one.
    """
    from videoqa.store.cache import fingerprint

    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        if file.is_file() and any(file.match(pattern) for pattern in _MODEL_FILES):
            digest.update(f"{file.name}\0{fingerprint(file)}\0".encode())
    return digest.hexdigest()[:12]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
