"""Which models are in memory when (issue 16's peak memory): the answering model is checked before a
video is indexed and loaded after it, and the speech and screen-text models are let go once a video is
indexed (kept from one video to the next while a library is synced)."""

from __future__ import annotations

import gc
import shutil
import weakref
from pathlib import Path
from typing import Any

import pytest

from videoqa.assistant import Assistant, AssistantOptions
from videoqa.channels import ocr, speech
from videoqa.llm import LlmError, LlmOptions, check_llm, llama_cpp
from videoqa.store import models
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthVideo


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Every speech and screen-text model loaded from now on, by kind (the real loaders still run)."""
    made: dict[str, list[Any]] = {"speech": [], "screen": []}

    def counting(kind: str, real: Any) -> Any:
        def load(*args: Any, **kwargs: Any) -> Any:
            model = real(*args, **kwargs)
            made[kind].append(weakref.ref(model))
            return model

        return load

    monkeypatch.setattr(speech, "load_transcriber", counting("speech", speech.load_transcriber))
    monkeypatch.setattr(ocr, "load_reader", counting("screen", ocr.load_reader))
    return made


def _refuse_to_load(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("the model's weights were loaded")


def test_check_llm_finds_a_store_model_without_loading_it(
    installed_models: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llama_cpp.LlamaCppGenerator, "__init__", _refuse_to_load)
    check_llm(models.FAST_LLM, LlmOptions(), fetch=models.model_dir)


def test_check_llm_refuses_what_load_llm_refuses(tmp_path: Path) -> None:
    with pytest.raises(LlmError, match="no such file or folder, and not a known model"):
        check_llm(str(tmp_path / "absent.gguf"))
    fake = tmp_path / "notes.gguf"
    fake.write_text("not a model\n" * 200)
    with pytest.raises(LlmError, match="not a GGUF file"):
        check_llm(str(fake))
    with pytest.raises(LlmError, match="is a speech model, not a language model"):
        check_llm("whisper-tiny.en")
    with pytest.raises(LlmError, match="--quantize applies to transformers models"):
        check_llm(models.FAST_LLM, LlmOptions(quantize="8bit"), fetch=models.model_dir)


def test_a_wrong_answering_model_fails_before_indexing(narrated: SynthVideo, tmp_path: Path) -> None:
    assistant = Assistant(AssistantOptions(device="cpu", llm=str(tmp_path / "absent.gguf")))
    with pytest.raises(LlmError):
        assistant.check_models()
    assert assistant._embedder is None  # failed before anything for indexing was loaded


def test_the_answering_model_loads_after_indexing_and_the_readers_are_let_go(
    installed_models: None,
    narrated: SynthVideo,
    tmp_path: Path,
    loads: dict[str, list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    options = AssistantOptions(device="cpu", llm=models.FAST_LLM)
    assistant = Assistant(options, cache=IndexCache(tmp_path / "cache"))
    assistant.check_models()
    assert assistant._llm is None
    assistant.knowledge(narrated.path)
    assert len(loads["speech"]) == 1 and len(loads["screen"]) == 1
    gc.collect()
    # Nothing else holds them: their memory went back with them.
    assert all(ref() is None for refs in loads.values() for ref in refs)
    answer = assistant.ask(narrated.path, "When does the meeting start?")
    assert "noon" in answer.text.lower()
    # A second video (a copy: other bytes, so not cached) loads them again, and lets them go again.
    other = tmp_path / "other.mp4"
    shutil.copy(narrated.path, other)
    with other.open("ab") as handle:
        handle.write(b"\0" * 16)  # ignored by the demuxer, but other content for the cache
    assistant.knowledge(other)
    assert len(loads["speech"]) == 2 and assistant._transcriber is None and assistant._reader is None


def test_a_library_sync_keeps_the_readers_between_videos(
    installed_models: None, narrated: SynthVideo, tmp_path: Path, loads: dict[str, list[Any]]
) -> None:
    folder = tmp_path / "library"
    folder.mkdir()
    for index in range(3):
        copy = folder / f"video{index}.mp4"
        shutil.copy(narrated.path, copy)
        with copy.open("ab") as handle:
            handle.write(bytes([index]) * 16)
    assistant = Assistant(AssistantOptions(device="cpu"), cache=IndexCache(tmp_path / "cache"))
    report = assistant.sync_library(folder)
    assert len(report.indexed) == 3, report
    assert len(loads["speech"]) == 1 and len(loads["screen"]) == 1
    assert assistant._transcriber is None and assistant._reader is None
