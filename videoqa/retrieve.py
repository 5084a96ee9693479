"""Visual retrieval: score a video's scenes against a text query, and captions against a scene.

Scores are cosine similarities in the embedder's joint image-text space. A scene's ``max_score`` is its
best-matching sampled frame (what finds a brief moment) and ``mean_score`` matches the scene's pooled
embedding (what describes the scene as a whole); scenes are ranked by ``max_score``. Scores are kept,
not only ranks, so a later stage can decide that nothing matches well enough.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from videoqa.types import SceneHit, VideoIndex


def _unit(vector: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    unit: npt.NDArray[np.float32] = flat / max(float(np.linalg.norm(flat)), 1e-12)
    return unit


def score_scenes(index: VideoIndex, query: npt.NDArray[np.floating]) -> list[SceneHit]:
    """Every scene of ``index`` scored against the query embedding (d,), best first."""
    query_unit = _unit(query)
    if query_unit.shape[0] != index.frame_embeddings.shape[1]:
        raise ValueError(f"query has {query_unit.shape[0]} dimensions, the index has "
                         f"{index.frame_embeddings.shape[1]}: embed it with {index.embedder_id}")
    frame_scores = index.frame_embeddings.astype(np.float32) @ query_unit
    mean_scores = index.scene_embeddings @ query_unit
    hits = []
    for scene, mean_score in zip(index.scenes, mean_scores, strict=True):
        scores = frame_scores[scene.first_frame:scene.stop_frame]
        best = scene.first_frame + int(np.argmax(scores))
        hits.append(SceneHit(video=index.info.path, scene=scene, max_score=float(scores.max()),
                             mean_score=float(mean_score),
                             best_frame_s=float(index.timestamps_s[best])))
    return sorted(hits, key=lambda hit: (-hit.max_score, -hit.mean_score, hit.scene.index))


def top_scenes(index: VideoIndex, query: npt.NDArray[np.floating], top_k: int) -> list[SceneHit]:
    """The ``top_k`` best scenes for the query embedding."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    return score_scenes(index, query)[:top_k]


def rank_texts(scene_embedding: npt.NDArray[np.floating], text_embeddings: npt.NDArray[np.floating],
               ) -> list[tuple[int, float]]:
    """Texts (m, d) ranked by similarity to one scene's embedding: (text index, score), best first."""
    scores = np.asarray(text_embeddings, dtype=np.float32) @ _unit(scene_embedding)
    order = np.argsort(-scores, kind="stable")
    return [(int(i), float(scores[i])) for i in order]
