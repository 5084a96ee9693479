"""Indexing: sample frames, embed them, cut scenes, pool per-scene embeddings, cache the result.

Decoding runs ahead in its own thread (``video.read_frames``) while the embedder works on the previous
batch. The cache key holds what changes the frame embeddings (content, embedder, sampling), and an entry
is kept only if the file still holds that content once its frames are read; the scene
options only change the cheap scene cut, so a different ``SceneOptions`` re-cuts the cached embeddings
instead of decoding the video again.

``index_video`` decodes the frames itself; the knowledge pipeline instead feeds a ``FrameIndexer`` from
the one decoding pass that also feeds the screen-text reader, and stores its entry with ``store_index``.
Both make the same entry under the same key (the same frames, decoded the same way).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from videoqa.errors import VideoError
from videoqa.media.source import VideoSource, open_video
from videoqa.media.video import SamplingOptions, plan_times, read_frames
from videoqa.store.cache import CacheEntry, IndexCache, entry_key
from videoqa.types import AudioInfo, FrameBatch, Scene, VideoIndex, VideoInfo
from videoqa.visual.scenes import SceneOptions, segment

if TYPE_CHECKING:
    from videoqa.visual.embed import ImageEmbedder

ProgressCallback = Callable[[float, float], None]  # (seconds of video done, seconds in all)


@dataclass(frozen=True)
class IndexOptions:
    """What indexing samples and how it cuts scenes."""

    # 448 px on the long side keeps the short side >= 224 for CLIP-size models at 16:9, and decoding
    # straight to that size is much cheaper than decoding full frames and shrinking them afterwards.
    sampling: SamplingOptions = field(default_factory=lambda: SamplingOptions(fps=1.0, max_side=448))
    scenes: SceneOptions = field(default_factory=SceneOptions)


def index_video(
    video: str | os.PathLike[str] | VideoSource,
    embedder: ImageEmbedder,
    options: IndexOptions | None = None,
    cache: IndexCache | None = None,
    on_progress: ProgressCallback | None = None,
) -> VideoIndex:
    """Index one video, reusing its cache entry when the same content was indexed the same way.

    ``video`` is a path or, from a caller that has already checked and fingerprinted the file, its
    ``VideoSource``. Raises ContentChangedError, caching nothing, when the file no longer holds that
    content once it is read.
    """
    options = options or IndexOptions()
    cache = cache or IndexCache()
    source = open_video(video, cache)
    # The key needs only the content, so a warm cache answers without probing or decoding the video.
    key = index_key(source.content, embedder, options)

    def build() -> CacheEntry:
        indexer = FrameIndexer(source.info, embedder, options, on_progress)
        for batch in read_frames(source.info, plan_times(source.info, options.sampling), options.sampling):
            indexer.add(batch)
        built = indexer.entry()
        # the frames read must be of the content the key names
        cache.check_unchanged(source.path, source.content)
        return built

    entry, cached = cache.get_or_build(key, build)
    return _finish(entry, source, options, cache, key, cached)


def index_key(content: str, embedder: ImageEmbedder, options: IndexOptions) -> str:
    """The cache key of a video's index: its content, the embedder, and how frames are sampled."""
    return entry_key(content, {"embedder": embedder.id, "sampling": sampling_recipe(options.sampling)})


def cached_index(
    source: VideoSource, embedder: ImageEmbedder, options: IndexOptions, cache: IndexCache
) -> VideoIndex | None:
    """The video's index from the cache, without reading the video; None when it is not there."""
    key = index_key(source.content, embedder, options)
    entry = cache.load(key)
    return None if entry is None else _finish(entry, source, options, cache, key, cached=True)


def store_index(
    source: VideoSource, entry: CacheEntry, options: IndexOptions, cache: IndexCache, key: str
) -> VideoIndex:
    """Save an entry a ``FrameIndexer`` made (the caller has checked the file is unchanged) under its
    key and give its index."""
    cache.save(key, entry)
    return _finish(entry, source, options, cache, key, cached=False)


def _finish(
    entry: CacheEntry, source: VideoSource, options: IndexOptions, cache: IndexCache, key: str, cached: bool
) -> VideoIndex:
    # The probe stored with the entry, but for this file's path (a renamed file hits the cache).
    info = replace(_stored_info(entry), path=str(source.path))
    if entry.header.get("scene_options") != asdict(options.scenes):
        entry = _with_scenes(entry, info, options.scenes)
        cache.save(key, entry)
    return _index_from_entry(entry, info, key, cached)


def load_index(cache: IndexCache, key: str) -> VideoIndex | None:
    """A cached index by its key, without touching the video file; None when it is not (intact) there."""
    entry = cache.load(key)
    if entry is None:
        return None
    return _index_from_entry(entry, _stored_info(entry), key, cached=True)


def _stored_info(entry: CacheEntry) -> VideoInfo:
    video = dict(entry.header["video"])
    audio = video.pop("audio")
    return VideoInfo(**video, audio=AudioInfo(**audio) if audio else None)


def sampling_recipe(sampling: SamplingOptions) -> dict[str, Any]:
    """The sampling options that change which pixels are embedded (not how they are decoded)."""
    return {
        name: value
        for name, value in asdict(sampling).items()
        if name in ("fps", "max_frames", "start_s", "end_s", "max_side")
    }


class FrameIndexer:
    """Embeds sampled frames as they are decoded and makes the index's cache entry from them."""

    def __init__(
        self,
        info: VideoInfo,
        embedder: ImageEmbedder,
        options: IndexOptions,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.info, self.embedder, self.options = info, embedder, options
        self._on_progress = on_progress
        self._stamps: list[npt.NDArray[np.float64]] = []
        self._rows: list[npt.NDArray[np.float32]] = []

    def add(self, batch: FrameBatch) -> None:
        """Embed one batch of frames (the index's sampling: its times and its size)."""
        self._rows.append(np.asarray(self.embedder.embed_images(batch.pixels), dtype=np.float32))
        self._stamps.append(batch.timestamps_s)
        if self._on_progress is not None:
            self._on_progress(float(batch.timestamps_s[-1]), self.info.duration_s)

    def entry(self) -> CacheEntry:
        """The entry: probe, timestamps, half-precision frame embeddings, scenes; VideoError when no frame
        could be decoded."""
        info = self.info
        if not self._rows:
            raise VideoError(f"{info.path}: no frame could be decoded to index")
        if self._on_progress is not None:
            self._on_progress(info.duration_s, info.duration_s)
        entry = CacheEntry(
            header={
                "embedder": self.embedder.id,
                "sampling": sampling_recipe(self.options.sampling),
                "video": asdict(info),
            },
            arrays={
                "timestamps_s": np.concatenate(self._stamps),
                # half precision halves the cache; cosine scores move by ~1e-3
                "frame_embeddings": np.concatenate(self._rows).astype(np.float16),
            },
        )
        return _with_scenes(entry, info, self.options.scenes)


def _with_scenes(entry: CacheEntry, info: VideoInfo, scene_options: SceneOptions) -> CacheEntry:
    """The entry with its scenes (re)cut from its frame embeddings."""
    times = entry.arrays["timestamps_s"]
    embeddings = entry.arrays["frame_embeddings"].astype(np.float32)
    scenes = segment(embeddings, times, info.duration_s, scene_options)
    arrays = {
        **entry.arrays,
        "scene_frames": np.asarray(
            [[s.first_frame, s.stop_frame, s.keyframe] for s in scenes], dtype=np.int64
        ).reshape(-1, 3),
        "scene_times_s": np.asarray(
            [[s.start_s, s.end_s, s.keyframe_s] for s in scenes], dtype=np.float64
        ).reshape(-1, 3),
        "scene_embeddings": pool_scenes(embeddings, scenes),
    }
    return CacheEntry(header={**entry.header, "scene_options": asdict(scene_options)}, arrays=arrays)


def pool_scenes(embeddings: npt.NDArray[np.float32], scenes: list[Scene]) -> npt.NDArray[np.float32]:
    """Mean of each scene's frame embeddings, L2-normalised: shape (len(scenes), d)."""
    pooled = (
        np.stack([embeddings[s.first_frame : s.stop_frame].mean(axis=0) for s in scenes])
        if scenes
        else np.zeros((0, embeddings.shape[1]), dtype=np.float32)
    )
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def _index_from_entry(entry: CacheEntry, info: VideoInfo, key: str, cached: bool) -> VideoIndex:
    frames, times = entry.arrays["scene_frames"], entry.arrays["scene_times_s"]
    scenes = tuple(
        Scene(
            index=i,
            start_s=float(times[i, 0]),
            end_s=float(times[i, 1]),
            first_frame=int(frames[i, 0]),
            stop_frame=int(frames[i, 1]),
            keyframe=int(frames[i, 2]),
            keyframe_s=float(times[i, 2]),
        )
        for i in range(len(frames))
    )
    return VideoIndex(
        info=info,
        embedder_id=str(entry.header["embedder"]),
        timestamps_s=entry.arrays["timestamps_s"],
        frame_embeddings=entry.arrays["frame_embeddings"],
        scenes=scenes,
        scene_embeddings=entry.arrays["scene_embeddings"],
        cache_key=key,
        cached=cached,
    )
