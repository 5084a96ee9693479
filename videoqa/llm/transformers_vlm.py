"""Vision-language models through transformers: LLaVA, LLaVA-NeXT, SmolVLM (Idefics3), Qwen2.5-VL, ...

The backend for visual tokens: besides frames, ``generate`` takes tokens already in the language model's
input-embedding space (memory tokens, pooled scene tokens) and splices them in where the model's own image
placeholders would sit, so a model reads them exactly as it reads the output of its own vision tower.

Loading is generic (``AutoProcessor`` + ``AutoModelForImageTextToText``); weights are read only from
safetensors. torch and transformers are imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from videoqa.llm.base import VISUAL_SLOT, Frame, GenerationOptions, LlmError, LlmOptions, Message
from videoqa.store import registry
from videoqa.store.registry import CHECKPOINTS_DIR, HUB_PREFIX

# What a download fetches: configs, safetensors weights, tokenizer and chat-template files; never pickles.
_MODEL_FILES = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken")
_PICKLED_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
# The inputs a processor makes for pictures that get_image_features takes, across the supported families.
_VISION_INPUTS = ("pixel_values", "image_sizes", "pixel_attention_mask", "image_grid_thw", "batch_num_images")
# A backstop against a generation thread that stops producing tokens without failing: a 7B model on a
# slow CPU reading a long prompt takes minutes for its first token, so this is generous.
_TOKEN_TIMEOUT_S = 900.0
_TRUE_WORDS = ("1", "ON", "YES", "TRUE")  # how huggingface_hub reads a yes in an environment variable


@dataclass(frozen=True)
class VlmSpec:
    """A registered vision-language model."""

    hub_id: str  # the hub repository a networked machine downloads it from
    family: str  # the architecture (config model_type), for listings
    summary: str  # one line for listings


# The vision-language models of the model registry, by name.
VLM_REGISTRY: dict[str, VlmSpec] = {
    name: VlmSpec(spec.source.hub_id, spec.source.architecture, spec.summary)
    for name, spec in registry.of_kind(registry.VISION).items()
    if isinstance(spec.source, registry.Hub)
}


def resolve_vlm_source(name: str) -> str | None:
    """Where the vision-language model called ``name`` comes from, as ``load_transformers_vlm`` takes it.

    A registered name (or its hub id) -> checkpoints/NAME/ when that folder exists, else the hub id;
    ``hf-hub:ORG/MODEL`` -> that hub id; a folder holding a config.json (given as a path or under
    checkpoints/) -> that folder. None for anything else, so other backends can be tried.
    """
    registered = next((key for key, spec in VLM_REGISTRY.items() if name in (key, spec.hub_id)), None)
    if registered is not None:
        local = CHECKPOINTS_DIR / registered
        return str(local) if local.is_dir() else VLM_REGISTRY[registered].hub_id
    if name.startswith(HUB_PREFIX):
        hub_id = name.removeprefix(HUB_PREFIX).strip("/")
        return hub_id or None
    for folder in (Path(name).expanduser(), CHECKPOINTS_DIR / name):
        if (folder / "config.json").is_file():
            return str(folder)
    return None


def check_transformers_vlm(source: str, options: LlmOptions) -> None:
    """Everything ``load_transformers_vlm`` checks before it reads weights (the device, the quantisation,
    the folder and its config; a hub id is downloaded): raises LlmError as it would."""
    _prepare(source, options)


def load_transformers_vlm(source: str, options: LlmOptions) -> TransformersVlm:
    """Load a vision-language model from a folder saved with save_pretrained (a user's checkpoints/NAME/)
    or from a hub id (ORG/NAME). Raises LlmError, as one line saying what to do, when it cannot."""
    import torch

    device, dtype, quantization, folder = _prepare(source, options)
    processor = _load_processor(folder)
    if options.threads:  # 0 leaves torch's own choice: one thread a physical core
        torch.set_num_threads(options.threads)
    model = _load_model(folder, dtype, _device_map(options.device, device), quantization)
    model_id = f"transformers:{source}@{_weights_fingerprint(folder)}:{options.quantize}:{_dtype_name(dtype)}"
    text_config = model.config.get_text_config()
    positions = getattr(text_config, "max_position_embeddings", None) or options.context_tokens
    return TransformersVlm(model, processor, model_id, min(options.context_tokens, int(positions)))


def _prepare(source: str, options: LlmOptions) -> tuple[str, Any, Any, Path]:
    """The device, dtype, quantisation config and local folder of a model about to load, each checked."""
    device = _resolve_device(options.device)
    dtype = _resolve_dtype(options.dtype, device)
    quantization = _quantization_config(options.quantize, device, dtype)
    folder = _model_folder(source)
    _check_folder(folder)
    _check_reads_pictures(folder)
    return device, dtype, quantization, folder


class TransformersVlm:
    """A transformers image-text-to-text model and its processor, behind ``VisualGenerator``."""

    def __init__(self, model: Any, processor: Any, model_id: str, context_tokens: int) -> None:
        self._model = model
        self._processor = processor
        self._tokenizer = processor.tokenizer
        self._id = model_id
        self._context_tokens = context_tokens
        self._image_token, self._image_token_id = _image_placeholder(model, processor)

    @property
    def id(self) -> str:
        return self._id

    @property
    def context_tokens(self) -> int:
        return self._context_tokens

    @property
    def hidden_size(self) -> int:
        return int(self._model.get_input_embeddings().weight.shape[-1])

    @property
    def accepts_visual_tokens(self) -> bool:
        return True

    def count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def image_tokens(self, frames: Sequence[Frame]) -> list[npt.NDArray[np.float32]]:
        """Each frame through the processor, the vision tower and the projector: one (tokens, hidden_size)
        float32 array a frame, rows in the order the model fills its image placeholders with them."""
        import torch

        tokens = []
        with torch.no_grad():
            for frame in frames:
                vision = self._vision_inputs(
                    self._processor.image_processor(images=[_picture(frame)], return_tensors="pt")
                )
                features = self._model.get_image_features(**vision)
                rows = _token_rows(features, self.hidden_size)
                tokens.append(rows.float().cpu().numpy())
        return tokens

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        images: Sequence[Frame] = (),
        visual_tokens: npt.NDArray[np.float32] | None = None,
    ) -> Iterator[str]:
        """The reply, piece by piece. Inputs are checked here, before the first piece is asked for."""
        if len(images) > 0 and visual_tokens is not None:
            raise ValueError("give images or visual_tokens, not both")
        if visual_tokens is not None:
            inputs = self._embedded_inputs(messages, _checked_tokens(visual_tokens, self.hidden_size))
        else:
            inputs = self._native_inputs(messages, images)
        return self._stream(inputs, options)

    def _native_inputs(self, messages: Sequence[Message], images: Sequence[Frame]) -> dict[str, Any]:
        """Token ids and pixels made by the model's own processor, as its model card shows."""
        prompt = self._render(messages, image_parts=len(images))
        pictures = [_picture(frame) for frame in images] or None  # None: a text-only turn
        inputs = self._processor(
            text=prompt,
            images=pictures,
            return_tensors="pt",
            add_special_tokens=self._adds_special_tokens(prompt),
        )
        return {
            **self._vision_inputs(inputs),
            "input_ids": inputs["input_ids"].to(self._model.device),
            "attention_mask": inputs["attention_mask"].to(self._model.device),
        }

    def _embedded_inputs(
        self, messages: Sequence[Message], visual_tokens: npt.NDArray[np.float32]
    ) -> dict[str, Any]:
        """Input embeddings with ``visual_tokens`` written over n image placeholders, which sit where the
        last user message holds VISUAL_SLOT, else where the chat template puts a picture."""
        import torch

        prompt = self._prompt_with_placeholders(messages, len(visual_tokens))
        ids = self._tokenizer(
            prompt, add_special_tokens=self._adds_special_tokens(prompt), return_tensors="pt"
        )["input_ids"].to(self._model.device)
        placeholders = ids[0] == self._image_token_id
        if int(placeholders.sum()) != len(visual_tokens):
            raise ValueError(
                f"the messages themselves hold the model's image token {self._image_token!r}; "
                "remove it from the text"
            )
        with torch.no_grad():
            embeddings = self._model.get_input_embeddings()(ids)
            rows = torch.from_numpy(visual_tokens).to(embeddings.device, embeddings.dtype)
            embeddings[0, placeholders] = rows
        return {"inputs_embeds": embeddings, "attention_mask": torch.ones_like(ids)}

    def _prompt_with_placeholders(self, messages: Sequence[Message], count: int) -> str:
        last_user = _last_user_index(messages)
        placeholders = self._image_token * count
        if VISUAL_SLOT not in messages[last_user].content:
            # The template's own picture markup (e.g. Qwen's vision start/end tokens) stays around them.
            return self._render(messages, image_parts=1).replace(self._image_token, placeholders)
        if messages[last_user].content.count(VISUAL_SLOT) > 1:
            raise ValueError(f"the last user message holds {VISUAL_SLOT} more than once")
        earlier = sum(message.content.count(VISUAL_SLOT) for message in messages[:last_user])
        pieces = self._render(messages, image_parts=0).split(VISUAL_SLOT)
        return (
            VISUAL_SLOT.join(pieces[: earlier + 1]) + placeholders + VISUAL_SLOT.join(pieces[earlier + 1 :])
        )

    def _render(self, messages: Sequence[Message], image_parts: int) -> str:
        chat = _chat(messages, image_parts)
        return str(self._processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))

    def _adds_special_tokens(self, prompt: str) -> bool:
        """The processor's own rule: a template that starts with the BOS token has added it already."""
        bos = self._tokenizer.bos_token
        return not (bos is not None and prompt.startswith(bos))

    def _vision_inputs(self, inputs: Any) -> dict[str, Any]:
        """The picture inputs among a processor's outputs, on the model's device; pixels in its dtype."""
        import torch

        moved = {}
        for name in _VISION_INPUTS:
            value = inputs.get(name)
            if isinstance(value, torch.Tensor):
                value = value.to(self._model.device)
                value = value.to(self._model.dtype) if value.is_floating_point() else value
            if value is not None:
                moved[name] = value
        return moved

    def _stream(self, inputs: dict[str, Any], options: GenerationOptions) -> Iterator[str]:
        """Run model.generate in a worker thread and pass on its text as it comes."""
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(
            self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=_TOKEN_TIMEOUT_S
        )
        stop = threading.Event()
        failures: list[BaseException] = []
        settings = {
            **inputs,
            **_decoding_settings(options, self._tokenizer),
            "streamer": streamer,
            "stopping_criteria": [_StopWhenSet(stop)],
        }
        worker = threading.Thread(
            target=_generate_into, daemon=True, args=(self._model, settings, options, streamer, failures)
        )
        worker.start()
        try:
            yield from _pieces(streamer)
        finally:
            stop.set()  # a caller that stops reading early stops the generation too
        worker.join()
        if failures:
            raise LlmError(f"{self._id}: generation failed ({_first_line(failures[0])})") from failures[0]


class _StopWhenSet:
    """A stopping criterion that ends generation once ``event`` is set."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        batch = input_ids.shape[0]
        return torch.full((batch,), self._event.is_set(), dtype=torch.bool, device=input_ids.device)


def _generate_into(
    model: Any,
    settings: dict[str, Any],
    options: GenerationOptions,
    streamer: Any,
    failures: list[BaseException],
) -> None:
    """The worker thread: generate into ``streamer``; on failure record why and end the stream."""
    import torch

    try:
        if options.temperature > 0:
            torch.manual_seed(options.seed)
        with torch.no_grad():
            model.generate(**settings)
    except Exception as exc:  # handed to the reading thread, which raises it as LlmError
        failures.append(exc)
        streamer.end()


def _pieces(streamer: Any) -> Iterator[str]:
    iterator = iter(streamer)
    while True:
        try:
            piece = next(iterator)
        except StopIteration:
            return
        except queue.Empty:
            raise LlmError(f"the model produced no token for {_TOKEN_TIMEOUT_S:.0f} s; giving up") from None
        if piece:
            yield str(piece)


def _decoding_settings(options: GenerationOptions, tokenizer: Any) -> dict[str, Any]:
    """generate() arguments: greedy at temperature 0, else sampling (seeded in the worker)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    settings: dict[str, Any] = {"max_new_tokens": options.max_tokens, "pad_token_id": pad}
    if options.temperature > 0:
        return {**settings, "do_sample": True, "temperature": options.temperature}
    return {**settings, "do_sample": False}


def _chat(messages: Sequence[Message], image_parts: int) -> list[dict[str, Any]]:
    """Messages as chat-template input: content as typed parts, pictures before the last user text."""
    if not messages:
        raise ValueError("messages must hold at least one message")
    last_user = _last_user_index(messages) if image_parts else -1
    chat = []
    for index, message in enumerate(messages):
        parts: list[dict[str, str]] = [{"type": "text", "text": message.content}]
        if index == last_user:
            parts = [{"type": "image"} for _ in range(image_parts)] + parts
        chat.append({"role": message.role, "content": parts})
    return chat


def _last_user_index(messages: Sequence[Message]) -> int:
    users = [index for index, message in enumerate(messages) if message.role == "user"]
    if not users:
        raise ValueError("pictures and visual tokens go with a user message, and there is none")
    return users[-1]


def _checked_tokens(visual_tokens: npt.NDArray[np.float32], hidden_size: int) -> npt.NDArray[np.float32]:
    tokens = np.asarray(visual_tokens)
    if tokens.ndim != 2 or tokens.shape[1] != hidden_size or len(tokens) == 0:
        raise ValueError(
            f"visual_tokens must be a (n, {hidden_size}) array with n >= 1 (the model's "
            f"hidden size), got shape {tokens.shape}"
        )
    return np.ascontiguousarray(tokens, dtype=np.float32)


def _picture(frame: Frame) -> Any:
    from PIL import Image

    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
        shape = getattr(frame, "shape", None)
        raise ValueError(f"a frame must be a (height, width, 3) uint8 RGB array, got {shape}")
    return Image.fromarray(frame)


def _token_rows(features: Any, width: int) -> Any:
    """get_image_features' result as one (tokens, width) tensor. Families return a tensor, a list of
    per-picture (or per-tile) tensors, or a model output whose pooler_output holds one of those."""
    import torch

    if not isinstance(features, torch.Tensor) and hasattr(features, "pooler_output"):
        features = features.pooler_output
    if isinstance(features, (list, tuple)):
        return torch.cat([part.reshape(-1, width) for part in features])
    return features.reshape(-1, width)


def _image_placeholder(model: Any, processor: Any) -> tuple[str, int]:
    """The token a picture's features are scattered over: its text, and its id in the model's config."""
    config = model.config
    token_id = getattr(config, "image_token_id", None)
    if token_id is None:
        token_id = getattr(config, "image_token_index", None)
    token = getattr(processor, "image_token", None)
    if token_id is None or token is None:
        raise LlmError(
            f"{type(model).__name__}: no image token in its config or processor, so pictures "
            "and visual tokens have nowhere to go"
        )
    return str(token), int(token_id)


def _resolve_device(name: str) -> str:
    """ "auto" -> cuda when torch sees a GPU, else cpu; "cuda" must be present."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise LlmError(
            f"device cuda asked for, but torch {torch.__version__} sees no CUDA GPU; use device auto or cpu"
        )
    return name


def _resolve_dtype(name: str, device: str) -> Any:
    """ "auto" -> bf16 on a GPU that has it, else fp16 there; fp32 on the CPU (half precision is slow)."""
    import torch

    if name != "auto":
        return getattr(torch, name)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def _device_map(asked: str, device: str) -> Any:
    """accelerate spreads the layers over the GPUs (and the CPU when they are full) only on "auto"."""
    if device == "cpu":
        return {"": "cpu"}
    return "auto" if asked == "auto" else {"": 0}


def _quantization_config(quantize: str, device: str, dtype: Any) -> Any:
    if quantize == "none":
        return None
    _check_bitsandbytes(quantize, device)
    from transformers import BitsAndBytesConfig

    if quantize == "4bit":
        return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
    return BitsAndBytesConfig(load_in_8bit=True)  # type: ignore[no-untyped-call]


def _check_bitsandbytes(quantize: str, device: str) -> None:
    """Refuse a quantised load that bitsandbytes cannot do on ``device``, before any weights are read."""
    try:
        import bitsandbytes
    except (ImportError, RuntimeError) as exc:
        raise LlmError(
            f"quantize {quantize} needs bitsandbytes, which cannot be imported "
            f"({_first_line(exc)}); install it or use quantize none"
        ) from None
    # Versions before the multi-backend work only know CUDA and do not list their devices.
    supported = getattr(bitsandbytes, "supported_torch_devices", {"cuda"})
    # On the CPU, 8-bit matmuls log a cast to float16 on every call: one line a token, nothing to act on.
    logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    if device not in supported:
        version = getattr(bitsandbytes, "__version__", "?")
        raise LlmError(
            f"bitsandbytes {version} cannot run quantize {quantize} on {device} (it supports "
            f"{', '.join(sorted(supported))}); upgrade it, or use quantize none"
        )


def _model_folder(source: str) -> Path:
    """The local folder of ``source``: itself when it is a path, else its downloaded hub snapshot."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise LlmError(f"{path}: not a folder; give the folder a vision-language model was saved into")
    if _looks_like_hub_id(source):
        return _download(source)
    raise LlmError(
        f"{path}: no such folder; put a vision-language model saved with save_pretrained there, "
        f"or name one of: {', '.join(VLM_REGISTRY)}"
    )


def _looks_like_hub_id(source: str) -> bool:
    parts = source.split("/")
    return (
        len(parts) == 2
        and all(parts)
        and not source.startswith((".", "~"))
        and Path(parts[0]) != CHECKPOINTS_DIR
    )


def _download(hub_id: str) -> Path:
    from huggingface_hub import snapshot_download

    local_dir = CHECKPOINTS_DIR / _local_name(hub_id)
    try:
        folder = snapshot_download(hub_id, allow_patterns=list(_MODEL_FILES), local_files_only=_hub_offline())
    except OSError as exc:
        raise LlmError(
            f"cannot download {hub_id} ({_first_line(exc)}); without a network, save the model "
            f"with save_pretrained into {local_dir}/ elsewhere and copy it here"
        ) from None
    return Path(folder)


def _local_name(hub_id: str) -> str:
    """The checkpoints/ folder name a hub id is looked for under: its registry name, else its last part."""
    registered = next((name for name, spec in VLM_REGISTRY.items() if spec.hub_id == hub_id), None)
    return registered or hub_id.rsplit("/", 1)[-1]


def _hub_offline() -> bool:
    """HF_HUB_OFFLINE as it is now; huggingface_hub reads it once, when first imported."""
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE_WORDS


def _check_folder(folder: Path) -> None:
    """Refuse a folder that holds no config.json or no safetensors weights, before transformers reads it."""
    config = folder / "config.json"
    if not config.is_file():
        raise LlmError(
            f"{folder}: no config.json, so no model saved with save_pretrained; give a folder "
            "holding a vision-language model"
        )
    try:
        json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LlmError(f"{config}: cannot be read as JSON ({_first_line(exc)})") from None
    if any(folder.glob("*.safetensors")):
        return
    if any(any(folder.glob(pattern)) for pattern in _PICKLED_WEIGHTS):
        raise LlmError(
            f"{folder}: holds only pickled weights (pytorch_model.bin), which are not loaded "
            "because unpickling can run code; re-save them with save_pretrained(folder, "
            "safe_serialization=True)"
        )
    raise LlmError(f"{folder}: no .safetensors weights; save the model with save_pretrained into it")


def _check_reads_pictures(folder: Path) -> None:
    """Refuse a text-only (or unknown) architecture from its config, before reading any weights."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise LlmError(f"{folder}: cannot read its config.json ({_first_line(exc)})") from None
    if config.model_type not in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        raise LlmError(
            f"{folder}: holds a {config.model_type!r} model, which does not read pictures; give "
            "a vision-language model (image-text-to-text)"
        )


def _load_processor(folder: Path) -> Any:
    from transformers import AutoProcessor

    _quiet_transformers()
    try:
        return AutoProcessor.from_pretrained(folder)  # type: ignore[no-untyped-call]
    except ImportError as exc:
        if importlib.util.find_spec("torchvision") is None:
            raise LlmError(
                f"{folder}: the model's processor needs torchvision, which is not installed; "
                "pip install torchvision (the build that matches your torch)"
            ) from None
        raise LlmError(f"{folder}: cannot build the model's processor ({_first_line(exc)})") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LlmError(f"{folder}: cannot build the model's processor ({_first_line(exc)})") from None


def _load_model(folder: Path, dtype: Any, device_map: Any, quantization: Any) -> Any:
    from safetensors import SafetensorError
    from transformers import AutoModelForImageTextToText

    try:
        model: Any = AutoModelForImageTextToText.from_pretrained(
            folder, use_safetensors=True, dtype=dtype, device_map=device_map, quantization_config=quantization
        )
    except (OSError, ValueError, KeyError, TypeError, ImportError, RuntimeError, SafetensorError) as exc:
        raise LlmError(
            f"{folder}: cannot load it as an image-text-to-text model ({_first_line(exc)})"
        ) from None
    return model.eval()


def _quiet_transformers() -> None:
    """Our stderr carries one-line warnings and our own progress, not transformers' loading bars."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def _weights_fingerprint(folder: Path) -> str:
    """12 hex digits that change when a weight file is replaced (names, sizes and modification times)."""
    digest = hashlib.sha256()
    for file in sorted(folder.glob("*.safetensors")):
        stat = file.stat()
        digest.update(f"{file.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
