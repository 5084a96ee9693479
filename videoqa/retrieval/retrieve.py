"""Retrieval: scenes by a text query (visual channel), and the evidence a question's answer rests on.

Scores are cosine similarities in the embedder's joint image-text space. A scene's ``max_score`` is its
best-matching sampled frame (what finds a brief moment) and ``mean_score`` matches the scene's pooled
embedding (what describes the scene as a whole); scenes are ranked by ``max_score``. Scores are kept,
not only ranks, so a later stage can decide that nothing matches well enough.

``choose_evidence`` fuses the channels for a question: the text passages (speech and on-screen text,
scored by sentence embeddings and BM25, see ``textindex.py``) and, with an image-text model, the visual
scene scores, by reciprocal rank; then it applies the question's temporal relation (``temporal.py``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from videoqa.channels.text_embedder import TextEmbedder
from videoqa.errors import OptionsError
from videoqa.retrieval.relevance import Relevance, measure, named_words, rarity
from videoqa.retrieval.temporal import order_in_sentence, parse_question, select_scenes
from videoqa.retrieval.textindex import PassageScores, question_scores, tokenize
from videoqa.types import Passage, Scene, SceneHit, VideoIndex

# The lexical score's share in choosing an anchor passage (see anchor_scores): dense similarities of
# passages about the same event differ by a few hundredths, names and rare words make the difference.
LEXICAL_SHARE = 0.1
NAME_SHARE = 0.1


def _unit(vector: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    unit: npt.NDArray[np.float32] = flat / max(float(np.linalg.norm(flat)), 1e-12)
    return unit


def score_scenes(index: VideoIndex, query: npt.NDArray[np.floating]) -> list[SceneHit]:
    """Every scene of ``index`` scored against the query embedding (d,), best first."""
    query_unit = _unit(query)
    if query_unit.shape[0] != index.frame_embeddings.shape[1]:
        raise ValueError(
            f"query has {query_unit.shape[0]} dimensions, the index has "
            f"{index.frame_embeddings.shape[1]}: embed it with {index.embedder_id}"
        )
    frame_scores = index.frame_embeddings.astype(np.float32) @ query_unit
    mean_scores = index.scene_embeddings @ query_unit
    hits = []
    for scene, mean_score in zip(index.scenes, mean_scores, strict=True):
        scores = frame_scores[scene.first_frame : scene.stop_frame]
        best = scene.first_frame + int(np.argmax(scores))
        hits.append(
            SceneHit(
                video=index.info.path,
                scene=scene,
                max_score=float(scores.max()),
                mean_score=float(mean_score),
                best_frame_s=float(index.timestamps_s[best]),
            )
        )
    return sorted(hits, key=lambda hit: (-hit.max_score, -hit.mean_score, hit.scene.index))


def top_scenes(index: VideoIndex, query: npt.NDArray[np.floating], top_k: int) -> list[SceneHit]:
    """The ``top_k`` best scenes for the query embedding."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    return score_scenes(index, query)[:top_k]


def rank_texts(
    scene_embedding: npt.NDArray[np.floating],
    text_embeddings: npt.NDArray[np.floating],
) -> list[tuple[int, float]]:
    """Texts (m, d) ranked by similarity to one scene's embedding: (text index, score), best first."""
    scores = np.asarray(text_embeddings, dtype=np.float32) @ _unit(scene_embedding)
    order = np.argsort(-scores, kind="stable")
    return [(int(i), float(scores[i])) for i in order]


# --- evidence for a question --------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrievalOptions:
    """How evidence for a question is chosen."""

    top_k: int = 4  # evidence items at most (besides an "after"/"before" question's anchor)
    rrf_k: int = 60  # reciprocal-rank fusion constant: larger flattens the gap between ranks
    # Items whose similarity trails the best one's by more than this are left out: a small answering
    # model is easily drawn to a loosely related line.
    keep_within: float = 0.15
    # An "after X" / "before X" question is shown what follows / precedes the anchor within its own
    # sentence ("After X, Y.") and the passages in a window after / before it: at most ``window`` of
    # them, within ``window_s`` seconds (the next one is always taken, however far). Several passages,
    # not one: the next thing said is often about something else, and the model picks what answers.
    window: int = 3
    window_s: float = 30.0
    # "first/last time X": items within this similarity of the best anchor count as X happening again
    repeat_tolerance: float = 0.05

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise OptionsError(f"top_k must be at least 1, got {self.top_k}")
        if self.rrf_k < 1:
            raise OptionsError(f"rrf_k must be at least 1, got {self.rrf_k}")
        if not 0.0 <= self.keep_within <= 2.0:
            raise OptionsError(f"keep_within must be within 0..2, got {self.keep_within}")
        if self.window < 1:
            raise OptionsError(f"window must be at least 1, got {self.window}")
        if not 0.0 <= self.window_s <= 3600.0:
            raise OptionsError(f"window_s must be within 0..3600, got {self.window_s}")
        if not 0.0 <= self.repeat_tolerance <= 1.0:
            raise OptionsError(f"repeat_tolerance must be within 0..1, got {self.repeat_tolerance}")


@dataclass(frozen=True)
class Evidence:
    """One piece of the video an answer rests on."""

    channel: str  # "speech", "screen" or "visual"
    start_s: float
    end_s: float
    text: str | None  # what was said or shown; None for a purely visual match
    scene: int | None  # index of the scene it lies in
    similarity: float  # to the question (or the anchor event): cosine in the channel's embedding space
    fused: float  # reciprocal-rank fusion score across channels
    role: str  # "match" (answers the question), "anchor" (the X of "after X"), "after", "before"
    # "after"/"before" items cut from the anchor's own sentence ("After X, Y." -> "Y") say so here
    in_anchor_sentence: bool = False


@dataclass(frozen=True)
class EvidenceSet:
    """The evidence chosen for a question, in time order, and how well the best of it matched."""

    items: tuple[Evidence, ...]
    relation: str  # see temporal.RELATIONS
    anchor: str | None
    best_similarity: float  # of the text passage matching the question (or anchor) best; -1 when none
    relevance: Relevance | None = None  # how likely the items answer the question (set by find_evidence)


VisualSearch = Callable[[str], "Sequence[SceneHit] | None"]  # a query -> scenes ranked by an image model


def find_evidence(
    query: str,
    passages: Sequence[Passage],
    passage_vectors: npt.NDArray[np.float32],
    embedder: TextEmbedder,
    scenes: Sequence[Scene],
    options: RetrievalOptions,
    visual: VisualSearch | None = None,
) -> EvidenceSet:
    """The evidence for a question, as ``ask`` uses it: the question's temporal relation understood,
    the channels fused, and how likely the evidence is to answer it (``relevance``)."""
    parsed = parse_question(query)
    anchor = parsed.anchor if parsed.relation != "none" else None
    scores = question_scores(query, anchor, embedder, passages, passage_vectors)
    hits = visual(anchor or query) if visual is not None else None
    scored = ScoredPassages(passages, scores, named=names_held(query, passages))
    found = choose_evidence(parsed.relation, anchor, scored, scenes, hits, options)
    texts = [item.text for item in found.items if item.text is not None]
    relevance = measure(query, found.best_similarity, texts, rarity([p.text for p in passages]))
    return replace(found, relevance=relevance)


def names_held(question: str, passages: Sequence[Passage]) -> npt.NDArray[np.float64]:
    """Per passage, the share of the question's names and numbers it holds (all 1 when it has none)."""
    names = named_words(question)
    if not names:
        return np.ones(len(passages))
    return np.array([len(names.intersection(tokenize(p.text))) / len(names) for p in passages])


def rrf(rankings: Sequence[npt.NDArray[np.floating]], k: int) -> npt.NDArray[np.float64]:
    """Reciprocal-rank fusion of per-channel scores (NaN = not ranked by that channel): sum of 1/(k+rank)."""
    fused = np.zeros(len(rankings[0]) if rankings else 0)
    for scores in rankings:
        values = np.asarray(scores, dtype=np.float64)
        ranked = np.flatnonzero(~np.isnan(values))
        order = ranked[np.argsort(-values[ranked], kind="stable")]
        fused[order] += 1.0 / (k + 1 + np.arange(len(order)))
    return fused


def scene_at(scenes: Sequence[Scene], time_s: float) -> int | None:
    """Index of the scene holding ``time_s`` (the last one for times past the end)."""
    starts = [scene.start_s for scene in scenes]
    if not starts:
        return None
    return max(0, bisect.bisect_right(starts, time_s) - 1)


@dataclass(frozen=True)
class ScoredPassages:
    """A video's passages in time order, with how each matches one query."""

    passages: Sequence[Passage]
    scores: (
        PassageScores  # aligned with ``passages``: the question's, or for a relational question its anchor's
    )
    named: npt.NDArray[np.float64] | None = None  # per passage, the share of the question's names it holds


def choose_evidence(
    relation: str,
    anchor: str | None,
    scored: ScoredPassages,
    scenes: Sequence[Scene],
    visual: Sequence[SceneHit] | None,
    options: RetrievalOptions,
) -> EvidenceSet:
    """Pick the evidence for one question from its passages' scores.

    ``visual`` holds the scenes scored by an image-text model when one is loaded; it adds a channel to
    the fusion, and its best scene joins the evidence. ``scored.named`` (see names_held) helps choose
    the anchor of a relational question.
    """
    passages, scores = scored.passages, scored.scores
    scene_of = [scene_at(scenes, (p.start_s + p.end_s) / 2) for p in passages]
    fused = _fused(scores, scene_of, visual, options.rrf_k) if passages else np.zeros(0)

    def item(i: int, role: str) -> Evidence:
        p = passages[i]
        return Evidence(
            channel=p.channel,
            start_s=p.start_s,
            end_s=p.end_s,
            text=p.text,
            scene=scene_of[i],
            similarity=float(scores.dense[i]),
            fused=float(fused[i]),
            role=role,
        )

    anchors = anchor_scores(scores.dense, scores.lexical, scored.named)
    items = [item(i, role) for i, role in _pick(relation, passages, scores.dense, anchors, fused, options)]
    if relation in ("after", "before") and anchor is not None and items:
        anchor_item = items[0]
        tail = sentence_part(anchor_item.text or "", anchor, relation)
        if tail is not None:
            items.insert(1, replace(anchor_item, text=tail, role=relation, in_anchor_sentence=True))
    if visual and relation == "none":
        items.append(_visual_item(visual[0]))
    items.sort(key=lambda e: (e.start_s, e.channel))
    best_similarity = float(scores.dense.max()) if len(passages) else -1.0
    return EvidenceSet(items=tuple(items), relation=relation, anchor=anchor, best_similarity=best_similarity)


def _fused(
    scores: PassageScores, scene_of: Sequence[int | None], visual: Sequence[SceneHit] | None, rrf_k: int
) -> npt.NDArray[np.float64]:
    """The passages' channels fused by rank: dense, lexical where a query word occurs, and the visual
    score of the passage's scene when an image-text model ranked the scenes."""
    channels = [scores.dense.astype(np.float64), np.where(scores.lexical > 0, scores.lexical, np.nan)]
    if visual:
        by_scene = {hit.scene.index: hit.max_score for hit in visual}
        channels.append(np.asarray([by_scene.get(s, np.nan) if s is not None else np.nan for s in scene_of]))
    return rrf(channels, rrf_k)


def _visual_item(best: SceneHit) -> Evidence:
    """The scene an image-text model ranked first, as evidence without text."""
    return Evidence(
        channel="visual",
        start_s=best.scene.start_s,
        end_s=best.scene.end_s,
        text=None,
        scene=best.scene.index,
        similarity=best.max_score,
        fused=0.0,
        role="match",
    )


def sentence_part(sentence: str, anchor: str, relation: str) -> str | None:
    """What ``sentence`` says happened ``relation`` ("after"/"before") the ``anchor`` event, when it
    orders the anchor and another event itself ("After the swim, Henry rode home." -> "Henry rode
    home"); else None."""
    order = order_in_sentence(sentence)
    if order is None:
        return None
    earlier, later = order
    wanted = set(tokenize(anchor))
    in_earlier, in_later = (len(wanted.intersection(tokenize(part))) for part in order)
    if relation == "after" and in_earlier > in_later:
        return later
    if relation == "before" and in_later > in_earlier:
        return earlier
    return None


def anchor_scores(
    dense: npt.NDArray[np.float32],
    lexical: npt.NDArray[np.float64],
    named: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    """How well each passage matches the event a relational question points at: the dense score, plus
    the lexical one scaled to 0..LEXICAL_SHARE and the share of the question's names held, times
    NAME_SHARE. Of passages about "the yoga class", the one naming the person asked about ("what does
    Jack do after the yoga class") wins; "After that, Daniel baked bread" resembles the question as a
    whole but names neither."""
    top = float(lexical.max()) if len(lexical) else 0.0
    scaled = lexical / top if top > 0 else np.zeros(len(dense))
    held = named if named is not None else np.zeros(len(dense))
    return dense.astype(np.float64) + LEXICAL_SHARE * scaled + NAME_SHARE * held


def _pick(
    relation: str,
    passages: Sequence[Passage],
    dense: npt.NDArray[np.float32],
    anchoring: npt.NDArray[np.float64],
    fused: npt.NDArray[np.float64],
    options: RetrievalOptions,
) -> list[tuple[int, str]]:
    """(passage index, role) of the evidence for a question with this temporal relation; for
    "after"/"before", the anchor comes first."""
    if len(dense) == 0:
        return []
    if relation in ("after", "before"):
        anchor = int(np.argmax(anchoring))
        chosen = time_window(passages, anchor, relation, options.window, options.window_s)
        return [(anchor, "anchor"), *((i, relation) for i in chosen)]
    if relation in ("first", "last", "when"):
        return [(i, "match") for i in select_scenes(relation, anchoring, tolerance=options.repeat_tolerance)]
    best = float(dense.max())
    order = np.argsort(-fused, kind="stable")
    close = [int(i) for i in order if dense[i] >= best - options.keep_within]
    return [(i, "match") for i in close[: options.top_k]]


def time_window(
    passages: Sequence[Passage], anchor: int, relation: str, count: int, seconds: float
) -> list[int]:
    """Indices of up to ``count`` passages following ("after") or preceding ("before") passage
    ``anchor`` within ``seconds`` of it, nearest first; the nearest one is taken however far it is.
    ``passages`` are in time order; one with the anchor's own text (a sign still on screen) is skipped."""
    here = passages[anchor]
    step = 1 if relation == "after" else -1
    picked: list[int] = []
    i = anchor + step
    while 0 <= i < len(passages) and len(picked) < count:
        other = passages[i]
        gap = other.start_s - here.end_s if step > 0 else here.start_s - other.end_s
        if picked and gap > seconds:
            break
        if other.text != here.text:
            picked.append(i)
        i += step
    return sorted(picked)
