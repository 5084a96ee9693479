"""The pipeline driver: one set of stage objects and settings, run in batch or as the video plays.

* **Batch** (``Pipeline.knowledge``): the video is indexed once and cached — frames and scenes, speech,
  screen text, passage vectors (``build.py``) — and ``Pipeline.scenes`` walks its scenes with what each
  holds. ``ask``, ``chat``, ``index`` and ``caption`` without ``--stream`` run this way.
* **Streaming** (``Pipeline.stream``): the frames are read once, in time order; each batch is embedded and
  fed to the streaming SceneTilling, and when a scene closes, what it holds — the speech said in it
  (audio transcribed a chunk ahead), the text on screen, its keyframe — is handed on at once.

Both modes decode each frame once, sample frames with the same ``IndexOptions``, cut scenes with the
same SceneTilling settings, and read screen text with the same ``ScreenTextPass`` on the same frames (each
sampled frame's detail copy, looked at and read by the same rules), so a caption written while the video
plays rests on the same material as one written from the index.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from videoqa.channels.ocr import ScreenTextPass
from videoqa.knowledge.build import (
    IndexReport,
    Readers,
    StageProgress,
    VideoKnowledge,
    build_knowledge,
)
from videoqa.media.source import VideoSource, open_video
from videoqa.media.video import SamplingOptions, plan_times, read_frames
from videoqa.types import FrameBatch, Scene
from videoqa.visual.scenes import StreamingSceneTiller

if TYPE_CHECKING:
    from videoqa.channels.speech import AudioChunk, SpeechSegment, Transcriber
    from videoqa.store.cache import IndexCache
    from videoqa.types import VideoInfo
    from videoqa.visual.embed import ImageEmbedder
    from videoqa.visual.index import IndexOptions

log = logging.getLogger("videoqa")

Frame = npt.NDArray[np.uint8]  # one RGB picture, (height, width, 3)
KeyframeReader = Callable[[list[float]], Iterator[Frame]]  # frames shown at given times, in order
ProgressCallback = Callable[[float, float], None]  # (seconds of video done, seconds in all)


@dataclass(frozen=True)
class SceneContent:
    """What one scene holds: the words said in it, the texts shown in it, its keyframe when wanted."""

    scene: Scene
    speech: str  # what was said in it ("" when nothing)
    screen: tuple[str, ...]  # the texts read on its frames, in time order (repeats possible)
    keyframe: Frame | None  # its keyframe's pixels, when asked for


class Pipeline:
    """The stages that turn a video into what videoqa knows about it, with the settings they share."""

    def __init__(
        self,
        embedder: ImageEmbedder,
        readers: Readers,
        options: IndexOptions,
        cache: IndexCache,
        progress: StageProgress | None = None,
        on_report: Callable[[IndexReport], None] | None = None,
    ) -> None:
        self.embedder, self.readers, self.options = embedder, readers, options
        self.cache, self.progress, self.on_report = cache, progress, on_report

    def open(self, video: str | os.PathLike[str] | VideoSource) -> VideoSource:
        """The door: the file checked and fingerprinted once; every stage after takes the source."""
        return open_video(video, self.cache)

    # --- batch ---------------------------------------------------------------------------------------

    def knowledge(self, video: str | os.PathLike[str] | VideoSource) -> VideoKnowledge:
        """The video indexed, or what earlier runs cached of it."""
        return build_knowledge(
            self.open(video),
            self.embedder,
            self.readers,
            self.options,
            self.cache,
            self.progress,
            self.on_report,
        )

    def scenes(self, known: VideoKnowledge, keyframes: bool) -> Iterator[SceneContent]:
        """The scenes of an indexed video with their speech and screen text; keyframes only when asked
        (read as the scenes go, so a long video's keyframes are never all held at once)."""
        scenes = known.visual.scenes
        pictures: Iterator[Frame | None] = (
            keyframe_pixels(known.visual.info)([s.keyframe_s for s in scenes])
            if keyframes
            else iter([None] * len(scenes))
        )
        for scene in scenes:
            shown = tuple(
                item.text
                for item in known.screen
                if item.start_s < scene.end_s and item.end_s > scene.start_s
            )
            said = text_in(known.transcript.segments, scene.start_s, scene.end_s)
            yield SceneContent(scene, said, shown, next(pictures, None))

    # --- streaming -----------------------------------------------------------------------------------

    def stream(
        self,
        video: str | os.PathLike[str] | VideoSource,
        keyframes: bool,
        speech_chunk_s: float,
        on_progress: ProgressCallback | None = None,
    ) -> Iterator[SceneContent]:
        """Scenes as they close while the video is read in time order, each with what it holds."""
        info = self.open(video).info
        tiller = StreamingSceneTiller(self.options.scenes)
        window = _OpenScene()
        transcriber = self.readers.transcriber() if self.readers.transcriber is not None else None
        speech = _SpeechAhead(info, transcriber, speech_chunk_s)
        reader = self.readers.screen_reader() if self.readers.screen_reader is not None else None
        screen = (
            ScreenTextPass(reader, info.duration_s, self.readers.look_every_s) if reader is not None else None
        )
        detail = self.readers.screen_detail if screen is not None else None

        def content(scene: Scene) -> SceneContent:
            frames = window.close(scene)
            shown = screen.shown_between(scene.start_s, scene.end_s) if screen else []
            return SceneContent(
                scene,
                speech.said(scene.start_s, scene.end_s),
                tuple(item.text for item in shown),
                frames.pixels[scene.keyframe - scene.first_frame] if keyframes else None,
            )

        sampling = self.options.sampling
        for batch in read_frames(info, plan_times(info, sampling), sampling, detail):
            window.add(batch)
            if screen is not None:  # before the tiller: a scene that closes has its frames read
                screen.add(batch)
            for scene in tiller.push(self.embedder.embed_images(batch.pixels), batch.timestamps_s):
                yield content(scene)
            if on_progress is not None:
                on_progress(float(batch.timestamps_s[-1]), info.duration_s)
        for scene in tiller.finish(info.duration_s):
            yield content(scene)


def text_in(segments: Sequence[SpeechSegment], start_s: float, end_s: float) -> str:
    """What was said in [start_s, end_s): the segments whose middle falls in it."""
    return " ".join(s.text.strip() for s in segments if start_s <= (s.start_s + s.end_s) / 2 < end_s).strip()


def keyframe_pixels(info: VideoInfo, max_side: int = 448) -> KeyframeReader:
    """Reads the frames shown at given times (the scenes' keyframes) in one pass, as they are wanted. A
    truncated file ends early: its last frame stands in for the times past the end."""

    def read(times_s: list[float]) -> Iterator[Frame]:
        wanted = np.asarray(times_s, dtype=np.float64)
        given = 0
        last: Frame | None = None
        for batch in read_frames(info, wanted, SamplingOptions(max_side=max_side)):
            for frame in batch.pixels:
                given, last = given + 1, frame
                yield frame
        if last is not None:
            yield from [last] * (len(times_s) - given)

    return read


class _OpenScene:
    """The sampled frames not yet given to a closed scene (the open scene and the tiller's lookahead)."""

    def __init__(self) -> None:
        self._first = 0  # global index of the first frame held
        self._times: list[npt.NDArray[np.float64]] = []
        self._pixels: list[npt.NDArray[np.uint8]] = []

    def add(self, batch: FrameBatch) -> None:
        self._times.append(batch.timestamps_s)
        self._pixels.append(batch.pixels)

    def close(self, scene: Scene) -> FrameBatch:
        """The scene's frames; they are dropped from the window."""
        times, pixels = np.concatenate(self._times), np.concatenate(self._pixels)
        start, stop = scene.first_frame - self._first, scene.stop_frame - self._first
        self._times, self._pixels = [times[stop:]], [pixels[stop:]]
        self._first = scene.stop_frame
        return FrameBatch(times[start:stop], pixels[start:stop])


class _SpeechAhead:
    """The transcript, made a chunk of audio at a time as far as the scenes need it."""

    def __init__(self, info: VideoInfo, transcriber: Transcriber | None, chunk_s: float) -> None:
        from videoqa.channels.speech import audio_chunks, audio_problem

        self._segments: list[SpeechSegment] = []
        self._done_s = 0.0
        self._transcriber = transcriber
        self._chunks: Iterator[AudioChunk] | None = None
        if transcriber is not None:
            problem = audio_problem(info)
            if problem is None:
                self._chunks = audio_chunks(info, chunk_s)
            else:
                log.warning("%s: %s; captions are made without its speech", info.path, problem)

    def said(self, start_s: float, end_s: float) -> str:
        self._transcribe_through(end_s)
        text = text_in(self._segments, start_s, end_s)
        self._segments = [s for s in self._segments if (s.start_s + s.end_s) / 2 >= end_s]
        return text

    def _transcribe_through(self, end_s: float) -> None:
        from videoqa.channels.speech import AudioError, SpeechSegment

        while self._chunks is not None and self._done_s < end_s:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._chunks = None
                return
            except AudioError as exc:
                log.warning("%s; captions after %.0f s are made without speech", exc, self._done_s)
                self._chunks = None
                return
            assert self._transcriber is not None
            found = self._transcriber.transcribe(chunk.samples)
            self._segments += [
                SpeechSegment(chunk.start_s + s.start_s, chunk.start_s + s.end_s, s.text) for s in found
            ]
            self._done_s = chunk.end_s
