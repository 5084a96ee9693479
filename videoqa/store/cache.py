"""The per-video index cache: content-addressed, versioned, written atomically, guarded by a lock.

An entry's key is a hash of the file's whole *content* (never its path) plus the embedder id, the
sampling options and the format version: a renamed file hits the cache, an edited one misses it, and
nothing can answer about the wrong video. The hash is remembered per version of the file (its path,
size, times and inode), in the process and in the cache folder, so a large video is read to be hashed
once, not at every question. Stages that read the video check, before their result is kept, that the
file still holds the content its key names (a download or sync may replace it meanwhile).

An entry is one ``.npz`` file holding plain arrays and a JSON header (never pickles), with a checksum of
its arrays; it is written to a temporary file and renamed into place, under a lock file that is removed
again on release, so a killed indexer leaves either no entry or a whole one, and two indexers of one
video produce one entry. A damaged entry, or one from another format version, is reported as a miss and
rebuilt. A cache folder that cannot be used is reported once, and the work goes on without caching.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from io import RawIOBase
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from videoqa.errors import VideoError
from videoqa.store.paths import replace_atomically, user_dir

log = logging.getLogger("videoqa")

# 2: keys from a hash of the whole file (1 hashed only 64 sampled blocks of files over 64 MiB, and missed
# same-size edits between them)
FORMAT_VERSION = 2
# xxh3-128 hashes several GB/s on one core, so hashing all of a video costs about what reading it does.
# It is not a cryptographic hash: keys guard against accidents (edits, copies, renames), not against
# someone crafting two videos with one hash to fool their own cache.
_FINGERPRINT_PREFIX = "xxh3-128:"
# One read while hashing: small enough to stay in the CPU's cache between the read and the hash (faster
# than 8 MiB reads in every measurement, by 10% to 2x; 1-5 GB/s from the page cache on a busy 2-core VM).
_READ_BYTES = 256 * 2**10
# A file modified this recently may change again within its clock tick (2 s on FAT) without its times
# changing, so its hash is not remembered (as git treats "racily clean" files).
_SETTLED_S = 2.0
_MEMO_FILE = "fingerprints.json"
_MEMO_VERSION = 1
_MEMO_MAX_FILES = 4096  # the oldest remembered files are forgotten past this; forgetting costs a re-hash
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})

# (resolved path, size, mtime_ns, ctime_ns, inode, device): one version of a file. ctime cannot be set
# back by tools that restore mtime after editing in place.
_Version = tuple[str, int, int, int, int, int]
_hashed: dict[_Version, str] = {}  # this process's memo, in front of the cache folder's


class ContentChangedError(VideoError):
    """A video changed (or went) while it was being indexed: what was read may be of another file."""


def cache_dir() -> Path:
    """Where index entries live: ``$VIDEOQA_CACHE`` or the platform's cache folder."""
    return user_dir("VIDEOQA_CACHE", "cache", "index")


def fingerprint(path: str | os.PathLike[str], memo_folder: Path | None = None) -> str:
    """A hash of the file's whole content ("xxh3-128:" and 32 hex digits).

    It is computed once per version of the file and remembered in this process and in
    ``memo_folder``/fingerprints.json (default: ``cache_dir()``), so a later call, in this process or
    another, only looks at the file's size, times and inode.
    """
    resolved = Path(path).resolve()
    folder = memo_folder or cache_dir()
    version = _version(resolved, resolved.stat())
    known = _hashed.get(version) or _remembered(folder, version)
    if known is not None:
        _hashed[version] = known
        return known
    with open(resolved, "rb", buffering=0) as handle:
        before = _version(resolved, os.fstat(handle.fileno()))
        digest = _FINGERPRINT_PREFIX + _hash_file(handle)
        after = _version(resolved, os.fstat(handle.fileno()))
    if before == after and time.time_ns() - after[2] > _SETTLED_S * 1e9:
        _hashed[after] = digest
        _remember(folder, after, digest)
    return digest


def _version(resolved: Path, stat: os.stat_result) -> _Version:
    return (str(resolved), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev)


def _hash_file(handle: RawIOBase) -> str:
    import xxhash

    digest = xxhash.xxh3_128()
    buffer = memoryview(bytearray(_READ_BYTES))
    while count := handle.readinto(buffer):
        digest.update(buffer[:count])
    return digest.hexdigest()


def _read_memo(folder: Path) -> dict[str, list[Any]]:
    """The cache folder's remembered hashes: {resolved path: [*version[1:], fingerprint]}."""
    try:
        memo = json.loads((folder / _MEMO_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if (
        not isinstance(memo, dict)
        or memo.get("version") != _MEMO_VERSION
        or not isinstance(memo.get("files"), dict)
    ):
        return {}
    files: dict[str, list[Any]] = memo["files"]
    return files


def _remembered(folder: Path, version: _Version) -> str | None:
    record = _read_memo(folder).get(version[0])
    if isinstance(record, list) and record[:-1] == list(version[1:]) and isinstance(record[-1], str):
        return record[-1]
    return None


def _remember(folder: Path, version: _Version, digest: str) -> None:
    """Add the hash to the folder's memo. Two processes adding at once may lose one record: that costs
    a re-hash later, never a wrong answer, so no lock is taken for it."""
    files = _read_memo(folder)
    files.pop(version[0], None)  # re-added last: the memo forgets the least recently hashed files
    files[version[0]] = [*version[1:], digest]
    for stale in list(files)[:-_MEMO_MAX_FILES]:
        del files[stale]
    text = json.dumps({"version": _MEMO_VERSION, "files": files})
    try:
        folder.mkdir(parents=True, exist_ok=True)
        replace_atomically(folder / _MEMO_FILE, lambda target: target.write_text(text, encoding="utf-8"))
    except OSError as exc:  # only a speed-up; an unusable cache folder is reported by IndexCache
        log.debug("cannot remember fingerprints in %s: %s", folder, exc)


def entry_key(content_fingerprint: str, parts: Mapping[str, Any]) -> str:
    """The cache key: the content fingerprint plus everything that changes what is stored."""
    recipe = json.dumps(
        {"format": FORMAT_VERSION, "content": content_fingerprint, **parts}, sort_keys=True, default=str
    )
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
        self._unusable = False  # set (and reported) the first time the folder cannot be used

    def path_for(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def fingerprint(self, path: str | os.PathLike[str]) -> str:
        """``fingerprint(path)``, remembered in this cache's folder."""
        return fingerprint(path, self.root)

    def check_unchanged(self, path: str | os.PathLike[str], content: str) -> None:
        """Raise ContentChangedError unless ``path`` still holds the content fingerprinted ``content``.

        Stages read the video by its path long after its fingerprint was taken; a download or sync that
        replaces the file meanwhile must not get the new file's data stored under the old content's key.
        """
        try:
            same = self.fingerprint(path) == content
        except OSError:
            same = False
        if not same:
            raise ContentChangedError(
                f"{path}: the file changed while it was being indexed (is a download or copy still "
                "writing it?); nothing was cached from it; try again when it is complete"
            )

    def load(self, key: str) -> CacheEntry | None:
        """The entry, or None when it is missing, damaged or from another format version."""
        path = self.path_for(key)
        try:
            entry = _read_entry(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except PermissionError as exc:
            self._give_up(exc)
            return None
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            log.warning("cached index %s is damaged (%s); rebuilding it", path.name, exc)
            return None
        if entry.header.get("format") != FORMAT_VERSION or entry.header.get("key") != key:
            log.warning("cached index %s is from another version; rebuilding it", path.name)
            return None
        return entry

    def save(self, key: str, entry: CacheEntry) -> Path | None:
        """Write the entry atomically; None (after one warning) when the folder cannot take it."""
        if self._unusable:
            return None
        try:
            return self._write(key, entry)
        except OSError as exc:
            self._give_up(exc)
            return None

    def _write(self, key: str, entry: CacheEntry) -> Path:
        """A temporary file in the same folder, then a rename: readers see no entry or a whole one."""
        self.root.mkdir(parents=True, exist_ok=True)
        header = {**entry.header, "format": FORMAT_VERSION, "key": key, "checksum": _checksum(entry.arrays)}
        handle, temporary = tempfile.mkstemp(prefix=f".{key}.", suffix=".partial", dir=self.root)
        try:
            with os.fdopen(handle, "wb") as stream:
                arrays = {"__header__": np.frombuffer(json.dumps(header).encode(), np.uint8), **entry.arrays}
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
        """Hold the entry's lock: one writer at a time, others wait and then find the entry.

        Without a usable folder there is no lock (reported once): at worst two processes build the same
        entry, and neither can save it.
        """
        release: Callable[[], None] | None = None
        if not self._unusable:
            try:
                self.root.mkdir(parents=True, exist_ok=True)
                release = _take_lock(self.root / f"{key}.lock")
            except OSError as exc:
                self._give_up(exc)
        try:
            yield
        finally:
            if release is not None:
                release()

    def get_or_build(self, key: str, build: Callable[[], CacheEntry]) -> tuple[CacheEntry, bool]:
        """The cached entry, or a freshly built and saved one; the flag says whether it was cached."""
        entry = self.load(key)
        if entry is not None:
            return entry, True
        with self.locked(key):
            entry = self.load(key)  # another process may have built it while we waited
            if entry is not None:
                return entry, True
            if not self._unusable:
                with suppress(OSError):
                    for leftover in self.root.glob(f".{key}.*.partial"):  # from a writer that was killed
                        leftover.unlink(missing_ok=True)
            entry = build()
            self.save(key, entry)
            return entry, False

    def _give_up(self, exc: OSError) -> None:
        """Stop using the folder for this cache's lifetime, and say so once, with what to do."""
        if self._unusable:
            return
        self._unusable = True
        fix = (
            "free some space there, or set VIDEOQA_CACHE to a folder with room"
            if exc.errno in _NO_ROOM
            else "set VIDEOQA_CACHE to a writable folder"
        )
        log.warning(
            "cannot use the index cache in %s (%s); going on without caching: %s",
            self.root,
            _why_unusable(self.root, exc),
            fix,
        )


def _why_unusable(root: Path, exc: OSError) -> str:
    """What is wrong with the folder, in words: a file where a folder should be, or the system's reason."""
    for folder in (root, *root.parents):
        with suppress(OSError):
            if folder.is_file():
                return f"{folder} is a file, not a folder"
    return exc.strerror or str(exc)


def _take_lock(path: Path) -> Callable[[], None]:
    """Wait for the lock ``path`` names and hold it; returns what lets go of it and removes the file.

    The kernel lets go of an flock when its holder dies, so a killed indexer leaves no lock held. The
    file can be removed safely because every taker checks, once it holds the lock, that its file still
    has a name: a waiter that opened the file before its holder removed it would otherwise hold a lock
    on a file nobody else can open, beside the next taker's new one.
    """
    if sys.platform == "win32":  # there filelock removes the file on release, and fcntl does not exist
        from filelock import FileLock

        lock = FileLock(str(path))
        lock.acquire()
        return lock.release
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_nlink > 0:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # its holder removed it while we waited: take the file now at the path

    def release() -> None:
        try:
            path.unlink(missing_ok=True)  # before letting go, so no one can take the lock on it
        finally:
            os.close(fd)  # closing the last descriptor lets go of the flock

    return release


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
