"""The per-video index cache: content-addressed, versioned, written atomically, guarded by a lock.

An entry's key is a fingerprint of the file's *content* (its size and hashes of blocks spread across
it, never its path) plus the embedder id, the sampling options and the format version: a renamed file
hits the cache, an edited one misses it, and nothing can answer about the wrong video. An entry is one
``.npz`` file holding plain arrays and a JSON header (never pickles), with a checksum of its arrays; it
is written to a temporary file and renamed into place, under a lock file, so a killed indexer leaves
either no entry or a whole one, and two indexers of one video produce one entry. A damaged entry, or one
from another format version, is reported as a miss and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from videoqa.paths import user_dir

log = logging.getLogger("videoqa")

FORMAT_VERSION = 1
# Files up to this size are hashed whole (a one-byte edit anywhere is seen; ~50 ms at most).
_FINGERPRINT_WHOLE_BYTES = 64 * 2**20
# Larger files: their size and 64 blocks of 64 KiB spread evenly, first and last included (4 MiB read,
# whatever the length). Edits of a video rewrite its container index at one end or change its size.
_FINGERPRINT_BLOCKS = 64
_FINGERPRINT_BLOCK_BYTES = 64 * 1024
_LOCK_TIMEOUT_S = 3600.0


def cache_dir() -> Path:
    """Where index entries live: ``$VIDEOQA_CACHE`` or the platform's cache folder."""
    return user_dir("VIDEOQA_CACHE", "cache", "index")


def fingerprint(path: str | os.PathLike[str]) -> str:
    """A digest of the file's content: all of it when small, else its size and sampled blocks."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(f"videoqa-fingerprint-v1:{size}".encode())
    with open(path, "rb") as handle:
        for offset in _block_offsets(size):
            handle.seek(offset)
            digest.update(handle.read(_FINGERPRINT_BLOCK_BYTES))
    return digest.hexdigest()


def _block_offsets(size: int) -> list[int]:
    if size <= _FINGERPRINT_WHOLE_BYTES:
        return list(range(0, size, _FINGERPRINT_BLOCK_BYTES))
    last = size - _FINGERPRINT_BLOCK_BYTES
    return [round(i * last / (_FINGERPRINT_BLOCKS - 1)) for i in range(_FINGERPRINT_BLOCKS)]


def entry_key(content_fingerprint: str, parts: Mapping[str, Any]) -> str:
    """The cache key: the content fingerprint plus everything that changes what is stored."""
    recipe = json.dumps({"format": FORMAT_VERSION, "content": content_fingerprint, **parts},
                        sort_keys=True, default=str)
    return hashlib.sha256(recipe.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class CacheEntry:
    """What one entry holds: named arrays and a JSON-able header."""

    header: dict[str, Any]
    arrays: dict[str, npt.NDArray[Any]]


class IndexCache:
    """Entries under one folder, one ``KEY.npz`` each, with ``KEY.lock`` guarding writers."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or cache_dir()

    def path_for(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str) -> CacheEntry | None:
        """The entry, or None when it is missing, damaged or from another format version."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            entry = _read_entry(path)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("cached index %s is damaged (%s); rebuilding it", path.name, exc)
            return None
        if entry.header.get("format") != FORMAT_VERSION or entry.header.get("key") != key:
            log.warning("cached index %s is from another version; rebuilding it", path.name)
            return None
        return entry

    def save(self, key: str, entry: CacheEntry) -> Path:
        """Write the entry atomically: a temporary file in the same folder, then a rename."""
        self.root.mkdir(parents=True, exist_ok=True)
        header = {**entry.header, "format": FORMAT_VERSION, "key": key,
                  "checksum": _checksum(entry.arrays)}
        handle, temporary = tempfile.mkstemp(prefix=f".{key}.", suffix=".partial", dir=self.root)
        try:
            with os.fdopen(handle, "wb") as stream:
                arrays = {"__header__": np.frombuffer(json.dumps(header).encode(), np.uint8),
                          **entry.arrays}
                np.savez(stream, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds oddly
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, self.path_for(key))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return self.path_for(key)

    @contextmanager
    def locked(self, key: str) -> Iterator[None]:
        """Hold the entry's lock: one writer at a time, others wait and then find the entry."""
        from filelock import FileLock

        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.root / f"{key}.lock"), timeout=_LOCK_TIMEOUT_S):
            yield

    def get_or_build(self, key: str, build: Callable[[], CacheEntry]) -> tuple[CacheEntry, bool]:
        """The cached entry, or a freshly built and saved one; the flag says whether it was cached."""
        entry = self.load(key)
        if entry is not None:
            return entry, True
        with self.locked(key):
            entry = self.load(key)  # another process may have built it while we waited
            if entry is not None:
                return entry, True
            for leftover in self.root.glob(f".{key}.*.partial"):  # from a writer that was killed
                leftover.unlink(missing_ok=True)
            entry = build()
            self.save(key, entry)
            return entry, False


def _read_entry(path: Path) -> CacheEntry:
    with np.load(path, allow_pickle=False) as archive:
        header = json.loads(bytes(archive["__header__"]).decode())
        arrays = {name: archive[name] for name in archive.files if name != "__header__"}
    if header.get("checksum") != _checksum(arrays):
        raise ValueError("checksum mismatch")
    return CacheEntry(header=header, arrays=arrays)


def _checksum(arrays: Mapping[str, npt.NDArray[Any]]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
