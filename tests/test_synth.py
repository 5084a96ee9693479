"""The synthetic video generator: cuts, text cards and speech land exactly where the spec says, spoken by
espeak-ng or by Piper's neural voice (heard back by the real default speech model)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

from videoqa.bench.needle import NeedleOptions
from videoqa.errors import OptionsError
from videoqa.media.video import SamplingOptions, probe, sample_frames
from videoqa.testmedia import facts
from videoqa.testmedia.story import StoryOptions
from videoqa.testmedia.synth import (
    SpokenLine,
    SynthScene,
    SynthSpec,
    SynthVideo,
    TextCard,
    loop_video,
    pattern_scenes,
    render,
)


def test_manifest_matches_the_spec(narrated: SynthVideo) -> None:
    manifest = json.loads(narrated.path.with_suffix(".json").read_text())
    assert manifest["duration_s"] == 12.0
    assert manifest["cut_times_s"] == [4.0, 8.0]
    assert manifest["cards"] == [{"start_s": 5.0, "duration_s": 2.0, "text": "GATE 42"}]
    (spoken,) = manifest["spoken"]
    assert spoken["start_s"] == 8.5 and 9.5 < spoken["end_s"] < 11.5


def test_video_has_the_requested_shape(narrated: SynthVideo) -> None:
    info = probe(narrated.path)
    assert info.duration_s == pytest.approx(12.0, abs=0.05)
    assert (info.width, info.height, info.fps) == (320, 180, 30.0)
    assert info.audio is not None and info.audio.decodable


def test_cuts_are_at_the_stated_times(narrated: SynthVideo) -> None:
    batches = list(sample_frames(narrated.path, SamplingOptions(fps=10)))
    times = np.concatenate([b.timestamps_s for b in batches])
    pixels = np.concatenate([b.pixels for b in batches]).astype(np.float32)
    change = np.abs(np.diff(pixels, axis=0)).mean(axis=(1, 2, 3))
    biggest = np.sort(np.argsort(change)[-2:])
    cut_times = [(times[i] + times[i + 1]) / 2 for i in biggest]
    assert cut_times == pytest.approx([4.0, 8.0], abs=0.1)


def audio_envelope(path: Path, window_s: float = 0.1) -> tuple[npt.NDArray[np.float64], float]:
    """RMS loudness per window of the first audio track, and the window length."""
    with av.open(str(path)) as container:
        samples = [frame.to_ndarray().mean(axis=0) for frame in container.decode(audio=0)]
        rate = container.streams.audio[0].rate
    signal = np.concatenate(samples)
    hop = int(rate * window_s)
    windows = signal[: len(signal) // hop * hop].reshape(-1, hop)
    return np.sqrt((windows**2).mean(axis=1)), window_s


def test_speech_sounds_exactly_when_stated(narrated: SynthVideo) -> None:
    loudness, window_s = audio_envelope(narrated.path)
    loud = np.flatnonzero(loudness > 0.01)
    (span,) = narrated.spoken
    assert loud[0] * window_s == pytest.approx(span.start_s, abs=0.15)
    assert (loud[-1] + 1) * window_s == pytest.approx(span.end_s, abs=0.3)
    assert loudness[: int(8.0 / window_s)].max() < 1e-3  # silence before the sentence


def test_real_footage_scene_and_loop(sample: Callable[[str], Path], media_dir: Path) -> None:
    spec = SynthSpec(
        scenes=(SynthScene(2.0, str(sample("bikes.mp4")), offset_s=1.0), SynthScene(2.0, "lavfi:smptebars")),
        cards=(TextCard(0.5, 1.0, 'héllo: 100% "quoted"'),),
        speech=(SpokenLine(2.5, "Hello."),),
        width=160,
        height=90,
        fps=25.0,
    )
    made = render(spec, media_dir / "footage.mp4")
    assert probe(made.path).duration_s == pytest.approx(4.0, abs=0.05)
    looped = loop_video(made.path, 3, media_dir / "looped.mp4")
    assert probe(looped).duration_s == pytest.approx(12.0, abs=0.2)


@pytest.mark.parametrize(
    "bad",
    [
        {"scenes": ()},
        {"scenes": (SynthScene(1.0, "lavfi:testsrc2"),), "width": 641},
        {"scenes": (SynthScene(1.0, "lavfi:testsrc2"),), "cards": (TextCard(2.0, 1.0, "late"),)},
        {"scenes": (SynthScene(1.0, "lavfi:testsrc2"),), "speech": (SpokenLine(0.1, "hi"),), "audio": False},
    ],
)
def test_spec_is_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SynthSpec(**bad)  # type: ignore[arg-type]


def test_scene_duration_is_validated() -> None:
    with pytest.raises(ValueError):
        SynthScene(0.0, "lavfi:testsrc2")


def test_fades_shorten_the_video_and_cut_in_their_middle() -> None:
    spec = SynthSpec(
        scenes=(
            SynthScene(4.0, "lavfi:testsrc2", fade_s=1.0),
            SynthScene(4.0, "lavfi:smptebars", fade_s=2.0),
            SynthScene(5.0, "lavfi:rgbtestsrc"),
            SynthScene(1.0, "lavfi:color"),
        )
    )
    assert spec.duration_s == 11.0
    assert spec.start_times_s == [0.0, 3.0, 5.0, 10.0]
    assert spec.cut_times_s == [3.5, 6.0, 10.0]


@pytest.mark.parametrize(
    "scenes",
    [
        [(2.0, -0.5), (2.0, 0.0)],
        [(2.0, 2.0), (3.0, 0.0)],  # as long as its own scene
        [(3.0, 2.0), (2.0, 0.0)],  # as long as the next scene
        [(2.0, 0.0), (2.0, 1.0)],  # the last scene has nothing to fade into
        [(3.0, 1.5), (3.0, 1.5), (3.0, 0.0)],  # the middle scene's fade in and fade out would overlap
    ],
)
def test_fades_are_validated(scenes: list[tuple[float, float]]) -> None:
    with pytest.raises(ValueError):
        SynthSpec(
            scenes=tuple(
                SynthScene(duration_s, "lavfi:testsrc2", fade_s=fade_s) for duration_s, fade_s in scenes
            )
        )


def test_cross_fade_blends_the_scenes_around_its_middle(media_dir: Path) -> None:
    # red fades into blue over 1-2 s (cut at 1.5 s); blue cuts to green at 3 s
    spec = SynthSpec(
        scenes=(
            SynthScene(2.0, "lavfi:color=c=red", fade_s=1.0),
            SynthScene(2.0, "lavfi:color=c=blue"),
            SynthScene(2.0, "lavfi:color=c=lime"),
        ),
        width=64,
        height=36,
        fps=25.0,
        audio=False,
    )
    made = render(spec, media_dir / "faded.mp4")
    assert spec.cut_times_s == [1.5, 3.0]
    assert probe(made.path).duration_s == pytest.approx(5.0, abs=0.05)
    batches = list(sample_frames(made.path, SamplingOptions(fps=25)))
    times = np.concatenate([b.timestamps_s for b in batches])
    red, green, blue = np.concatenate([b.pixels for b in batches]).astype(np.float64).mean(axis=(1, 2)).T
    blue_share = blue / np.maximum(red + blue, 1.0)
    fading = (times > 1.0) & (times < 2.0)
    assert blue_share[times < 1.0].max() < 0.05 and blue_share[(times > 2.0) & (times < 3.0)].min() > 0.95
    assert np.all(np.diff(blue_share[fading]) > 0)  # a blend that moves steadily, not a cut
    assert times[np.argmax(blue_share > 0.5)] == pytest.approx(1.5, abs=0.06)
    assert times[np.argmax(green > 128)] == pytest.approx(3.0, abs=0.06)


# --- the neural voice -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"voice": "festival"},
        {"voice": "Piper"},
        {"voice": "piper", "piper_voice": "en_GB-nobody-medium"},
        {"noise": True, "audio": False},
    ],
)
def test_voice_settings_are_checked_up_front(bad: dict[str, object]) -> None:
    with pytest.raises(OptionsError):
        SynthSpec(scenes=pattern_scenes([1.0]), **bad)  # type: ignore[arg-type]


def test_story_and_needle_voices_are_checked_up_front() -> None:
    with pytest.raises(OptionsError, match="voice must be one of espeak, piper"):
        StoryOptions(duration_s=60.0, voice="festival")
    for bad in [(), ("espeak", "espeak"), ("espeak", "festival")]:
        with pytest.raises(OptionsError):
            NeedleOptions(voices=bad)


def test_piper_lines_sound_when_stated_with_noise_under_them_unless_turned_off(media_dir: Path) -> None:
    def spec(noise: bool | None) -> SynthSpec:
        line = SpokenLine(2.0, "The meeting starts at noon.")
        return SynthSpec(
            scenes=pattern_scenes([6.0]),
            speech=(line,),
            width=160,
            height=90,
            fps=10.0,
            voice="piper",
            noise=noise,
        )

    clean = render(spec(False), media_dir / "piper-clean.mp4")
    noisy = render(spec(None), media_dir / "piper-noisy.mp4")  # the neural voice's default: noise on
    assert clean.spoken == noisy.spoken  # no randomness in Piper's rendering: the same line, the same length
    (span,) = clean.spoken
    assert 1.0 < span.end_s - span.start_s < 3.5
    loudness, window_s = audio_envelope(clean.path)
    loud = np.flatnonzero(loudness > 0.01)
    assert loud[0] * window_s == pytest.approx(span.start_s, abs=0.25)  # Piper leads in with a short silence
    assert (loud[-1] + 1) * window_s == pytest.approx(span.end_s, abs=0.3)
    assert loudness[: int(span.start_s / window_s)].max() < 1e-3  # off: digital silence around the line
    noise_floor, _ = audio_envelope(noisy.path)
    before = noise_floor[: int(span.start_s / window_s)]
    assert before.min() > 1e-3 and before.max() < 0.02  # on: quiet pink noise from the first second
    speaking = noise_floor[int(span.start_s / window_s) + 5 : int(span.end_s / window_s) - 5]
    assert speaking.mean() > 5 * before.mean()
    manifest = json.loads(noisy.path.with_suffix(".json").read_text())
    assert manifest["spec"]["voice"] == "piper" and manifest["spoken"][0]["end_s"] == span.end_s


@pytest.mark.slow  # renders 30 s with Piper and transcribes it (about 15 s on two cores)
def test_piper_narration_is_understood_by_the_default_speech_model(
    media_dir: Path, installed_models: None
) -> None:
    from videoqa.channels.speech import SpeechOptions, load_transcriber, transcribe_video

    rng = random.Random(7)
    said = [facts.spoken_fact(rng) for _ in range(5)]  # names, numbers, places and jobs
    lines = tuple(SpokenLine(1.0 + 5.5 * index, fact.text) for index, fact in enumerate(said))
    spec = SynthSpec(
        scenes=pattern_scenes([15.0, 15.0]), speech=lines, width=160, height=90, fps=10.0, voice="piper"
    )
    video = render(spec, media_dir / "piper-facts.mp4")
    transcriber = load_transcriber(SpeechOptions(cpu_threads=2))  # whisper-tiny.en from the store
    transcript = transcribe_video(probe(video.path), transcriber=transcriber)
    for fact, span in zip(said, video.spoken, strict=True):
        heard = " ".join(
            s.text
            for s in transcript.segments
            if s.start_s < span.end_s + 0.5 and s.end_s > span.start_s - 0.5
        )
        assert facts.answer_matches(heard, fact.answers), (fact.text, heard, transcript.segments)


def test_story_chunks_join_into_a_relative_output_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ffmpeg joins the chunks from inside their folder; a relative output path must still land where
    the caller meant, not in that folder."""
    import subprocess

    from videoqa.testmedia.story import _join

    chunks = tmp_path / "chunks"
    chunks.mkdir()
    pieces = [chunks / f"{i}.mp4" for i in range(2)]
    for piece in pieces:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=blue:s=64x36:d=1:r=10", str(piece)],
            check=True,
        )
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    _join(pieces, chunks / "list.txt", Path("out/story.mp4"))
    assert probe(tmp_path / "out" / "story.mp4").duration_s == pytest.approx(2.0, abs=0.2)
    assert not list(chunks.glob("*partial*"))
