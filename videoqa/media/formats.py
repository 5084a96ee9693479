"""The file formats videoqa takes as video, by file name suffix (lower case, with the dot)."""

from __future__ import annotations

# Where a name is tried with each suffix in turn (a benchmark's video id), the common ones come first.
VIDEO_SUFFIXES = (
    ".mp4",
    ".mkv",
    ".webm",
    ".avi",
    ".mov",
    ".m4v",
    ".mpg",
    ".mpeg",
    ".ts",
    ".wmv",
    ".flv",
    ".3gp",
)
