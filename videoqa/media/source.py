"""A video at the door of the pipeline: checked once, fingerprinted once, probed once when first needed.

Every stage that reads a video takes a ``VideoSource`` instead of a path, so the file is not checked,
hashed and probed again by each of them. The probe is lazy: a warm cache answers from the content
fingerprint alone, without opening the video (a variable-frame-rate file is probed by counting its
packets, which can take seconds on a long one).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from videoqa.media.video import check_file, probe

if TYPE_CHECKING:
    from videoqa.store.cache import IndexCache
    from videoqa.types import VideoInfo


class VideoSource:
    """One video file: its checked path, the fingerprint of its content, and its probe."""

    def __init__(self, path: Path, content: str, info: VideoInfo | None = None) -> None:
        self.path = path
        self.content = content  # ``IndexCache.fingerprint``: every stage's cache key starts from it
        if info is not None:
            self.__dict__["info"] = info  # already probed (e.g. read back from a cache entry)

    @cached_property
    def info(self) -> VideoInfo:
        """The probe, made the first time a stage asks for it."""
        return probe(self.path)

    def knows(self, info: VideoInfo) -> None:
        """Take ``info`` (kept with a cached index) as the probe, unless the file was probed already."""
        self.__dict__.setdefault("info", info)

    def __repr__(self) -> str:
        return f"VideoSource({str(self.path)!r}, {self.content!r})"


def open_video(video: str | os.PathLike[str] | VideoSource, cache: IndexCache) -> VideoSource:
    """``video`` as a source: a path is checked (VideoError when unusable) and fingerprinted."""
    if isinstance(video, VideoSource):
        return video
    file = check_file(video)
    return VideoSource(file, cache.fingerprint(file))
