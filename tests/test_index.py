"""``videoqa index`` prepares everything ``ask`` needs: after it, ``ask`` builds nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from videoqa.testmedia.synth import SynthVideo

from helpers import assert_one_line_error, run_cli


def _entries(cache: Path) -> set[str]:
    return {path.name for path in cache.glob("*.npz")}


@pytest.mark.usefixtures("installed_models")
def test_index_then_ask_reads_everything_from_the_cache(narrated: SynthVideo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "VIDEOQA_CACHE": str(cache)}
    indexed = run_cli("index", str(narrated.path), env=env)
    assert indexed.code == 0, indexed.stderr
    summary = r": 3 scenes from 12 frames, 1 spoken sentence, \d+ screen texts? \(ready in"
    assert re.search(summary, indexed.stdout), indexed.stdout
    made = _entries(cache)
    assert len(made) == 4  # frames and scenes, speech, screen text, passage vectors
    asked = run_cli("ask", str(narrated.path), "When does the meeting start?", "--json", env=env)
    assert asked.code == 0, asked.stderr
    reply = json.loads(asked.stdout)
    assert any("noon" in item["text"] for item in reply["evidence"])
    assert _entries(cache) == made  # nothing was built again: ask only read the cache
    again = run_cli("index", str(narrated.path), env=env)
    assert "1 spoken sentence," in again.stdout and _entries(cache) == made


@pytest.mark.usefixtures("installed_models")
def test_index_a_folder_prepares_every_channel(narrated: SynthVideo, tmp_path: Path) -> None:
    cache, folder = tmp_path / "cache", tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(narrated.path, folder / "a.mp4")
    (folder / "broken.mp4").write_text("not a video\n" * 10)
    env = {**os.environ, "VIDEOQA_CACHE": str(cache)}
    result = run_cli("index", str(folder), "--no-screen-text", env=env)
    assert result.code == 0, result.stderr
    assert result.stdout.strip().endswith("1 indexed, 0 unchanged, 0 removed, 1 skipped")
    assert any(line.startswith("warning: skipped broken.mp4") for line in result.stderr_lines)
    made = _entries(cache)
    assert len(made) == 3  # frames, speech, passage vectors (screen text left out)
    asked = run_cli("ask", str(folder / "a.mp4"), "When does the meeting start?", "--no-screen-text", env=env)
    assert asked.code == 0, asked.stderr
    assert _entries(cache) == made


def test_index_bad_input(tmp_path: Path) -> None:
    env = {**os.environ, "VIDEOQA_CACHE": str(tmp_path / "cache")}
    assert_one_line_error(run_cli("index", str(tmp_path / "missing.mp4"), env=env), "no such file")
    assert_one_line_error(run_cli("index", str(tmp_path), "--fps", "0", env=env), "fps")
