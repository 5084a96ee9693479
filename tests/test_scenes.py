"""SceneTilling on embeddings with known structure, batch and streaming, and on a rendered video."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from videoqa.media.video import SamplingOptions, sample_frames
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthScene, SynthSpec, SynthVideo, render
from videoqa.types import Scene
from videoqa.visual.embed import load_embedder
from videoqa.visual.index import index_video
from videoqa.visual.scenes import (
    SceneOptions,
    StreamingSceneTiller,
    adjacent_similarity,
    depth_scores,
    keyframe_index,
    left_depth_scores,
    pick_boundaries,
    segment,
)


def shots(
    lengths: list[int],
    dim: int = 64,
    noise: float = 0.02,
    seed: int = 0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Embeddings for consecutive shots of the given lengths (frames at 1 fps), each its own direction."""
    rng = np.random.default_rng(seed)
    rows = []
    for length in lengths:
        base = rng.normal(size=dim)
        rows.append(base + noise * np.linalg.norm(base) * rng.normal(size=(length, dim)) / np.sqrt(dim))
    embeddings = np.concatenate(rows)
    return embeddings, np.arange(len(embeddings), dtype=np.float64) + 0.5


def cut_frames(scenes: list[Scene]) -> list[int]:
    return [scene.first_frame for scene in scenes[1:]]


def test_depth_uses_the_nearest_peaks() -> None:
    similarity = np.array([0.9, 0.95, 0.3, 0.9, 0.92])
    depth = depth_scores(similarity)
    assert depth[2] == pytest.approx((0.95 + 0.92 - 2 * 0.3) / 2)
    assert depth[1] == pytest.approx(0.0) and depth[4] == pytest.approx(0.0)
    # a nearer, lower peak is the one that counts, not the global maximum
    assert depth_scores(np.array([0.99, 0.5, 0.7, 0.2, 0.8]))[3] == pytest.approx((0.7 + 0.8 - 0.4) / 2)
    assert left_depth_scores(similarity).tolist() == pytest.approx([0, 0, 0.65, 0, 0])


def test_adjacent_similarity_is_cosine() -> None:
    vectors = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    assert adjacent_similarity(vectors).tolist() == pytest.approx([1.0, 0.0])


@pytest.mark.parametrize("lengths", [[10, 8, 12], [5, 30, 6, 9, 20], [40]])
def test_hard_cuts_are_found_exactly(lengths: list[int]) -> None:
    embeddings, times = shots(lengths)
    scenes = segment(embeddings, times, duration_s=float(sum(lengths)))
    assert cut_frames(scenes) == np.cumsum(lengths)[:-1].tolist()
    assert scenes[0].start_s == 0 and scenes[-1].end_s == sum(lengths)
    for before, after in itertools.pairwise(scenes):
        assert before.end_s == after.start_s and before.stop_frame == after.first_frame


def test_one_static_shot_stays_one_scene() -> None:
    embeddings, times = shots([120], noise=0.01)
    assert len(segment(embeddings, times, 120.0, SceneOptions(max_scene_s=None))) == 1


def test_short_scene_joins_its_more_similar_neighbour() -> None:
    embeddings, times = shots([10, 1, 10])
    # make the one-frame flash resemble the shot after it more than the one before
    embeddings[10] = 0.3 * embeddings[10] + 0.7 * embeddings[11:].mean(axis=0)
    scenes = segment(embeddings, times, 21.0, SceneOptions(min_scene_s=2.0))
    assert [(s.first_frame, s.stop_frame) for s in scenes] == [(0, 10), (10, 21)]


def test_long_scene_is_split_at_its_deepest_gap_or_evenly() -> None:
    embeddings, times = shots([50, 50], noise=0.0)
    options = SceneOptions(top_k=0, max_scene_s=60.0)  # no threshold cuts: only the length limit
    assert cut_frames(segment(embeddings, times, 100.0, options)) == [50]
    flat, flat_times = shots([100], noise=0.0)
    scenes = segment(flat, flat_times, 100.0, SceneOptions(max_scene_s=30.0))
    assert all(scene.duration_s <= 30.0 for scene in scenes) and len(scenes) == 4


def test_top_k_picks_the_deepest_gaps() -> None:
    embeddings, times = shots([10, 10, 10, 10])
    depth = depth_scores(adjacent_similarity(embeddings))
    assert pick_boundaries(depth, SceneOptions(top_k=2)).tolist() == sorted(np.argsort(-depth)[:2].tolist())
    assert len(segment(embeddings, times, 40.0, SceneOptions(top_k=1))) == 2


def test_cross_fade_gives_one_cut_inside_the_fade() -> None:
    # A 4-s cross-fade sampled at 1 fps: three blended frames between the two shots.
    embeddings, times = shots([20, 20], noise=0.01)
    start, end = embeddings[18].copy(), embeddings[22].copy()
    for index, weight in zip((19, 20, 21), (0.25, 0.5, 0.75), strict=True):
        embeddings[index] = (1 - weight) * start + weight * end
    cuts = cut_frames(segment(embeddings, times, 40.0))
    assert len(cuts) == 1 and 19 <= cuts[0] <= 22


def test_keyframe_is_the_most_typical_frame() -> None:
    vectors = np.array([[1.0, 0.0], [0.7, 0.7], [0.0, 1.0]])
    assert keyframe_index(vectors) == 1
    embeddings, times = shots([10, 10])
    for scene in segment(embeddings, times, 20.0):
        assert scene.first_frame <= scene.keyframe < scene.stop_frame
        assert scene.keyframe_s == times[scene.keyframe]


def test_empty_and_single_frame_inputs() -> None:
    assert segment(np.zeros((0, 4)), np.zeros(0), 0.0) == []
    (only,) = segment(np.ones((1, 4)), np.array([0.5]), 1.0)
    assert (only.start_s, only.end_s, only.keyframe) == (0.0, 1.0, 0)


def stream(
    embeddings: npt.NDArray[np.float64],
    times: npt.NDArray[np.float64],
    duration_s: float,
    options: SceneOptions | None = None,
) -> tuple[list[Scene], list[int]]:
    """Push one frame at a time; return the scenes and how many frames had arrived when each closed."""
    tiller = StreamingSceneTiller(options)
    scenes, arrived_at = [], []
    for index in range(len(times)):
        for scene in tiller.push(embeddings[index : index + 1], times[index : index + 1]):
            scenes.append(scene)
            arrived_at.append(index + 1)
    scenes += list(tiller.finish(duration_s))
    return scenes, arrived_at


@pytest.mark.parametrize("lengths", [[10, 8, 12], [5, 30, 6, 9, 20], [3, 3, 40, 4]])
def test_streaming_agrees_with_batch_on_hard_cuts(lengths: list[int]) -> None:
    embeddings, times = shots(lengths, seed=len(lengths))
    batch = segment(embeddings, times, float(sum(lengths)))
    streamed, arrived_at = stream(embeddings, times, float(sum(lengths)))
    assert streamed == batch
    lookahead = SceneOptions().lookahead_frames
    for scene, arrived in zip(streamed, arrived_at, strict=False):
        assert arrived - scene.stop_frame <= lookahead + 1  # declared a few frames after the cut


def test_streaming_respects_scene_length_limits() -> None:
    embeddings, times = shots([100], noise=0.0)
    scenes, _ = stream(embeddings, times, 100.0, SceneOptions(max_scene_s=30.0))
    assert all(scene.duration_s <= 30.0 for scene in scenes) and len(scenes) >= 4
    assert scenes[-1].end_s == 100.0 and [s.index for s in scenes] == list(range(len(scenes)))


@pytest.mark.parametrize(
    "bad",
    [
        {"alpha": float("nan")},
        {"top_k": -1},
        {"min_depth": 3.0},
        {"min_scene_s": -1.0},
        {"min_scene_s": 10.0, "max_scene_s": 5.0},
        {"lookahead_frames": 0},
        {"window_frames": 1},
    ],
)
def test_scene_options_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SceneOptions(**bad)  # type: ignore[arg-type]


def thumbnails(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """A crude image embedding for the test: 12x12 colour thumbnails, mean-centred."""
    n, height, width, _ = pixels.shape
    small = (
        pixels[:, : height // 12 * 12, : width // 12 * 12]
        .reshape(n, 12, height // 12, 12, width // 12, 3)
        .mean(axis=(2, 4))
    )
    flat = small.reshape(n, -1)
    centred: npt.NDArray[np.float64] = flat - flat.mean(axis=1, keepdims=True)
    return centred


def test_cuts_of_a_rendered_video(narrated: SynthVideo) -> None:
    batches = list(sample_frames(narrated.path, SamplingOptions(fps=2)))
    times = np.concatenate([b.timestamps_s for b in batches])
    embeddings = thumbnails(np.concatenate([b.pixels for b in batches]))
    scenes = segment(embeddings, times, narrated.spec.duration_s)
    edges = [scene.start_s for scene in scenes[1:]]
    # The real cuts are at 4 and 8 s; the text card (5-7 s) is not a cut of its own.
    assert edges == pytest.approx(narrated.spec.cut_times_s, abs=0.5)


def test_pixel_embedder_cuts_real_footage_at_the_joins(
    sample: Callable[[str], Path], media_dir: Path
) -> None:
    spec = SynthSpec(
        scenes=(
            SynthScene(8.0, str(sample("vtest.avi"))),
            SynthScene(6.0, str(sample("carphone_pristine.mp4"))),
            SynthScene(6.0, str(sample("vtest.avi")), offset_s=40.0),
        ),
        width=320,
        height=240,
        fps=25.0,
        audio=False,
    )
    video = render(spec, media_dir / "joined-footage.mp4")
    index = index_video(video.path, load_embedder("pixel"), cache=IndexCache(media_dir / "scene-cache"))
    assert [scene.start_s for scene in index.scenes[1:]] == pytest.approx([8.0, 14.0], abs=1.0)
