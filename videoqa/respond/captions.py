"""Captions, one a scene: in time order as the video is read (streaming), or for a whole indexed video.

The scenes and what each holds come from the pipeline driver (``knowledge/pipeline.py``): as the video
plays (streaming: each scene is captioned as soon as it closes and emitted as a ``CaptionEvent``), or
from the cached index, sharing its speech and screen text with ``ask``.

The captioner carries memory from scene to scene so a caption can follow the story (see ``memory.py``):

* a text-only model carries a **rolling summary**: the captions so far, shortened by the model (the
  ``summarise`` prompt) whenever they would pass ``summary_tokens`` — bounded however long the video is;
* a model that takes visual tokens carries **memory tokens**: the scene's keyframe tokens, pooled to
  ``scene_tokens``, go in with the memory so far, and the memory bridge folds the scene in afterwards.

A small text model asked to caption a scene with nothing in it, or one it cannot follow, invents; so a
scene with no speech or screen text gets no model call, and a caption with words the scene's text does
not support is replaced by a quote of that text (``answer.is_grounded``, as for answers); a sentence of
it that the scene does not support (often one about an earlier scene, from the story so far) is dropped
and the rest kept (``fair_sentences``). Small models also loop ("X was ... The scene: X was ..."),
re-quote a sign around itself and deny what the scene says ("no mention of the code"): a loop is cut at
its first repeat, and the other two are refused. ``caption_fault`` says which check refused a caption.

Scenes with nothing said or shown get no caption of their own: ``QuietMerger`` folds them into the span
of the caption before them (or, at the start, after them), and a long quiet stretch is one line.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from videoqa.errors import OptionsError
from videoqa.llm import VISUAL_SLOT, Frame, GenerationOptions, Message, TextGenerator, is_visual
from videoqa.media.timefmt import format_clock
from videoqa.memory.recurrent import MemoryBridge, MemoryState, pool_tokens
from videoqa.respond.answer import is_grounded
from videoqa.respond.prompt import load_prompt
from videoqa.retrieval.textindex import STOPWORDS, tokenize, word_list

if TYPE_CHECKING:
    from videoqa.knowledge.pipeline import SceneContent
    from videoqa.llm import VisualGenerator
    from videoqa.store.cache import IndexCache
    from videoqa.types import Scene

log = logging.getLogger("videoqa")

EMPTY_CAPTION = "(no speech or on-screen text)"
SOURCES = ("model", "quote", "empty")
# Words a faithful caption uses that a scene's speech and screen text need not contain.
_CAPTION_WORDS = frozenset(
    word_list(
        "says talks explains describes discusses shows introduces speaks asks mentions reads displays "
        "video scene clip caption narrator voice viewer viewers about while"
    )
)
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
    # A quiet stretch (scenes with nothing said or shown) up to this long joins a neighbouring caption's
    # span; a longer one is a single "(no speech or on-screen text)" line, never one line a scene.
    quiet_merge_s: float = 30.0

    def __post_init__(self) -> None:
        if self.summary_tokens < 16:
            raise OptionsError(f"summary_tokens must be at least 16, got {self.summary_tokens}")
        if self.scene_tokens < 1:
            raise OptionsError(f"scene_tokens must be at least 1, got {self.scene_tokens}")
        if not 5.0 <= self.speech_chunk_s <= 600.0:
            raise OptionsError(f"speech_chunk_s must be within 5..600, got {self.speech_chunk_s}")
        if not 0.0 <= self.quiet_merge_s <= 600.0:
            raise OptionsError(f"quiet_merge_s must be within 0..600, got {self.quiet_merge_s}")


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
    # The first and last scene the span covers when quiet neighbours were merged into it.
    scenes: tuple[int, int] | None = None

    @property
    def covers(self) -> tuple[int, int]:
        """The first and last scene of the video this caption stands for."""
        return self.scenes or (self.index, self.index)

    @property
    def span(self) -> str:
        return f"{format_clock(self.start_s, 0)}\u2013{format_clock(self.end_s, 0)}"


class Captioner:
    """Captions scenes in order, carrying memory from each to the next; ``reset`` forgets it."""

    def __init__(
        self, llm: TextGenerator, bridge: MemoryBridge, options: CaptionOptions | None = None
    ) -> None:
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
        looked = (
            self._caption_looking(material, self._visual)
            if self._visual is not None and material.keyframe is not None
            else ""
        )
        if looked:
            text, source = looked, "model"
        elif not (material.speech or material.screen):
            text, source = EMPTY_CAPTION, "empty"
        elif self._visual is not None:  # a seeing model that said nothing usable: the scene's own text
            text, source = quote_scene(material), "quote"
        else:
            text, source = self._caption_from_text(material)
        if self.options.memory and source != "empty":
            self._summary = self._extended_summary(text if source == "model" else _plain_quote(material))
        return CaptionEvent(
            scene.index, scene.start_s, scene.end_s, text, source, material.speech, material.screen
        )

    # --- text models -----------------------------------------------------------------------------

    def _messages(self, material: SceneMaterial) -> list[Message]:
        template = load_prompt("caption")
        scene = material.scene
        user = template.fill(
            "user",
            story=self._summary or "nothing yet",
            span=f"{format_clock(scene.start_s, 0)}-{format_clock(scene.end_s, 0)}",
            speech=material.speech or "none",
            screen=_signs(material.screen) or "none",
        )
        return [Message("system", template.section("system")), Message("user", user)]

    def _caption_from_text(self, material: SceneMaterial) -> tuple[str, str]:
        reply = read_caption(self.llm.generate(self._messages(material), self.options.generation))
        if not self.options.check_grounding:
            return reply, "model"
        caption, fault = fair_sentences(reply, material, self._summary)
        if fault is not None:
            # the reply and why it was refused, for whoever tunes the prompt (benchmarks/captions.py)
            log.debug("scene %d: caption refused (%s): %s", material.scene.index, fault, reply)
            return quote_scene(material), "quote"
        return caption, "model"

    def _extended_summary(self, caption: str) -> str:
        """The summary with ``caption`` added, shortened by the model when it passes the budget.

        A shortened summary is kept within half the budget, so the next few captions fit before the
        model is asked again: shortening to the full budget asked it after every scene, a long call (up to
        ``summary_tokens`` generated) that cost more than the caption itself.
        """
        longer = f"{self._summary} {caption}".strip()
        budget = self.options.summary_tokens
        if self.llm.count_tokens(longer) <= budget:
            return longer
        template = load_prompt("summarise")
        messages = [
            Message("system", template.section("system")),
            Message("user", template.fill("user", summary=longer)),
        ]
        shorter = without_repeats(
            " ".join("".join(self.llm.generate(messages, GenerationOptions(max_tokens=budget // 2))).split())
        )
        if not shorter or _echoes_prompt(shorter) or not is_grounded(shorter, [longer], "", _CAPTION_WORDS):
            shorter = longer  # a summary that invents, loops or parrots the prompt is worse than a cut one
        return _keep_last_tokens(shorter, budget // 2, self.llm)

    # --- visual models ---------------------------------------------------------------------------

    def _caption_looking(self, material: SceneMaterial, model: VisualGenerator) -> str:
        messages = self._messages(material)
        assert material.keyframe is not None
        if not model.accepts_visual_tokens:  # GGUF: the keyframe itself; the summary carries the memory
            return read_caption(model.generate(messages, self.options.generation, images=[material.keyframe]))
        scene_tokens = pool_tokens(model.image_tokens([material.keyframe])[0], self.options.scene_tokens)
        if self._memory is None:
            self._memory = self.bridge.start(scene_tokens.shape[1])
        visual = (
            scene_tokens
            if not self.options.memory or self._memory.scenes_seen == 0
            else np.concatenate([self._memory.memory, scene_tokens])
        )
        last = messages[-1]
        messages[-1] = Message(last.role, f"{VISUAL_SLOT}\n{last.content}")
        reply = read_caption(model.generate(messages, self.options.generation, visual_tokens=visual))
        if self.options.memory:
            self._memory = self.bridge.step(self._memory, scene_tokens)
        return reply


# Pieces of the caption prompt a small model sometimes copies into its reply instead of captioning.
_PROMPT_ECHOES = ("speech:", "on screen:", "story so far", "this scene (", "caption", "summary", "rewrite")
_CAPTION_MAX_WORDS = 40


def _echoes_prompt(reply: str) -> bool:
    lowered = reply.lower()
    return any(echo in lowered for echo in _PROMPT_ECHOES)


def caption_fault(reply: str, material: SceneMaterial, story: str = "") -> str | None:
    """Why a caption is not worth showing, or None when it is: it must be fair as a sentence is
    (``_sentence_fault``), and state every number the scene does: a platform, a gate, a code is the fact
    a viewer most needs, and a summary that leaves it out is worse than the quote ("The train to Tokyo."
    for "The train to Tokyo leaves from platform 87.")."""
    fault = _sentence_fault(reply, material, story)
    if fault is None and drops_numbers(reply, material):
        return "drops a number"
    return fault


def drops_numbers(reply: str, material: SceneMaterial) -> bool:
    """Whether the scene's speech or screen text states a number (in digits or words) the reply does not."""
    stated = {t for t in tokenize(f"{material.speech} {material.screen}") if t.isdigit()}
    return bool(stated - set(tokenize(reply)))


def _sentence_fault(reply: str, material: SceneMaterial, story: str = "") -> str | None:
    """Why ``reply`` is not fair as a caption or as one sentence of it, or None: it must be short, not a
    copy of the prompt, and built from the scene's own text (the story so far is context, not a source:
    a caption must be true of this scene), naming no one the scene does not, with its signs quoted once
    and nothing the scene says denied."""
    if not reply:
        return "empty"
    if len(reply.split()) > _CAPTION_MAX_WORDS:
        return "too long"
    if _echoes_prompt(reply):
        return "echoes the prompt"
    if not is_grounded(reply, [material.speech, material.screen], "", _CAPTION_WORDS):
        return "not grounded"
    if borrows_names(reply, material, story):
        return "borrows a name"
    if doubles_screen_text(reply, material):
        return "doubles a sign"
    if denies_scene(reply, material):
        return "denies the scene"
    return None


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def fair_sentences(reply: str, material: SceneMaterial, story: str = "") -> tuple[str, str | None]:
    """The sentences of ``reply`` that are fair captions of this scene on their own, and what is wrong
    with them together (None when nothing): a small model given the story so far often adds a sentence
    about an earlier scene ("The marathon will take place in Oslo next Sunday.") to a true one about
    this scene, or writes only about earlier scenes. Dropping the sentences this scene does not support
    keeps the true part; each sentence kept, and the kept ones together, pass every check."""
    sentences = [s for s in _SENTENCE_END.split(reply.strip()) if s]
    # a sentence need not hold every number: the caption it is part of must (``caption_fault``)
    kept = " ".join(s for s in sentences if _sentence_fault(s, material, story) is None)
    if not kept:
        return "", caption_fault(reply, material, story) or "no sentence fair on its own"
    return kept, caption_fault(kept, material, story)


# --- loops, doubled signs, denials ------------------------------------------------------------------

# A label the prompt uses, or one a small model puts before each caption, met again inside a reply: the
# model has started another caption (the loop "X was ... The scene: X was ..." begins this way).
_ECHOED_LABEL = re.compile(
    r"\b(?:the\s+)?(?:scene|caption|summary|speech|on screen|story so far|this scene)"
    r"\s*(?:\d+\s*)?(?:\(\S+\)\s*)?:",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[^.!?;,\n]+[.!?;,\n]*")
_LOOP_WORDS = 4  # a run of this many words said twice is a loop
_MIN_CUT_WORDS = 3  # a caption cut shorter than this says too little to keep
_WORD_SPAN = re.compile(r"\S+")


# Words a cut sentence should not end on ("... the old town and").
_DANGLING = frozenset(word_list("and or but then with of the a an to while as so that which who"))


def without_repeats(text: str, min_words: int = _MIN_CUT_WORDS) -> str:
    """``text`` up to its first repeat — a prompt label met again, a clause said twice, a run of
    ``_LOOP_WORDS`` words said twice, or one word three times in a row — or "" when what is left before
    it is shorter than ``min_words``."""
    cut = min(_label_again(text), _clause_again(text), _words_again(text))
    if cut >= len(text):
        return text
    words = text[:cut].split()
    while words and words[-1].lower().strip(",;:-\u2013\u2014") in _DANGLING:
        words.pop()
    kept = " ".join(words).rstrip(",;:-\u2013\u2014 ")
    if len(kept.split()) < min_words:
        return ""
    return kept if kept[-1] in '.!?"' else kept + "."


def _label_again(text: str) -> int:
    """Where a label starts past the beginning (the first one, at 0, is the reply's own)."""
    return next((m.start() for m in _ECHOED_LABEL.finditer(text) if m.start() > 0), len(text))


def _key(words: str) -> tuple[str, ...]:
    return tuple(w for w in re.findall(r"[a-z0-9]+", words.lower()))


def _clause_again(text: str) -> int:
    """Where a clause (between punctuation marks) of two or more words starts that was said before."""
    seen: set[tuple[str, ...]] = set()
    for match in _CLAUSE.finditer(text):
        key = _key(match.group())
        if len(key) >= 2 and key in seen:
            return match.start() + len(match.group()) - len(match.group().lstrip())
        seen.add(key)
    return len(text)


def _words_again(text: str) -> int:
    """Where a run of ``_LOOP_WORDS`` words starts that was said before, or a word's third time in a row
    begins (its second occurrence is kept out too)."""
    spans = [(key[0], m.start()) for m in _WORD_SPAN.finditer(text) if (key := _key(m.group()))]
    words = [w for w, _ in spans]
    seen: set[tuple[str, ...]] = set()
    for i in range(len(words)):
        if i >= 2 and words[i] == words[i - 1] == words[i - 2]:
            return spans[i - 1][1]
        run = tuple(words[i : i + _LOOP_WORDS])
        if len(run) == _LOOP_WORDS:
            if run in seen:
                return spans[i][1]
            seen.add(run)
    return len(text)


_NAME = re.compile(r"\b[A-Z][A-Za-z]+")


def borrows_names(reply: str, material: SceneMaterial, story: str = "") -> bool:
    """Whether the reply names someone or something (a capitalised word) the scene's text does not: any
    such word within a sentence, and a sentence's first word when the story so far has it — a name
    carried over from another scene ("Alice won a quiet Saturday" for "It won a quiet Saturday"), which
    the share of grounded words lets through."""
    known = set(_key(f"{material.speech} {material.screen}"))
    earlier = set(_key(story))
    for match in _NAME.finditer(reply):
        word = match.group().lower()
        if word in known or word in STOPWORDS or word in _CAPTION_WORDS:
            continue
        before = reply[: match.start()].rstrip()
        starts_sentence = not before or before[-1] in ".!?\"'"
        if starts_sentence and word not in earlier:
            continue
        return True
    return False


def doubles_screen_text(reply: str, material: SceneMaterial) -> bool:
    """Whether the reply says a word of the scene's signs more often than the signs and speech together
    do: "The 1987 CITY LIBRARY - EST. 1987" for the sign "CITY LIBRARY - EST. 1987"."""
    if not material.screen:
        return False
    allowed = Counter(tokenize(material.screen)) + Counter(tokenize(material.speech))
    said = Counter(tokenize(reply))
    return any(said[token] > allowed[token] for token in Counter(tokenize(material.screen)))


# Claims that something is absent. A caption comes from the scene's own text, so denying a thing that
# text states is false, however well its words are grounded ("no mention of the code 4471").
_DENIAL = re.compile(
    r"\b(?:no\s+(?:mention|word|sign|reference)s?\s+(?:of|about)"
    r"|not\s+(?:mentioned|said|stated|shown|given|specified|named|revealed|told|spoken|discussed)"
    r"|(?:does|did|do|is|was|are|were)(?:\s+not|n't)\s+(?:say|mention|state|show|give|specify|name|reveal"
    r"|tell|talk|discuss|mentioned|said|stated|shown)"
    r"|never\s+(?:say|says|said|mention|mentions|mentioned|state|states|stated)"
    r"|without\s+(?:mentioning|saying|naming|stating)|there\s+(?:is|was|are|were)\s+no)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?;]+")


def denies_scene(reply: str, material: SceneMaterial) -> bool:
    """Whether a sentence of the reply says something is not mentioned, said or shown while naming a word
    the scene's speech or screen text does hold."""
    known = set(tokenize(material.speech)) | set(tokenize(material.screen))
    for sentence in _SENTENCE.findall(reply):
        if _DENIAL.search(sentence):
            named = set(tokenize(_DENIAL.sub(" ", sentence))) - _CAPTION_WORDS
            if named & known:
                return True
    return False


def read_caption(pieces: Iterator[str]) -> str:
    """The caption in a streamed reply: its first line, up to its first repeat. The stream is read only
    until the first line ends or a loop shows (a label met again, a run of words said twice): a small
    model goes on past its caption, and every token it writes costs as much as one that is used."""
    text = ""
    for piece in pieces:
        text += piece
        body = text.lstrip()
        whole_words = body[: body.rfind(" ") + 1] if " " in body else ""  # the last word may go on
        if "\n" in body or min(_label_again(whole_words), _words_again(whole_words)) < len(whole_words):
            break
    close = getattr(pieces, "close", None)
    if close is not None:
        close()  # stops the model's generation, not only our reading of it
    return without_repeats(_first_line(text))


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


def _signs(screen: str) -> str:
    """Each distinct reading quoted, on one line: the model sees where one sign ends and the next begins."""
    return "; ".join(f'"{line}"' for line in screen.splitlines() if line.strip())


def _keep_last_tokens(text: str, budget: int, llm: TextGenerator) -> str:
    """The end of ``text`` that fits ``budget`` tokens, cut at a word: the newest part matters most."""
    words = text.split()
    while len(words) > 1 and llm.count_tokens(" ".join(words)) > budget:
        words = words[max(1, len(words) // 8) :]
    return " ".join(words)


def quote_scene(material: SceneMaterial) -> str:
    """The scene's own text as its caption: what was said (a loop in the transcript cut at its first
    repeat), then each sign not already said, once."""
    speech, signs = _quoted_parts(material)
    parts = ([f'Speech: "{speech}"'] if speech else []) + ([f'On screen: "{signs}"'] if signs else [])
    return " ".join(parts)


def _plain_quote(material: SceneMaterial) -> str:
    """A quoted scene as the story so far carries it: its words without the quote's "Speech:" and "On
    screen:" labels, which the model, finding them in the story, copied into its next captions."""
    return " ".join(" ".join(part for part in _quoted_parts(material) if part).replace('"', " ").split())


def _quoted_parts(material: SceneMaterial) -> tuple[str, str]:
    """What a quote of the scene holds: its speech, shortened, and its signs not already said ("" when
    none)."""
    speech = _shortened(without_repeats(material.speech, 1) or material.speech) if material.speech else ""
    said = set(tokenize(material.speech))
    signs = [line for line in material.screen.splitlines() if not (said and set(tokenize(line)) <= said)]
    return speech, _shortened(" / ".join(signs)) if signs else ""


def _shortened(text: str) -> str:
    words = text.split()
    return " ".join(words) if len(words) <= _QUOTE_WORDS else " ".join(words[:_QUOTE_WORDS]) + " …"


# --- quiet scenes ----------------------------------------------------------------------------------


class QuietMerger:
    """Folds scenes with nothing said or shown into a neighbouring caption's span, as captions come.

    Quiet scenes after a caption extend its span (it stays on screen through them), up to
    ``quiet_merge_s``, and so does a next scene captioned with the same words. Quiet scenes before the
    first caption, or what is left of a stretch past that limit, start the next caption's span early
    when short enough, and are otherwise given as one "empty" event for the whole stretch. A caption is
    held until the scene after it closes (so a stream gives it at most one scene plus ``quiet_merge_s``
    late, or later while the next scenes repeat it); ``finish`` gives what is held. Spans stay in order
    and never overlap: each is a run of whole scenes.
    """

    def __init__(self, quiet_merge_s: float) -> None:
        self.quiet_merge_s = quiet_merge_s
        self._held: CaptionEvent | None = None  # the last caption, its span still growing
        self._held_own_end_s = 0.0  # where the held caption's own scenes end
        self._quiet: CaptionEvent | None = None  # quiet scenes not given to any caption yet

    def push(self, event: CaptionEvent) -> list[CaptionEvent]:
        """The events now complete, in order, after ``event`` (the next scene's)."""
        if event.source != "empty":
            return self._push_caption(event)
        held = self._held
        if held is not None and event.end_s - self._held_own_end_s <= self.quiet_merge_s:
            self._held = _spanning(held, held.start_s, event.end_s, held.covers[0], event.index)
            return []
        self._held = None
        quiet = self._quiet
        self._quiet = (
            event
            if quiet is None
            else _spanning(quiet, quiet.start_s, event.end_s, quiet.covers[0], event.index)
        )
        return [held] if held is not None else []

    def finish(self) -> list[CaptionEvent]:
        """What is still held, once the last scene has been pushed (or the run is stopped)."""
        done = [e for e in (self._held, self._quiet) if e is not None]
        self._held = self._quiet = None
        return done

    def _push_caption(self, event: CaptionEvent) -> list[CaptionEvent]:
        held = self._held
        if held is not None and self._quiet is None and _same_caption(held.text, event.text):
            # a sign still up in the next shot, or a model repeating the story so far: one cue, not two
            self._held = _spanning(held, held.start_s, event.end_s, held.covers[0], event.covers[1])
            self._held_own_end_s = event.end_s
            return []
        done = [held] if held is not None else []
        quiet, self._quiet = self._quiet, None
        self._held_own_end_s = event.end_s
        if quiet is not None and quiet.end_s - quiet.start_s <= self.quiet_merge_s:
            event = _spanning(event, quiet.start_s, event.end_s, quiet.covers[0], event.covers[1])
        elif quiet is not None:
            done.append(quiet)
        self._held = event
        return done


def _same_caption(first: str, second: str) -> bool:
    return _key(first) == _key(second)


def _spanning(event: CaptionEvent, start_s: float, end_s: float, first: int, last: int) -> CaptionEvent:
    return replace(event, start_s=start_s, end_s=end_s, scenes=(first, last))


def merge_quiet(events: Iterable[CaptionEvent], quiet_merge_s: float) -> Iterator[CaptionEvent]:
    """``events`` (one a scene, in order) with the quiet scenes folded in (``QuietMerger``)."""
    merger = QuietMerger(quiet_merge_s)
    for event in events:
        yield from merger.push(event)
    yield from merger.finish()


# --- cached captions -------------------------------------------------------------------------------

# Bumped when what a caption is made from changes in code (the guards above); prompts are keyed by text.
_CAPTIONS_VERSION = 4
_EVENT_FIELDS = ("index", "start_s", "end_s", "text", "source", "speech", "screen")


def captions_key(index_key: str, models: dict[str, str], options: CaptionOptions) -> str:
    """The cache key of a video's captions: its index entry (content, sampling, scenes), every model
    that made its text channels and its captions, the prompts and the options that change a caption."""
    from videoqa.store.cache import entry_key

    prompts = [load_prompt(name).sections for name in ("caption", "summarise")]
    making = {
        "memory": options.memory,
        "summary_tokens": options.summary_tokens,
        "generation": repr(options.generation),
        "check_grounding": options.check_grounding,
    }
    return entry_key(
        index_key,
        {
            "stage": "captions",
            "version": _CAPTIONS_VERSION,
            "models": models,
            "prompts": prompts,
            "options": making,
        },
    )


def load_captions(cache: IndexCache, key: str) -> list[CaptionEvent] | None:
    """The captions cached under ``key`` (one a scene), or None when there are none (or they are bad)."""
    entry = cache.load(key)
    if entry is None:
        return None
    try:
        rows = entry.header["captions"]
        return [CaptionEvent(**{name: row[name] for name in _EVENT_FIELDS}) for row in rows]
    except (KeyError, TypeError) as exc:
        log.warning("cached captions %s are damaged (%s); captioning again", key, exc)
        return None


def save_captions(cache: IndexCache, key: str, events: Sequence[CaptionEvent]) -> None:
    from videoqa.store.cache import CacheEntry

    rows = [{name: getattr(event, name) for name in _EVENT_FIELDS} for event in events]
    cache.save(key, CacheEntry({"captions": rows}, {}))


def cached_captions(
    make: Callable[[], Iterator[CaptionEvent]], cache: IndexCache, key: str
) -> Iterator[CaptionEvent]:
    """The captions under ``key`` from the cache, else made by ``make`` (one a scene) and saved once all
    are made: a run stopped part way caches nothing."""
    cached = load_captions(cache, key)
    if cached is not None:
        yield from cached
        return
    made: list[CaptionEvent] = []
    for event in make():
        made.append(event)
        yield event
    save_captions(cache, key, made)


# --- what a scene holds ----------------------------------------------------------------------------


def distinct_readings(readings: Sequence[str]) -> str:
    """Readings of consecutive frames, each distinct text once (OCR noise tolerated), one a line. A
    reading whose words all lie in another (a sign read in part as it fades in or out) gives way to the
    fuller one: kept both, a sign's text came out twice ("1987 / CITY LIBRARY - EST. 1987")."""
    from videoqa.channels.ocr import same_text

    kept: list[str] = []
    for reading in readings:
        reading = " ".join(reading.split())
        words = set(_key(reading))
        if not reading or any(same_text(reading, seen) or words <= set(_key(seen)) for seen in kept):
            continue
        kept = [seen for seen in kept if not set(_key(seen)) <= words] + [reading]
    return "\n".join(kept)


def scene_material(content: SceneContent) -> SceneMaterial:
    """What the captioner is given for a scene: its screen texts as one reading each (see
    ``distinct_readings``), with its speech and keyframe as the pipeline found them."""
    return SceneMaterial(content.scene, content.speech, distinct_readings(content.screen), content.keyframe)
