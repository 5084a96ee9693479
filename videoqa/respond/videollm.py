"""Answering with a model that sees: memory tokens over the whole video + the retrieved scenes' visual
tokens + the question, as VideoLLaMB does (``architecture.md`` §7).

For each video, once per model and bridge: every scene's keyframe goes through the model's vision
tower and projector (``VisualGenerator.image_tokens``), is pooled to ``scene_tokens`` tokens, and the
memory bridge folds the scenes in, in order, into ``MemoryState``. Both are cached beside the index.
A question then gets ``memory.tokens`` memory tokens followed by the pooled tokens of at most ``scenes``
retrieved scenes, injected as input embeddings before the text: the same count for a 10-scene video
and a 500-scene one.

With ``memory`` off the model gets only the retrieved scenes' tokens; with pooling off as well
(``scene_tokens`` 0) they are exactly the tokens the model's own processor would give it for those
keyframes, so the answer is the plain model's answer (tests/test_videollm.py checks this).

A model that reads frames but not injected tokens (a GGUF with an mmproj) is shown the retrieved
scenes' keyframes themselves, with the evidence text.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from videoqa.errors import OptionsError
from videoqa.llm import Frame, GenerationOptions, VisualGenerator
from videoqa.memory.recurrent import MemoryBridge, MemoryState, pool_tokens
from videoqa.respond.answer import (
    ASKED_ALONE,
    Answer,
    Asking,
    Pictures,
    answer_messages,
    collect_reply,
    says_not_in_video,
)
from videoqa.respond.prompt import load_prompt
from videoqa.retrieval.retrieve import EvidenceSet
from videoqa.store.cache import CacheEntry, IndexCache, entry_key

Tokens = npt.NDArray[np.float32]


@dataclass(frozen=True)
class VisualOptions:
    """What a seeing model is given besides the question."""

    memory: bool = True  # memory tokens over the whole video go first
    scene_tokens: int = 32  # each retrieved scene's keyframe tokens pooled to this many; 0 keeps them all
    scenes: int = 4  # retrieved scenes shown at most

    def __post_init__(self) -> None:
        if self.scene_tokens < 0:
            raise OptionsError(f"scene_tokens must be 0 (no pooling) or more, got {self.scene_tokens}")
        if self.scenes < 1:
            raise OptionsError(f"scenes must be at least 1, got {self.scenes}")


@dataclass(frozen=True, eq=False)
class VideoMemory:
    """One video as a seeing model holds it: each scene's pooled tokens and the memory over them all."""

    scene_tokens: tuple[Tokens, ...]  # one (tokens, hidden) array a scene, in scene order
    state: MemoryState


def scene_tokens(model: VisualGenerator, keyframes: Iterable[Frame], budget: int) -> list[Tokens]:
    """Each keyframe's visual tokens, pooled to ``budget`` tokens (all of them when ``budget`` is 0)."""
    pooled = []
    for frame in keyframes:
        tokens = model.image_tokens([frame])[0]
        pooled.append(pool_tokens(tokens, budget) if budget else tokens.astype(np.float32))
    return pooled


def remember(bridge: MemoryBridge, scenes: Sequence[Tokens], dim: int) -> MemoryState:
    """The memory after every scene, folded in in order."""
    state = bridge.start(dim)
    for tokens in scenes:
        state = bridge.step(state, tokens)
    return state


def video_memory(
    model: VisualGenerator,
    bridge: MemoryBridge,
    bridge_id: str,
    keyframes: Callable[[], Iterable[Frame]],
    options: VisualOptions,
    cache: IndexCache,
    index_key: str,
) -> VideoMemory:
    """The video's scene tokens and memory, from the cache or made now (``keyframes`` read only then)."""
    key = entry_key(
        index_key, {"visual_memory": model.id, "bridge": bridge_id, "scene_tokens": options.scene_tokens}
    )

    def build() -> CacheEntry:
        tokens = scene_tokens(model, keyframes(), options.scene_tokens)
        state = remember(bridge, tokens, model.hidden_size)
        lengths = np.asarray([len(t) for t in tokens], dtype=np.int64)
        joined = np.concatenate(tokens) if tokens else np.zeros((0, model.hidden_size), np.float32)
        return CacheEntry(
            header={"scenes_seen": state.scenes_seen},
            arrays={
                "lengths": lengths,
                "tokens": joined.astype(np.float16),
                "memory": state.memory,
                "cache": state.cache,
            },
        )

    entry, _ = cache.get_or_build(key, build)
    bounds = np.cumsum([0, *entry.arrays["lengths"].tolist()])
    joined = entry.arrays["tokens"].astype(np.float32)
    parts = tuple(joined[a:b] for a, b in itertools.pairwise(bounds))
    state = MemoryState(entry.arrays["memory"], entry.arrays["cache"], int(entry.header["scenes_seen"]))
    return VideoMemory(parts, state)


def bridge_id(bridge: MemoryBridge, weights: str | None) -> str:
    """Names the bridge and its settings (and weights file) for cache keys."""
    settings = repr(getattr(bridge, "options", ""))
    if weights is not None:
        with open(weights, "rb") as handle:
            settings += hashlib.sha256(handle.read(1 << 20)).hexdigest()[:16]
    return f"{type(bridge).__name__}:{hashlib.sha256(settings.encode()).hexdigest()[:16]}"


def chosen_scenes(found: EvidenceSet, scene_count: int, limit: int) -> list[int]:
    """The scenes to show: those the evidence lies in, best first, then — when the text found nothing —
    scenes spread evenly over the video (the memory covers the rest). In time order."""
    ranked = sorted((e for e in found.items if e.scene is not None), key=lambda e: -e.fused)
    picked: list[int] = []
    for item in ranked:
        if item.scene is not None and item.scene not in picked:
            picked.append(item.scene)
    if not picked and scene_count:
        picked = sorted({int(i) for i in np.linspace(0, scene_count - 1, min(limit, scene_count))})
    return sorted(picked[:limit])


def visual_context(video: VideoMemory, scenes: Sequence[int], options: VisualOptions) -> Tokens:
    """What goes in before the question: the memory tokens, then each chosen scene's tokens."""
    parts = [video.state.memory] if options.memory and video.state.scenes_seen else []
    parts += [video.scene_tokens[i] for i in scenes]
    return np.concatenate(parts).astype(np.float32)


@dataclass(frozen=True)
class Sight:
    """What a seeing model is shown besides the text: memory and scene tokens injected into its
    context, or, for a model that takes frames only, the chosen scenes' keyframes."""

    context: Tokens | None
    keyframes: Sequence[Frame] = ()


def answer_looking(
    question: str,
    found: EvidenceSet,
    model: VisualGenerator,
    sight: Sight,
    generation: GenerationOptions,
    models: dict[str, str],
    asking: Asking = ASKED_ALONE,
) -> Answer:
    """Ask a seeing model: what it is shown (``sight``), the evidence text, the question. The model's
    reply is the answer: it saw the scenes, so it is not held to the words of the text evidence."""
    pictures: Pictures = "tokens" if sight.context is not None else "frames"
    messages = answer_messages(question, found.items, asking.history, asking.system, pictures)
    stream = (
        model.generate(messages, generation, visual_tokens=sight.context)
        if sight.context is not None
        else model.generate(messages, generation, images=list(sight.keyframes))
    )
    reply = collect_reply(stream, asking.feed)
    answered = Answer(
        question=question,
        text=reply,
        evidence=found.items,
        abstained=False,
        quoted=False,
        model_reply=None,
        relation=found.relation,
        best_similarity=found.best_similarity,
        models=models,
        relevance=found.relevance.probability if found.relevance else None,
    )
    if says_not_in_video(reply):  # the prompt's own way to abstain
        abstain = load_prompt("abstain").section("answer")
        return replace(answered, text=abstain, evidence=(), abstained=True, model_reply=reply)
    return answered
