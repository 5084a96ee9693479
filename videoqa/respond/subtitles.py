"""Subtitle files (SRT, WebVTT) written cue by cue, valid at every moment.

Captions arrive one scene at a time, and the user may stop the run at any point (Ctrl-C, a closed
laptop). So each cue is added by writing the whole file anew beside the target and renaming it into
place: a reader — or the file left after an interrupt — only ever sees a complete file with every cue
so far, never half a cue. Rewriting is cheap next to captioning (a cue takes seconds to make).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from videoqa.errors import InputError
from videoqa.store.paths import replace_atomically, write_text_durably

SUBTITLE_FORMATS = ("srt", "vtt")


@dataclass(frozen=True)
class Cue:
    """One subtitle: text shown from ``start_s`` to ``end_s``."""

    start_s: float
    end_s: float
    text: str

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < self.end_s:
            raise ValueError(f"a cue needs 0 <= start < end, got {self.start_s}..{self.end_s}")


def subtitle_time(seconds: float, separator: str) -> str:
    """``3725.5`` -> ``01:02:05,500`` (SRT, separator ",") or ``01:02:05.500`` (WebVTT, ".")."""
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _cue_text(text: str) -> str:
    """Text that cannot end a cue early: a blank line would, so lines are kept and blanks dropped."""
    lines = [line.strip() for line in text.strip().splitlines()]
    return "\n".join(line for line in lines if line) or "…"


def render_srt(cues: Sequence[Cue]) -> str:
    blocks = [
        f"{number}\n{subtitle_time(cue.start_s, ',')} --> {subtitle_time(cue.end_s, ',')}\n"
        f"{_cue_text(cue.text)}\n"
        for number, cue in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def render_vtt(cues: Sequence[Cue]) -> str:
    # "-->" inside WebVTT cue text would read as a timing line; the arrow is spelled out instead
    blocks = [
        f"{subtitle_time(cue.start_s, '.')} --> {subtitle_time(cue.end_s, '.')}\n"
        f"{_cue_text(cue.text).replace('-->', '->')}\n"
        for cue in cues
    ]
    return "\n".join(["WEBVTT\n", *blocks])


_RENDERERS = {"srt": render_srt, "vtt": render_vtt}


class CueSink(Protocol):
    """Receives cues in time order."""

    def add(self, cue: Cue) -> None: ...


class SubtitleFile:
    """A subtitle file in ``fmt`` ("srt" or "vtt") that holds every cue added so far.

    Cues must come in time order and must not overlap; the file exists (empty of cues) from the moment
    this object is made, so a run stopped before its first caption still leaves a valid file.
    """

    def __init__(self, path: Path, fmt: str) -> None:
        if fmt not in _RENDERERS:
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
        text = _RENDERERS[self.fmt](self.cues)
        replace_atomically(self.path, lambda target: write_text_durably(target, text))
