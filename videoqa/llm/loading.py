"""Finding and loading a language model by name: model-store names, GGUF files (with an ``mmproj*.gguf``
beside them for a model that sees), transformers VLM folders under ``checkpoints/``, VLM names, hub ids."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from videoqa.llm.base import DEFAULT_LLM, LlmError, LlmOptions, TextGenerator
from videoqa.store.registry import ANSWER, CHECKPOINTS_DIR

StoreFetcher = Callable[[str], Path]  # a model-store name -> its installed folder


@dataclass(frozen=True)
class _Found:
    """Where a named model is and which backend reads it; nothing loaded yet."""

    vlm_source: str | None  # a transformers VLM's folder or hub id; None for a GGUF model
    gguf: Path | None = None
    projector: Path | None = None  # the GGUF model's vision projector, when it sees


def load_llm(
    name_or_path: str = DEFAULT_LLM, options: LlmOptions | None = None, fetch: StoreFetcher | None = None
) -> TextGenerator:
    """Load a model: a model-store name (installed through ``fetch`` when missing); a ``.gguf`` file, or
    a folder under ``checkpoints/`` (or anywhere) holding one — with a vision projector (``mmproj*.gguf``
    beside it, or ``options.mmproj``) it reads pictures too; or a transformers VLM: a folder with a
    ``config.json``, a VLM name from the model registry, or ``hf-hub:ORG/NAME``."""
    options = options or LlmOptions()
    found = _find(name_or_path, options, fetch)
    if found.vlm_source is not None:
        from videoqa.llm.transformers_vlm import load_transformers_vlm

        return load_transformers_vlm(found.vlm_source, options)
    assert found.gguf is not None
    if found.projector is not None:
        from videoqa.llm.llama_cpp_vision import LlamaCppVisionGenerator

        return LlamaCppVisionGenerator(found.gguf, found.projector, options)
    from videoqa.llm.llama_cpp import LlamaCppGenerator

    return LlamaCppGenerator(found.gguf, options)


def check_llm(
    name_or_path: str = DEFAULT_LLM, options: LlmOptions | None = None, fetch: StoreFetcher | None = None
) -> None:
    """Find the model ``load_llm`` would load and check it as ``load_llm`` does before reading weights
    (installing a missing store model through ``fetch``), raising the same LlmError: a wrong name fails
    at once while the weights are loaded only when an answer needs them."""
    from videoqa.llm.llama_cpp import check_gguf

    options = options or LlmOptions()
    found = _find(name_or_path, options, fetch)
    if found.vlm_source is not None:
        from videoqa.llm.transformers_vlm import check_transformers_vlm

        check_transformers_vlm(found.vlm_source, options)
        return
    for path in (found.gguf, found.projector):
        if path is not None:
            check_gguf(path)


def _find(name_or_path: str, options: LlmOptions, fetch: StoreFetcher | None) -> _Found:
    from videoqa.llm.transformers_vlm import resolve_vlm_source
    from videoqa.store import models

    if name_or_path not in models.REGISTRY:
        source = resolve_vlm_source(name_or_path)
        if source is not None:
            return _Found(vlm_source=source)
    if options.quantize != "none":
        raise LlmError(
            f"--quantize applies to transformers models; {name_or_path} is a GGUF model, "
            "which is quantised when it is made"
        )
    model = _gguf_path(name_or_path, fetch)
    return _Found(vlm_source=None, gguf=model, projector=_projector(model, options))


def _projector(model: Path, options: LlmOptions) -> Path | None:
    """The vision projector to load with ``model``: the one named, else one beside it, else none."""
    from videoqa.llm.llama_cpp_vision import find_mmproj

    if options.mmproj is None:
        return find_mmproj(model)
    path = Path(os.path.expanduser(options.mmproj))
    if not path.is_file():
        raise LlmError(f"{path}: no such vision projector (mmproj) file")
    return path


def _gguf_path(name_or_path: str, fetch: StoreFetcher | None) -> Path:
    from videoqa.store import models

    spec = models.REGISTRY.get(name_or_path)
    if spec is not None:
        if spec.kind != ANSWER:
            raise LlmError(f"{name_or_path} is a {spec.kind} model, not a language model")
        return models.main_file(name_or_path, (fetch or models.model_dir)(name_or_path))
    path = Path(os.path.expanduser(name_or_path))
    if not path.exists() and (CHECKPOINTS_DIR / name_or_path).exists():
        path = CHECKPOINTS_DIR / name_or_path
    if path.is_dir():
        ggufs = sorted(p for p in path.glob("*.gguf") if "mmproj" not in p.name.lower())
        if len(ggufs) != 1:
            raise LlmError(f"{path}: expected one .gguf model file in the folder, found {len(ggufs)}")
        return ggufs[0]
    if path.is_file():
        return path
    known = ", ".join(n for n, s in models.REGISTRY.items() if s.kind == ANSWER)
    raise LlmError(f"{name_or_path}: no such file or folder, and not a known model ({known})")
