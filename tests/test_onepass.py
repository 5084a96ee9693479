"""One pass over the file builds what a video's knowledge misses (issue 16): the frames are decoded once
for the image model and the screen-text reader, the audio once for speech, beside them; a warm cache
decodes nothing and loads no speech or OCR model; a stage that is cached is not run again."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import videoqa.channels.speech
import videoqa.knowledge.build
import videoqa.media.source
import videoqa.media.video
from videoqa.channels.ocr import TextLine
from videoqa.channels.speech import SpeechSegment
from videoqa.knowledge.build import IndexReport, Readers, VideoKnowledge, build_knowledge
from videoqa.media.decoders import DetailedBatch
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthVideo
from videoqa.types import FrameBatch
from videoqa.visual.index import IndexOptions

from helpers import ThumbnailEmbedder


class CountingTranscriber:
    id = "fake-speech-1"

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(
        self, audio: npt.NDArray[np.float32], on_progress: Callable[[float], None] | None = None
    ) -> list[SpeechSegment]:
        self.calls += 1
        return [SpeechSegment(0.5, 1.5, f"heard {len(audio)} samples")]


class RecordingReader:
    """A screen reader that reads "GATE" on every frame and keeps the shape of each frame it is given."""

    def __init__(self, reader_id: str = "fake-screen-1") -> None:
        self.id = reader_id
        self.shapes: list[tuple[int, ...]] = []

    def read(self, images: npt.NDArray[np.uint8]) -> list[list[TextLine]]:
        self.shapes += [image.shape for image in images]
        return [[TextLine("GATE", 1.0, (0, 0, 10, 10))] for _ in images]


class ConstantTextEmbedder:
    id = "fake-text-1"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.full((len(texts), 4), 0.5, dtype=np.float32)


def refuse(what: str) -> Callable[..., Any]:
    def refused(*args: object, **kwargs: object) -> Any:
        raise AssertionError(f"{what} was called")

    return refused


def build(
    video: Path,
    cache: IndexCache,
    transcriber: Any,
    reader: Any,
    embedder: Any = None,
    **readers: Any,
) -> tuple[VideoKnowledge, IndexReport]:
    reports: list[IndexReport] = []
    known = build_knowledge(
        video,
        embedder or ThumbnailEmbedder(),
        Readers(lambda: transcriber, lambda: reader, ConstantTextEmbedder, **readers),
        IndexOptions(),
        cache,
        on_report=reports.append,
    )
    return known, reports[0]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the pass decodes the frames and the audio."""
    calls = {"frames": 0, "audio": 0}
    read_frames, audio_chunks = videoqa.media.video.read_frames, videoqa.channels.speech.audio_chunks

    def frames(*args: Any, **kwargs: Any) -> Iterator[FrameBatch]:
        calls["frames"] += 1
        return read_frames(*args, **kwargs)

    def audio(*args: Any, **kwargs: Any) -> Any:
        calls["audio"] += 1
        return audio_chunks(*args, **kwargs)

    monkeypatch.setattr(videoqa.knowledge.build, "read_frames", frames)
    monkeypatch.setattr(videoqa.channels.speech, "audio_chunks", audio)
    return calls


def test_every_channel_comes_from_one_decode_of_the_frames_and_one_of_the_audio(
    narrated: SynthVideo, tmp_path: Path, counted: dict[str, int]
) -> None:
    transcriber, reader = CountingTranscriber(), RecordingReader()
    known, report = build(narrated.path, IndexCache(tmp_path), transcriber, reader)
    assert counted == {"frames": 1, "audio": 1} and transcriber.calls == 1
    assert report.built == ("speech", "frames", "screen text")
    # The reader got the full-size copies (the video is 320x180), the image model the index's frames.
    assert reader.shapes and set(reader.shapes) == {(180, 320, 3)}
    assert len(known.visual.timestamps_s) == 12 and len(known.visual.scenes) == 3
    assert known.transcript.text.startswith("heard") and [s.text for s in known.screen] == ["GATE"]
    assert report.screen.frames == 12 and report.screen.looks == report.screen.reads >= 3


def test_a_warm_cache_decodes_nothing_and_loads_no_reader(
    narrated: SynthVideo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = IndexCache(tmp_path)
    first, _ = build(narrated.path, cache, CountingTranscriber(), RecordingReader())
    for module, name in [
        (videoqa.knowledge.build, "read_frames"),
        (videoqa.channels.speech, "audio_chunks"),
        (videoqa.media.source, "probe"),
    ]:
        monkeypatch.setattr(module, name, refuse(name))
    reports: list[IndexReport] = []
    again = build_knowledge(
        narrated.path,
        ThumbnailEmbedder(),
        Readers(
            transcriber=refuse("loading the transcriber"),
            screen_reader=refuse("loading the screen reader"),
            text_embedder=ConstantTextEmbedder,
            transcriber_id=lambda: CountingTranscriber.id,
            screen_reader_id=lambda: "fake-screen-1",
        ),
        IndexOptions(),
        cache,
        on_report=reports.append,
    )
    assert reports[0].built == ()
    assert again.transcript.text == first.transcript.text and again.screen == first.screen
    assert np.array_equal(again.visual.frame_embeddings, first.visual.frame_embeddings)


def test_only_the_missing_channel_is_built(
    narrated: SynthVideo, tmp_path: Path, counted: dict[str, int]
) -> None:
    cache = IndexCache(tmp_path)
    build(narrated.path, cache, CountingTranscriber(), RecordingReader())
    transcriber = CountingTranscriber()
    _, report = build(narrated.path, cache, transcriber, RecordingReader("another-screen-reader"))
    assert report.built == ("screen text",)  # a new reader: its screen text only, frames decoded again
    assert counted == {"frames": 2, "audio": 1} and transcriber.calls == 0


def test_the_screen_text_key_follows_what_the_pass_reads(
    narrated: SynthVideo, tmp_path: Path, counted: dict[str, int]
) -> None:
    cache = IndexCache(tmp_path)
    build(narrated.path, cache, CountingTranscriber(), RecordingReader())
    _, report = build(narrated.path, cache, CountingTranscriber(), RecordingReader(), look_every_s=2.0)
    assert report.built == ("screen text",)
    _, report = build(narrated.path, cache, CountingTranscriber(), RecordingReader(), look_every_s=2.0)
    assert report.built == ()


class FailingEmbedder(ThumbnailEmbedder):
    """Fails on its second batch, as a model running out of memory part way would."""

    def __init__(self) -> None:
        super().__init__()
        self.batches = 0

    def embed_images(self, pixels: Any) -> Any:
        self.batches += 1
        if self.batches == 2:
            raise RuntimeError("the image model failed")
        return super().embed_images(pixels)


def test_a_failure_on_the_frame_side_keeps_nothing(narrated: SynthVideo, tmp_path: Path) -> None:
    from videoqa.media.video import SamplingOptions

    cache = IndexCache(tmp_path)
    options = IndexOptions(sampling=SamplingOptions(fps=1.0, max_side=448, batch_size=4))
    with pytest.raises(RuntimeError, match="the image model failed"):
        build_knowledge(
            narrated.path,
            FailingEmbedder(),
            Readers(CountingTranscriber, RecordingReader, ConstantTextEmbedder),
            options,
            cache,
        )
    assert not list(tmp_path.glob("*.npz"))


class BrokenTranscriber(CountingTranscriber):
    def transcribe(
        self, audio: npt.NDArray[np.float32], on_progress: Callable[[float], None] | None = None
    ) -> list[SpeechSegment]:
        raise RuntimeError("the speech model failed")


def test_a_failure_on_the_speech_side_reaches_the_caller_and_keeps_nothing(
    narrated: SynthVideo, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="the speech model failed"):
        build(narrated.path, IndexCache(tmp_path), BrokenTranscriber(), RecordingReader())
    assert not list(tmp_path.glob("*.npz"))


def test_frames_come_with_a_detail_copy_from_the_same_decode(narrated: SynthVideo) -> None:
    from videoqa.media.video import Detail, SamplingOptions, plan_times, probe, read_frames

    info = probe(narrated.path)
    for backend in ("pyav", "decord"):
        sampling = SamplingOptions(fps=1.0, max_side=160, backend=backend)
        plain = list(read_frames(info, plan_times(info, sampling), sampling))
        detailed = list(read_frames(info, plan_times(info, sampling), sampling, Detail()))
        full = list(read_frames(info, plan_times(info, sampling), SamplingOptions(fps=1.0, backend=backend)))
        assert all(isinstance(batch, DetailedBatch) for batch in detailed)
        small = np.concatenate([b.pixels for b in detailed])
        large = np.concatenate([b.detail for b in detailed])  # type: ignore[attr-defined]
        assert small.shape == (12, 90, 160, 3) and large.shape == (12, 180, 320, 3)
        assert np.array_equal(np.concatenate([b.timestamps_s for b in detailed]), np.arange(12) + 0.5)
        # PyAV converts both copies from one decoded picture: each equals a read at its own size.
        # decord decodes once at the larger size and shrinks the small copy itself: nearly equal.
        tolerance = 0 if backend == "pyav" else 8
        assert np.abs(small.astype(int) - np.concatenate([b.pixels for b in plain])).mean() <= tolerance
        assert np.array_equal(large, np.concatenate([b.pixels for b in full]))
