"""The command-line options that choose models and channels, shared by ``ask``, ``caption`` and ``chat``."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from videoqa.cli.util import UserError, check_device
from videoqa.cli.visual import embedder_option
from videoqa.store.devices import DEVICES, QUANTIZATIONS
from videoqa.store.registry import (
    DEFAULT_LLM,
    DEFAULT_SPEECH_MODEL,
    FAST_LLM,
    FAST_SPEECH_MODEL,
    default_llm,
    default_speech_model,
)

if TYPE_CHECKING:
    from videoqa.assistant import AssistantOptions

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelChoice:
    """The model options ``ask``, ``caption`` and ``chat`` share, as the command line gave them."""

    model: str | None  # None: the default (or, with ``fast``, the small one)
    embedder: str
    speech_model: str | None
    fast: bool
    no_speech: bool
    no_screen_text: bool
    device: str
    quantize: str
    bridge: Path | None
    no_memory: bool


def model_options(command: F) -> F:
    """The options that choose the models and channels, shared by ``ask``, ``caption`` and ``chat``."""
    decorators: list[Callable[[Any], Any]] = [
        click.option(
            "--model",
            default=lambda: os.environ.get("VIDEOQA_MODEL"),
            show_default=f"{DEFAULT_LLM}, or $VIDEOQA_MODEL",
            help="Language model: a model-store name, a .gguf file or folder (with an mmproj*.gguf "
            "beside it for a model that sees), a transformers VLM folder (checkpoints/NAME) "
            "or VLM name (videoqa models list).",
        ),
        embedder_option,
        click.option(
            "--speech-model",
            default=None,
            show_default=f"{DEFAULT_SPEECH_MODEL}, or $VIDEOQA_SPEECH_MODEL",
            help="Speech model: a model-store name, a faster-whisper size (small.en, ...) or a folder.",
        ),
        click.option(
            "--fast",
            is_flag=True,
            help=f"The small models ({FAST_LLM}, {FAST_SPEECH_MODEL}) where --model or "
            "--speech-model does not choose: faster, about a quarter of the download, weaker "
            "answers (docs/models.md).",
        ),
        click.option("--no-speech", is_flag=True, help="Leave the speech channel out."),
        click.option("--no-screen-text", is_flag=True, help="Leave the on-screen text (OCR) channel out."),
        click.option(
            "--device",
            type=click.Choice(DEVICES),
            default="auto",
            show_default=True,
            callback=check_device,
            help="Where the models run.",
        ),
        click.option(
            "--quantize",
            type=click.Choice(QUANTIZATIONS),
            default="none",
            show_default=True,
            help="Load a transformers VLM's weights in 4 or 8 bits (bitsandbytes).",
        ),
        click.option(
            "--bridge",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="Learned memory-bridge weights (.safetensors); default: the training-free bridge.",
        ),
        click.option(
            "--no-memory",
            is_flag=True,
            help="Carry no memory from scene to scene (no memory tokens, no rolling summary).",
        ),
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return command


def assistant_options(choice: ModelChoice, **more: Any) -> AssistantOptions:
    """The assistant's options from the shared model options (and any other field by name)."""
    from videoqa.assistant import AssistantOptions
    from videoqa.channels.ocr import OcrOptions
    from videoqa.channels.speech import SpeechOptions
    from videoqa.respond.captions import CaptionOptions
    from videoqa.respond.videollm import VisualOptions

    if choice.bridge is not None and not choice.bridge.is_file():
        raise UserError(f"{choice.bridge}: no such memory-bridge file")
    memory = not choice.no_memory
    llm = choice.model or (FAST_LLM if choice.fast else default_llm())
    speech_model = choice.speech_model or (FAST_SPEECH_MODEL if choice.fast else default_speech_model())
    return AssistantOptions(
        llm=llm,
        embedder=choice.embedder,
        device=choice.device,
        quantize=choice.quantize,
        bridge=str(choice.bridge) if choice.bridge is not None else None,
        speech=None if choice.no_speech else SpeechOptions(model=speech_model),
        ocr=None if choice.no_screen_text else OcrOptions(),
        visual=VisualOptions(memory=memory),
        captioning=CaptionOptions(memory=memory),
        **more,
    )
