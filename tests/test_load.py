"""``videoqa.load``: the public entry point takes every ``AssistantOptions`` field as a real keyword,
with the options' own defaults, and loads nothing by itself."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from typing import Any

import pytest

import videoqa
from videoqa.assistant import Assistant, AssistantOptions
from videoqa.channels.speech import SpeechOptions
from videoqa.errors import OptionsError
from videoqa.llm import LlmError
from videoqa.retrieval.retrieve import RetrievalOptions
from videoqa.store import models


def test_the_top_level_load_is_the_assistant_module_load() -> None:
    from videoqa import assistant

    assert videoqa.load is assistant.load and videoqa.Assistant is Assistant


def test_load_takes_every_options_field_by_name_and_nothing_else() -> None:
    parameters = inspect.signature(videoqa.load).parameters
    assert all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    fields = {field.name for field in dataclasses.fields(AssistantOptions)}
    assert set(parameters) == (fields - {"llm"}) | {"model"}  # model= names the llm


def test_load_gives_the_options_own_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOQA_MODEL", "a-model-from-the-environment")
    # made when load is called, not when videoqa.assistant was imported
    monkeypatch.setenv("VIDEOQA_SPEECH_MODEL", "a-speech-model-from-the-environment")
    assert videoqa.load().options == AssistantOptions()
    assert videoqa.load().options.speech == SpeechOptions(model="a-speech-model-from-the-environment")


def test_load_passes_each_keyword_to_its_field() -> None:
    retrieval = RetrievalOptions(top_k=2)
    options = videoqa.load(
        "some-model", "clip-vit-b-32", "cpu", quantize="8bit", ocr=None, retrieval=retrieval, auto_fetch=False
    ).options
    assert (options.llm, options.embedder, options.device, options.quantize) == (
        "some-model",
        "clip-vit-b-32",
        "cpu",
        "8bit",
    )
    assert options.ocr is None and options.retrieval is retrieval and not options.auto_fetch
    assert options.speech == SpeechOptions()  # left out: its default, not None


@pytest.mark.parametrize(
    "call",
    [
        {"colour": "red"},  # no such option
        {"llm": "some-model"},  # the model is model=
    ],
)
def test_an_unknown_keyword_is_pythons_type_error(call: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{next(iter(call))}'"):
        videoqa.load(**call)


def test_options_past_the_third_are_keywords_only() -> None:
    with pytest.raises(TypeError, match="positional"):
        videoqa.load("some-model", "pixel", "cpu", "8bit")  # type: ignore[call-arg]


def test_a_bad_value_is_the_options_own_error() -> None:
    with pytest.raises(OptionsError, match="device must be one of"):
        videoqa.load(device="tpu")


def test_load_loads_and_fetches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fetching(*args: object, **kwargs: object) -> None:
        raise AssertionError("load() fetched a model")

    monkeypatch.setattr(models, "pull", no_fetching)
    assistant = videoqa.load("no-such-model", auto_fetch=False)  # an unknown model: loading it would fail
    with pytest.raises(LlmError, match="no-such-model"):
        assistant.llm  # noqa: B018


def test_import_videoqa_and_reading_load_import_no_heavy_module() -> None:
    code = (
        "import sys, videoqa; before = 'videoqa.assistant' in sys.modules; videoqa.load; "
        "print(before, 'videoqa.assistant' in sys.modules, 'torch' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.split() == ["False", "True", "False"]
