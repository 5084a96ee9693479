"""SRT and WebVTT files written cue by cue: checked with independent parsers (srt, webvtt-py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import srt
import webvtt

from videoqa.respond.subtitles import SubtitleFile
from videoqa.respond.writers import Cue, render_srt, render_vtt, subtitle_time

CUES = [
    Cue(0.0, 4.02, "A man opens the door."),
    Cue(4.02, 9.5, "Line one\n\nline two"),
    Cue(3725.5, 3730.0, "Arrows --> stay text"),
]


def test_times_are_written_in_each_format() -> None:
    assert subtitle_time(3725.5, ",") == "01:02:05,500"
    assert subtitle_time(0.0014, ".") == "00:00:00.001"


def test_srt_parses_back_to_the_cues() -> None:
    parsed = list(srt.parse(render_srt(CUES)))
    assert [(p.start.total_seconds(), p.end.total_seconds()) for p in parsed] == [
        (c.start_s, c.end_s) for c in CUES
    ]
    assert parsed[1].content == "Line one\nline two"  # a blank line inside a cue would end it early
    assert [p.index for p in parsed] == [1, 2, 3]


def test_vtt_parses_back_to_the_cues(tmp_path: Path) -> None:
    path = tmp_path / "c.vtt"
    path.write_text(render_vtt(CUES))
    parsed = webvtt.read(str(path))
    assert [c.start for c in parsed.captions] == ["00:00:00.000", "00:00:04.020", "01:02:05.500"]
    assert parsed.captions[2].text == "Arrows -> stay text"


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_the_file_is_valid_after_every_cue(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"live.{fmt}"
    file = SubtitleFile(path, fmt)
    assert path.is_file()  # valid (no cues) before the first caption
    for count, cue in enumerate(CUES, start=1):
        file.add(cue)
        if fmt == "srt":
            assert len(list(srt.parse(path.read_text()))) == count
        else:
            assert len(webvtt.read(str(path))) == count
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"live.{fmt}"]  # no temporary files left


def test_an_interrupted_write_keeps_the_last_complete_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "live.srt"
    file = SubtitleFile(path, "srt")
    file.add(CUES[0])
    before = path.read_text()

    def interrupted(_fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        file.add(CUES[1])
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["live.srt"]


def test_overlapping_or_backward_cues_are_refused(tmp_path: Path) -> None:
    file = SubtitleFile(tmp_path / "a.srt", "srt")
    file.add(Cue(0.0, 5.0, "one"))
    with pytest.raises(ValueError, match="overlaps"):
        file.add(Cue(4.0, 6.0, "two"))
    with pytest.raises(ValueError, match="start < end"):
        Cue(3.0, 3.0, "empty")


def test_bad_targets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="folder"):
        SubtitleFile(tmp_path, "srt")
    with pytest.raises(ValueError, match="does not exist"):
        SubtitleFile(tmp_path / "missing" / "a.srt", "srt")
    with pytest.raises(ValueError, match="srt, vtt"):
        SubtitleFile(tmp_path / "a.ass", "ass")
