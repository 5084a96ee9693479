"""The catalog: every video under the media roots and every upload, by id, with its index status.

Indexing runs in a background thread, one video at a time (it holds the engine's lock), and is
single-flight: however many requests ask for one video while it is being indexed, one build runs and they
all wait for it. Progress comes from the assistant's stage callbacks ("frames", "speech", "screen
text"), routed to the video being indexed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from videoqa.errors import VideoqaError
from videoqa.media.formats import VIDEO_SUFFIXES
from videoqa.serve.engine import Engine
from videoqa.serve.errors import ApiError, from_videoqa
from videoqa.serve.security import MediaRoots, video_id

log = logging.getLogger("videoqa.serve")

ProgressCallback = Callable[[float, float], None]
# The stages indexing reports, in the order they run; each is an equal share of a video's progress.
STAGES = ("frames", "speech", "screen text")


@dataclass
class VideoEntry:
    """One video and where its index stands. Status changes are made under the catalog's lock."""

    id: str
    path: Path  # resolved
    name: str  # relative to its media root, or the upload's file name
    status: str = "new"  # "new", "indexing", "ready" or "failed"
    progress: float = 0.0
    stage: str | None = None
    error: str | None = None
    failure: ApiError | None = None  # what a request about this video is answered with, once failed
    duration_s: float | None = None
    settled: threading.Event = field(default_factory=threading.Event)  # set when ready or failed

    def record(self) -> dict[str, Any]:
        """The VIDEO object of the API."""
        return {
            "id": self.id,
            "object": "video",
            "name": self.name,
            "status": self.status,
            "progress": round(self.progress, 4),
            "stage": self.stage,
            "error": self.error,
            "duration_s": self.duration_s,
            "media_url": f"/v1/videos/{self.id}/media",
        }


class StageRouter:
    """The assistant's ``StageProgress``: each stage's progress goes to the video being indexed now."""

    def __init__(self) -> None:
        self._entry: VideoEntry | None = None

    def __call__(self, label: str) -> ProgressCallback | None:
        entry = self._entry
        if entry is None:  # a model call outside indexing (a file changed since): nobody to tell
            return None
        position = STAGES.index(label) if label in STAGES else len(STAGES) - 1
        entry.stage = label
        entry.progress = max(entry.progress, position / len(STAGES))

        def report(done_s: float, total_s: float) -> None:
            share = min(max(done_s / total_s, 0.0), 1.0) if total_s > 0 else 0.0
            entry.progress = max(entry.progress, (position + share) / len(STAGES))

        return report

    @contextlib.contextmanager
    def reporting_to(self, entry: VideoEntry) -> Iterator[None]:
        self._entry = entry
        try:
            yield
        finally:
            self._entry = None


class Catalog:
    """The videos the server knows, by id; ``index`` and ``ready`` run one build per video."""

    def __init__(self, roots: MediaRoots, engine: Engine, router: StageRouter) -> None:
        self.roots = roots
        self.engine = engine
        self.router = router
        self._entries: dict[str, VideoEntry] = {}
        self._lock = threading.Lock()

    # --- what there is ------------------------------------------------------------------------------

    def scan(self) -> list[VideoEntry]:
        """Every video under the media roots and every upload, by name."""
        found = [*(self._under(root, upload=False) for root in self.roots.roots)]
        found.append(self._under(self.roots.uploads, upload=True))
        entries = {entry.id: entry for group in found for entry in group}
        return sorted(entries.values(), key=lambda entry: entry.name)

    def _under(self, root: Path, upload: bool) -> list[VideoEntry]:
        entries = []
        for folder, subfolders, files in os.walk(root):  # symlinked folders are not followed
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or (not upload and Path(name).suffix.lower() not in VIDEO_SUFFIXES):
                    continue
                path = Path(folder) / name
                resolved = path.resolve()
                if resolved.is_file() and self.roots.root_of(resolved) is not None:  # no link out
                    shown = name if upload else path.relative_to(root).as_posix()
                    entries.append(self.add(resolved, shown))
        return entries

    def add(self, path: Path, name: str, duration_s: float | None = None) -> VideoEntry:
        """The entry of the file at ``path`` (resolved, inside a root), made on first sight."""
        id = video_id(path)
        with self._lock:
            entry = self._entries.get(id)
            if entry is None:
                entry = self._entries[id] = VideoEntry(id, path, name)
            if duration_s is not None:
                entry.duration_s = duration_s
            return entry

    def get(self, id: str) -> VideoEntry:
        """The entry with ``id``; the roots are looked through again for a file added since. 404 if none,
        or if its file is gone."""
        entry = self._entries.get(id)
        if entry is None:
            entry = next((e for e in self.scan() if e.id == id), None)
        if entry is not None and not entry.path.is_file():  # deleted (or moved) since it was seen
            with self._lock:
                self._entries.pop(id, None)
            entry = None
        if entry is None:
            raise ApiError(404, f"no video with id {id!r}", "id", "video_not_found")
        return entry

    def ready_entries(self) -> list[VideoEntry]:
        return [entry for entry in list(self._entries.values()) if entry.status == "ready"]

    # --- indexing -----------------------------------------------------------------------------------

    def index(self, entry: VideoEntry) -> None:
        """Start indexing ``entry`` in the background, unless it is indexed or being indexed."""
        with self._lock:
            if entry.status not in ("new", "failed"):
                return
            entry.status, entry.progress, entry.stage = "indexing", 0.0, None
            entry.error, entry.failure = None, None
            entry.settled.clear()
        threading.Thread(
            target=self._build, args=(entry,), name=f"videoqa-index-{entry.id}", daemon=True
        ).start()

    def ready(self, entry: VideoEntry) -> VideoEntry:
        """``entry`` once indexed: started if need be, waited for; its failure as an ``ApiError``."""
        self.index(entry)
        entry.settled.wait()
        if entry.failure is not None:
            raise entry.failure
        return entry

    def _build(self, entry: VideoEntry) -> None:
        started = time.perf_counter()
        try:
            self.engine.wait_loaded()
            log.info("indexing %s (%s)", entry.name, entry.id)
            with self.engine.lock, self.router.reporting_to(entry):
                known = self.engine.assistant.knowledge(entry.path)
        except ApiError as exc:
            self._settle(entry, exc)
        except VideoqaError as exc:
            self._settle(entry, from_videoqa(exc, "video"))
        except Exception as exc:  # a bug: logged with its traceback; the video is marked failed
            log.error("indexing %s failed", entry.name, exc_info=exc)
            self._settle(
                entry, ApiError(500, "internal error while indexing; the server log has the details")
            )
        else:
            entry.duration_s = known.visual.info.duration_s
            log.info("indexed %s in %.1f s", entry.name, time.perf_counter() - started)
            self._settle(entry, None)

    def _settle(self, entry: VideoEntry, failure: ApiError | None) -> None:
        with self._lock:
            entry.failure = failure
            entry.error = failure.message if failure is not None else None
            entry.status = "failed" if failure is not None else "ready"
            entry.stage = None
            entry.progress = 1.0 if failure is None else entry.progress
            entry.settled.set()
