"""Library mode: every video in a folder, searchable at once through one vector index (usearch).

Each video is indexed through the per-video cache (``index.py``); the library adds one usearch index
over all their frame embeddings, with a manifest that maps vector keys back to (video, frame). A sync
indexes only videos that are new or whose content changed, and drops the vectors of videos that were
removed or changed. usearch is embedded (no server), keeps float16 vectors, supports adding and
removing by key, and saves to one file; both files are replaced atomically under a lock. Files that are
no video are remembered in the manifest (``badfiles.py``) and not probed again until they change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from videoqa.errors import VideoqaError
from videoqa.library.badfiles import BadFiles
from videoqa.media.formats import VIDEO_SUFFIXES
from videoqa.media.source import VideoSource
from videoqa.store.cache import IndexCache
from videoqa.store.paths import replace_atomically
from videoqa.types import SceneHit, VideoIndex
from videoqa.visual.index import IndexOptions, index_video, load_index

if TYPE_CHECKING:
    from videoqa.visual.embed import ImageEmbedder

MANIFEST_VERSION = 2  # 2: fingerprints of whole files (cache.FORMAT_VERSION 2)
# Frames fetched from the vector index per requested scene: several frames of one scene often rank
# together, and they collapse into one hit.
_FRAMES_PER_HIT = 8


class LibraryError(VideoqaError):
    """The library folder cannot be used."""


def find_videos(folder: Path) -> list[Path]:
    """Video files under ``folder`` (recursively, by file name suffix), sorted."""
    if not folder.is_dir():
        raise LibraryError(f"{folder}: not a folder; give the folder that holds the videos")
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in VIDEO_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


@dataclass(frozen=True)
class SyncReport:
    """What a sync did."""

    indexed: tuple[str, ...]  # videos embedded now (new or changed)
    unchanged: tuple[str, ...]
    removed: tuple[str, ...]  # videos gone from the folder (or changed), whose vectors were dropped
    failed: tuple[tuple[str, str], ...]  # (video, one-line reason)


class Library:
    """A folder of videos and its vector index, kept under the cache folder."""

    def __init__(
        self,
        folder: Path,
        embedder: ImageEmbedder,
        options: IndexOptions | None = None,
        cache: IndexCache | None = None,
    ) -> None:
        self.folder = folder.resolve()
        self._embedder = embedder
        self._options = options or IndexOptions()
        self._cache = cache or IndexCache()
        recipe = json.dumps(
            {"folder": str(self.folder), "embedder": embedder.id, "sampling": asdict(self._options.sampling)},
            sort_keys=True,
            default=str,
        )
        name = hashlib.sha256(recipe.encode()).hexdigest()[:24]
        self.home = self._cache.root / "libraries" / name
        self._manifest: dict[str, Any] = self._load_manifest()

    def sync(
        self,
        on_video: Callable[[Path], Callable[[float, float], None] | None] | None = None,
    ) -> SyncReport:
        """Bring the vector index up to date with the folder; index only what is new or changed."""
        from filelock import FileLock

        lock = FileLock(str(self.home / "sync.lock"))
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            self._manifest = self._load_manifest()
            vectors = self._load_vectors()
            report = self._sync_videos(vectors, on_video)
            self._save(vectors)
        finally:
            lock.release()
        return report

    def _unwritable(self, exc: OSError) -> LibraryError:
        return LibraryError(
            f"cannot write the library's index in {self.home} ({exc.strerror or exc}); "
            "set VIDEOQA_CACHE to a writable folder with room"
        )

    def _sync_videos(self, vectors: Any, on_video: Callable[[Path], Any] | None) -> SyncReport:
        present = {str(path.relative_to(self.folder)): path for path in find_videos(self.folder)}
        videos: dict[str, Any] = self._manifest["videos"]
        bad = BadFiles(self._manifest)
        bad.keep_only(present)
        indexed, unchanged, removed, failed = [], [], [], []
        for name in sorted(set(videos) - set(present)):
            self._drop(vectors, name)
            removed.append(name)
        for name, path in present.items():
            try:
                content = self._cache.fingerprint(path)
            except (OSError, VideoqaError) as exc:
                failed.append((name, str(exc)))
                continue
            known_bad = bad.known(name, content)
            if known_bad is not None:  # not probed again until the file changes
                failed.append((name, known_bad))
                continue
            if name in videos and videos[name]["fingerprint"] == content:
                unchanged.append(name)
                continue
            if name in videos:
                self._drop(vectors, name)
                removed.append(name)
            try:
                progress = on_video(path) if on_video else None
                source = VideoSource(path, content)
                index = index_video(source, self._embedder, self._options, self._cache, progress)
            except VideoqaError as exc:
                failed.append((name, str(exc)))
                bad.judge(name, content, path, str(exc))
                continue
            bad.forget(name)
            self._add(vectors, name, content, index)
            indexed.append(name)
        return SyncReport(tuple(indexed), tuple(unchanged), tuple(removed), tuple(failed))

    def _add(self, vectors: Any, name: str, content: str, index: VideoIndex) -> None:
        first_key = int(self._manifest["next_key"])
        count = len(index.timestamps_s)
        if count:
            # One thread: usearch links a batch in several threads in a racing order, so the graph's
            # bytes would differ from run to run; with one, a library's file is reproducible byte for byte
            # (a --ray run leaves the file a plain run leaves).
            vectors.add(
                np.arange(first_key, first_key + count, dtype=np.uint64),
                index.frame_embeddings.astype(np.float32),
                threads=1,
            )
        self._manifest["videos"][name] = {
            "fingerprint": content,
            "cache_key": index.cache_key,
            "first_key": first_key,
            "frames": count,
        }
        self._manifest["next_key"] = first_key + count

    def _drop(self, vectors: Any, name: str) -> None:
        entry = self._manifest["videos"].pop(name)
        keys = np.arange(entry["first_key"], entry["first_key"] + entry["frames"], dtype=np.uint64)
        if len(keys):
            vectors.remove(keys)

    def search(self, query: npt.NDArray[np.floating], top_k: int) -> list[SceneHit]:
        """The best ``top_k`` scenes across the library for a query embedding, best first."""
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        vectors = self._load_vectors()
        if len(vectors) == 0:
            return []
        found = vectors.search(
            np.asarray(query, dtype=np.float32).reshape(-1), min(len(vectors), top_k * _FRAMES_PER_HIT)
        )
        best: dict[tuple[str, int], SceneHit] = {}
        for hit in self._hits(np.asarray(found.keys), 1.0 - np.asarray(found.distances)):
            best.setdefault((hit.video, hit.scene.index), hit)
        return sorted(best.values(), key=lambda hit: -hit.max_score)[:top_k]

    def _hits(self, keys: npt.NDArray[np.uint64], scores: npt.NDArray[np.floating]) -> Iterator[SceneHit]:
        """A SceneHit for each found frame (in the order found), scene data from the video caches."""
        owners = sorted((entry["first_key"], name) for name, entry in self._manifest["videos"].items())
        starts = np.asarray([first for first, _ in owners], dtype=np.uint64)
        loaded: dict[str, VideoIndex] = {}
        for key, score in zip(keys, scores, strict=True):
            name = owners[int(np.searchsorted(starts, key, side="right")) - 1][1]
            if name not in loaded:
                loaded[name] = self._video_index(name)
            index = loaded[name]
            frame = int(key - self._manifest["videos"][name]["first_key"])
            scene = next(s for s in index.scenes if s.first_frame <= frame < s.stop_frame)
            mean_score = float(
                index.scene_embeddings[scene.index] @ index.frame_embeddings[frame].astype(np.float32)
            )
            yield SceneHit(
                video=index.info.path,
                scene=scene,
                max_score=float(score),
                mean_score=mean_score,
                best_frame_s=float(index.timestamps_s[frame]),
            )

    def _video_index(self, name: str) -> VideoIndex:
        index = load_index(self._cache, self._manifest["videos"][name]["cache_key"])
        if index is None:  # the per-video cache entry was cleared or damaged: index the file again
            return index_video(self.folder / name, self._embedder, self._options, self._cache)
        # The entry may have been made for a copy of this video elsewhere: name the library's file.
        return replace(index, info=replace(index.info, path=str(self.folder / name)))

    def _load_manifest(self) -> dict[str, Any]:
        path = self.home / "manifest.json"
        if path.is_file():
            manifest: dict[str, Any] = json.loads(path.read_text())
            if manifest.get("version") == MANIFEST_VERSION and (self.home / "vectors.usearch").is_file():
                return manifest
        return {"version": MANIFEST_VERSION, "folder": str(self.folder), "next_key": 0, "videos": {}}

    def _load_vectors(self) -> Any:
        from usearch.index import Index

        path = self.home / "vectors.usearch"
        if self._manifest["videos"] and path.is_file():
            return Index.restore(str(path))
        return Index(ndim=self._embedder.dim, metric="cos", dtype="f16")

    def _save(self, vectors: Any) -> None:
        try:
            replace_atomically(self.home / "vectors.usearch", lambda target: vectors.save(str(target)))
            replace_atomically(
                self.home / "manifest.json",
                lambda target: target.write_text(json.dumps(self._manifest, indent=1)),
            )
        except OSError as exc:
            raise self._unwritable(exc) from None
