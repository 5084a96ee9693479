"""Passages: whole spoken sentences cut from timed words across the recogniser's segments, never
fragments; screen text as one passage per showing; transcripts cached with their words."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from videoqa.channels.ocr import ScreenText
from videoqa.channels.passages import build_passages, ends_sentence, screen_passages, sentences
from videoqa.channels.speech import (
    SpeechOptions,
    SpeechSegment,
    SpeechWord,
    Transcript,
    load_transcriber,
    transcribe_video,
)
from videoqa.knowledge.build import Readers, build_knowledge
from videoqa.media.video import probe
from videoqa.store import models
from videoqa.store.cache import CacheEntry, IndexCache, entry_key
from videoqa.testmedia.synth import SpokenLine, SynthSpec, pattern_scenes, render
from videoqa.visual.index import IndexOptions

from helpers import ThumbnailEmbedder

WORD_S = 0.3  # each fake word lasts this long ...
GAP_S = 0.05  # ... with this much silence before the next


def said(text: str, start_s: float, gaps: dict[int, float] | None = None) -> list[SpeechWord]:
    """Timed words for ``text`` from ``start_s``; ``gaps`` maps a word's index to a longer pause before it."""
    words, at_s = [], start_s
    for index, token in enumerate(text.split()):
        at_s += (gaps or {}).get(index, GAP_S if index else 0.0)
        words.append(SpeechWord(at_s, at_s + WORD_S, f" {token}"))
        at_s += WORD_S
    return words


def segment(words: list[SpeechWord]) -> SpeechSegment:
    return SpeechSegment(
        words[0].start_s, words[-1].end_s, "".join(w.text for w in words).strip(), tuple(words)
    )


def texts(segments: list[SpeechSegment]) -> list[str]:
    return [s.text for s in sentences(segments)]


def test_a_sentence_split_across_segments_is_one_passage_timed_by_its_words() -> None:
    words = said("She left her umbrella at the station. Then the train left for Leeds.", 3.0)
    cut = 6  # the recogniser's segment ends after "the"
    found = sentences([segment(words[:cut]), segment(words[cut:])])
    assert [s.text for s in found] == [
        "She left her umbrella at the station.",
        "Then the train left for Leeds.",
    ]
    assert (found[0].start_s, found[0].end_s) == (words[0].start_s, words[6].end_s)
    assert (found[1].start_s, found[1].end_s) == (words[7].start_s, words[-1].end_s)


def test_two_sentences_in_one_segment_are_two_passages() -> None:
    words = said("After the swim, Henry rode a bicycle. The weather was cold.", 0.0)
    found = sentences([segment(words)])
    assert [s.text for s in found] == ["After the swim, Henry rode a bicycle.", "The weather was cold."]
    assert found[1].start_s == words[7].start_s and found[1].end_s == words[-1].end_s


@pytest.mark.parametrize(
    "text",
    [
        "Mr. Brown met Dr. Jones on Baker St. before lunch.",
        "The ferry left at 4.30 and the fare was 3.5 pounds.",
        "Bring something warm, e.g. a coat, i.e. not a jacket.",
        "The match, England vs. France, was played at 3 p.m. on Sunday.",
        'He said "stop." Then he walked away.',  # the only place that splits: after the closing quote
    ],
)
def test_abbreviations_decimals_and_times_do_not_split(text: str) -> None:
    expected = ['He said "stop."', "Then he walked away."] if text.startswith("He said") else [text]
    assert texts([segment(said(text, 0.0))]) == expected


def test_a_number_split_after_its_point_is_not_a_sentence_end() -> None:
    three, five = SpeechWord(0.0, 0.2, " 3."), SpeechWord(0.2, 0.4, " 5")
    later = SpeechWord(0.4, 0.6, " Then")
    assert not ends_sentence(three, five) and ends_sentence(three, later)
    assert ends_sentence(SpeechWord(0.0, 0.2, " p.m."), later)
    assert not ends_sentence(SpeechWord(0.0, 0.2, " p.m."), SpeechWord(0.4, 0.6, " on"))


def test_a_trailing_one_word_fragment_joins_its_sentence() -> None:
    # "station." follows a long pause and a recogniser segment break: it finishes the sentence before.
    first = said("She left her umbrella at the", 0.0)
    rest = said("station. Then the train left for Leeds.", first[-1].end_s + 1.4)
    assert texts([segment(first), segment(rest)]) == [
        "She left her umbrella at the station.",
        "Then the train left for Leeds.",
    ]


def test_a_short_sentence_joins_the_neighbour_nearest_in_time() -> None:
    words = said("Henry rode a bicycle. Okay. The weather was cold.", 0.0, gaps={4: 0.1, 5: 0.8})
    assert texts([segment(words)]) == ["Henry rode a bicycle. Okay.", "The weather was cold."]
    words = said("Henry rode a bicycle. Okay. The weather was cold.", 0.0, gaps={4: 0.8, 5: 0.1})
    assert texts([segment(words)]) == ["Henry rode a bicycle.", "Okay. The weather was cold."]


def test_a_lone_yes_set_apart_by_pauses_stays_a_passage() -> None:
    words = said("Did you go to the station? Yes. The train was late.", 0.0, gaps={6: 2.0, 7: 2.0})
    found = sentences([segment(words)])
    assert [s.text for s in found] == ["Did you go to the station?", "Yes.", "The train was late."]
    assert (found[1].start_s, found[1].end_s) == (words[6].start_s, words[6].end_s)


def test_a_long_unpunctuated_run_is_cut_at_its_longest_pause() -> None:
    text = " ".join(f"word{i}" for i in range(80))  # 80 x 0.35 s = 28 s without a full stop
    words = said(text, 0.0, gaps={30: 0.6, 78: 0.9})  # the longest pause would leave two words alone
    found = sentences([segment(words)])
    assert [len(s.text.split()) for s in found] == [30, 50]
    assert found[0].end_s == words[29].end_s and found[1].start_s == words[30].start_s


def test_segments_without_words_are_joined_and_split_with_times_by_character_share() -> None:
    found = sentences(
        [
            SpeechSegment(10.0, 12.0, "The conference"),
            SpeechSegment(12.2, 16.0, "will take place in Sydney. Tickets are free."),
            SpeechSegment(20.0, 21.0, ""),
        ]
    )
    assert [s.text for s in found] == ["The conference will take place in Sydney.", "Tickets are free."]
    # "will take place in Sydney." is 26 of the 44 characters of its segment's 3.8 s.
    assert found[0].start_s == 10.0 and found[0].end_s == pytest.approx(12.2 + 3.8 * 26 / 44)
    assert found[1].end_s == 16.0


def test_words_and_word_less_segments_mix() -> None:
    words = said("The red bicycle is leaning against the", 0.0)
    found = sentences([segment(words), SpeechSegment(words[-1].end_s + 0.1, 5.0, "old stone wall.")])
    assert [(s.start_s, s.end_s, s.text) for s in found] == [
        (0.0, 5.0, "The red bicycle is leaning against the old stone wall.")
    ]


def test_no_speech_gives_no_speech_passages() -> None:
    # A video without an audio track, or silence: no segments, or segments with only blank words.
    assert sentences([]) == []
    assert sentences([SpeechSegment(1.0, 2.0, " ", (SpeechWord(1.0, 2.0, " "),))]) == []
    assert build_passages([], [ScreenText(0.0, 2.0, "EXIT", 1.0)])[0].text == "EXIT"


def test_screen_text_seen_across_a_cut_is_one_passage_over_its_whole_showing() -> None:
    readings = [
        ScreenText(0.0, 4.0, "GATE 42", 2.0),
        ScreenText(4.0, 6.5, "Gate 42.", 5.0),
        ScreenText(6.5, 8.0, "EXIT", 7.0),
        ScreenText(12.0, 14.0, "GATE 42", 13.0),
        ScreenText(14.0, 15.0, "Platform 9\nDepartures", 14.5),
    ]
    assert [(p.start_s, p.end_s, p.text) for p in screen_passages(readings)] == [
        (0.0, 6.5, "Gate 42."),
        (6.5, 8.0, "EXIT"),
        (12.0, 14.0, "GATE 42"),
        (14.0, 15.0, "Platform 9 / Departures"),
    ]


def test_passages_are_speech_and_screen_in_time_order() -> None:
    speech = [segment(said("The meeting starts at noon.", 8.5))]
    found = build_passages(speech, [ScreenText(5.0, 7.0, "GATE 42", 6.0), ScreenText(7.0, 8.5, " ", 8.0)])
    assert [(p.channel, p.text) for p in found] == [
        ("screen", "GATE 42"),
        ("speech", "The meeting starts at noon."),
    ]


class WordyTranscriber:
    """A fake transcriber that times two sentences word by word, counting its calls."""

    id = "fake-wordy-1"

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(self, audio: npt.NDArray[np.float32], on_progress: object = None) -> list[SpeechSegment]:
        self.calls += 1
        words = said("She left her umbrella at the station. Then the train left.", 0.5)
        return [segment(words[:6]), segment(words[6:])]


class ConstantTextEmbedder:
    """Passage vectors of no meaning: these tests look at the transcript only."""

    id = "fake-text-1"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.full((len(texts), 4), 0.5, dtype=np.float32)


def speech_only(transcriber: WordyTranscriber) -> Readers:
    return Readers(transcriber=lambda: transcriber, screen_reader=None, text_embedder=ConstantTextEmbedder)


@pytest.fixture(scope="module")
def quiet_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-s video with a silent audio track: the transcript comes from the fake transcriber."""
    spec = SynthSpec(scenes=pattern_scenes([3.0]), width=160, height=90, fps=10.0)
    return render(spec, tmp_path_factory.mktemp("quiet") / "quiet.mp4").path


def transcript_of(video: Path, transcriber: WordyTranscriber, cache: IndexCache) -> Transcript:
    known = build_knowledge(video, ThumbnailEmbedder(), speech_only(transcriber), IndexOptions(), cache)
    return known.transcript


def test_a_cached_transcript_keeps_its_words(quiet_video: Path, tmp_path: Path) -> None:
    transcriber = WordyTranscriber()
    cache = IndexCache(tmp_path)
    made = transcript_of(quiet_video, transcriber, cache)
    again = transcript_of(quiet_video, transcriber, cache)
    assert transcriber.calls == 1 and again == made
    assert [len(s.words) for s in again.segments] == [6, 5]
    assert [s.text for s in sentences(again.segments)] == [
        "She left her umbrella at the station.",
        "Then the train left.",
    ]


def test_a_cache_entry_without_words_still_loads(quiet_video: Path, tmp_path: Path) -> None:
    transcriber = WordyTranscriber()
    cache = IndexCache(tmp_path)
    content = cache.fingerprint(quiet_video)
    key = entry_key(content, {"channel": "speech", "transcriber": transcriber.id})
    old = [
        {"start_s": 1.0, "end_s": 2.0, "text": "The conference"},
        {"start_s": 2.1, "end_s": 4.0, "text": "is in Sydney. Tickets are free."},
    ]
    cache.save(key, CacheEntry(header={"segments": old, "transcriber": transcriber.id}, arrays={}))
    loaded = transcript_of(quiet_video, transcriber, cache)
    assert transcriber.calls == 0 and all(s.words == () for s in loaded.segments)
    assert [s.text for s in sentences(loaded.segments)] == [
        "The conference is in Sydney.",
        "Tickets are free.",
    ]


def test_a_segment_record_round_trips_its_words() -> None:
    original = segment(said("Turn left at the bakery.", 1.0))
    assert SpeechSegment.from_record(original.to_record()) == original
    as_dicts = {
        "start_s": 1.0,
        "end_s": 2.0,
        "text": "Hi.",
        "words": [{"start_s": 1.0, "end_s": 2.0, "text": " Hi."}],
    }
    assert SpeechSegment.from_record(as_dicts).words == (SpeechWord(1.0, 2.0, " Hi."),)


# Sentences spoken one after another with half a second or so between them (espeak-ng takes 2.9-3.3 s
# for each): too short a pause to end a sentence by itself, so the recogniser's words and marks decide.
PLANTED = (
    "The red bicycle is leaning against the old stone wall.",
    "Please remember to water the tomato plants before you leave.",
    "Our train to the coast departs from the northern platform.",
    "A small orange cat is sleeping on the kitchen chair.",
)
PLANTED_EVERY_S = 3.8


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 5}


@pytest.mark.slow
def test_each_sentence_whisper_hears_is_one_passage(tmp_path: Path) -> None:
    lines = tuple(SpokenLine(1.0 + PLANTED_EVERY_S * i, text) for i, text in enumerate(PLANTED))
    spec = SynthSpec(scenes=pattern_scenes([18.0]), width=160, height=90, fps=10.0, speech=lines)
    video = render(spec, tmp_path / "four_sentences.mp4")
    models.pull("whisper-tiny.en")
    whisper = load_transcriber(SpeechOptions(device="cpu"))
    transcript = transcribe_video(probe(video.path), transcriber=whisper)
    assert all(s.words for s in transcript.segments), transcript
    found = sentences(transcript.segments)
    assert len(found) == len(PLANTED), found
    for spoken, heard in zip(video.spoken, found, strict=True):
        shared = _content_words(spoken.text) & _content_words(heard.text)
        assert len(shared) >= len(_content_words(spoken.text)) // 2, (spoken, heard)
        assert heard.text.endswith((".", "?", "!")), heard
        assert abs(heard.start_s - spoken.start_s) <= 0.5 and abs(heard.end_s - spoken.end_s) <= 0.5, (
            spoken,
            heard,
        )
