"""A video's captions, as ``videoqa caption`` makes them: one a scene, quiet scenes merged, read from
the cache when this video was captioned before with the same models and settings.

Each video's captions are made once, in a background thread, however many requests ask; every reader
follows the same list as it grows, so the page's captions view fills while the model writes. The model
lock is held for one scene at a time, so questions are answered between captions.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from videoqa.errors import VideoqaError
from videoqa.llm import is_visual
from videoqa.respond.captions import CaptionEvent, QuietMerger, cached_captions, captions_key
from videoqa.serve.engine import Engine
from videoqa.serve.errors import ApiError, from_videoqa
from videoqa.store.cache import IndexCache

if TYPE_CHECKING:
    from videoqa.serve.videos import VideoEntry

log = logging.getLogger("videoqa.serve")


class CaptionJob:
    """The captions of one indexed video, made in the background; ``follow`` reads them as they come."""

    def __init__(self, engine: Engine, entry: VideoEntry) -> None:
        self.engine = engine
        self.entry = entry
        self.events: list[CaptionEvent] = []
        self.failure: ApiError | None = None
        self.done = False
        self._changed = threading.Condition()
        threading.Thread(target=self._run, name=f"videoqa-captions-{entry.id}", daemon=True).start()

    def _scene_captions(self) -> Iterator[CaptionEvent]:
        # as cli/caption.py's scene_captions: a seeing model's captions depend on its memory bridge too,
        # so they are not cached
        assistant = self.engine.assistant
        if is_visual(assistant.llm):
            return assistant.caption(self.entry.path)
        known = assistant.knowledge(self.entry.path)
        key = captions_key(known.visual.cache_key, assistant.model_names(), assistant.options.captioning)
        return cached_captions(lambda: assistant.caption(self.entry.path), IndexCache(), key)

    def _run(self) -> None:
        try:
            with self.engine.lock:
                scenes = self._scene_captions()
            merger = QuietMerger(self.engine.assistant.options.captioning.quiet_merge_s)
            while True:
                with self.engine.lock:  # one scene's caption at a time: questions go between them
                    event = next(scenes, None)
                if event is None:
                    break
                self._add(merger.push(event))
            self._add(merger.finish())
        except VideoqaError as exc:
            self.failure = from_videoqa(exc, "id")
        except Exception as exc:  # a bug: logged with its traceback, the readers told in one line
            log.error("captioning %s failed", self.entry.name, exc_info=exc)
            self.failure = ApiError(500, "internal error while captioning; the server log has the details")
        finally:
            with self._changed:
                self.done = True
                self._changed.notify_all()

    def _add(self, events: list[CaptionEvent]) -> None:
        with self._changed:
            self.events.extend(events)
            self._changed.notify_all()

    def follow(self) -> Iterator[CaptionEvent]:
        """Every caption, from the first, as each is written; the job's failure, if it fails."""
        given = 0
        while True:
            fresh, finished = self._after(given)
            yield from fresh
            given += len(fresh)
            if finished and given == len(self.events):
                break
        if self.failure is not None:
            raise self.failure

    def _after(self, given: int) -> tuple[list[CaptionEvent], bool]:
        """The captions past the first ``given`` once there are any (or the job ended), and whether it has."""
        with self._changed:
            self._changed.wait_for(lambda: self.done or len(self.events) > given)
            return self.events[given:], self.done

    def all(self) -> list[CaptionEvent]:
        return list(self.follow())


class CaptionJobs:
    """One caption job a video; a failed one is started again by the next request."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._jobs: dict[str, CaptionJob] = {}
        self._lock = threading.Lock()

    def of(self, entry: VideoEntry) -> CaptionJob:
        with self._lock:
            job = self._jobs.get(entry.id)
            if job is None or job.failure is not None:
                job = self._jobs[entry.id] = CaptionJob(self.engine, entry)
            return job
