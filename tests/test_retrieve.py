"""Visual retrieval over one video's index: per-scene max and mean scores, top-k, caption ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from videoqa.media.video import frame_at
from videoqa.retrieval.retrieve import rank_texts, score_scenes, top_scenes
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthVideo
from videoqa.types import VideoIndex
from videoqa.visual.index import index_video

from helpers import ThumbnailEmbedder


@pytest.fixture(scope="module")
def narrated_index(narrated: SynthVideo, tmp_path_factory: pytest.TempPathFactory) -> VideoIndex:
    return index_video(narrated.path, ThumbnailEmbedder(), cache=IndexCache(tmp_path_factory.mktemp("c")))


@pytest.mark.parametrize(("time_s", "scene"), [(1.0, 0), (6.5, 1), (10.0, 2)])
def test_a_frame_finds_its_own_scene(
    narrated: SynthVideo, narrated_index: VideoIndex, time_s: float, scene: int
) -> None:
    query = ThumbnailEmbedder().embed_images(frame_at(narrated.path, time_s, max_side=448).pixels)[0]
    hits = score_scenes(narrated_index, query)
    assert hits[0].scene.index == scene
    assert hits[0].max_score > 0.9 and hits[0].mean_score > 0.9
    assert hits[0].scene.start_s <= hits[0].best_frame_s < hits[0].scene.end_s
    assert [hit.max_score for hit in hits] == sorted((hit.max_score for hit in hits), reverse=True)
    assert hits[0].video == str(narrated.path)


def test_top_k_and_bad_queries(narrated_index: VideoIndex) -> None:
    query = narrated_index.scene_embeddings[2]
    assert [hit.scene.index for hit in top_scenes(narrated_index, query, 1)] == [2]
    assert len(top_scenes(narrated_index, query, 10)) == 3
    with pytest.raises(ValueError, match="top_k"):
        top_scenes(narrated_index, query, 0)
    with pytest.raises(ValueError, match="dimensions"):
        score_scenes(narrated_index, np.ones(5))


def test_rank_texts_orders_by_similarity() -> None:
    scene = np.array([1.0, 0.0, 0.0])
    texts = np.array([[0.0, 1.0, 0.0], [0.9, 0.1, 0.0], [-1.0, 0.0, 0.0], [0.6, 0.8, 0.0]])
    ranked = rank_texts(scene, texts)
    assert [index for index, _ in ranked] == [1, 3, 0, 2]
    assert ranked[0][1] == pytest.approx(0.9)


def test_scene_from_a_real_path_is_named(narrated_index: VideoIndex) -> None:
    assert Path(narrated_index.info.path).name == "narrated.mp4"
