"""SceneTilling: cut a video into scenes from its frame embeddings (pure functions on arrays).

The TextTiling idea applied to frames. Adjacent sampled frames are compared by cosine similarity; a gap
is a candidate cut when the similarity there dips below the nearest peaks on both sides (its *depth*);
the deep gaps become boundaries; scenes that come out too short are merged into their more similar
neighbour and scenes that come out too long are split at their deepest inner gap. Each scene keeps a
keyframe: the frame closest to the scene's mean embedding.

``StreamingSceneTiller`` does the same as frames arrive, using only the peak to the left of a gap, so a
boundary is declared a few frames after it happens (for live captions).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from videoqa.errors import OptionsError
from videoqa.types import Scene

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SceneOptions:
    """How SceneTilling decides where scenes start and end."""

    alpha: float = 0.5  # a gap is a boundary when its depth > mean + alpha * std of all depths
    top_k: int | None = None  # instead of the threshold: the k deepest gaps become boundaries
    min_depth: float = 0.05  # shallower gaps never cut (so one static shot stays one scene)
    min_scene_s: float = 2.0  # shorter scenes are merged into their more similar neighbour
    max_scene_s: float | None = 120.0  # longer scenes are split at their deepest inner gap
    lookahead_frames: int = 2  # streaming: frames seen past a gap before it is declared a cut
    window_frames: int = 300  # streaming: depths behind the threshold's mean and std

    def __post_init__(self) -> None:
        if not math.isfinite(self.alpha):
            raise OptionsError(f"alpha must be a number, got {self.alpha}")
        if self.top_k is not None and self.top_k < 0:
            raise OptionsError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 <= self.min_depth <= 2:
            raise OptionsError(f"min_depth must be within 0-2 (a cosine distance), got {self.min_depth}")
        if self.min_scene_s < 0:
            raise OptionsError(f"min_scene_s must be >= 0, got {self.min_scene_s}")
        if self.max_scene_s is not None and self.max_scene_s <= max(self.min_scene_s, 0.0):
            raise OptionsError("max_scene_s must be longer than min_scene_s")
        if self.lookahead_frames < 1 or self.window_frames < 2:
            raise OptionsError("lookahead_frames must be >= 1 and window_frames >= 2")


def adjacent_similarity(embeddings: npt.NDArray[np.floating]) -> FloatArray:
    """Cosine similarity of each sampled frame with the next: shape (n-1,) for (n, d) embeddings."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.maximum(norms, 1e-12)
    similarity: FloatArray = np.einsum("ij,ij->i", unit[:-1], unit[1:])
    return similarity


def _peaks_to_the_left(similarity: FloatArray) -> FloatArray:
    """For each gap, the similarity reached by climbing left while it does not decrease.

    Climbing from gap i reaches i-1 whenever sim[i-1] >= sim[i] and then continues exactly as a climb
    from i-1 would, so one left-to-right pass gives every peak.
    """
    peaks: FloatArray = np.array(similarity, dtype=np.float64)
    for i in range(1, len(similarity)):
        if similarity[i - 1] >= similarity[i]:
            peaks[i] = peaks[i - 1]
    return peaks


def depth_scores(similarity: FloatArray) -> FloatArray:
    """TextTiling depth of every gap: ``(left peak + right peak - 2 * sim) / 2``, nearest peaks."""
    left = _peaks_to_the_left(similarity)
    right = _peaks_to_the_left(similarity[::-1])[::-1]
    depth: FloatArray = (left + right - 2.0 * similarity) / 2.0
    return depth


def left_depth_scores(similarity: FloatArray) -> FloatArray:
    """Depth measured against the left peak only (what a stream knows): ``left peak - sim``."""
    depth: FloatArray = _peaks_to_the_left(similarity) - similarity
    return depth


def pick_boundaries(depth: FloatArray, options: SceneOptions) -> npt.NDArray[np.int64]:
    """Gaps (indices into ``depth``) that become cuts, increasing. Gap i lies between frames i, i+1."""
    if len(depth) == 0:
        return np.zeros(0, dtype=np.int64)
    candidates = np.flatnonzero(depth > options.min_depth)
    if options.top_k is not None:
        deepest = candidates[np.argsort(-depth[candidates], kind="stable")][: options.top_k]
        return np.sort(deepest).astype(np.int64)
    threshold = float(depth.mean() + options.alpha * depth.std())
    return candidates[depth[candidates] > threshold].astype(np.int64)


def segment(
    embeddings: npt.NDArray[np.floating],
    timestamps_s: FloatArray,
    duration_s: float,
    options: SceneOptions | None = None,
) -> list[Scene]:
    """Cut sampled frames into scenes.

    ``embeddings`` (n, d), one row per sampled frame; ``timestamps_s`` (n,) their times; ``duration_s``
    the video's length. Scenes cover the video without gaps; a scene's edges lie halfway between the
    last frame of one scene and the first frame of the next.
    """
    options = options or SceneOptions()
    times = np.asarray(timestamps_s, dtype=np.float64)
    if len(times) == 0:
        return []
    similarity = adjacent_similarity(embeddings)
    depth = depth_scores(similarity)
    cuts = set(pick_boundaries(depth, options).tolist())
    cuts = _merge_short(cuts, similarity, times, duration_s, options.min_scene_s)
    if options.max_scene_s is not None:
        cuts = _split_long(cuts, depth, times, duration_s, options.max_scene_s)
    return _scenes_from_cuts(sorted(cuts), embeddings, times, duration_s)


def _edges_s(cuts: list[int], times: FloatArray, duration_s: float) -> list[float]:
    middles = [(times[cut] + times[cut + 1]) / 2.0 for cut in cuts]
    return [0.0, *middles, max(duration_s, float(times[-1]))]


def _merge_short(
    cuts: set[int], similarity: FloatArray, times: FloatArray, duration_s: float, min_scene_s: float
) -> set[int]:
    """Drop cuts until no scene is shorter than ``min_scene_s`` (or only one scene is left).

    The shortest scene goes first; it joins the neighbour across the more similar of its two edges.
    """
    cuts = set(cuts)
    while cuts:
        ordered = sorted(cuts)
        edges = _edges_s(ordered, times, duration_s)
        lengths = np.diff(edges)
        shortest = int(np.argmin(lengths))
        if lengths[shortest] >= min_scene_s:
            break
        # The scene's edges: the cut before it and the cut after it, where they exist.
        sides = [ordered[i] for i in (shortest - 1, shortest) if 0 <= i < len(ordered)]
        cuts.discard(max(sides, key=lambda cut: similarity[cut]))
    return cuts


def _split_long(
    cuts: set[int], depth: FloatArray, times: FloatArray, duration_s: float, max_scene_s: float
) -> set[int]:
    """Add cuts until no scene is longer than ``max_scene_s``: at the deepest inner gap, else evenly."""
    cuts = set(cuts)
    ordered = sorted(cuts)
    # Scenes as (gap before the first frame, last frame); -1 means the scene starts the video.
    pending = list(zip([-1, *ordered], [*ordered, len(times) - 1], strict=True))
    while pending:
        before, last = pending.pop()
        first = before + 1
        start_s = 0.0 if before < 0 else (times[before] + times[first]) / 2.0
        end_s = (
            max(duration_s, float(times[-1]))
            if last == len(times) - 1
            else (times[last] + times[last + 1]) / 2.0
        )
        if end_s - start_s <= max_scene_s or last <= first:
            continue
        inner = depth[first:last]  # gaps between frames first..last
        # At the deepest inner gap; in a flat stretch, in the middle (halves are split again as needed).
        cut = first + int(np.argmax(inner)) if inner.max() > 1e-6 else (first + last) // 2
        cuts.add(cut)
        pending += [(before, cut), (cut, last)]
    return cuts


def _scenes_from_cuts(
    cuts: list[int], embeddings: npt.NDArray[np.floating], times: FloatArray, duration_s: float
) -> list[Scene]:
    edges = _edges_s(cuts, times, duration_s)
    firsts = [0, *(cut + 1 for cut in cuts)]
    stops = [*(cut + 1 for cut in cuts), len(times)]
    scenes = []
    for index, (first, stop) in enumerate(zip(firsts, stops, strict=True)):
        keyframe = first + keyframe_index(embeddings[first:stop])
        scenes.append(
            Scene(
                index=index,
                start_s=float(edges[index]),
                end_s=float(edges[index + 1]),
                first_frame=first,
                stop_frame=stop,
                keyframe=keyframe,
                keyframe_s=float(times[keyframe]),
            )
        )
    return scenes


def keyframe_index(embeddings: npt.NDArray[np.floating]) -> int:
    """Index of the row closest (cosine) to the mean of the rows: the scene's most typical frame."""
    vectors = np.asarray(embeddings, dtype=np.float64)
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centre = unit.mean(axis=0)
    return int(np.argmax(unit @ centre))


class StreamingSceneTiller:
    """SceneTilling as frames arrive: ``push`` frames, get back the scenes that have closed.

    A gap becomes a cut ``lookahead_frames`` frames after it, when its left-only depth is the deepest
    around it and exceeds ``min_depth`` and ``mean + alpha * std`` of the recent depths (the last
    ``window_frames`` gaps). A scene is not closed before ``min_scene_s`` (the would-be cut is dropped)
    and is closed at its deepest gap once it would pass ``max_scene_s``. ``finish`` closes the last
    scene. Memory grows only with the open scene.
    """

    def __init__(self, options: SceneOptions | None = None) -> None:
        self._options = options or SceneOptions()
        self._times: list[float] = []  # frames of the open scene, plus lookahead
        self._vectors: list[FloatArray] = []
        self._similarity: list[float] = []  # gaps between consecutive frames above
        self._recent_depths: list[float] = []
        self._left_peak = -math.inf
        self._scene_start_s = 0.0
        self._first_frame = 0  # global index of self._times[0]
        self._decided = 0  # gaps (local indices) already judged
        self._index = 0

    def push(self, embeddings: npt.NDArray[np.floating], timestamps_s: FloatArray) -> Iterator[Scene]:
        """Add frames (n, d) at ``timestamps_s`` (n,); yield every scene this closes."""
        for vector, time_s in zip(np.asarray(embeddings, dtype=np.float64), timestamps_s, strict=True):
            unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
            if self._vectors:
                similarity = float(unit @ self._vectors[-1])
                self._similarity.append(similarity)
            self._vectors.append(unit)
            self._times.append(float(time_s))
            yield from self._judge_ready_gaps()

    def finish(self, duration_s: float) -> Iterator[Scene]:
        """Close the open scene at the end of the video (``duration_s`` seconds)."""
        if self._times:
            yield self._close(len(self._times), max(duration_s, self._times[-1]))

    def _judge_ready_gaps(self) -> Iterator[Scene]:
        lookahead = self._options.lookahead_frames
        while self._decided + lookahead < len(self._similarity):
            gap = self._decided
            self._decided += 1
            if self._is_cut(gap):
                end_s = (self._times[gap] + self._times[gap + 1]) / 2.0
                yield self._close(gap + 1, end_s)
            elif self._too_long(gap):
                yield self._close_at_deepest(gap)

    def _is_cut(self, gap: int) -> bool:
        similarity = self._similarity[gap]
        previous = self._similarity[gap - 1] if gap > 0 else -math.inf
        if previous < similarity:  # the climb to the left stops here: this gap is its own peak
            self._left_peak = similarity
        depth = self._left_peak - similarity
        window = self._recent_depths[-self._options.window_frames :]
        self._recent_depths.append(depth)
        threshold = max(
            self._options.min_depth,
            float(np.mean(window) + self._options.alpha * np.std(window)) if window else 0.0,
        )
        ahead = self._similarity[gap + 1 : gap + 1 + self._options.lookahead_frames]
        is_local_minimum = all(similarity <= other for other in ahead)
        long_enough = (
            self._times[gap] + self._times[gap + 1]
        ) / 2.0 - self._scene_start_s >= self._options.min_scene_s
        return depth > threshold and is_local_minimum and long_enough

    def _too_long(self, gap: int) -> bool:
        limit = self._options.max_scene_s
        return limit is not None and self._times[gap + 1] - self._scene_start_s > limit

    def _close_at_deepest(self, gap: int) -> Scene:
        inner = np.asarray(self._similarity[: gap + 1])
        cut = int(np.argmin(inner)) if np.ptp(inner) > 1e-6 else gap
        return self._close(cut + 1, (self._times[cut] + self._times[cut + 1]) / 2.0)

    def _close(self, stop: int, end_s: float) -> Scene:
        """Emit frames [0, stop) as a scene and keep the rest as the start of the next one."""
        keyframe = keyframe_index(np.asarray(self._vectors[:stop]))
        scene = Scene(
            index=self._index,
            start_s=self._scene_start_s,
            end_s=end_s,
            first_frame=self._first_frame,
            stop_frame=self._first_frame + stop,
            keyframe=self._first_frame + keyframe,
            keyframe_s=self._times[keyframe],
        )
        self._index += 1
        self._scene_start_s = end_s
        self._first_frame += stop
        self._times, self._vectors = self._times[stop:], self._vectors[stop:]
        self._similarity = self._similarity[stop:]
        self._decided = max(0, self._decided - stop)
        self._left_peak = -math.inf
        return scene
