"""The transformers vision-language backend on tiny random LLaVA-1.5, LLaVA-NeXT and Idefics3 models,
loaded from folders exactly as a user's checkpoints/NAME/ is, on the CPU and offline."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from videoqa.llm.base import (
    VISUAL_SLOT,
    GenerationOptions,
    LlmError,
    LlmOptions,
    Message,
    VisualGenerator,
    is_visual,
)
from videoqa.llm.transformers_vlm import (
    VLM_REGISTRY,
    TransformersVlm,
    load_transformers_vlm,
    resolve_vlm_source,
)

from vlm_models import FAMILIES, TEXT_HIDDEN, TEXT_POSITIONS, save_tiny_vlm

QUESTION = "What is in the picture?"
GREEDY = GenerationOptions(max_tokens=12)
# Wider than tall: LLaVA-NeXT picks a two-tile grid, Idefics3 splits it into tiles plus a global view.
FRAME = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
OTHER_FRAME = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def vlm_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each family's tiny model saved with save_pretrained into its own folder."""
    root = tmp_path_factory.mktemp("vlms")
    return {family: save_tiny_vlm(root / family, family) for family in FAMILIES}


@pytest.fixture(scope="session")
def vlms(vlm_dirs: dict[str, Path]) -> dict[str, TransformersVlm]:
    return {family: load_transformers_vlm(str(folder), LlmOptions()) for family, folder in vlm_dirs.items()}


def _reply(
    vlm: TransformersVlm, messages: list[Message], options: GenerationOptions = GREEDY, **visual: Any
) -> str:
    pieces = list(vlm.generate(messages, options, **visual))
    assert pieces and all(isinstance(piece, str) and piece for piece in pieces)
    return "".join(pieces)


def _one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


def _native_reply(folder: Path, frame: npt.NDArray[np.uint8], max_tokens: int) -> str:
    """The plain transformers recipe from a model card: processor, generate, decode; greedy."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor: Any = AutoProcessor.from_pretrained(folder)  # type: ignore[no-untyped-call]
    model: Any = AutoModelForImageTextToText.from_pretrained(folder, use_safetensors=True)
    chat = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]
    prompt = processor.apply_chat_template(chat, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=prompt, images=Image.fromarray(frame), return_tensors="pt")
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_tokens, do_sample=False)
    return str(
        processor.tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_loads_from_folder(family: str, vlms: dict[str, TransformersVlm], vlm_dirs: dict[str, Path]) -> None:
    vlm: VisualGenerator = vlms[family]
    assert is_visual(vlm) and vlm.accepts_visual_tokens
    assert vlm.id.startswith(f"transformers:{vlm_dirs[family]}@") and vlm.id.endswith(":none:float32")
    assert vlm.hidden_size == TEXT_HIDDEN
    assert vlm.context_tokens == TEXT_POSITIONS  # the model's limit, below the 4096 asked for
    assert 0 < vlm.count_tokens(QUESTION) < len(QUESTION)  # BPE merges learnt from the corpus


def test_context_is_the_smaller_of_options_and_model(vlm_dirs: dict[str, Path]) -> None:
    vlm = load_transformers_vlm(str(vlm_dirs["llava"]), LlmOptions(context_tokens=512))
    assert vlm.context_tokens == 512


def test_id_changes_when_the_weights_do(tmp_path: Path) -> None:
    folder = str(save_tiny_vlm(tmp_path / "m", "llava", seed=1))
    first = load_transformers_vlm(folder, LlmOptions())
    assert load_transformers_vlm(folder, LlmOptions()).id == first.id
    save_tiny_vlm(tmp_path / "m", "llava", seed=2)  # other weights under the same name
    assert load_transformers_vlm(folder, LlmOptions()).id != first.id
    assert load_transformers_vlm(folder, LlmOptions(dtype="bfloat16")).id.endswith(":none:bfloat16")


@pytest.mark.parametrize("family", FAMILIES)
def test_image_tokens_one_array_a_frame_as_many_rows_as_placeholders(
    family: str, vlms: dict[str, TransformersVlm], vlm_dirs: dict[str, Path]
) -> None:
    from PIL import Image
    from transformers import AutoProcessor

    processor: Any = AutoProcessor.from_pretrained(vlm_dirs[family])  # type: ignore[no-untyped-call]
    tokens = vlms[family].image_tokens([FRAME, OTHER_FRAME])
    assert len(tokens) == 2
    for frame, rows in zip([FRAME, OTHER_FRAME], tokens, strict=True):
        prompt = f"{processor.image_token}\n{QUESTION}"
        ids = processor(text=prompt, images=Image.fromarray(frame), return_tensors="pt")["input_ids"]
        placeholders = int((ids == processor.image_token_id).sum())
        assert rows.dtype == np.float32 and rows.shape == (placeholders, TEXT_HIDDEN)
        assert np.isfinite(rows).all()


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_streams_with_images_and_with_visual_tokens(
    family: str, vlms: dict[str, TransformersVlm]
) -> None:
    vlm = vlms[family]
    tokens = vlm.image_tokens([FRAME])[0]
    _reply(vlm, [Message("user", QUESTION)], images=[FRAME])
    _reply(vlm, [Message("user", QUESTION)], images=[FRAME, OTHER_FRAME])
    _reply(
        vlm,
        [Message("system", "Answer briefly."), Message("user", f"{VISUAL_SLOT}\n{QUESTION}")],
        visual_tokens=tokens,
    )
    _reply(vlm, [Message("user", QUESTION)], visual_tokens=tokens[:3])
    _reply(vlm, [Message("user", QUESTION)])


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_reply(family: str, vlms: dict[str, TransformersVlm]) -> None:
    vlm = vlms[family]
    messages = [Message("user", QUESTION)]

    def sampled(seed: int) -> str:
        options = GenerationOptions(max_tokens=12, temperature=1.0, seed=seed)
        return _reply(vlm, messages, options, images=[FRAME])

    assert sampled(1) == sampled(1)
    assert _reply(vlm, messages, images=[FRAME]) == _reply(vlm, messages, images=[FRAME])
    assert sampled(1) != sampled(2)  # the seed is really used: sampling happens


@pytest.mark.parametrize("family", ["llava", "llava_next"])
@pytest.mark.parametrize("question", [f"{VISUAL_SLOT}\n{QUESTION}", QUESTION], ids=["slot", "no-slot"])
def test_injected_image_tokens_answer_as_the_plain_model_does(
    family: str, question: str, vlms: dict[str, TransformersVlm], vlm_dirs: dict[str, Path]
) -> None:
    """A frame's own image tokens, injected as embeddings, give the very reply the unmodified model gives to
    that frame: the injection path adds nothing (memory off == plain model)."""
    vlm = vlms[family]
    tokens = vlm.image_tokens([FRAME])[0]
    native = _native_reply(vlm_dirs[family], FRAME, GREEDY.max_tokens)
    assert native.strip()
    assert _reply(vlm, [Message("user", question)], visual_tokens=tokens) == native
    assert _reply(vlm, [Message("user", QUESTION)], images=[FRAME]) == native
    # The injected rows are what the model reads: other rows, another reply.
    assert _reply(vlm, [Message("user", question)], visual_tokens=np.zeros_like(tokens)) != native


@pytest.mark.parametrize("quantize", ["4bit", "8bit"])
def test_quantized_load_generates_on_cpu(
    quantize: str, vlm_dirs: dict[str, Path], vlms: dict[str, TransformersVlm]
) -> None:
    vlm = load_transformers_vlm(str(vlm_dirs["llava"]), LlmOptions(device="cpu", quantize=quantize))
    assert f":{quantize}:" in vlm.id
    tokens = vlm.image_tokens([FRAME])[0]
    full = vlms["llava"].image_tokens([FRAME])[0]
    assert tokens.shape == full.shape and not np.array_equal(tokens, full)  # the weights really are quantised
    assert np.corrcoef(tokens.ravel(), full.ravel())[0, 1] > 0.9  # ... and still the same model
    _reply(vlm, [Message("user", QUESTION)], images=[FRAME])
    _reply(vlm, [Message("user", QUESTION)], visual_tokens=tokens)


def test_bad_visual_inputs_are_refused_before_generating(vlms: dict[str, TransformersVlm]) -> None:
    vlm = vlms["llava"]
    messages = [Message("user", QUESTION)]
    tokens = vlm.image_tokens([FRAME])[0]
    with pytest.raises(ValueError, match="hidden size"):
        vlm.generate(messages, GREEDY, visual_tokens=np.zeros((4, TEXT_HIDDEN + 1), np.float32))
    with pytest.raises(ValueError, match="hidden size"):
        vlm.generate(messages, GREEDY, visual_tokens=np.zeros(TEXT_HIDDEN, np.float32))
    with pytest.raises(ValueError, match="not both"):
        vlm.generate(messages, GREEDY, images=[FRAME], visual_tokens=tokens)
    with pytest.raises(ValueError, match="uint8"):
        vlm.generate(messages, GREEDY, images=[FRAME.astype(np.float32)])
    with pytest.raises(ValueError, match="user message"):
        vlm.generate([Message("system", "Be brief.")], GREEDY, visual_tokens=tokens)
    with pytest.raises(ValueError, match="image token"):
        vlm.generate([Message("user", f"<image> {QUESTION}")], GREEDY, visual_tokens=tokens)


def test_a_failure_inside_generation_reaches_the_reader(
    vlms: dict[str, TransformersVlm], monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import LlavaForConditionalGeneration

    def broken_generate(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("out of memory\nsecond line")

    monkeypatch.setattr(LlavaForConditionalGeneration, "generate", broken_generate)
    pieces: Iterator[str] = vlms["llava"].generate([Message("user", QUESTION)], GREEDY, images=[FRAME])
    with pytest.raises(LlmError) as error:
        list(pieces)
    assert "out of memory" in _one_line(error)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(LlmError) as error:
        load_transformers_vlm(str(tmp_path / "checkpoints" / "my-vlm"), LlmOptions())
    assert "no such folder" in _one_line(error) and "my-vlm" in str(error.value)


def test_folder_without_config(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(LlmError) as error:
        load_transformers_vlm(str(tmp_path), LlmOptions())
    assert "no config.json" in _one_line(error)


def test_folder_with_pickled_weights_only(tmp_path: Path, vlm_dirs: dict[str, Path]) -> None:
    (tmp_path / "config.json").write_text((vlm_dirs["llava"] / "config.json").read_text())
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(LlmError) as error:
        load_transformers_vlm(str(tmp_path), LlmOptions())
    assert "pickled" in _one_line(error)


def test_folder_of_a_text_only_model(tmp_path: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes(b"{}")
    with pytest.raises(LlmError) as error:
        load_transformers_vlm(str(tmp_path), LlmOptions())
    assert "'llama' model, which does not read pictures" in _one_line(error)


def test_unknown_hub_id_offline_names_the_folder_to_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LlmError) as error:
        load_transformers_vlm("no-such-org/no-such-vlm", LlmOptions())
    assert "checkpoints/no-such-vlm/" in _one_line(error)


def test_registered_name_offline_names_its_checkpoints_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    # An empty hub cache, so a SmolVLM downloaded on this machine before cannot answer instead.
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.chdir(tmp_path)
    source = resolve_vlm_source("smolvlm-256m-instruct")
    assert source == "HuggingFaceTB/SmolVLM-256M-Instruct"
    with pytest.raises(LlmError) as error:
        load_transformers_vlm(source, LlmOptions())
    assert "checkpoints/smolvlm-256m-instruct/" in _one_line(error)


def test_resolve_vlm_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, vlm_dirs: dict[str, Path]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_vlm_source("llava-1.5-7b") == "llava-hf/llava-1.5-7b-hf"
    assert resolve_vlm_source("llava-hf/llava-1.5-7b-hf") == "llava-hf/llava-1.5-7b-hf"
    (tmp_path / "checkpoints" / "llava-1.5-7b").mkdir(parents=True)
    assert resolve_vlm_source("llava-1.5-7b") == str(Path("checkpoints") / "llava-1.5-7b")
    assert resolve_vlm_source(str(vlm_dirs["idefics3"])) == str(vlm_dirs["idefics3"])
    assert resolve_vlm_source("hf-hub:someone/their-vlm") == "someone/their-vlm"
    assert resolve_vlm_source("smollm2-135m-instruct") is None
    assert resolve_vlm_source(str(tmp_path)) is None  # a folder, but no config.json
    hub_ids = {spec.hub_id for spec in VLM_REGISTRY.values()}
    assert {
        "Qwen/Qwen2.5-VL-3B-Instruct",
        "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
        "HuggingFaceTB/SmolVLM-Instruct",
        "llava-hf/llava-v1.6-mistral-7b-hf",
    } <= hub_ids


def test_quantize_without_bitsandbytes(monkeypatch: pytest.MonkeyPatch, vlm_dirs: dict[str, Path]) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import bitsandbytes now raises ImportError
    with pytest.raises(LlmError) as error:
        load_transformers_vlm(str(vlm_dirs["llava"]), LlmOptions(quantize="4bit"))
    assert "bitsandbytes" in _one_line(error)


def test_quantize_with_a_bitsandbytes_that_has_no_cpu_backend(
    monkeypatch: pytest.MonkeyPatch, vlm_dirs: dict[str, Path]
) -> None:
    import bitsandbytes

    monkeypatch.setattr(bitsandbytes, "supported_torch_devices", {"cuda"}, raising=False)
    with pytest.raises(LlmError) as error:
        load_transformers_vlm(str(vlm_dirs["llava"]), LlmOptions(device="cpu", quantize="8bit"))
    assert "cannot run quantize 8bit on cpu" in _one_line(error)


def test_cuda_asked_for_without_a_gpu(monkeypatch: pytest.MonkeyPatch, vlm_dirs: dict[str, Path]) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(LlmError) as error:
        load_transformers_vlm(str(vlm_dirs["llava"]), LlmOptions(device="cuda", quantize="4bit"))
    assert "no CUDA" in _one_line(error)


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("torchvision") is not None,
    reason="torchvision is installed, so the processor builds",
)
def test_processor_that_needs_torchvision(tmp_path: Path, vlm_dirs: dict[str, Path]) -> None:
    """A Qwen2.5-VL folder: its processor cannot be built without torchvision, which this machine lacks."""
    from safetensors.torch import save_file

    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / name).write_bytes((vlm_dirs["llava"] / name).read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Qwen2VLImageProcessor",
                "processor_class": "Qwen2_5_VLProcessor",
                "patch_size": 14,
                "merge_size": 2,
                "temporal_patch_size": 2,
            }
        )
    )
    save_file({}, tmp_path / "model.safetensors")
    with pytest.raises(LlmError) as error:
        load_transformers_vlm(str(tmp_path), LlmOptions())
    assert "needs torchvision" in _one_line(error)
