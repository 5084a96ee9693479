"""Handing freed memory back to the system while a long video is indexed.

glibc's allocator keeps memory that Python and the native runtimes free, to reuse it; with several
threads allocating large arrays (decoded frames in one, audio features in another) it keeps growing
arenas that are mostly free, and the process's resident memory grows with the video's length: a 60-minute
first answer peaked at 2.8 GB against 1.8 GB for 10 minutes, the same work. ``malloc_trim`` returns those
free pages; called now and then during indexing it kept the 60-minute peak at the 10-minute one for the
same CPU time (docs/benchmarks.md, issue 16). Fixing glibc's mmap threshold instead (so large arrays are
always unmapped when freed) flattened it too but cost 15-25 % more CPU in page faults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable
from functools import cache

# Trimming walks the allocator's free lists (a millisecond or two) and the pages it returns are faulted in
# again when reused: often enough to bound the growth, rarely enough to cost nothing measurable.
TRIM_EVERY_S = 0.5


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None on a C library without it (macOS, musl, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = [ctypes.c_size_t], ctypes.c_int
    trim: Callable[[int], int] = function
    return trim


def release_freed_memory() -> None:
    """Return the allocator's free pages to the system (no-op where the C library cannot)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class Trimmer:
    """Calls ``release_freed_memory`` at most every TRIM_EVERY_S seconds, however often it is asked."""

    def __init__(self, every_s: float = TRIM_EVERY_S) -> None:
        self._every_s = every_s
        self._last = time.monotonic()

    def __call__(self) -> None:
        now = time.monotonic()
        if now - self._last >= self._every_s:
            self._last = now
            release_freed_memory()
