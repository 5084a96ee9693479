"""Subtitle files (SRT, WebVTT) written cue by cue, valid at every moment.

Captions arrive one scene at a time, and the user may stop the run at any point (Ctrl-C, a closed
laptop). So each cue is added by writing the whole file anew beside the target and renaming it into
place: a reader — or the file left after an interrupt — only ever sees a complete file with every cue
so far, never half a cue. Rewriting is cheap next to captioning (a cue takes seconds to make).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from videoqa.errors import InputError
from videoqa.respond.writers import Cue, Subtitles, formats_holding
from videoqa.store.paths import replace_atomically, write_text_durably

SUBTITLE_FORMATS = {spec.name: spec.writer for spec in formats_holding(Subtitles)}


class CueSink(Protocol):
    """Receives cues in time order."""

    def add(self, cue: Cue) -> None: ...


class SubtitleFile:
    """A subtitle file in ``fmt`` ("srt" or "vtt") that holds every cue added so far.

    Cues must come in time order and must not overlap; the file exists (empty of cues) from the moment
    this object is made, so a run stopped before its first caption still leaves a valid file.
    """

    def __init__(self, path: Path, fmt: str) -> None:
        if fmt not in SUBTITLE_FORMATS:
            raise InputError(f"subtitle format must be one of {', '.join(SUBTITLE_FORMATS)}, got {fmt!r}")
        if path.is_dir():
            raise InputError(f"{path} is a folder; give a file name for the {fmt.upper()} captions")
        if not path.parent.is_dir():
            raise InputError(f"{path}: the folder {path.parent} does not exist")
        self.path, self.fmt = path, fmt
        self.cues: list[Cue] = []
        self._write()

    def add(self, cue: Cue) -> None:
        if self.cues and cue.start_s < self.cues[-1].end_s - 1e-6:
            raise ValueError(
                f"cue at {cue.start_s:.3f} s overlaps the one ending at {self.cues[-1].end_s:.3f} s"
            )
        self.cues.append(cue)
        self._write()

    def _write(self) -> None:
        text = SUBTITLE_FORMATS[self.fmt].render(Subtitles(tuple(self.cues)))
        replace_atomically(self.path, lambda target: write_text_durably(target, text))
