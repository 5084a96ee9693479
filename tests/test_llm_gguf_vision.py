"""The multimodal GGUF backend on a tiny random Idefics3 converted by llama.cpp's own converter."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from videoqa.assistant import Assistant, AssistantOptions
from videoqa.llm import load_llm
from videoqa.llm.base import GenerationOptions, LlmError, LlmOptions, Message, is_visual
from videoqa.llm.llama_cpp_vision import LlamaCppVisionGenerator, _chat_with_images, find_mmproj
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthVideo

from gguf_models import AssetUnavailable, GgufPair, TinyVlmSpec, tiny_vlm_gguf

SPEC = TinyVlmSpec()
# one thread: the tiny model gains nothing from more, and busy-waiting threads slow down a loaded machine
OPTIONS = LlmOptions(device="cpu", threads=1, context_tokens=512)
QUESTION = [Message("system", "Answer briefly."), Message("user", "What happens in the video?")]
GREEDY = GenerationOptions(max_tokens=12)


def build(spec: TinyVlmSpec) -> GgufPair:
    """The pair for ``spec``; skips when the converter cannot be downloaded, except in CI, where a skip
    would hide that these tests never ran."""
    try:
        return tiny_vlm_gguf(spec)
    except AssetUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def pair() -> GgufPair:
    return build(SPEC)


@pytest.fixture(scope="module")
def other_width_mmproj() -> Path:
    """A projector made for a language model half as wide as ``pair``'s."""
    return build(TinyVlmSpec(text_hidden=SPEC.text_hidden // 2)).mmproj


@pytest.fixture(scope="module")
def model(pair: GgufPair) -> LlamaCppVisionGenerator:
    return LlamaCppVisionGenerator(pair.model, pair.mmproj, OPTIONS)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)


def reply(pieces: Iterator[str]) -> list[str]:
    collected = list(pieces)
    assert all(isinstance(piece, str) and piece for piece in collected), collected
    return collected


def assert_one_line(exc: pytest.ExceptionInfo[Exception], *fragments: str) -> None:
    message = str(exc.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_describes_itself(model: LlamaCppVisionGenerator, pair: GgufPair) -> None:
    assert is_visual(model)
    assert model.accepts_visual_tokens is False
    assert model.hidden_size == SPEC.text_hidden
    assert model.context_tokens == OPTIONS.context_tokens
    assert pair.model.name in model.id and pair.mmproj.name in model.id
    assert model.count_tokens("a\n\nb") == 3  # "\n\n" is one token, as mtmd needs


def test_image_reply_streams_and_repeats_at_temperature_zero(
    model: LlamaCppVisionGenerator, frame: np.ndarray
) -> None:
    first = reply(model.generate(QUESTION, GREEDY, images=[frame]))
    assert len(first) >= 1
    assert reply(model.generate(QUESTION, GREEDY, images=[frame])) == first


def test_the_image_reaches_the_model(model: LlamaCppVisionGenerator, frame: np.ndarray) -> None:
    with_image = reply(model.generate(QUESTION, GREEDY, images=[frame]))
    assert reply(model.generate(QUESTION, GREEDY)) != with_image
    assert reply(model.generate(QUESTION, GREEDY, images=[255 - frame])) != with_image


def test_sampling_follows_the_seed(model: LlamaCppVisionGenerator, frame: np.ndarray) -> None:
    def sample(seed: int) -> list[str]:
        options = GenerationOptions(max_tokens=12, temperature=1.0, seed=seed)
        return reply(model.generate(QUESTION, options, images=[frame]))

    assert sample(3) == sample(3)
    assert sample(3) != sample(4)


def test_text_only_chat_works(model: LlamaCppVisionGenerator) -> None:
    first = reply(model.generate(QUESTION, GREEDY))
    assert len(first) >= 1
    assert reply(model.generate(QUESTION, GREEDY)) == first


def test_loading_and_answering_keep_stderr_clean(
    pair: GgufPair, frame: np.ndarray, capfd: pytest.CaptureFixture[str]
) -> None:
    fresh = LlamaCppVisionGenerator(pair.model, pair.mmproj, OPTIONS)
    reply(fresh.generate(QUESTION, GREEDY, images=[frame, frame]))
    assert capfd.readouterr().err == ""


def test_images_go_before_the_text_of_the_last_user_message(frame: np.ndarray) -> None:
    messages = [Message("user", "first"), Message("assistant", "ok"), Message("user", "second")]
    chat = _chat_with_images(messages, [frame, frame])
    assert chat[0]["content"] == "first"
    parts = chat[2]["content"]
    assert [part["type"] for part in parts] == ["image_url", "image_url", "text"]
    assert parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[2]["text"] == "second"


def test_image_tokens_is_refused_in_one_line(model: LlamaCppVisionGenerator, frame: np.ndarray) -> None:
    with pytest.raises(LlmError) as exc:
        model.image_tokens([frame])
    assert_one_line(exc, "frames only")


def test_visual_tokens_are_refused(model: LlamaCppVisionGenerator) -> None:
    tokens = np.zeros((4, SPEC.text_hidden), dtype=np.float32)
    with pytest.raises(ValueError, match="not visual tokens"):
        list(model.generate(QUESTION, GREEDY, visual_tokens=tokens))


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), dtype=np.float32), np.zeros((8, 8), dtype=np.uint8)])
def test_frames_must_be_uint8_rgb(model: LlamaCppVisionGenerator, bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        list(model.generate(QUESTION, GREEDY, images=[bad]))


def test_images_need_a_user_message(model: LlamaCppVisionGenerator, frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="user message"):
        list(model.generate([Message("system", "hi")], GREEDY, images=[frame]))


def test_a_prompt_longer_than_the_context_is_one_line(model: LlamaCppVisionGenerator) -> None:
    too_long = [Message("user", "word " * OPTIONS.context_tokens)]
    with pytest.raises(LlmError) as exc:
        list(model.generate(too_long, GREEDY))
    assert_one_line(exc, "cannot read this prompt")


def test_bad_projectors_fail_in_one_line_and_quietly(
    pair: GgufPair, other_width_mmproj: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    not_gguf = tmp_path / "mmproj-text.gguf"
    not_gguf.write_text("this is no model\n" * 100)
    truncated = tmp_path / "mmproj-truncated.gguf"
    truncated.write_bytes(pair.mmproj.read_bytes()[:4096])
    cases = [
        (tmp_path / "missing.gguf", "cannot read it"),
        (not_gguf, "not a GGUF file"),
        (truncated, "cannot use it as the vision projector"),
        (other_width_mmproj, "cannot use it as the vision projector"),
    ]
    for mmproj, fragment in cases:
        with pytest.raises(LlmError) as exc:
            LlamaCppVisionGenerator(pair.model, mmproj, OPTIONS)
        assert_one_line(exc, str(mmproj), fragment)
    assert capfd.readouterr().err == ""


def test_bad_model_files_fail_in_one_line_and_quietly(
    pair: GgufPair, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text("not a model\n" * 100)
    with pytest.raises(LlmError) as exc:
        LlamaCppVisionGenerator(not_gguf, pair.mmproj, OPTIONS)
    assert_one_line(exc, "not a GGUF file")
    with pytest.raises(LlmError) as exc:  # the two files swapped
        LlamaCppVisionGenerator(pair.mmproj, pair.model, OPTIONS)
    assert_one_line(exc, str(pair.mmproj), "cannot load it")
    assert capfd.readouterr().err == ""


def test_find_mmproj_picks_the_one_projector_beside_the_model(tmp_path: Path) -> None:
    model_path = tmp_path / "SmolVLM-256M-Q8_0.gguf"
    model_path.touch()
    (tmp_path / "notes-mmproj.txt").touch()  # not a GGUF file
    assert find_mmproj(model_path) is None
    projector = tmp_path / "mmproj-SmolVLM-256M-f16.gguf"
    projector.touch()
    assert find_mmproj(model_path) == projector


def test_find_mmproj_refuses_to_guess_between_several(tmp_path: Path) -> None:
    model_path = tmp_path / "model.gguf"
    model_path.touch()
    (tmp_path / "mmproj-f16.gguf").touch()
    (tmp_path / "mmproj-q8_0.gguf").touch()
    with pytest.raises(LlmError) as exc:
        find_mmproj(model_path)
    assert_one_line(exc, "mmproj-f16.gguf", "mmproj-q8_0.gguf", "mmproj option")


def test_find_mmproj_finds_the_built_pair(pair: GgufPair) -> None:
    assert find_mmproj(pair.model) == pair.mmproj


def test_a_gguf_pair_in_a_folder_answers_and_captions_a_video(
    pair: GgufPair, narrated: SynthVideo, installed_models: None, tmp_path: Path
) -> None:
    """What a user does: the model and its projector in checkpoints/NAME/, named with --model."""
    folder = tmp_path / "checkpoints" / "tiny-vlm-gguf"
    folder.mkdir(parents=True)
    shutil.copy(pair.model, folder / "tiny-vlm.gguf")
    shutil.copy(pair.mmproj, folder / "mmproj-tiny-vlm.gguf")
    assert isinstance(load_llm(str(folder), OPTIONS), LlamaCppVisionGenerator)
    assistant = Assistant(
        AssistantOptions(llm=str(folder), device="cpu", ocr=None), cache=IndexCache(tmp_path / "cache")
    )
    answer = assistant.ask(narrated.path, "When does the meeting start?")
    assert not answer.abstained and not answer.quoted  # a seeing model's reply stands
    assert any(item.text and "noon" in item.text.lower() for item in answer.evidence)
    events = list(assistant.caption(narrated.path))
    assert [e.index for e in events] == [0, 1, 2] and all(e.text for e in events)
