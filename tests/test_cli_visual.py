"""The index, scenes and search commands, through the real CLI (``index`` of every channel: test_index.py)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from videoqa.store.devices import DEVICES as DEVICE_CHOICES
from videoqa.testmedia.synth import SynthVideo
from videoqa.visual.embed import DEVICES

from helpers import assert_one_line_error, run_cli


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    """Run the CLI against a cache of its own."""
    return {**os.environ, "VIDEOQA_CACHE": str(tmp_path / "cache")}


def test_device_choices_match_the_embedders() -> None:
    assert DEVICE_CHOICES == DEVICES


def test_scenes_json_and_keyframes(narrated: SynthVideo, tmp_path: Path, cache_env: dict[str, str]) -> None:
    folder = tmp_path / "keyframes"
    result = run_cli("scenes", str(narrated.path), "--json", "--save-keyframes", str(folder), env=cache_env)
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [round(row["start_s"]) for row in rows] == [0, 4, 8]
    assert rows[-1]["end_s"] == pytest.approx(12.0, abs=0.05)
    for row in rows:
        assert row["start_s"] <= row["keyframe_s"] < row["end_s"]
        with Image.open(row["keyframe_file"]) as image:
            assert image.size == (320, 180)  # full size, not the indexing size


def test_scenes_text_and_cache_reuse(narrated: SynthVideo, cache_env: dict[str, str]) -> None:
    first = run_cli("index", str(narrated.path), "--visual-only", env=cache_env)
    assert first.code == 0 and "3 scenes from 12 frames (indexed in" in first.stdout
    again = run_cli("index", str(narrated.path), "--visual-only", env=cache_env)
    assert "(from the cache)" in again.stdout
    table = run_cli("scenes", str(narrated.path), env=cache_env)
    assert table.stdout.splitlines()[1].split()[:2] == ["1", "0:04.0-0:08.0"]


def test_index_a_folder_then_only_new_videos(
    narrated: SynthVideo, sample: Callable[[str], Path], tmp_path: Path, cache_env: dict[str, str]
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(narrated.path, folder / "a.mp4")
    (folder / "broken.mp4").write_text("not a video\n" * 10)
    first = run_cli("index", str(folder), "--visual-only", env=cache_env)
    assert first.code == 0, first.stderr
    assert first.stdout.strip().endswith("1 indexed, 0 unchanged, 0 removed, 1 skipped")
    assert any(line.startswith("warning: skipped broken.mp4") for line in first.stderr_lines)
    shutil.copyfile(sample("bikes.mp4"), folder / "b.mp4")
    second = run_cli("index", str(folder), "--visual-only", env=cache_env)
    assert second.stdout.strip().endswith("1 indexed, 1 unchanged, 0 removed, 1 skipped")


def test_search_without_a_clip_model_searches_the_text_channels(
    narrated: SynthVideo, installed_models: None, cache_env: dict[str, str]
) -> None:
    # the pixel embedder reads no text: speech and screen text are searched (tests/test_search.py: more)
    result = run_cli("search", "when does the meeting start", str(narrated.path), "--json", env=cache_env)
    assert result.code == 0, result.stderr
    hits = json.loads(result.stdout)
    assert hits and {hit["channel"] for hit in hits} <= {"speech", "screen"}
    assert hits[0]["channel"] == "speech" and "meeting" in hits[0]["text"]


def test_search_needs_one_target(narrated: SynthVideo, tmp_path: Path) -> None:
    assert_one_line_error(run_cli("search", "x"), "either a VIDEO or --library")
    assert_one_line_error(
        run_cli("search", "x", str(narrated.path), "--library", str(tmp_path)), "either a VIDEO or --library"
    )


def test_bad_inputs_of_the_visual_commands(tmp_path: Path, cache_env: dict[str, str]) -> None:
    assert_one_line_error(run_cli("scenes", str(tmp_path / "missing.mp4"), env=cache_env), "no such file")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_cli("index", str(tmp_path / "nothing.mkv"), env=cache_env), "no such file")
    assert_one_line_error(
        run_cli("index", str(empty), "--embedder", str(tmp_path / "no-model"), env=cache_env), "no-model"
    )
    assert_one_line_error(run_cli("scenes", str(tmp_path), "--fps", "0", env=cache_env), "fps")


def test_search_one_video_with_a_clip_model(
    narrated: SynthVideo, tiny_clip_dir: Path, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    best = tmp_path / "best.png"
    result = run_cli(
        "search",
        "a gate number on a card",
        str(narrated.path),
        "--embedder",
        str(tiny_clip_dir),
        "--top-k",
        "2",
        "--json",
        "--save-frame",
        str(best),
        env=cache_env,
    )
    assert result.code == 0, result.stderr
    assert result.stderr == ""  # no loading bars or library chatter
    hits = json.loads(result.stdout)
    assert len(hits) == 2 and hits[0]["score"] >= hits[1]["score"]
    assert {hit["scene"] for hit in hits} <= {0, 1, 2}
    assert hits[0]["start_s"] <= hits[0]["best_frame_s"] < hits[0]["end_s"]
    with Image.open(best) as image:
        assert image.size == (320, 180)
    # The same search again is answered from the index cache, with the same result.
    again = run_cli(
        "search",
        "a gate number on a card",
        str(narrated.path),
        "--embedder",
        str(tiny_clip_dir),
        "--top-k",
        "2",
        "--json",
        env=cache_env,
    )
    assert json.loads(again.stdout) == hits


def test_search_a_library_with_a_clip_model(
    narrated: SynthVideo,
    sample: Callable[[str], Path],
    tiny_clip_dir: Path,
    tmp_path: Path,
    cache_env: dict[str, str],
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(narrated.path, folder / "narrated.mp4")
    shutil.copyfile(sample("bikes.mp4"), folder / "bikes.mp4")
    result = run_cli(
        "search",
        "people riding bikes",
        "--library",
        str(folder),
        "--embedder",
        str(tiny_clip_dir),
        "--top-k",
        "4",
        env=cache_env,
    )
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert {line.split()[1] for line in lines} <= {"narrated.mp4", "bikes.mp4"}
    scores = [float(line.split()[0]) for line in lines]
    assert scores == sorted(scores, reverse=True)
