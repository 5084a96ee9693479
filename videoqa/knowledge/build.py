"""Everything videoqa knows about one video, built once and cached: frames, speech, on-screen text.

``build_knowledge`` runs the stages a question needs — the visual index (``visual/index.py``), the
transcript (``channels/speech.py``), the text on screen in each scene (``channels/ocr.py``) — and turns the
text channels into time-stamped passages with their sentence embeddings (``channels/text_embedder.py``).
``pipeline.py`` drives it, and runs the same stages as the video plays. Each stage has its own cache
entry, keyed by the video's content and by what changes that stage's output, so a second question costs
no decoding, a new speech model re-runs only the speech stage, and a damaged entry is rebuilt alone. The
content is fingerprinted once, and each stage that reads the file checks that it still holds that
content before its result is kept: a video replaced part way (a download or sync still writing it) fails
with ContentChangedError instead of leaving another video's speech under this one's key.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from videoqa.channels.ocr import ScreenText, read_screen_text
from videoqa.channels.passages import build_passages
from videoqa.channels.speech import SpeechSegment, Transcript, audio_problem, transcribe_video
from videoqa.channels.text_embedder import embedding_text
from videoqa.media.source import VideoSource, open_video
from videoqa.store.cache import CacheEntry, IndexCache, entry_key
from videoqa.types import Passage, VideoIndex, VideoInfo
from videoqa.visual.index import IndexOptions, index_video

if TYPE_CHECKING:
    from videoqa.channels.ocr import TextReader
    from videoqa.channels.speech import Transcriber
    from videoqa.channels.text_embedder import TextEmbedder
    from videoqa.visual.embed import ImageEmbedder

log = logging.getLogger("videoqa")

ProgressCallback = Callable[[float, float], None]
# Gives the progress callback for a stage ("frames", "speech", "screen text"); None draws nothing.
StageProgress = Callable[[str], ProgressCallback | None]


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


def build_knowledge(
    video: Path | VideoSource,
    embedder: ImageEmbedder,
    readers: Readers,
    options: IndexOptions,
    cache: IndexCache,
    progress: StageProgress | None = None,
) -> VideoKnowledge:
    """Index ``video`` (or load what earlier runs cached) and gather its text channels."""
    stage = progress or (lambda _label: None)
    source = open_video(video, cache)
    content = source.content  # every stage's cache key starts from it
    visual = index_video(source, embedder, options, cache, on_progress=stage("frames"))
    transcript = (
        _transcript(visual, content, readers, cache, stage("speech"))
        if readers.transcriber is not None
        else Transcript((), None, "speech is switched off")
    )
    screen = (
        _screen_text(visual, content, readers, cache, stage("screen text"))
        if readers.screen_reader is not None
        else []
    )
    passages = build_passages(transcript.segments, screen)
    text_embedder = readers.text_embedder()
    vectors = _passage_vectors(passages, content, text_embedder, cache)
    return VideoKnowledge(
        visual=visual,
        transcript=transcript,
        screen=tuple(screen),
        passages=passages,
        passage_vectors=vectors,
        text_embedder_id=text_embedder.id,
    )


def _transcript(
    visual: VideoIndex,
    content: str,
    readers: Readers,
    cache: IndexCache,
    on_progress: ProgressCallback | None,
) -> Transcript:
    problem = audio_problem(visual.info)
    if problem is not None:  # nothing to load a model for
        return transcribe_video(visual.info)
    assert readers.transcriber is not None
    transcriber = readers.transcriber()
    key = entry_key(content, {"channel": "speech", "transcriber": transcriber.id})
    entry = cache.load(key)
    if entry is None:
        with cache.locked(key):
            entry = cache.load(key)  # another process may have transcribed it while we waited
            if entry is None:
                return _new_transcript(visual.info, content, transcriber, key, cache, on_progress)
    # Entries written without words (other code paths) still read: their sentences are cut from the text.
    return Transcript(
        tuple(SpeechSegment.from_record(s) for s in entry.header["segments"]), entry.header["transcriber"]
    )


def _new_transcript(
    info: VideoInfo,
    content: str,
    transcriber: Transcriber,
    key: str,
    cache: IndexCache,
    on_progress: ProgressCallback | None,
) -> Transcript:
    made = transcribe_video(info, on_progress=on_progress, transcriber=transcriber)
    cache.check_unchanged(info.path, content)  # the audio heard must be of the content the key names
    # A transcript cut short (audio that stalled or broke part way) may be whole next time.
    if made.skipped_reason is None:
        cache.save(
            key,
            CacheEntry(
                header={
                    "segments": [s.to_record() for s in made.segments],
                    "transcriber": made.transcriber_id,
                },
                arrays={},
            ),
        )
    return made


def _screen_text(
    visual: VideoIndex,
    content: str,
    readers: Readers,
    cache: IndexCache,
    on_progress: ProgressCallback | None,
) -> list[ScreenText]:
    assert readers.screen_reader is not None
    reader = readers.screen_reader()
    spans = [(s.start_s, s.end_s, s.keyframe_s) for s in visual.scenes]
    key = entry_key(content, {"channel": "screen", "reader": reader.id, "spans": _digest(spans)})

    def build() -> CacheEntry:
        found = read_screen_text(visual.info, spans, reader, on_progress=on_progress)
        cache.check_unchanged(visual.info.path, content)  # the frames read must be of the content
        return CacheEntry(header={"screen": [asdict(s) for s in found]}, arrays={})

    entry, _ = cache.get_or_build(key, build)
    return [ScreenText(**s) for s in entry.header["screen"]]


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
