"""Finding and loading a language model by name: model-store names, GGUF files, checkpoints/ folders."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from videoqa.llm.base import DEFAULT_LLM, LlmError, LlmOptions, TextGenerator

CHECKPOINTS_DIR = Path("checkpoints")
StoreFetcher = Callable[[str], Path]  # a model-store name -> its installed folder


def load_llm(name_or_path: str = DEFAULT_LLM, options: LlmOptions | None = None,
             fetch: StoreFetcher | None = None) -> TextGenerator:
    """Load a model: a model-store name (installed through ``fetch`` when missing), a ``.gguf`` file, or a
    folder under ``checkpoints/`` (or anywhere) that holds exactly one ``.gguf`` file."""
    from videoqa.llm.llama_cpp import LlamaCppGenerator

    return LlamaCppGenerator(_gguf_path(name_or_path, fetch), options or LlmOptions())


def _gguf_path(name_or_path: str, fetch: StoreFetcher | None) -> Path:
    from videoqa import models

    spec = models.REGISTRY.get(name_or_path)
    if spec is not None:
        if spec.task != "answer":
            raise LlmError(f"{name_or_path} is a {spec.task} model, not a language model")
        folder = (fetch or models.model_dir)(name_or_path)
        return folder / spec.files[0].path
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
    known = ", ".join(n for n, s in models.REGISTRY.items() if s.task == "answer")
    raise LlmError(f"{name_or_path}: no such file or folder, and not a known model ({known})")
