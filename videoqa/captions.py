"""Captions, one a scene: in time order as the video is read (streaming), or for a whole indexed video.

Streaming reads the frames once, in order: each batch is embedded and fed to the streaming SceneTilling
(``scenes.StreamingSceneTiller``); when a scene closes, what it holds — the speech said in it (audio is
transcribed a chunk ahead), the text on its frames, its keyframe — is captioned at once and emitted as
a ``CaptionEvent``. The whole-video path captions the scenes of the cached index (``knowledge.py``),
sharing its speech and screen text with ``ask``.

The captioner carries memory from scene to scene so a caption can follow the story (see ``memory.py``):

* a text-only model carries a **rolling summary**: the captions so far, shortened by the model (the
  ``summarise`` prompt) whenever they would pass ``summary_tokens`` — bounded however long the video is;
* a model that takes visual tokens carries **memory tokens**: the scene's keyframe tokens, pooled to
  ``scene_tokens``, go in with the memory so far, and the memory bridge folds the scene in afterwards.

A small text model asked to caption a scene with nothing in it, or one it cannot follow, invents; so a
scene with no speech or screen text gets no model call, and a caption with words the scene's text does
not support is replaced by a quote of that text (``answer.is_grounded``, as for answers).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from videoqa.answer import is_grounded
from videoqa.errors import OptionsError
from videoqa.llm import VISUAL_SLOT, Frame, GenerationOptions, Message, TextGenerator, is_visual
from videoqa.memory import MemoryBridge, MemoryState, pool_tokens
from videoqa.prompt import load_prompt
from videoqa.textindex import word_list
from videoqa.timefmt import format_clock

if TYPE_CHECKING:
    from videoqa.embed import ImageEmbedder
    from videoqa.index import IndexOptions
    from videoqa.knowledge import VideoKnowledge
    from videoqa.llm import VisualGenerator
    from videoqa.ocr import TextReader
    from videoqa.speech import AudioChunk, SpeechSegment, Transcriber
    from videoqa.types import FrameBatch, Scene, VideoInfo

log = logging.getLogger("videoqa")

EMPTY_CAPTION = "(no speech or on-screen text)"
SOURCES = ("model", "quote", "empty")
# Words a faithful caption uses that a scene's speech and screen text need not contain.
_CAPTION_WORDS = frozenset(word_list(
    "says talks explains describes discusses shows introduces speaks asks mentions reads displays "
    "video scene clip caption narrator voice viewer viewers about while"))
_QUOTE_WORDS = 24  # a quoted caption keeps this many words of the scene's text


@dataclass(frozen=True)
class CaptionOptions:
    """How captions are written and what carries from one scene to the next."""

    memory: bool = True  # carry a rolling summary (text models) or memory tokens (visual models)
    summary_tokens: int = 120  # the rolling summary is kept within this many tokens
    scene_tokens: int = 32  # a visual model gets each keyframe's tokens pooled to this many
    generation: GenerationOptions = field(default_factory=lambda: GenerationOptions(max_tokens=48))
    check_grounding: bool = True  # replace text-model captions the scene's text does not support
    speech_chunk_s: float = 60.0  # streaming: audio is transcribed in chunks of this many seconds

    def __post_init__(self) -> None:
        if self.summary_tokens < 16:
            raise OptionsError(f"summary_tokens must be at least 16, got {self.summary_tokens}")
        if self.scene_tokens < 1:
            raise OptionsError(f"scene_tokens must be at least 1, got {self.scene_tokens}")
        if not 5.0 <= self.speech_chunk_s <= 600.0:
            raise OptionsError(f"speech_chunk_s must be within 5..600, got {self.speech_chunk_s}")


@dataclass(frozen=True)
class SceneMaterial:
    """What one scene holds, for captioning."""

    scene: Scene
    speech: str  # what was said in it ("" when nothing)
    screen: str  # the text on its frames, each distinct reading once ("" when none)
    keyframe: Frame | None  # its keyframe's pixels, when the captioner can look at pictures


@dataclass(frozen=True)
class CaptionEvent:
    """A scene's caption, emitted as soon as it is written."""

    index: int  # the scene's position in the video, from 0
    start_s: float
    end_s: float
    text: str
    source: str  # "model" (the model's caption), "quote" (the scene's own text), "empty" (nothing to say)
    speech: str
    screen: str

    @property
    def span(self) -> str:
        return f"{format_clock(self.start_s, 0)}\u2013{format_clock(self.end_s, 0)}"


class Captioner:
    """Captions scenes in order, carrying memory from each to the next; ``reset`` forgets it."""

    def __init__(self, llm: TextGenerator, bridge: MemoryBridge,
                 options: CaptionOptions | None = None) -> None:
        self.llm, self.bridge = llm, bridge
        self.options = options or CaptionOptions()
        self._visual: VisualGenerator | None = llm if is_visual(llm) else None  # type: ignore[assignment]
        self.reset()

    @property
    def looks(self) -> bool:
        """Whether this captioner looks at keyframes (a visual model), so material should carry them."""
        return self._visual is not None

    @property
    def summary(self) -> str:
        return self._summary

    @property
    def memory(self) -> MemoryState | None:
        return self._memory

    def reset(self) -> None:
        self._summary = ""
        self._memory: MemoryState | None = None

    def caption(self, material: SceneMaterial) -> CaptionEvent:
        scene = material.scene
        looked = self._caption_looking(material, self._visual) \
            if self._visual is not None and material.keyframe is not None else ""
        if looked:
            text, source = looked, "model"
        elif not (material.speech or material.screen):
            text, source = EMPTY_CAPTION, "empty"
        elif self._visual is not None:  # a seeing model that said nothing: the scene's own text
            text, source = quote_scene(material), "quote"
        else:
            text, source = self._caption_from_text(material)
        if self.options.memory and source != "empty":
            self._summary = self._extended_summary(text)
        return CaptionEvent(scene.index, scene.start_s, scene.end_s, text, source, material.speech,
                            material.screen)

    # --- text models -----------------------------------------------------------------------------

    def _messages(self, material: SceneMaterial) -> list[Message]:
        template = load_prompt("caption")
        scene = material.scene
        user = template.fill("user", story=self._summary or "nothing yet",
                             span=f"{format_clock(scene.start_s, 0)}-{format_clock(scene.end_s, 0)}",
                             speech=material.speech or "none", screen=material.screen or "none")
        return [Message("system", template.section("system")), Message("user", user)]

    def _caption_from_text(self, material: SceneMaterial) -> tuple[str, str]:
        reply = _first_line("".join(self.llm.generate(self._messages(material), self.options.generation)))
        if self.options.check_grounding and not is_fair_caption(reply, material):
            return quote_scene(material), "quote"
        return reply, "model"

    def _extended_summary(self, caption: str) -> str:
        """The summary with ``caption`` added, shortened by the model when it passes the budget."""
        longer = f"{self._summary} {caption}".strip()
        budget = self.options.summary_tokens
        if self.llm.count_tokens(longer) <= budget:
            return longer
        template = load_prompt("summarise")
        messages = [Message("system", template.section("system")),
                    Message("user", template.fill("user", summary=longer))]
        shorter = " ".join("".join(self.llm.generate(messages, GenerationOptions(max_tokens=budget))).split())
        if not shorter or _echoes_prompt(shorter) or not is_grounded(shorter, [longer], "", _CAPTION_WORDS):
            shorter = longer  # a summary that invents or parrots the prompt is worse than a cut one
        return _keep_last_tokens(shorter, budget, self.llm)

    # --- visual models ---------------------------------------------------------------------------

    def _caption_looking(self, material: SceneMaterial, model: VisualGenerator) -> str:
        messages = self._messages(material)
        assert material.keyframe is not None
        if not model.accepts_visual_tokens:  # GGUF: the keyframe itself; the summary carries the memory
            return _first_line("".join(model.generate(messages, self.options.generation,
                                                      images=[material.keyframe])))
        scene_tokens = pool_tokens(model.image_tokens([material.keyframe])[0], self.options.scene_tokens)
        if self._memory is None:
            self._memory = self.bridge.start(scene_tokens.shape[1])
        visual = scene_tokens if not self.options.memory or self._memory.scenes_seen == 0 \
            else np.concatenate([self._memory.memory, scene_tokens])
        last = messages[-1]
        messages[-1] = Message(last.role, f"{VISUAL_SLOT}\n{last.content}")
        reply = _first_line("".join(model.generate(messages, self.options.generation, visual_tokens=visual)))
        if self.options.memory:
            self._memory = self.bridge.step(self._memory, scene_tokens)
        return reply


# Pieces of the caption prompt a small model sometimes copies into its reply instead of captioning.
_PROMPT_ECHOES = ("speech:", "on screen:", "story so far", "this scene (", "caption", "summary", "rewrite")
_CAPTION_MAX_WORDS = 40


def _echoes_prompt(reply: str) -> bool:
    lowered = reply.lower()
    return any(echo in lowered for echo in _PROMPT_ECHOES)


def is_fair_caption(reply: str, material: SceneMaterial) -> bool:
    """A caption worth showing: short, not a copy of the prompt, and built from the scene's own text (the
    story so far is context, not a source: a caption must be true of this scene)."""
    return bool(reply) and len(reply.split()) <= _CAPTION_MAX_WORDS and not _echoes_prompt(reply) \
        and is_grounded(reply, [material.speech, material.screen], "", _CAPTION_WORDS)


# "The scene: ...", "Caption: ..." - a label small models put before the caption itself.
_LABEL = re.compile(r"^(?:the\s+)?(?:scene|caption)\s*(?:\d+\s*)?:\s*", re.IGNORECASE)


def _first_line(reply: str) -> str:
    """The reply's first line, without a leading label or the quotes around a bare quotation."""
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = _LABEL.sub("", lines[0]).strip()
    if len(line) > 1 and line[0] == line[-1] == '"' and '"' not in line[1:-1]:
        line = line[1:-1].strip()
    return line


def _keep_last_tokens(text: str, budget: int, llm: TextGenerator) -> str:
    """The end of ``text`` that fits ``budget`` tokens, cut at a word: the newest part matters most."""
    words = text.split()
    while len(words) > 1 and llm.count_tokens(" ".join(words)) > budget:
        words = words[max(1, len(words) // 8):]
    return " ".join(words)


def quote_scene(material: SceneMaterial) -> str:
    """The scene's own text as its caption: what was said, else what the screen showed."""
    if material.speech:
        return f'Speech: "{_shortened(material.speech)}"'
    return f'On screen: "{_shortened(material.screen)}"'


def _shortened(text: str) -> str:
    words = text.split()
    return " ".join(words) if len(words) <= _QUOTE_WORDS else " ".join(words[:_QUOTE_WORDS]) + " …"


# --- what a scene holds ----------------------------------------------------------------------------

def text_in(segments: Sequence[SpeechSegment], start_s: float, end_s: float) -> str:
    """What was said in [start_s, end_s): the segments whose middle falls in it."""
    return " ".join(s.text.strip() for s in segments if start_s <= (s.start_s + s.end_s) / 2 < end_s).strip()


def distinct_readings(readings: Sequence[str]) -> str:
    """Readings of consecutive frames, each distinct text once (OCR noise tolerated), one a line."""
    from videoqa.ocr import same_text

    kept: list[str] = []
    for reading in readings:
        reading = " ".join(reading.split())
        if reading and not any(same_text(reading, seen) for seen in kept):
            kept.append(reading)
    return "\n".join(kept)


KeyframeReader = Callable[[list[float]], Iterator[Frame]]  # frames shown at given times, in order


def indexed_materials(known: VideoKnowledge, keyframes: KeyframeReader | None) -> Iterator[SceneMaterial]:
    """The scenes of an indexed video with their speech and screen text; keyframes only when asked
    (read as the scenes go, so a long video's keyframes are never all held at once)."""
    scenes = known.visual.scenes
    pictures: Iterator[Frame | None] = keyframes([s.keyframe_s for s in scenes]) if keyframes \
        else iter([None] * len(scenes))
    for scene in scenes:
        screen = [item.text for item in known.screen
                  if item.start_s < scene.end_s and item.end_s > scene.start_s]
        yield SceneMaterial(scene, text_in(known.transcript.segments, scene.start_s, scene.end_s),
                            distinct_readings(screen), next(pictures, None))


def keyframe_pixels(info: VideoInfo, max_side: int = 448) -> KeyframeReader:
    """Reads the frames shown at given times (the scenes' keyframes) in one pass, as they are wanted. A
    truncated file ends early: its last frame stands in for the times past the end."""
    from videoqa.video import SamplingOptions, read_frames

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


# --- streaming -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StreamSources:
    """The models a streaming run reads a video with; a channel whose model is None is left out."""

    embedder: ImageEmbedder
    transcriber: Transcriber | None
    reader: TextReader | None


def stream_materials(info: VideoInfo, sources: StreamSources, index: IndexOptions,
                     options: CaptionOptions, with_keyframes: bool,
                     on_progress: Callable[[float, float], None] | None = None) -> Iterator[SceneMaterial]:
    """Scenes as they close while the video is read in time order, each with what it holds."""
    from videoqa.scenes import StreamingSceneTiller
    from videoqa.video import plan_times, read_frames

    tiller = StreamingSceneTiller(index.scenes)
    window = _OpenScene()
    speech = _SpeechAhead(info, sources.transcriber, options.speech_chunk_s)
    times = plan_times(info, index.sampling)

    def material(scene: Scene) -> SceneMaterial:
        frames = window.close(scene)
        return SceneMaterial(scene, speech.said(scene.start_s, scene.end_s),
                             _screen_text(frames, scene, sources.reader),
                             frames.pixels[scene.keyframe - scene.first_frame] if with_keyframes else None)

    for batch in read_frames(info, times, index.sampling):
        window.add(batch)
        for scene in tiller.push(sources.embedder.embed_images(batch.pixels), batch.timestamps_s):
            yield material(scene)
        if on_progress is not None:
            on_progress(float(batch.timestamps_s[-1]), info.duration_s)
    for scene in tiller.finish(info.duration_s):
        yield material(scene)


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
        from videoqa.types import FrameBatch

        times, pixels = np.concatenate(self._times), np.concatenate(self._pixels)
        start, stop = scene.first_frame - self._first, scene.stop_frame - self._first
        self._times, self._pixels = [times[stop:]], [pixels[stop:]]
        self._first = scene.stop_frame
        return FrameBatch(times[start:stop], pixels[start:stop])


_SCREEN_EVERY_S = 2.0  # captions and slides change within a shot; a 2-s card is still caught


def _screen_text(frames: FrameBatch, scene: Scene, reader: TextReader | None) -> str:
    """The text on the scene's keyframe and on a frame every few seconds of it."""
    if reader is None or not len(frames):
        return ""
    from videoqa.ocr import join_lines

    picks = {scene.keyframe - scene.first_frame}
    next_s = -np.inf
    for position, time_s in enumerate(frames.timestamps_s.tolist()):
        if time_s >= next_s:
            picks.add(position)
            next_s = time_s + _SCREEN_EVERY_S
    chosen = sorted(picks)
    readings = [join_lines(lines) for lines in reader.read(frames.pixels[chosen])]
    return distinct_readings(readings)


class _SpeechAhead:
    """The transcript, made a chunk of audio at a time as far as the scenes need it."""

    def __init__(self, info: VideoInfo, transcriber: Transcriber | None, chunk_s: float) -> None:
        from videoqa.speech import audio_chunks, audio_problem

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
        from videoqa.speech import AudioError, SpeechSegment

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
            self._segments += [SpeechSegment(chunk.start_s + s.start_s, chunk.start_s + s.end_s, s.text)
                               for s in found]
            self._done_s = chunk.end_s
