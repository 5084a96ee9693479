"""The seeing path (videollm.py) on a tiny random LLaVA-1.5 loaded like a user's checkpoints/NAME/:
memory tokens over every scene + the retrieved scenes' pooled tokens + the question."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from videoqa.assistant import Assistant, AssistantOptions
from videoqa.llm import VISUAL_SLOT, GenerationOptions, LlmOptions, Message, is_visual, load_llm
from videoqa.llm.transformers_vlm import TransformersVlm
from videoqa.memory.recurrent import MemoryOptions, TrainingFreeBridge
from videoqa.respond.videollm import (
    VideoMemory,
    VisualOptions,
    chosen_scenes,
    remember,
    scene_tokens,
    visual_context,
)
from videoqa.retrieval.retrieve import Evidence, EvidenceSet
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthVideo

from helpers import assert_one_line_error, run_cli
from vlm_models import save_tiny_vlm

GREEDY = GenerationOptions(max_tokens=8)
QUESTION = "What is in the picture?"


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_vlm(tmp_path_factory.mktemp("vlm") / "tiny-llava", "llava")


@pytest.fixture(scope="module")
def llava(llava_dir: Path) -> TransformersVlm:
    model = load_llm(str(llava_dir), LlmOptions(device="cpu"))  # the user's path: load_llm picks the backend
    assert isinstance(model, TransformersVlm)
    return model


def _frames(count: int, seed: int) -> list[npt.NDArray[np.uint8]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(count)]


class _InputSpy:
    """Records how many input embeddings the language model is given at each generate call."""

    def __init__(self, model: Any) -> None:
        self.lengths: list[int] = []
        self._generate = model.generate

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.lengths.append(int(kwargs["inputs_embeds"].shape[1]))
        return self._generate(*args, **kwargs)


def _video_memory(
    model: TransformersVlm, frames: list[npt.NDArray[np.uint8]], options: VisualOptions
) -> VideoMemory:
    tokens = scene_tokens(model, frames, options.scene_tokens)
    return VideoMemory(
        tuple(tokens), remember(TrainingFreeBridge(MemoryOptions(tokens=16)), tokens, model.hidden_size)
    )


def test_the_llm_input_is_as_long_for_500_scenes_as_for_10(
    llava: TransformersVlm, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = _InputSpy(llava._model)
    monkeypatch.setattr(llava._model, "generate", spy)
    options = VisualOptions(scene_tokens=8, scenes=4)
    replies = []
    for count in (10, 500):
        video = _video_memory(llava, _frames(count, seed=count), options)
        assert video.state.scenes_seen == count and len(video.state.memory) == 16
        context = visual_context(video, [0, count // 3, count // 2, count - 1], options)
        messages = [Message("user", f"{VISUAL_SLOT}\n{QUESTION}")]
        replies.append("".join(llava.generate(messages, GREEDY, visual_tokens=context)))
    assert spy.lengths[0] == spy.lengths[1]
    assert all(replies)


def test_memory_off_without_pooling_is_the_plain_model(llava: TransformersVlm) -> None:
    frame = _frames(1, seed=3)
    options = VisualOptions(memory=False, scene_tokens=0, scenes=1)
    video = _video_memory(llava, frame * 3, options)
    context = visual_context(video, [1], options)
    own = llava.image_tokens(frame)[0]
    np.testing.assert_array_equal(context, own)  # exactly the model's own tokens for that keyframe
    injected = "".join(
        llava.generate([Message("user", f"{VISUAL_SLOT}\n{QUESTION}")], GREEDY, visual_tokens=context)
    )
    plain = "".join(llava.generate([Message("user", QUESTION)], GREEDY, images=frame))
    assert injected == plain
    # ... and with memory on, the model reads something else
    with_memory = visual_context(video, [1], VisualOptions(memory=True, scene_tokens=0))
    assert len(with_memory) == 16 + len(own)


def test_the_same_video_gives_the_same_answer_twice(llava: TransformersVlm) -> None:
    options = VisualOptions(scene_tokens=8)
    first = _video_memory(llava, _frames(20, seed=5), options)
    second = _video_memory(llava, _frames(20, seed=5), options)
    np.testing.assert_array_equal(first.state.memory, second.state.memory)
    messages = [Message("user", f"{VISUAL_SLOT}\n{QUESTION}")]
    sampled = GenerationOptions(max_tokens=8, temperature=0.8, seed=7)
    replies = {
        "".join(llava.generate(messages, sampled, visual_tokens=visual_context(v, [2, 9], options)))
        for v in (first, second)
    }
    assert len(replies) == 1


def _evidence(scene: int, fused: float) -> Evidence:
    return Evidence("speech", scene * 4.0, scene * 4.0 + 2, "words", scene, 0.5, fused, "match")


def test_chosen_scenes_follow_the_evidence_or_spread_over_the_video() -> None:
    found = EvidenceSet((_evidence(7, 0.02), _evidence(2, 0.03), _evidence(7, 0.01)), "none", None, 0.6)
    assert chosen_scenes(found, 50, 4) == [2, 7]
    assert chosen_scenes(EvidenceSet((), "none", None, 0.1), 50, 4) == [0, 16, 32, 49]
    assert chosen_scenes(EvidenceSet((), "none", None, 0.1), 2, 4) == [0, 1]


def test_ask_with_a_seeing_model_end_to_end(
    llava_dir: Path, narrated: SynthVideo, installed_models: None, tmp_path: Path
) -> None:
    cache = IndexCache(tmp_path / "cache")
    options = AssistantOptions(llm=str(llava_dir), device="cpu", ocr=None)
    assistant = Assistant(options, cache=cache)
    assert is_visual(assistant.llm)
    answer = assistant.ask(narrated.path, "When does the meeting start?")
    assert answer.text and not answer.abstained
    assert any(item.text and "noon" in item.text.lower() for item in answer.evidence)
    # the video's memory was made once and cached: a second assistant reads it back
    again = Assistant(options, cache=cache).ask(narrated.path, "When does the meeting start?")
    assert again.text == answer.text
    events = list(assistant.caption(narrated.path, stream=True))
    assert [e.index for e in events] == list(range(len(events))) and all(e.text for e in events)


def test_a_vlm_folder_that_is_broken_is_one_line_in_the_cli(tmp_path: Path, narrated: SynthVideo) -> None:
    folder = tmp_path / "checkpoints-broken"
    folder.mkdir()
    (folder / "config.json").write_text("{not json")
    assert_one_line_error(run_cli("ask", str(narrated.path), "what?", "--model", str(folder)), str(folder))


def test_models_list_names_the_vision_language_models() -> None:
    import json

    result = run_cli("models", "list", "--json")
    assert result.code == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["llava-1.5-7b"]["task"] == "answer+vision"
    assert rows["llava-1.5-7b"]["source"] == "hf:llava-hf/llava-1.5-7b-hf"
    assert rows["smollm2-135m-instruct"]["task"] == "answer"


def test_quantize_is_refused_for_a_gguf_model(narrated: SynthVideo, installed_models: None) -> None:
    assert_one_line_error(
        run_cli("ask", str(narrated.path), "what?", "--quantize", "4bit"),
        "--quantize applies to transformers models",
    )


def test_a_bridge_of_the_wrong_width_is_one_line_before_indexing(
    llava_dir: Path, narrated: SynthVideo, tmp_path: Path
) -> None:
    from videoqa.memory.recurrent import LearnedBridge

    weights = tmp_path / "bridge.safetensors"
    LearnedBridge(dim=32, heads=4).save(weights)  # the tiny LLaVA's language model is 64 wide
    result = run_cli(
        "ask",
        str(narrated.path),
        "what?",
        "--model",
        str(llava_dir),
        "--bridge",
        str(weights),
        "--device",
        "cpu",
        env={**os.environ, "VIDEOQA_CACHE": str(tmp_path / "cache")},
    )
    assert_one_line_error(result, "width 32", "width 64")
    assert not (tmp_path / "cache").exists()  # refused before any indexing


def test_a_learned_bridge_feeds_the_seeing_model(
    llava_dir: Path, narrated: SynthVideo, installed_models: None, tmp_path: Path
) -> None:
    from videoqa.memory.recurrent import LearnedBridge

    weights = tmp_path / "bridge.safetensors"
    LearnedBridge(dim=64, heads=4, options=MemoryOptions(tokens=8)).save(weights)
    options = AssistantOptions(
        llm=str(llava_dir), device="cpu", ocr=None, bridge=str(weights), memory=MemoryOptions(tokens=8)
    )
    assistant = Assistant(options, cache=IndexCache(tmp_path / "cache"))
    assistant.load_models()
    assert isinstance(assistant.bridge, LearnedBridge)
    assert assistant.ask(narrated.path, "When does the meeting start?").text
