"""Captions: the captioner's decisions (scripted fake models), streaming scenes from a real video, the
visual path's memory tokens, and `videoqa caption` end to end with the offline default models."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import srt
import webvtt

from videoqa.channels.ocr import load_reader
from videoqa.channels.speech import SpeechOptions, load_transcriber
from videoqa.knowledge.build import Readers
from videoqa.knowledge.pipeline import Pipeline
from videoqa.llm import VISUAL_SLOT, GenerationOptions, Message
from videoqa.media.video import probe
from videoqa.memory.recurrent import MemoryOptions, TrainingFreeBridge
from videoqa.respond.captions import (
    EMPTY_CAPTION,
    Captioner,
    CaptionEvent,
    CaptionOptions,
    SceneMaterial,
    borrows_names,
    cached_captions,
    caption_fault,
    denies_scene,
    distinct_readings,
    doubles_screen_text,
    drops_numbers,
    fair_sentences,
    merge_quiet,
    scene_material,
    without_repeats,
)
from videoqa.respond.subtitles import SubtitleFile
from videoqa.respond.writers import Cue
from videoqa.store.cache import IndexCache
from videoqa.testmedia.story import Story
from videoqa.testmedia.synth import SynthVideo
from videoqa.types import Scene
from videoqa.visual.index import IndexOptions

from helpers import ScriptedLlm, ThumbnailEmbedder, assert_one_line_error, run_cli


def _scene(index: int, start_s: float = 0.0, end_s: float = 4.0) -> Scene:
    return Scene(
        index=index,
        start_s=start_s,
        end_s=end_s,
        first_frame=0,
        stop_frame=4,
        keyframe=1,
        keyframe_s=start_s + 1,
    )


def _material(index: int, speech: str = "", screen: str = "", keyframe: Any = None) -> SceneMaterial:
    return SceneMaterial(_scene(index, index * 4.0, index * 4.0 + 4.0), speech, screen, keyframe)


def test_a_grounded_caption_is_kept_and_an_invented_one_is_replaced_by_a_quote() -> None:
    llm = ScriptedLlm("Henry swims across the lake.", "Henry flies a plane to Madrid in 1999.")
    captioner = Captioner(llm, TrainingFreeBridge())
    kept = captioner.caption(_material(0, speech="Henry swims across the lake."))
    invented = captioner.caption(_material(1, speech="Then Henry dried off."))
    assert (kept.text, kept.source) == ("Henry swims across the lake.", "model")
    assert invented.source == "quote" and invented.text == 'Speech: "Then Henry dried off."'


def test_labels_and_quotes_around_a_caption_are_taken_off() -> None:
    llm = ScriptedLlm('The scene: "Henry swims across the lake."', "Caption 2: Henry dries off.\nMore text")
    captioner = Captioner(llm, TrainingFreeBridge())
    assert (
        captioner.caption(_material(0, speech="Henry swims across the lake.")).text
        == "Henry swims across the lake."
    )
    assert captioner.caption(_material(1, speech="Henry dries off.")).text == "Henry dries off."


def test_a_scene_with_nothing_said_or_shown_calls_no_model() -> None:
    llm = ScriptedLlm()  # no replies: a call would fail
    event = Captioner(llm, TrainingFreeBridge()).caption(_material(0))
    assert (event.text, event.source) == (EMPTY_CAPTION, "empty")
    assert llm.prompts == []


# --- loops, doubled signs, denials ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "kept"),
    [
        (
            "Anna opens the red gate. The scene: Anna opens the red gate. The scene: Anna opens",
            "Anna opens the red gate.",
        ),
        ("Anna opens the red gate, she waves, she waves, she waves", "Anna opens the red gate, she waves."),
        (
            "Bob reads the map of the old town and the map of the old town again",
            "Bob reads the map of the old town.",
        ),
        ("The train leaves very very very very soon from platform nine", "The train leaves very."),
        ("Caption: Anna waves. Caption: Anna waves.", "Caption: Anna waves."),
    ],
)
def test_a_looping_caption_is_cut_at_its_first_repeat(reply: str, kept: str) -> None:
    assert without_repeats(reply) == kept


@pytest.mark.parametrize(
    "reply",
    [
        "Anna opens the red gate and Bob waves from the platform.",
        "Gate 42 opens at noon; the meeting starts at one.",
        "",
    ],
)
def test_a_caption_without_repeats_is_left_whole(reply: str) -> None:
    assert without_repeats(reply) == reply


def test_a_loop_that_leaves_too_little_is_dropped() -> None:
    assert without_repeats("Anna waves. Anna waves. Anna waves.") == ""


def test_a_looping_model_caption_is_cut_and_still_checked() -> None:
    loop = "Oscar was at the library. The scene: Oscar was at the library. The scene: Oscar was"
    llm = ScriptedLlm(loop, "Oscar swam. The scene: Oscar swam. The scene: Oscar swam.")
    captioner = Captioner(llm, TrainingFreeBridge())
    cut = captioner.caption(_material(0, speech="Oscar was at the library all afternoon."))
    assert (cut.text, cut.source) == ("Oscar was at the library.", "model")
    nothing_left = captioner.caption(_material(1, speech="Oscar swam in the lake."))
    assert nothing_left.source == "quote" and "The scene" not in nothing_left.text


class CountingLlm(ScriptedLlm):
    """Counts the pieces of its reply that were read: the rest were never generated."""

    def __init__(self, *replies: str) -> None:
        super().__init__(*replies)
        self.pieces_read = 0

    def generate(self, messages: Any, options: Any) -> Any:
        for piece in super().generate(messages, options):
            self.pieces_read += 1
            yield piece


@pytest.mark.parametrize(
    "tail", ["\nCaption 2: more and more text " * 20, " The scene: Oscar was at the library." * 20]
)
def test_the_reply_is_read_only_until_the_caption_ends(tail: str) -> None:
    caption = "Oscar was at the library."
    llm = CountingLlm(caption + tail)
    event = Captioner(llm, TrainingFreeBridge()).caption(_material(0, speech="Oscar was at the library."))
    assert event.text == caption
    assert llm.pieces_read * 5 < len(caption) + 40  # ScriptedLlm gives 5 characters a piece


SIGN = "CITY LIBRARY - EST. 1987"


def test_a_sign_quoted_around_itself_is_refused_and_quoted_once() -> None:
    llm = ScriptedLlm(f"The 1987 {SIGN}", f"The sign reads {SIGN}.")
    captioner = Captioner(llm, TrainingFreeBridge())
    doubled = captioner.caption(_material(0, screen=SIGN))
    assert (doubled.text, doubled.source) == (f'On screen: "{SIGN}"', "quote")
    kept = captioner.caption(_material(1, screen=SIGN))
    assert (kept.text, kept.source) == (f"The sign reads {SIGN}.", "model")


def test_a_word_the_speech_also_says_may_come_twice() -> None:
    material = _material(0, speech="We meet at the library.", screen="CITY LIBRARY")
    assert not doubles_screen_text("At the library, the CITY LIBRARY sign.", material)
    assert doubles_screen_text("CITY LIBRARY, CITY LIBRARY.", _material(0, screen="CITY LIBRARY"))


def test_a_sign_read_in_part_gives_way_to_its_full_reading() -> None:
    assert distinct_readings(["1987", SIGN, "CITY LIBRARY", "GATE 42", "GATE 42"]) == f"{SIGN}\nGATE 42"


def test_the_quote_gives_speech_and_each_sign_once() -> None:
    llm = ScriptedLlm("Dragons fly over Rome.")
    event = Captioner(llm, TrainingFreeBridge()).caption(
        _material(0, speech="Thank you. Thank you. Thank you.", screen=f"{SIGN}\nTHANK YOU")
    )
    assert event.text == f'Speech: "Thank you." On screen: "{SIGN}"'


@pytest.mark.parametrize(
    "reply",
    [
        "There is no mention of the code 4471.",
        "The speaker does not say the access code.",
        "The code 4471 is not mentioned in this scene.",
        "Anna never mentions the code.",
    ],
)
def test_a_caption_denying_what_the_scene_says_is_refused(reply: str) -> None:
    material = _material(0, speech="Anna says the access code is 4471.")
    assert denies_scene(reply, material)
    event = Captioner(ScriptedLlm(reply), TrainingFreeBridge()).caption(material)
    assert event.source == "quote"


def test_a_plain_statement_of_the_same_words_is_no_denial() -> None:
    material = _material(0, speech="Anna says the access code is 4471.")
    assert not denies_scene("Anna gives the access code 4471.", material)
    assert not denies_scene("Nobody knows where Bob went.", material)
    event = Captioner(ScriptedLlm("Anna gives the access code 4471."), TrainingFreeBridge()).caption(material)
    assert event.source == "model"


def test_a_name_from_another_scene_is_refused() -> None:
    material = _material(0, speech="It won a quiet Saturday in Tokyo.")
    assert borrows_names("Alice won a quiet Saturday in Tokyo.", material, "ALICE - ENGINEER")
    assert borrows_names("It was a quiet Saturday in Tokyo with Alice.", material)
    assert not borrows_names("Someone won a quiet Saturday in Tokyo.", material, "ALICE - ENGINEER")
    assert not borrows_names("It won a quiet Saturday in Tokyo.", material, "ALICE - ENGINEER")
    llm = ScriptedLlm("Alice is an engineer.", "Alice won a quiet Saturday in Tokyo.")
    captioner = Captioner(llm, TrainingFreeBridge())
    assert captioner.caption(_material(0, screen="ALICE - ENGINEER")).source == "model"
    assert captioner.caption(material).source == "quote"  # the grounded share alone lets it through


@pytest.mark.parametrize(
    ("reply", "fault"),
    [
        ("", "empty"),
        ("Anna gives the access code 4471. " * 8, "too long"),
        ("Speech: Anna gives the access code 4471.", "echoes the prompt"),
        ("Dragons fly over Rome in 1999.", "not grounded"),
        ("Anna tells Bob the access code 4471.", "borrows a name"),
        ("There is no mention of the access code.", "denies the scene"),
        ("Anna gives the access code 4471.", None),
    ],
)
def test_each_refused_caption_says_which_check_refused_it(reply: str, fault: str | None) -> None:
    assert caption_fault(reply, _material(0, speech="Anna says the access code is 4471.")) == fault
    assert caption_fault(f"The 1987 {SIGN}", _material(0, screen=SIGN)) == "doubles a sign"


def test_a_refused_caption_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    captioner = Captioner(ScriptedLlm("Dragons fly over Rome in 1999."), TrainingFreeBridge())
    with caplog.at_level("DEBUG", logger="videoqa"):
        event = captioner.caption(_material(3, speech="Anna says the access code is 4471."))
    assert event.source == "quote"
    assert [r.args for r in caplog.records] == [(3, "not grounded", "Dragons fly over Rome in 1999.")]


def test_a_sentence_about_an_earlier_scene_is_dropped_and_the_true_one_kept() -> None:
    story = "The marathon will take place in Oslo next Sunday."
    reply = f"Anna opens the red gate. {story} Anna waves."
    llm = ScriptedLlm(reply, story)
    captioner = Captioner(llm, TrainingFreeBridge(), CaptionOptions(memory=False))
    kept = captioner.caption(_material(0, speech="Anna opens the red gate and waves."))
    assert (kept.text, kept.source) == ("Anna opens the red gate. Anna waves.", "model")
    only_earlier = captioner.caption(_material(1, speech="Bob reads the map."))
    assert (only_earlier.text, only_earlier.source) == ('Speech: "Bob reads the map."', "quote")


def test_sentences_kept_must_still_pass_together() -> None:
    material = _material(0, screen=SIGN)
    # each sentence says the sign once, together they say it twice
    assert fair_sentences(f"{SIGN}. {SIGN}.", material) == (f"{SIGN}. {SIGN}.", "doubles a sign")
    assert fair_sentences("Dragons fly. Over Rome.", material) == ("", "not grounded")


def test_a_quoted_scene_joins_the_story_without_the_quote_labels() -> None:
    llm = ScriptedLlm("Dragons fly over Rome.", "Bob reads the map.")
    captioner = Captioner(llm, TrainingFreeBridge())
    quoted = captioner.caption(_material(0, speech="Anna opens the red gate.", screen="GATE 42"))
    assert quoted.text == 'Speech: "Anna opens the red gate." On screen: "GATE 42"'
    assert captioner.summary == "Anna opens the red gate. GATE 42"
    captioner.caption(_material(1, speech="Bob reads the map."))
    assert "The story so far: Anna opens the red gate. GATE 42" in llm.prompts[1][-1].content


def test_a_caption_that_leaves_out_a_number_the_scene_states_is_refused() -> None:
    material = _material(0, speech="The train to Tokyo leaves from platform eighty-seven.", screen="GATE 12")
    assert drops_numbers("The train to Tokyo leaves.", material)
    assert drops_numbers("The train to Tokyo leaves from platform 87.", material)  # the gate's 12 is gone
    assert not drops_numbers("The Tokyo train leaves from platform 87, gate twelve.", material)
    assert caption_fault("The train to Tokyo leaves.", material) == "drops a number"
    llm = ScriptedLlm("The train to Tokyo leaves.", "The Tokyo train uses platform eighty-seven at gate 12.")
    captioner = Captioner(llm, TrainingFreeBridge())
    assert captioner.caption(material).source == "quote"
    assert captioner.caption(material).source == "model"


def test_a_number_may_sit_in_any_one_kept_sentence() -> None:
    material = _material(0, speech="Anna opens gate 42 and waves.")
    assert fair_sentences("Anna opens gate 42. Anna waves.", material) == (
        "Anna opens gate 42. Anna waves.",
        None,
    )
    assert fair_sentences("Anna waves. Bob sings.", material) == ("Anna waves.", "drops a number")


# --- quiet scenes -----------------------------------------------------------------------------------


def _event(index: int, start_s: float, end_s: float, text: str = "") -> CaptionEvent:
    source = "model" if text else "empty"
    return CaptionEvent(index, start_s, end_s, text or EMPTY_CAPTION, source, text, "")


def _spans(events: Sequence[CaptionEvent]) -> list[tuple[float, float, str, tuple[int, int]]]:
    return [(e.start_s, e.end_s, e.text, e.covers) for e in events]


def test_quiet_scenes_join_the_caption_before_them_and_the_first_one_after() -> None:
    scenes = [
        _event(0, 0, 4),
        _event(1, 4, 9, "Anna waves."),
        _event(2, 9, 12),
        _event(3, 12, 20),
        _event(4, 20, 25, "Bob runs."),
        _event(5, 25, 30),
    ]
    assert _spans(list(merge_quiet(scenes, 30.0))) == [
        (0, 20, "Anna waves.", (0, 3)),
        (20, 30, "Bob runs.", (4, 5)),
    ]


def test_the_same_caption_twice_in_a_row_is_one_cue() -> None:
    scenes = [
        _event(0, 0, 4, "Locker 57."),
        _event(1, 4, 9, "locker 57"),
        _event(2, 9, 12),
        _event(3, 12, 20, "Locker 57."),
    ]
    assert _spans(list(merge_quiet(scenes, 30.0))) == [(0, 20, "Locker 57.", (0, 3))]
    assert len(list(merge_quiet(scenes, 1.0))) == 3  # past a quiet stretch of its own: a new cue


def test_a_long_quiet_stretch_is_one_line() -> None:
    scenes = (
        [_event(0, 0, 5, "Anna waves.")]
        + [_event(i, 5 * i, 5 * i + 5) for i in range(1, 12)]
        + [_event(12, 60, 65, "Bob runs.")]
    )
    merged = list(merge_quiet(scenes, 10.0))
    assert _spans(merged) == [
        (0, 15, "Anna waves.", (0, 2)),
        (15, 60, EMPTY_CAPTION, (3, 11)),
        (60, 65, "Bob runs.", (12, 12)),
    ]
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(merged))
    assert _spans(list(merge_quiet([_event(0, 0, 5), _event(1, 5, 9)], 30.0))) == [
        (0, 9, EMPTY_CAPTION, (0, 1))
    ]


def test_merged_captions_come_as_the_stream_goes_and_make_valid_subtitles(tmp_path: Path) -> None:
    from videoqa.respond.captions import QuietMerger

    merger = QuietMerger(30.0)
    rng = np.random.default_rng(3)
    outs = [SubtitleFile(tmp_path / "m.srt", "srt"), SubtitleFile(tmp_path / "m.vtt", "vtt")]
    start, given, captioned = 0.0, [], list[int]()

    def take(done: list[CaptionEvent]) -> None:
        given.extend(done)
        for e in done:
            if e.source != "empty":
                for out in outs:  # each refuses a cue out of order or overlapping
                    out.add(Cue(e.start_s, e.end_s, e.text))

    for index in range(200):
        length = float(rng.uniform(1, 15))
        event = _event(index, start, start + length, "" if rng.random() < 0.6 else f"Line {index}.")
        start += length
        take(merger.push(event))
        if event.source != "empty":  # a caption is held no longer than until the next one comes
            assert [e.index for e in given if e.source != "empty"] == captioned
            captioned.append(index)
    take(merger.finish())
    assert given[0].start_s == 0 and given[-1].end_s == pytest.approx(start)
    assert all(a.end_s == b.start_s and a.covers[1] + 1 == b.covers[0] for a, b in itertools.pairwise(given))
    assert not any(a.source == b.source == "empty" for a, b in itertools.pairwise(given))
    assert all(e.source != "empty" or e.end_s - e.start_s > 30.0 for e in given[1:-1])
    texts = [e.text for e in given if e.source != "empty"]
    assert [p.content for p in srt.parse((tmp_path / "m.srt").read_text())] == texts
    assert [c.text for c in webvtt.read(str(tmp_path / "m.vtt")).captions] == texts


# --- cached captions --------------------------------------------------------------------------------


def test_captions_are_made_once_and_then_read_from_the_cache(tmp_path: Path) -> None:
    cache, made = IndexCache(tmp_path), []

    def make() -> Iterator[CaptionEvent]:
        made.append(1)
        yield from [_event(0, 0, 4, "Anna waves."), _event(1, 4, 8)]

    first = list(cached_captions(make, cache, "k" * 32))
    second = list(cached_captions(make, cache, "k" * 32))
    assert first == second and len(made) == 1
    for _ in cached_captions(make, cache, "s" * 32):
        break  # a run stopped part way caches nothing
    assert len(list(cached_captions(make, cache, "s" * 32))) == 2 and len(made) == 3


class EchoingLlm(ScriptedLlm):
    """Captions a scene with its own speech line; asked to shorten the summary, invents something."""

    def generate(self, messages: Any, options: Any) -> Any:
        self.prompts.append(list(messages))
        if "summary" in messages[0].content:
            yield "An invented summary about dragons."
            return
        yield messages[-1].content.split("Speech: ", 1)[1].splitlines()[0]


def test_the_rolling_summary_carries_the_story_and_stays_within_its_budget() -> None:
    lines = [f"Speaker {i} talks about topic {i}." for i in range(60)]
    llm = EchoingLlm()
    captioner = Captioner(llm, TrainingFreeBridge(), CaptionOptions(summary_tokens=40))
    for index, line in enumerate(lines):
        event = captioner.caption(_material(index, speech=line))
        assert event.source == "model"
        assert llm.count_tokens(captioner.summary) <= 40
    # the newest captions are kept; the invented summary was not taken
    assert captioner.summary.endswith("Speaker 59 talks about topic 59.")
    assert "dragons" not in captioner.summary
    shortenings = sum(1 for prompt in llm.prompts if "summary" in prompt[0].content)
    assert 1 <= shortenings <= len(lines) // 3  # asked to shorten now and then, not after every scene
    # the story so far reached the prompt of later scenes
    assert "Speaker 58" in llm.prompts[-1][-1].content


def test_without_memory_nothing_is_carried() -> None:
    llm = ScriptedLlm("Anna sings.", "Bob dances.")
    captioner = Captioner(llm, TrainingFreeBridge(), CaptionOptions(memory=False))
    captioner.caption(_material(0, speech="Anna sings."))
    captioner.caption(_material(1, speech="Bob dances."))
    assert captioner.summary == ""
    assert "nothing yet" in llm.prompts[1][-1].content


class FakeSeeingModel:
    """A visual model behind the real protocol: image tokens from pixel statistics, calls recorded."""

    id = "fake-vlm"
    context_tokens = 4096
    hidden_size = 8
    accepts_visual_tokens = True

    def __init__(self) -> None:
        self.calls: list[tuple[list[Message], Any]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def image_tokens(self, frames: Sequence[Any]) -> list[Any]:
        out = []
        for frame in frames:
            rows = np.asarray(frame, dtype=np.float32).reshape(-1, 3)[:, :1].repeat(8, axis=1)
            out.append(rows[: 50 + int(frame.mean()) % 7] / 255.0)  # token counts vary from frame to frame
        return out

    def generate(
        self,
        messages: Sequence[Message],
        options: GenerationOptions,
        images: Sequence[Any] = (),
        visual_tokens: Any = None,
    ) -> Iterator[str]:
        self.calls.append((list(messages), visual_tokens))
        yield "A picture."


def test_a_seeing_model_gets_memory_tokens_and_the_pooled_scene_each_time() -> None:
    model = FakeSeeingModel()
    captioner = Captioner(model, TrainingFreeBridge(MemoryOptions(tokens=6)), CaptionOptions(scene_tokens=5))
    rng = np.random.default_rng(0)
    for index in range(12):
        frame = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
        event = captioner.caption(_material(index, keyframe=frame))
        assert event.text == "A picture."
    lengths = [len(tokens) for _, tokens in model.calls]
    assert lengths == [5] + [6 + 5] * 11  # first scene: no memory yet; then memory + scene, never more
    assert all(messages[-1].content.startswith(VISUAL_SLOT) for messages, _ in model.calls)
    assert captioner.memory is not None and captioner.memory.scenes_seen == 12


class _ConstantTextEmbedder:
    id = "constant-text-1"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.full((len(texts), 4), 0.5, dtype=np.float32)


def _pipeline(cache: IndexCache) -> Pipeline:
    transcriber = load_transcriber(SpeechOptions(cpu_threads=2))
    reader = load_reader()
    readers = Readers(lambda: transcriber, lambda: reader, _ConstantTextEmbedder)
    return Pipeline(ThumbnailEmbedder(), readers, IndexOptions(), cache)


def test_streaming_reads_scenes_in_order_with_their_speech_and_screen_text(
    narrated: SynthVideo, installed_models: None, tmp_path: Path
) -> None:
    info = probe(narrated.path)
    contents = list(
        _pipeline(IndexCache(tmp_path)).stream(narrated.path, keyframes=True, speech_chunk_s=60.0)
    )
    found = [scene_material(content) for content in contents]
    starts = [m.scene.start_s for m in found]
    assert starts[0] == 0.0 and found[-1].scene.end_s == pytest.approx(info.duration_s, abs=0.1)
    assert all(a.scene.end_s == b.scene.start_s for a, b in itertools.pairwise(found))
    cuts = [m.scene.end_s for m in found[:-1]]
    assert cuts == pytest.approx([4.0, 8.0], abs=0.6)  # the video's two cuts
    # testsrc2 draws a running timecode: real text on screen, read as such
    assert "GATE 42" in found[1].screen and "GATE" not in found[0].screen and found[2].screen == ""
    assert "noon" in found[2].speech.lower() and found[0].speech == found[1].speech == ""
    assert all(m.keyframe is not None and m.keyframe.ndim == 3 for m in found)


def test_streaming_and_indexing_give_a_scene_the_same_screen_text_and_speech(
    narrated: SynthVideo, installed_models: None, tmp_path: Path
) -> None:
    """One driver, one set of stages and settings: a scene's material does not depend on the mode."""
    pipeline = _pipeline(IndexCache(tmp_path))
    streamed = [
        scene_material(c) for c in pipeline.stream(narrated.path, keyframes=False, speech_chunk_s=60.0)
    ]
    indexed = [scene_material(c) for c in pipeline.scenes(pipeline.knowledge(narrated.path), keyframes=False)]
    spans = [(m.scene.start_s, m.scene.end_s) for m in indexed]
    assert np.allclose(spans, [(m.scene.start_s, m.scene.end_s) for m in streamed], atol=0.6)
    assert [m.screen for m in indexed] == [m.screen for m in streamed]
    assert [m.speech.lower() for m in indexed] == [m.speech.lower() for m in streamed]


def _srt_spans(path: Path) -> list[tuple[float, float, str]]:
    return [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in srt.parse(path.read_text())]


def test_caption_stream_prints_each_scene_and_writes_valid_subtitles(
    narrated: SynthVideo, installed_models: None, tmp_path: Path
) -> None:
    out_srt, out_vtt = tmp_path / "n.srt", tmp_path / "n.vtt"
    result = run_cli(
        "caption",
        str(narrated.path),
        "--stream",
        "--srt",
        str(out_srt),
        "--vtt",
        str(out_vtt),
        "--device",
        "cpu",
    )
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("[0:00\u20130:0")
    assert "GATE 42" in lines[1] or "gate" in lines[1].lower()
    cues = _srt_spans(out_srt)
    assert [text for _, _, text in cues] == [line.split("] ", 1)[1] for line in lines]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(cues))  # in order, never overlapping
    assert len(webvtt.read(str(out_vtt))) == 3


def test_caption_whole_video_as_json(narrated: SynthVideo, installed_models: None, tmp_path: Path) -> None:
    result = run_cli(
        "caption",
        str(narrated.path),
        "--json",
        "--device",
        "cpu",
        env={**_env(), "VIDEOQA_CACHE": str(tmp_path / "cache")},
    )
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    captions = report["captions"]
    assert [c["scene"] for c in captions] == [0, 1, 2]
    assert captions[0]["start_s"] == 0.0 and captions[1]["start_s"] == captions[0]["end_s"]
    assert "GATE 42" in captions[1]["screen"] and "noon" in captions[2]["speech"].lower()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_ctrl_c_leaves_valid_subtitle_files(story: Story, installed_models: None, tmp_path: Path) -> None:
    out_srt = tmp_path / "s.srt"
    command = [
        sys.executable,
        "-m",
        "videoqa",
        "caption",
        str(story.path),
        "--stream",
        "--srt",
        str(out_srt),
        "--no-screen-text",
        "--device",
        "cpu",
        "--fast",  # the smaller models: what is checked is the stop, not the captions
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    while "(no speech or on-screen text)" in line:  # those are printed but not written as subtitles
        line = process.stdout.readline()
    process.send_signal(signal.SIGINT)  # a caption is written: stop the run the way Ctrl-C does
    _, err = process.communicate(timeout=60)
    assert line.startswith("[")
    assert process.returncode == 130, err
    assert "interrupted after" in err and "Traceback" not in err
    cues = _srt_spans(out_srt)
    assert len(cues) >= 1 and cues[0][2] == line.split("] ", 1)[1].strip()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--srt", "{tmp}/missing/c.srt"), "does not exist"),
        (("--vtt", "{tmp}"), "is a folder"),
        (("--bridge", "{tmp}/none.safetensors"), "no such memory-bridge file"),
    ],
)
def test_bad_caption_input_is_one_line(
    args: tuple[str, ...], fragment: str, narrated: SynthVideo, tmp_path: Path
) -> None:
    filled = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert_one_line_error(run_cli("caption", str(narrated.path), *filled), fragment)


def test_caption_of_a_missing_video_is_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("caption", str(tmp_path / "nope.mp4"), "--stream"), "nope.mp4")


def test_a_video_without_audio_is_captioned_with_one_warning(
    rotated: dict[int, Path], installed_models: None
) -> None:
    result = run_cli("caption", str(rotated[90]), "--stream", "--device", "cpu")
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("[0:00\u2013")
    warnings = [line for line in result.stderr_lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "no audio" in warnings[0], result.stderr
