"""``videoqa search``: the speech, screen-text and (with a CLIP model) visual channels of one video or a
library, fused into one ranking, through the real CLI; and the search-hit record."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from videoqa.respond.writers import (
    SearchHit,
    SearchResults,
    formats_holding,
    search_hit_record,
    writer,
)
from videoqa.testmedia.synth import SynthVideo

from helpers import assert_one_line_error, run_cli

RECORD_FIELDS = [
    "video",
    "channel",
    "start_s",
    "end_s",
    "start",
    "end",
    "best_frame_s",
    "text",
    "scene",
    "similarity",
    "lexical",
    "score",
]


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    """Run the CLI against a cache of its own."""
    return {**os.environ, "VIDEOQA_CACHE": str(tmp_path / "cache")}


def search_json(*args: str, env: dict[str, str]) -> list[dict[str, object]]:
    result = run_cli("search", *args, "--json", env=env)
    assert result.code == 0, result.stderr
    hits: list[dict[str, object]] = json.loads(result.stdout)
    return hits


def test_speech_and_screen_text_without_a_clip_model(
    narrated: SynthVideo, installed_models: None, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    meeting = search_json("what time is the meeting", str(narrated.path), "--top-k", "2", env=cache_env)
    assert len(meeting) == 2
    best = meeting[0]
    assert list(best) == RECORD_FIELDS
    assert best["video"] == str(narrated.path)
    assert best["channel"] == "speech" and best["text"] == "The meeting starts at noon."
    assert 8.0 <= best["start_s"] <= 9.0 and best["scene"] == 2  # type: ignore[operator]
    assert best["start_s"] <= best["best_frame_s"] < best["end_s"]  # type: ignore[operator]
    assert meeting[0]["score"] > meeting[1]["score"]  # type: ignore[operator]

    # A name or number is found by word too: the card beats every other passage, in the table as well.
    frame = tmp_path / "gate.png"
    table = run_cli("search", "gate 42", str(narrated.path), "--save-frame", str(frame), env=cache_env)
    assert table.code == 0, table.stderr
    first = table.stdout.splitlines()[0].split()
    assert first[1:4] == [str(narrated.path), "screen", "0:04.0-0:08.0"]
    assert table.stdout.splitlines()[0].endswith('"GATE 42"')
    scores = [float(line.split()[0]) for line in table.stdout.splitlines()]
    assert scores == sorted(scores, reverse=True) and len(scores) <= 5
    with Image.open(frame) as image:  # the card's frame, full size
        assert image.size == (320, 180)
        red, green, blue = image.convert("RGB").getpixel((20, 20))
        assert (
            blue > red and blue > green
        )  # the blue scene (1) behind the card, not the bars or the test card


def test_a_clip_model_adds_the_scenes(
    narrated: SynthVideo, tiny_clip_dir: Path, installed_models: None, cache_env: dict[str, str]
) -> None:
    args = ("the meeting starts at noon", str(narrated.path), "--embedder", str(tiny_clip_dir))
    hits = search_json(*args, "--top-k", "50", env=cache_env)
    assert {hit["channel"] for hit in hits} == {"speech", "screen", "visual"}
    scenes = [hit for hit in hits if hit["channel"] == "visual"]
    assert sorted(hit["scene"] for hit in scenes) == [0, 1, 2]  # type: ignore[type-var]
    for hit in scenes:
        assert hit["text"] is None and hit["lexical"] is None
        assert hit["start_s"] <= hit["best_frame_s"] < hit["end_s"]  # type: ignore[operator]
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    # the spoken sentence matches by meaning and by every word: first, ahead of any scene
    assert hits[0]["channel"] == "speech"


def test_a_library_names_each_video_and_skips_bad_files(
    narrated: SynthVideo,
    sample: Callable[[str], Path],
    installed_models: None,
    tmp_path: Path,
    cache_env: dict[str, str],
) -> None:
    folder = tmp_path / "videos"
    (folder / "monday").mkdir(parents=True)
    shutil.copyfile(narrated.path, folder / "monday" / "talk.mp4")
    shutil.copyfile(sample("bikes.mp4"), folder / "bikes.mp4")
    (folder / "broken.mp4").write_text("not a video\n" * 10)
    result = run_cli("search", "gate 42", "--library", str(folder), "--json", env=cache_env)
    assert result.code == 0, result.stderr
    assert any(line.startswith("warning: skipped broken.mp4") for line in result.stderr_lines)
    hits = json.loads(result.stdout)
    assert hits[0]["video"] == os.path.join("monday", "talk.mp4")
    assert hits[0]["text"] == "GATE 42"
    assert {hit["video"] for hit in hits} <= {os.path.join("monday", "talk.mp4"), "bikes.mp4"}


def test_bad_inputs(narrated: SynthVideo, tmp_path: Path, cache_env: dict[str, str]) -> None:
    assert_one_line_error(run_cli("search", "  ", str(narrated.path), env=cache_env), "search text is empty")
    assert_one_line_error(run_cli("search", "x" * 2001, str(narrated.path), env=cache_env), "at most 2,000")
    assert_one_line_error(
        run_cli("search", "x", str(tmp_path / "missing.mp4"), env=cache_env), "no such file"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_cli("search", "x", "--library", str(empty), env=cache_env), "no videos")
    assert_one_line_error(
        run_cli("search", "x", "--library", str(narrated.path), env=cache_env), "not a folder"
    )
    no_model = str(tmp_path / "no-model")
    assert_one_line_error(
        run_cli("search", "x", str(narrated.path), "--embedder", no_model, env=cache_env), "no-model"
    )
    # click's own range check, as for ask: its usage lines, exit 2, no traceback
    zero = run_cli("search", "x", str(narrated.path), "--top-k", "0", env=cache_env)
    assert zero.code == 2 and "--top-k" in zero.stderr and "Traceback" not in zero.stderr


SPOKEN = SearchHit(
    video="talk.mp4",
    channel="speech",
    start_s=8.123456,
    end_s=9.87654,
    frame_s=9.000001,
    text="The meeting starts at noon.",
    scene=2,
    similarity=0.612345678,
    lexical=3.14159265,
    score=0.0327868852,
)
SEEN = SearchHit("talk.mp4", "visual", 4.0, 8.0, 5.0, None, 1, 0.2512345, None, 0.0163934426)


def test_search_hit_record_rounds_like_the_others() -> None:
    assert search_hit_record(SPOKEN) == {
        "video": "talk.mp4",
        "channel": "speech",
        "start_s": 8.123,
        "end_s": 9.877,
        "start": "0:08",
        "end": "0:10",
        "best_frame_s": 9.0,
        "text": "The meeting starts at noon.",
        "scene": 2,
        "similarity": 0.6123,
        "lexical": 3.1416,
        "score": 0.03279,
    }
    assert search_hit_record(SEEN)["lexical"] is None and search_hit_record(SEEN)["text"] is None


def test_search_results_in_text_and_json() -> None:
    results = SearchResults((SPOKEN, SEEN))
    assert [spec.name for spec in formats_holding(SearchResults)] == ["text", "json"]
    assert json.loads(writer("json").render(results)) == [search_hit_record(SPOKEN), search_hit_record(SEEN)]
    lines = writer("text").render(results).splitlines()
    assert lines[0].split()[:5] == ["0.03279", "talk.mp4", "speech", "0:08.1-0:09.9", "scene"]
    assert lines[0].endswith('"The meeting starts at noon."')
    assert lines[1].split()[:3] == ["0.01639", "talk.mp4", "visual"]
    assert lines[1].endswith("best frame 0:05.0")
    assert writer("text").render(SearchResults(())) == ""
