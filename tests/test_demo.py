"""``videoqa demo``: the narrated video it makes, the question it asks, and the command it suggests."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from videoqa.testmedia.facts import answer_matches

from helpers import CliResult, assert_one_line_error, run_cli

# Rendering a minute of story, indexing it and loading the models takes a minute or two on 2 cores.
DEMO_TIMEOUT_S = 600


def run_demo(*args: str, env: dict[str, str]) -> CliResult:
    completed = subprocess.run(
        [sys.executable, "-m", "videoqa", "demo", *args],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        env=env,
    )
    return CliResult(completed)


def planted_questions(folder: Path) -> dict[str, tuple[str, ...]]:
    """The questions of the story kept in ``folder`` (from its manifest), with their accepted answers."""
    (manifest,) = folder.glob("story-*.json")
    return {q["question"]: tuple(q["answers"]) for q in json.loads(manifest.read_text())["questions"]}


@pytest.mark.parametrize(
    ("target", "fragment"),
    [("missing", "no such folder; create it first"), ("a-file", "not a folder")],
)
def test_keep_needs_an_existing_folder(tmp_path: Path, target: str, fragment: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    result = run_cli("demo", "--keep", str(tmp_path / target), "--fast")
    assert_one_line_error(result, f"--keep {tmp_path / target}", fragment)


@pytest.mark.slow
def test_demo_answers_its_own_question_and_the_next_command_runs(
    tmp_path: Path, installed_models: None
) -> None:
    env = {**os.environ, "VIDEOQA_CACHE": str(tmp_path / "cache")}
    kept = tmp_path / "demo"
    kept.mkdir()
    result = run_demo("--fast", "--keep", str(kept), env=env)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr and "making the demo video in" in result.stderr

    lines = result.stdout.splitlines()
    question = lines[0].removeprefix("question: ")
    questions = planted_questions(kept)
    assert lines[0].startswith("question: ") and questions.get(question), result.stdout
    assert answer_matches(lines[1], questions[question]), result.stdout
    assert lines[2:4] == ["", "evidence:"] and lines[4].startswith("  [0:"), result.stdout
    planted, suggested = lines[-2:]
    assert planted.startswith("planted: ") and suggested.startswith("next: videoqa ask "), result.stdout

    # The suggested command asks another of the story's questions about the kept video, and works.
    args = shlex.split(suggested.removeprefix("next: videoqa "))
    assert Path(args[1]).parent == kept and Path(args[1]).is_file() and args[2] in questions
    assert args[2] != question and args[-1] == "--fast"
    again = run_cli(*args, env=env)
    assert again.code == 0 and again.stdout.strip(), again.stderr


@pytest.mark.slow
def test_without_keep_nothing_is_left_behind(tmp_path: Path, installed_models: None) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "VIDEOQA_CACHE": str(tmp_path / "cache"), "TMPDIR": str(scratch)}
    result = run_demo("--fast", env=env)
    assert result.code == 0, result.stderr
    assert str(scratch) in result.stderr  # the video was made there
    assert not list(scratch.glob("videoqa-demo-*"))
    suggested = result.stdout.splitlines()[-1]
    assert suggested.startswith("next: videoqa demo --keep DIR --fast, then videoqa ask DIR/story-")
