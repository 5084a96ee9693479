"""The files of a library that are no usable video, remembered in its manifest.

Without a memory, every sync probed a bad file again (a text file named ``.mp4``, a download cut short)
and warned about it in full, on every ``videoqa index DIR``, ``ask --library`` and ``search --library``.
A file that fails and cannot even be probed is remembered under its name with its content fingerprint
(``IndexCache.fingerprint``, itself remembered by size and modification time, so checking it again costs a
``stat``), its size and modification time, the day it was found bad and why. Later syncs skip it without
probing, reporting ``known bad since DAY: reason``, until the file changes (another fingerprint) or goes.

Only a file the prober refuses is remembered: a video that fails for another reason (a model, a worker
of a cluster that cannot see it, the file changing while it is read) is tried again next time.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from videoqa.errors import VideoError
from videoqa.media.video import probe

_SECTION = "bad"  # the manifest's key for the records


class BadFiles:
    """The bad-file records of a library manifest (a dict the library saves), by name in the folder."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self._records: dict[str, dict[str, Any]] = manifest.setdefault(_SECTION, {})

    def known(self, name: str, content: str) -> str | None:
        """``known bad since DAY: reason`` when ``name`` was found bad with this content, else None."""
        record = self._records.get(name)
        if record is None or record["fingerprint"] != content:
            return None
        return f"known bad since {record['since']}: {record['reason']}"

    def judge(self, name: str, content: str, path: Path, reason: str) -> None:
        """Remember ``name`` as bad when the file cannot be probed (``reason``: why it failed); a file
        that probes, failing for another reason, is not remembered."""
        try:
            probe(path)
        except VideoError:
            self.remember(name, content, path, reason)
        else:
            self.forget(name)

    def remember(self, name: str, content: str, path: Path, reason: str) -> None:
        try:
            stat = os.stat(path)
        except OSError:  # gone meanwhile: the next sync drops it
            return
        self._records[name] = {
            "fingerprint": content,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "since": datetime.date.today().isoformat(),
            "reason": reason,
        }

    def forget(self, name: str) -> None:
        self._records.pop(name, None)

    def keep_only(self, present: Iterable[str]) -> None:
        """Forget the files no longer in the folder."""
        for name in set(self._records) - set(present):
            del self._records[name]
