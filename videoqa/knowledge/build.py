"""Everything videoqa knows about one video, built once and cached: frames, speech, on-screen text.

``build_knowledge`` gathers the visual index (``visual/index.py``), the transcript (``channels/speech.py``)
and the text on screen (``channels/ocr.py``), and turns the text channels into time-stamped passages with
their sentence embeddings (``channels/text_embedder.py``). ``pipeline.py`` drives it, and runs the same
stages as the video plays.

Each stage has its own cache entry, keyed by the video's content and by what changes that stage's
output, so a second question decodes nothing, a new speech model re-runs only the speech stage, and a
damaged entry is rebuilt alone. What is missing is built in one pass over the file (``_OnePass``): the
frames are decoded once, each at the index's size for the image model and at a larger size for the
screen-text reader, while the audio is decoded and transcribed in a thread of its own, beside them (the
two sides share the cores as ``host.cores.thread_plan`` says). The content is fingerprinted once, and
the file is checked to still hold that content before any result of the pass is kept: a video replaced
part way (a download or sync still writing it) fails with ContentChangedError instead of leaving another
video's speech under this one's key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from videoqa.channels.ocr import (
    DEFAULT_LOOK_EVERY_S,
    ScreenStats,
    ScreenText,
    ScreenTextPass,
    screen_detail,
)
from videoqa.channels.passages import build_passages
from videoqa.channels.speech import SpeechSegment, Transcript, audio_problem, transcribe_video
from videoqa.channels.text_embedder import embedding_text
from videoqa.host.cores import thread_plan
from videoqa.host.memory import Trimmer, release_freed_memory
from videoqa.media.source import VideoSource, open_video
from videoqa.media.video import Detail, plan_times, read_frames
from videoqa.store.cache import CacheEntry, IndexCache, entry_key
from videoqa.types import Passage, VideoIndex, VideoInfo
from videoqa.visual.index import (
    FrameIndexer,
    IndexOptions,
    cached_index,
    index_key,
    sampling_recipe,
    store_index,
)

if TYPE_CHECKING:
    from videoqa.channels.ocr import TextReader
    from videoqa.channels.speech import Transcriber
    from videoqa.channels.text_embedder import TextEmbedder
    from videoqa.visual.embed import ImageEmbedder

log = logging.getLogger("videoqa")

ProgressCallback = Callable[[float, float], None]
# Gives the progress callback for a stage ("frames", "speech", "screen text"); None draws nothing.
StageProgress = Callable[[str], ProgressCallback | None]

# Bump when what the screen-text stage reads, or how, changes (it is part of the entry's key). 2: one pass
# over the index's frames, a cheap look first, only new or changed boxes read (1 read frames at fixed
# steps within each scene). 3: the look's boxes read as they are where the finder would not see closer.
SCREEN_PASS_VERSION = 3


@dataclass(frozen=True, eq=False)
class VideoKnowledge:
    """One video's index and text channels, with the passages questions are matched against."""

    visual: VideoIndex
    transcript: Transcript
    screen: tuple[ScreenText, ...]
    passages: tuple[Passage, ...]  # speech and screen text, in time order
    passage_vectors: npt.NDArray[np.float32]  # (len(passages), d) sentence embeddings, unit rows
    text_embedder_id: str


@dataclass(frozen=True)
class Readers:
    """The models that turn a video into text; a channel whose model is None is left out."""

    transcriber: Callable[[], Transcriber] | None  # loaded only when a transcript must be made
    screen_reader: Callable[[], TextReader] | None
    text_embedder: Callable[[], TextEmbedder]  # loaded when the passages are embedded (not by streaming)
    # The readers' ids without loading them, for the cache keys (a cached video then loads neither);
    # None: the reader is loaded to ask it.
    transcriber_id: Callable[[], str] | None = None
    screen_reader_id: Callable[[], str] | None = None
    # The frames the screen reader gets: the full frame, shrunk past what the reader reads at.
    screen_detail: Detail = field(default_factory=screen_detail)
    look_every_s: float = DEFAULT_LOOK_EVERY_S  # see ScreenTextPass

    def speech_id(self) -> str:
        assert self.transcriber is not None
        return self.transcriber_id() if self.transcriber_id is not None else self.transcriber().id

    def screen_id(self) -> str:
        assert self.screen_reader is not None
        return self.screen_reader_id() if self.screen_reader_id is not None else self.screen_reader().id


@dataclass
class IndexReport:
    """What building one video's knowledge cost: wall seconds, and CPU seconds of each side of the pass.

    Given to ``build_knowledge``'s ``on_report``; the figures of benchmarks/ask.py's stage breakdown.
    """

    built: tuple[str, ...] = ()  # the stages built now ("frames", "speech", "screen text"); () all cached
    pass_s: float = 0.0  # wall seconds of the pass over the file (frames and speech side by side)
    frames_s: float = 0.0  # wall seconds of the frame side (decoding, image model, screen text)
    speech_s: float = 0.0  # wall seconds of the speech side (audio decoding and recognition)
    embed_cpu_s: float = 0.0  # CPU seconds of the image model (its thread)
    screen_cpu_s: float = 0.0  # CPU seconds of the screen-text pass (its thread)
    passages_s: float = 0.0  # wall seconds embedding the passages
    screen: ScreenStats = field(default_factory=ScreenStats)


def build_knowledge(
    video: Path | VideoSource,
    embedder: ImageEmbedder,
    readers: Readers,
    options: IndexOptions,
    cache: IndexCache,
    progress: StageProgress | None = None,
    on_report: Callable[[IndexReport], None] | None = None,
) -> VideoKnowledge:
    """Index ``video`` (or load what earlier runs cached) and gather its text channels."""
    source = open_video(video, cache)
    report = IndexReport()
    visual, transcript, screen = _channels(source, embedder, readers, options, cache, progress, report)
    passages = build_passages(transcript.segments, screen)
    text_embedder = readers.text_embedder()
    started = time.perf_counter()
    vectors = _passage_vectors(passages, source.content, text_embedder, cache)
    report.passages_s = time.perf_counter() - started
    if on_report is not None:
        on_report(report)
    return VideoKnowledge(
        visual=visual,
        transcript=transcript,
        screen=tuple(screen),
        passages=passages,
        passage_vectors=vectors,
        text_embedder_id=text_embedder.id,
    )


@dataclass
class _Parts:
    """The three channels of one video as far as they are known (None: to be built), and their keys."""

    visual_key: str
    speech_key: str | None  # None: speech is switched off
    screen_key: str | None  # None: screen text is switched off
    visual: VideoIndex | None = None
    transcript: Transcript | None = None
    screen: list[ScreenText] | None = None

    def missing_keys(self) -> list[str]:
        """The keys of the entries still to build, in one fixed order (so two builders lock alike)."""
        wanted = [
            (self.visual_key, self.visual),
            (self.speech_key, self.transcript),
            (self.screen_key, self.screen),
        ]
        return [key for key, value in wanted if key is not None and value is None]


def _channels(
    source: VideoSource,
    embedder: ImageEmbedder,
    readers: Readers,
    options: IndexOptions,
    cache: IndexCache,
    progress: StageProgress | None,
    report: IndexReport,
) -> tuple[VideoIndex, Transcript, list[ScreenText]]:
    """Each channel from the cache, and what is missing built in one pass (under the entries' locks)."""
    parts = _Parts(
        visual_key=index_key(source.content, embedder, options),
        speech_key=_speech_key(source.content, readers) if readers.transcriber is not None else None,
        screen_key=_screen_key(source.content, readers, options) if readers.screen_reader else None,
    )
    _load_cached(parts, source, embedder, options, cache)
    if parts.missing_keys():
        with ExitStack() as locks:
            for key in parts.missing_keys():
                locks.enter_context(cache.locked(key))
            _load_cached(parts, source, embedder, options, cache)  # built by another while we waited?
            if parts.missing_keys():
                _OnePass(source, embedder, readers, options, cache, progress, report).run(parts)
    assert parts.visual is not None
    transcript = parts.transcript or Transcript((), None, "speech is switched off")
    return parts.visual, transcript, parts.screen or []


def _speech_key(content: str, readers: Readers) -> str:
    return entry_key(content, {"channel": "speech", "transcriber": readers.speech_id()})


def _screen_key(content: str, readers: Readers, options: IndexOptions) -> str:
    """What changes the screen text: the reader, the frames it is given and the pass's rules."""
    recipe = {
        "channel": "screen",
        "reader": readers.screen_id(),
        "pass": SCREEN_PASS_VERSION,
        "sampling": sampling_recipe(options.sampling),
        "detail": readers.screen_detail.max_side,
        "look_every_s": readers.look_every_s,
    }
    return entry_key(content, recipe)


def _load_cached(
    parts: _Parts, source: VideoSource, embedder: ImageEmbedder, options: IndexOptions, cache: IndexCache
) -> None:
    if parts.visual is None:
        parts.visual = cached_index(source, embedder, options, cache)
        if parts.visual is not None:
            source.knows(parts.visual.info)  # the cached probe: the file need not be probed again
    if parts.speech_key is not None and parts.transcript is None:
        entry = cache.load(parts.speech_key)
        if entry is not None:
            # Entries written without words (other code paths) still read: sentences are cut from the text.
            segments = tuple(SpeechSegment.from_record(s) for s in entry.header["segments"])
            parts.transcript = Transcript(segments, entry.header["transcriber"])
    if parts.screen_key is not None and parts.screen is None:
        entry = cache.load(parts.screen_key)
        if entry is not None:
            parts.screen = [ScreenText(**s) for s in entry.header["screen"]]


class _OnePass:
    """Builds the missing channels of one video in a single pass over its file.

    The frame side runs in the calling thread: frames decoded once (a decoding thread runs ahead, a
    bounded queue between them), each batch embedded for the index and read for screen text. The speech
    side runs in a thread of its own: audio decoded once, handed over in bounded chunks, recognised.
    CTranslate2, onnxruntime and FFmpeg release the GIL while they work, so the two sides fill two cores.
    """

    def __init__(
        self,
        source: VideoSource,
        embedder: ImageEmbedder,
        readers: Readers,
        options: IndexOptions,
        cache: IndexCache,
        progress: StageProgress | None,
        report: IndexReport,
    ) -> None:
        self.source, self.embedder, self.readers = source, embedder, readers
        self.options, self.cache, self.report = options, cache, report
        self._stage = progress or (lambda _label: None)

    def run(self, parts: _Parts) -> None:
        info = self.source.info
        started = time.perf_counter()
        need_speech = parts.speech_key is not None and parts.transcript is None
        speech = self._start_speech(info) if need_speech else None
        try:
            visual_entry, screen = self._frames(info, parts, concurrent=speech is not None)
            transcript = speech.result() if speech is not None else None
        finally:
            if speech is not None:
                speech.stop()
        self.report.pass_s = time.perf_counter() - started
        release_freed_memory()
        # Everything read must be of the content the keys name; nothing is kept otherwise.
        self.cache.check_unchanged(self.source.path, self.source.content)
        self._keep(parts, visual_entry, transcript, screen)

    def _keep(
        self,
        parts: _Parts,
        visual_entry: CacheEntry | None,
        transcript: Transcript | None,
        screen: list[ScreenText] | None,
    ) -> None:
        if visual_entry is not None:
            parts.visual = store_index(self.source, visual_entry, self.options, self.cache, parts.visual_key)
        if transcript is not None:
            parts.transcript = transcript
            # A transcript cut short (audio that stalled or broke part way) may be whole next time.
            if transcript.skipped_reason is None and transcript.transcriber_id is not None:
                assert parts.speech_key is not None
                header = {
                    "segments": [s.to_record() for s in transcript.segments],
                    "transcriber": transcript.transcriber_id,
                }
                self.cache.save(parts.speech_key, CacheEntry(header=header, arrays={}))
        if screen is not None:
            parts.screen = screen
            assert parts.screen_key is not None
            entry = CacheEntry(header={"screen": [asdict(s) for s in screen]}, arrays={})
            self.cache.save(parts.screen_key, entry)

    def _start_speech(self, info: VideoInfo) -> _SpeechThread | None:
        """The speech side, started; None when there is no audio to hear (one warning, nothing loaded)."""
        self.report.built += ("speech",)
        if audio_problem(info) is not None:
            return _SpeechThread.done(transcribe_video(info))
        assert self.readers.transcriber is not None
        transcriber = self.readers.transcriber()
        return _SpeechThread(info, transcriber, self._stage("speech"), self.report)

    def _frames(
        self, info: VideoInfo, parts: _Parts, concurrent: bool
    ) -> tuple[CacheEntry | None, list[ScreenText] | None]:
        """The frame side: the index's entry and the screen text, whichever are missing, from one decode."""
        need_visual = parts.visual is None
        need_screen = parts.screen_key is not None and parts.screen is None
        if not (need_visual or need_screen):
            return None, None
        started = time.perf_counter()
        self.report.built += (("frames",) if need_visual else ()) + (("screen text",) if need_screen else ())
        sampling = self.options.sampling
        if concurrent:  # the frame side's share of the cores; alone, the decoder takes them all
            sampling = replace(sampling, threads=thread_plan().frames)
        indexer = (
            FrameIndexer(info, self.embedder, self.options, self._stage("frames")) if need_visual else None
        )
        screen = self._screen_pass(info) if need_screen else None
        on_screen = self._stage("screen text") if need_screen else None
        detail = self.readers.screen_detail if need_screen else None
        trim = Trimmer()  # keeps resident memory flat in the video's length (host/memory.py)
        with _torch_threads(thread_plan().frames if concurrent else None):
            for batch in read_frames(info, plan_times(info, sampling), sampling, detail):
                trim()
                if indexer is not None:
                    with _cpu(self.report, "embed_cpu_s"):
                        indexer.add(batch)
                if screen is not None:
                    with _cpu(self.report, "screen_cpu_s"):
                        screen.add(batch)
                    if on_screen is not None:
                        on_screen(float(batch.timestamps_s[-1]), info.duration_s)
        entry = indexer.entry() if indexer is not None else None
        texts = screen.finish() if screen is not None else None
        if on_screen is not None:
            on_screen(info.duration_s, info.duration_s)
        if screen is not None:
            self.report.screen = screen.stats
        self.report.frames_s = time.perf_counter() - started
        return entry, texts

    def _indexer(self, info: VideoInfo) -> FrameIndexer:
        return FrameIndexer(info, self.embedder, self.options, self._stage("frames"))

    def _screen_pass(self, info: VideoInfo) -> ScreenTextPass:
        assert self.readers.screen_reader is not None
        return ScreenTextPass(self.readers.screen_reader(), info.duration_s, self.readers.look_every_s)


@contextmanager
def _cpu(report: IndexReport, name: str) -> Iterator[None]:
    """Adds the CPU seconds this thread spends in the block to ``report``'s field ``name``."""
    started = time.thread_time()
    try:
        yield
    finally:
        setattr(report, name, getattr(report, name) + time.thread_time() - started)


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads for the block, when torch is in use (a CLIP embedder) and ``threads`` is
    set: beside speech recognition its default (every core) would oversubscribe them."""
    torch = sys.modules.get("torch")
    if torch is None or threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class _Stopped(Exception):
    """Raised inside the speech thread's progress callback to end it early (the frame side failed)."""


class _SpeechThread:
    """The transcript, made in a thread of its own while the frames are read."""

    def __init__(
        self,
        info: VideoInfo,
        transcriber: Transcriber,
        on_progress: ProgressCallback | None,
        report: IndexReport,
    ) -> None:
        self._stop = threading.Event()
        self._result: Transcript | None = None
        self._error: BaseException | None = None
        self._report = report

        trim = Trimmer()

        def progress(done_s: float, total_s: float) -> None:
            if self._stop.is_set():
                raise _Stopped
            trim()
            if on_progress is not None:
                on_progress(done_s, total_s)

        def work() -> None:
            started = time.perf_counter()
            try:
                self._result = transcribe_video(info, on_progress=progress, transcriber=transcriber)
            except _Stopped:
                pass
            except BaseException as exc:  # handed to the caller's thread, which re-raises it
                self._error = exc
            report.speech_s = time.perf_counter() - started

        self._thread: threading.Thread | None = threading.Thread(
            target=work, name="videoqa-speech", daemon=True
        )
        self._thread.start()

    @classmethod
    def done(cls, transcript: Transcript) -> _SpeechThread:
        """A speech side with nothing to do: its transcript is known already."""
        made = cls.__new__(cls)
        made._stop, made._thread, made._error = threading.Event(), None, None
        made._result = transcript
        return made

    def result(self) -> Transcript:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def stop(self) -> None:
        """Ask the thread to end at its next progress report (after a failure on the frame side)."""
        self._stop.set()


def _passage_vectors(
    passages: tuple[Passage, ...], content: str, embedder: TextEmbedder, cache: IndexCache
) -> npt.NDArray[np.float32]:
    key = entry_key(
        content,
        {
            "channel": "passages",
            "text_embedder": embedder.id,
            "passages": _digest([asdict(p) for p in passages]),
        },
    )

    def build() -> CacheEntry:
        vectors = embedder.embed([embedding_text(p) for p in passages])
        return CacheEntry(header={}, arrays={"vectors": vectors.astype(np.float32)})

    entry, _ = cache.get_or_build(key, build)
    vectors: npt.NDArray[np.float32] = entry.arrays["vectors"]
    return vectors


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
