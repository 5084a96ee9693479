"""Uploaded videos, kept in the uploads folder under a name made from their content: the same video
uploaded twice is one file (and one index). Anything that is not a video is refused (415) and deleted;
anything over the size limit is refused (413) before more of it is read."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from videoqa.errors import VideoError
from videoqa.media.formats import VIDEO_SUFFIXES
from videoqa.serve.errors import ApiError

if TYPE_CHECKING:
    from videoqa.types import VideoInfo

_CHUNK_BYTES = 1 << 20
_UNSAFE = re.compile(r"[^\w.\- ]+")
_NAME_CHARS = 120


def safe_name(given: str | None, fallback: str = "upload.mp4") -> str:
    """A file name that names nothing but itself: no folders, no odd characters, not hidden."""
    name = _UNSAFE.sub("_", Path((given or "").replace("\\", "/")).name).strip(" ._")
    if not name:
        return fallback
    stem, suffix = os.path.splitext(name)
    return stem[: _NAME_CHARS - len(suffix)] + suffix


def name_for(media_type: str) -> str:
    """A file name for a video given as bytes of ``media_type`` ("video/webm" -> "video.webm")."""
    suffix = mimetypes.guess_extension(media_type) or f".{media_type.rpartition('/')[2]}"
    return f"video{suffix if suffix.lower() in VIDEO_SUFFIXES else '.mp4'}"


class Uploads:
    """The folder uploads are kept in, and the most one may hold."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    def too_large(self) -> ApiError:
        return ApiError(
            413,
            f"the video is larger than the upload limit ({self.max_bytes / 2**20:.0f} MiB)",
            "file",
            "too_large",
        )

    def save(self, read: Callable[[int], bytes], name: str) -> tuple[Path, VideoInfo]:
        """Copy what ``read`` gives into the folder, as ``<content hash>/<name>``; the file and its probe."""
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        handle, temporary = tempfile.mkstemp(prefix=".upload-", suffix=".partial", dir=self.folder)
        try:
            with os.fdopen(handle, "wb") as out:
                while block := read(_CHUNK_BYTES):
                    size += len(block)
                    if size > self.max_bytes:
                        raise self.too_large()
                    digest.update(block)
                    out.write(block)
            if size == 0:
                raise ApiError(400, "the upload is empty", "file")
            info = probe_video(Path(temporary), name)
            target = self.folder / digest.hexdigest()[:16] / safe_name(name)
            target.parent.mkdir(exist_ok=True)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return target.resolve(), info

    def save_bytes(self, data: bytes, media_type: str) -> tuple[Path, VideoInfo]:
        view = memoryview(data)
        offset = 0

        def read(size: int) -> bytes:
            nonlocal offset
            block = bytes(view[offset : offset + size])
            offset += len(block)
            return block

        return self.save(read, name_for(media_type))


def probe_video(path: Path, name: str) -> VideoInfo:
    """The probe of a video the server was given; 415, naming it as the client did, when it is none."""
    from videoqa.media.video import probe

    try:
        return probe(path)
    except VideoError as exc:
        # the message names the temporary file; the client knows its upload by its own name
        reason = str(exc).replace(str(path), name)
        raise ApiError(415, f"not a video: {reason}", "file", "unsupported_video") from None
