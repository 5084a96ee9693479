"""A library's text channels: the passages (speech, screen text) of every video in a folder, searchable
at once, so one question can be asked of all of them.

Each video's passages and their sentence vectors come from its own knowledge (``knowledge.build``, the
per-video cache); the library adds one usearch index over all the passage vectors (dense) and, per video,
the set of words its passages hold (lexical), with a manifest that maps vector keys back to videos. The
manifest records, per video, its fingerprint, its duration and which model made each channel; a video
whose content or models changed is indexed again.

A sync saves the manifest and the vectors as it goes (after each video, unless that would make writing
them a large part of the sync: see ``_SAVE_RATIO``), and names the video it is working on before it
starts, so a run that crashes or is killed keeps what it saved: the next run skips those, and says which
video the last run stopped in. A file that cannot be indexed is reported and left out, never fatal; one
that is no video at all is remembered (``badfiles.py``) and not probed again until it changes.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from videoqa.errors import VideoqaError
from videoqa.knowledge.build import VideoKnowledge
from videoqa.library.badfiles import BadFiles
from videoqa.library.folder import LibraryError, find_videos
from videoqa.retrieval.retrieve import Evidence
from videoqa.retrieval.textindex import tokenize
from videoqa.store.cache import IndexCache
from videoqa.store.paths import replace_atomically

MANIFEST_VERSION = 1
# A sync saves after a video once the time since its last save is at least this many times what that
# save took. Saving writes the whole index, so saving after every video made a sync quadratic: 4.5 s for
# 100 videos, 36 s for 300 (about 7 minutes for 1000), nearly all of it writing. Small libraries still
# save after every video; a large one spends at most about a tenth of its sync writing, and a crash loses
# only the videos indexed since the last save (found again in the cache on the next run).
_SAVE_RATIO = 10
_IN_PROGRESS_FILE = "in_progress.txt"  # names the video a sync is working on, while it is
# Passages fetched from the vector index per candidate video wanted: a video's passages about the
# question's subject often rank together.
_PASSAGES_PER_VIDEO = 8

Know = Callable[[Path], VideoKnowledge]  # a video's knowledge: from the cache, or built now


@dataclass(frozen=True)
class PassageSyncReport:
    """What a sync of a library's passages did."""

    indexed: tuple[str, ...]  # videos whose passages were added now (new, changed, or other models)
    unchanged: tuple[str, ...]  # already indexed with the same content and models: skipped
    removed: tuple[str, ...]  # gone from the folder: their passages dropped
    failed: tuple[tuple[str, str], ...]  # (video, one-line reason): listed and left out
    interrupted: str | None  # the video the last run was indexing when it stopped, if it did not finish


@dataclass(frozen=True)
class LibraryEvidence(Evidence):
    """Evidence from one video of a library: ``video`` is its path relative to the library folder."""

    video: str = ""


@dataclass(frozen=True)
class Candidate:
    """A video that may hold the answer, and how it was found."""

    name: str  # path relative to the library folder
    dense: float  # best cosine similarity of one of its passages to the question; -1 when none ranked
    words: float  # idf-weighted share of the question's words its passages hold (0..1)


class PassageLibrary:
    """The passages of every video in ``folder`` in one vector index, kept under the cache folder.

    ``models`` names the model of each channel (as ``Assistant.index_models`` gives them); the manifest
    records them per video, and a video indexed with others is indexed again.
    """

    def __init__(self, folder: Path, models: Mapping[str, str], cache: IndexCache | None = None) -> None:
        self.folder = folder.resolve()
        self.models = dict(models)
        self._cache = cache or IndexCache()
        # One home per folder and sentence-embedding space: vectors of other spaces cannot share an index.
        recipe = json.dumps({"folder": str(self.folder), "text": self.models.get("text")}, sort_keys=True)
        self.home = (
            self._cache.root / "libraries" / f"passages-{hashlib.sha256(recipe.encode()).hexdigest()[:24]}"
        )
        self._manifest = self._load_manifest()
        self._bad = BadFiles(self._manifest)  # files that are no video, not probed again (badfiles.py)
        self._vectors: Any = None  # the usearch index while a sync runs; None until a video has passages
        self._saved_at = 0.0  # time.perf_counter() when the last save ended
        self._save_cost_s = 0.0  # what the last save took

    # --- indexing -------------------------------------------------------------------------------------

    def sync(self, know: Know, on_video: Callable[[str], None] | None = None) -> PassageSyncReport:
        """Bring the index up to date with the folder, saving after every video (a crash keeps them)."""
        from filelock import FileLock

        try:
            self.home.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(self.home / "sync.lock"))
            lock.acquire()
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            self._manifest = self._load_manifest()
            self._bad = BadFiles(self._manifest)
            return self._sync_videos(know, on_video or (lambda _name: None))
        finally:
            lock.release()

    def pending(self) -> list[tuple[str, Path, str]]:
        """(name, path, fingerprint) of each video a sync would index now: new, changed, or indexed with
        other models. Files that cannot be fingerprinted, and files known to be bad that did not change,
        are left out (a sync reports them)."""
        self._manifest = self._load_manifest()
        found = []
        bad = BadFiles(self._manifest)
        for path in find_videos(self.folder):
            name = path.relative_to(self.folder).as_posix()
            try:
                content = self._cache.fingerprint(path)
            except (OSError, VideoqaError):
                continue
            if not self._is_current(name, content) and bad.known(name, content) is None:
                found.append((name, path, content))
        return found

    def _sync_videos(self, know: Know, on_video: Callable[[str], None]) -> PassageSyncReport:
        interrupted = self._take_in_progress()
        self._saved_at, self._save_cost_s = time.perf_counter(), 0.0
        present = {path.relative_to(self.folder).as_posix(): path for path in find_videos(self.folder)}
        videos: dict[str, Any] = self._manifest["videos"]
        self._vectors = self._load_vectors()
        removed = sorted(set(videos) - set(present))
        for name in removed:
            self._drop(name)
        self._bad.keep_only(present)
        indexed, unchanged, failed = [], [], []
        for name, path in present.items():
            try:
                content = self._cache.fingerprint(path)
            except (OSError, VideoqaError) as exc:
                failed.append((name, str(exc)))
                continue
            known_bad = self._bad.known(name, content)
            if known_bad is not None:  # not probed again until the file changes
                failed.append((name, known_bad))
                continue
            if self._is_current(name, content):
                unchanged.append(name)
                continue
            on_video(name)
            reason = self._index_one(name, content, path, know)
            if reason is None:
                indexed.append(name)
            else:
                failed.append((name, reason))
        self._save()
        return PassageSyncReport(tuple(indexed), tuple(unchanged), tuple(removed), tuple(failed), interrupted)

    def _is_current(self, name: str, content: str) -> bool:
        entry = self._manifest["videos"].get(name)
        return entry is not None and entry["fingerprint"] == content and entry["models"] == self.models

    def _index_one(self, name: str, content: str, path: Path, know: Know) -> str | None:
        """Index one video's passages and save; the reason it could not be indexed, or None."""
        if name in self._manifest["videos"]:
            self._drop(name)
        marker = self.home / _IN_PROGRESS_FILE
        try:
            marker.write_text(name)  # a crash from here on is reported by the next run
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            known = know(path)
        except VideoqaError as exc:
            known, reason = None, str(exc)
        # Only here: a run stopped by anything else (Ctrl-C, a crash) leaves the marker for the next one.
        with suppress(OSError):  # at worst the next run names a video that finished
            marker.unlink(missing_ok=True)
        if known is None:
            self._bad.judge(name, content, path, reason)
            return reason
        self._bad.forget(name)
        self._add(name, content, known)
        if time.perf_counter() - self._saved_at >= _SAVE_RATIO * self._save_cost_s:
            self._save()
        return None

    def _take_in_progress(self) -> str | None:
        """The video the last sync was working on when it stopped, if it stopped mid-video."""
        # where manifests kept it before the marker file
        stopped: str | None = self._manifest.pop("in_progress", None)
        marker = self.home / _IN_PROGRESS_FILE
        try:
            stopped = marker.read_text() or stopped
            marker.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._unwritable(exc) from None
        return stopped

    def _add(self, name: str, content: str, known: VideoKnowledge) -> None:
        first_key = int(self._manifest["next_key"])
        count = len(known.passages)
        if count:
            if self._vectors is None:
                self._vectors = self._new_vectors(known.passage_vectors.shape[1])
            keys = np.arange(first_key, first_key + count, dtype=np.uint64)
            # One thread: usearch's graph then comes out the same on every run (several threads link the
            # vectors in a racing order), so a library's files are reproducible byte for byte.
            self._vectors.add(keys, np.asarray(known.passage_vectors, dtype=np.float32), threads=1)
        self._manifest["videos"][name] = {
            "fingerprint": content,
            "duration_s": round(known.visual.info.duration_s, 3),
            "models": self.models,
            "channels": _channel_counts(known),
            "first_key": first_key,
            "passages": count,
            "words": sorted({token for p in known.passages for token in tokenize(p.text)}),
        }
        self._manifest["next_key"] = first_key + count

    def _drop(self, name: str) -> None:
        entry = self._manifest["videos"].pop(name)
        if entry["passages"] and self._vectors is not None:
            self._vectors.remove(
                np.arange(entry["first_key"], entry["first_key"] + entry["passages"], dtype=np.uint64)
            )

    # --- questions ------------------------------------------------------------------------------------

    @property
    def videos(self) -> dict[str, Any]:
        """The manifest's record of each indexed video, by its path relative to the folder."""
        return dict(self._manifest["videos"])

    def candidates(self, query_vectors: npt.NDArray[np.float32], query: str, limit: int) -> list[Candidate]:
        """The videos most likely to answer: the ``limit`` best by their best passage vector, and the
        ``limit`` best by the question's (rarer) words they hold, best first by either."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        dense = self._dense_best(query_vectors, limit)
        words = self._word_shares(query)
        by_dense = sorted(dense, key=lambda name: -dense[name])[:limit]
        by_words = [name for name in sorted(words, key=lambda name: -words[name]) if words[name] > 0][:limit]
        chosen = dict.fromkeys([*by_dense, *by_words])
        found = [Candidate(name, dense.get(name, -1.0), words.get(name, 0.0)) for name in chosen]
        return sorted(found, key=lambda c: (-max(c.dense, c.words), c.name))

    def _dense_best(self, query_vectors: npt.NDArray[np.float32], limit: int) -> dict[str, float]:
        """Per video among the nearest passages to any of the query vectors, its best similarity."""
        vectors = self._load_vectors(view=True)
        if vectors is None or len(vectors) == 0:
            return {}
        owners = sorted((entry["first_key"], name) for name, entry in self._manifest["videos"].items())
        starts = np.asarray([first for first, _ in owners], dtype=np.uint64)
        wanted = min(len(vectors), limit * _PASSAGES_PER_VIDEO)
        best: dict[str, float] = {}
        for query in np.atleast_2d(np.asarray(query_vectors, dtype=np.float32)):
            found = vectors.search(query, wanted)
            for key, distance in zip(np.asarray(found.keys), np.asarray(found.distances), strict=True):
                name = owners[int(np.searchsorted(starts, key, side="right")) - 1][1]
                entry = self._manifest["videos"][name]
                if key >= entry["first_key"] + entry["passages"]:  # left by a run that stopped mid-way
                    continue
                best[name] = max(best.get(name, -1.0), 1.0 - float(distance))
        return best

    def _word_shares(self, query: str) -> dict[str, float]:
        """Per video, the idf-weighted share of the question's words its passages hold."""
        asked = set(tokenize(query))
        videos = self._manifest["videos"]
        if not asked or not videos:
            return {}
        held = {name: asked.intersection(entry["words"]) for name, entry in videos.items()}
        weight = {word: math.log(1 + len(videos) / (1 + _count(word, held.values()))) for word in asked}
        total = sum(weight.values())
        return {name: sum(weight[w] for w in words) / total for name, words in held.items()}

    # --- files ----------------------------------------------------------------------------------------

    def _unwritable(self, exc: OSError) -> LibraryError:
        return LibraryError(
            f"cannot write the library's index in {self.home} ({exc.strerror or exc}); "
            "set VIDEOQA_CACHE to a writable folder with room"
        )

    def _load_manifest(self) -> dict[str, Any]:
        path = self.home / "manifest.json"
        if path.is_file():
            try:
                manifest: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError):  # damaged: index the library again
                manifest = {}
            if manifest.get("version") == MANIFEST_VERSION:
                return manifest
        return {"version": MANIFEST_VERSION, "folder": str(self.folder), "next_key": 0, "videos": {}}

    def _new_vectors(self, dim: int) -> Any:
        from usearch.index import Index

        self._manifest["dim"] = dim
        return Index(ndim=dim, metric="cos", dtype="f16")

    def _load_vectors(self, view: bool = False) -> Any:
        """The vector index, or None while no video has passages. ``view`` maps the file read-only
        instead of reading it: 3 ms instead of 65 ms for 80,000 passages (1000 videos), which was most
        of a question's time; a sync that replaces the file meanwhile leaves the mapped one intact."""
        from usearch.index import Index

        path = self.home / "vectors.usearch"
        if "dim" not in self._manifest:
            return None
        if path.is_file() and any(entry["passages"] for entry in self._manifest["videos"].values()):
            return Index.restore(str(path), view=view)
        return self._new_vectors(int(self._manifest["dim"]))

    def _save(self) -> None:
        started = time.perf_counter()
        vectors = self._vectors
        try:
            if vectors is not None:
                replace_atomically(self.home / "vectors.usearch", lambda target: vectors.save(str(target)))
        except OSError as exc:
            raise self._unwritable(exc) from None
        self._save_manifest()
        self._saved_at = time.perf_counter()
        self._save_cost_s = self._saved_at - started

    def _save_manifest(self) -> None:
        try:
            replace_atomically(
                self.home / "manifest.json", lambda target: target.write_text(json.dumps(self._manifest))
            )
        except OSError as exc:
            raise self._unwritable(exc) from None


def _channel_counts(known: VideoKnowledge) -> dict[str, int]:
    return {
        "frames": len(known.visual.timestamps_s),
        "scenes": len(known.visual.scenes),
        "speech": sum(p.channel == "speech" for p in known.passages),
        "screen": sum(p.channel == "screen" for p in known.passages),
    }


def _count(word: str, word_sets: Iterable[set[str]]) -> int:
    return sum(word in words for words in word_sets)


def tag_evidence(items: Sequence[Evidence], video: str) -> tuple[LibraryEvidence, ...]:
    """The items of one video's evidence, each naming the video."""
    return tuple(
        LibraryEvidence(**{f.name: getattr(item, f.name) for f in fields(item)}, video=video)
        for item in items
    )
