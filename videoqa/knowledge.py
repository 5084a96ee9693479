"""Everything videoqa knows about one video, built once and cached: frames, speech, on-screen text.

``build_knowledge`` runs the stages a question needs — the visual index (``index.py``), the transcript
(``speech.py``), the text on screen in each scene (``ocr.py``) — and turns the text channels into
time-stamped passages with their sentence embeddings (``textindex.py``). Each stage has its own cache
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

from videoqa.cache import CacheEntry, IndexCache, entry_key
from videoqa.index import IndexOptions, index_video
from videoqa.ocr import ScreenText, read_screen_text
from videoqa.speech import SpeechSegment, Transcript, audio_problem, transcribe_video
from videoqa.textindex import embedding_text
from videoqa.types import Passage, VideoIndex, VideoInfo

if TYPE_CHECKING:
    from videoqa.embed import ImageEmbedder
    from videoqa.ocr import TextReader
    from videoqa.speech import Transcriber
    from videoqa.textindex import TextEmbedder

log = logging.getLogger("videoqa")

_SENTENCE_END = (".", "?", "!")
_MAX_PAUSE_IN_SENTENCE_S = 1.0  # a longer pause ends a sentence even without a full stop
_MAX_SENTENCE_S = 20.0  # longer stretches of unpunctuated speech are cut here, to keep citations precise

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
    text_embedder: TextEmbedder


def build_knowledge(path: Path, embedder: ImageEmbedder, readers: Readers, options: IndexOptions,
                    cache: IndexCache, progress: StageProgress | None = None) -> VideoKnowledge:
    """Index ``path`` (or load what earlier runs cached) and gather its text channels."""
    stage = progress or (lambda _label: None)
    content = cache.fingerprint(path)  # every stage's cache key starts from it
    visual = index_video(path, embedder, options, cache, on_progress=stage("frames"),
                         content_fingerprint=content)
    transcript = _transcript(visual, content, readers, cache, stage("speech")) \
        if readers.transcriber is not None else Transcript((), None, "speech is switched off")
    screen = _screen_text(visual, content, readers, cache, stage("screen text")) \
        if readers.screen_reader is not None else []
    passages = _passages(transcript.segments, screen)
    vectors = _passage_vectors(passages, content, readers.text_embedder, cache)
    return VideoKnowledge(visual=visual, transcript=transcript, screen=tuple(screen), passages=passages,
                          passage_vectors=vectors, text_embedder_id=readers.text_embedder.id)


def _transcript(visual: VideoIndex, content: str, readers: Readers, cache: IndexCache,
                on_progress: ProgressCallback | None) -> Transcript:
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
    return Transcript(tuple(SpeechSegment(**s) for s in entry.header["segments"]),
                      entry.header["transcriber"])


def _new_transcript(info: VideoInfo, content: str, transcriber: Transcriber, key: str, cache: IndexCache,
                    on_progress: ProgressCallback | None) -> Transcript:
    made = transcribe_video(info, on_progress=on_progress, transcriber=transcriber)
    cache.check_unchanged(info.path, content)  # the audio heard must be of the content the key names
    # A transcript cut short (audio that stalled or broke part way) may be whole next time.
    if made.skipped_reason is None:
        cache.save(key, CacheEntry(header={"segments": [asdict(s) for s in made.segments],
                                           "transcriber": made.transcriber_id}, arrays={}))
    return made


def _screen_text(visual: VideoIndex, content: str, readers: Readers, cache: IndexCache,
                 on_progress: ProgressCallback | None) -> list[ScreenText]:
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


def _passages(segments: tuple[SpeechSegment, ...], screen: list[ScreenText]) -> tuple[Passage, ...]:
    passages = [Passage("speech", s.start_s, s.end_s, s.text) for s in sentences(segments)]
    passages += [Passage("screen", s.start_s, s.end_s, " / ".join(s.text.splitlines())) for s in screen
                 if s.text.strip()]
    return tuple(sorted(passages, key=lambda p: (p.start_s, p.channel)))


def sentences(segments: tuple[SpeechSegment, ...]) -> list[SpeechSegment]:
    """Transcript segments joined into sentences: the unit a question is matched against.

    The recogniser cuts where its windows and pauses fall, not where sentences end ("the conference" |
    "will take place in Sydney"); a half sentence matches the question and hides the answer. Segments
    are joined while the previous one does not end a sentence, the pause between them is short and the
    sentence stays short enough to cite.
    """
    joined: list[SpeechSegment] = []
    for segment in segments:
        text = segment.text.strip()
        if not text:
            continue
        last = joined[-1] if joined else None
        if last is not None and not last.text.endswith(_SENTENCE_END) \
                and segment.start_s - last.end_s <= _MAX_PAUSE_IN_SENTENCE_S \
                and segment.end_s - last.start_s <= _MAX_SENTENCE_S:
            joined[-1] = SpeechSegment(last.start_s, segment.end_s, f"{last.text} {text}")
        else:
            joined.append(SpeechSegment(segment.start_s, segment.end_s, text))
    return joined


def _passage_vectors(passages: tuple[Passage, ...], content: str, embedder: TextEmbedder,
                     cache: IndexCache) -> npt.NDArray[np.float32]:
    key = entry_key(content, {"channel": "passages", "text_embedder": embedder.id,
                              "passages": _digest([asdict(p) for p in passages])})

    def build() -> CacheEntry:
        vectors = embedder.embed([embedding_text(p) for p in passages])
        return CacheEntry(header={}, arrays={"vectors": vectors.astype(np.float32)})

    entry, _ = cache.get_or_build(key, build)
    vectors: npt.NDArray[np.float32] = entry.arrays["vectors"]
    return vectors


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]
