"""The command line: help, version, and ``info`` on every real sample clip."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import videoqa

from helpers import run_cli


def test_version() -> None:
    result = run_cli("--version")
    assert result.code == 0
    assert result.stdout.strip() == f"videoqa, version {videoqa.__version__}"


def test_help_lists_commands_with_examples() -> None:
    result = run_cli("--help")
    assert result.code == 0
    assert "info" in result.stdout and "Examples:" in result.stdout
    info_help = run_cli("info", "-h")
    assert "--json" in info_help.stdout and "videoqa info" in info_help.stdout


def test_help_imports_no_heavy_module() -> None:
    # --help must be instant: numpy, PyAV, decord and torch are imported only by the commands.
    code = ("import sys; from videoqa.cli import cli; "
            "from click.testing import CliRunner; CliRunner().invoke(cli, ['--help']); "
            "print([m for m in ('numpy', 'av', 'decord', 'torch') if m in sys.modules])")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "[]"


# name: (duration_s, width, height, fps, audio codec or None)
REAL_CLIPS = {
    "vtest.avi": (79.5, 768, 576, 10.0, None),
    "tree.avi": (29.6, 320, 240, 15.0, None),
    "Megamind.avi": (11.26, 720, 528, 23.976, "ac3"),
    "Megamind_bugy.avi": (9.0, 720, 528, 30.0, None),
    "bigbuckbunny.mp4": (5.28, 1280, 720, 25.0, "aac"),
    "bikes.mp4": (10.0, 640, 272, 25.0, None),
    "carphone_pristine.mp4": (4.0, 176, 144, 29.97, None),
}


@pytest.mark.parametrize("name", sorted(REAL_CLIPS))
def test_info_json_on_real_clips(name: str, sample: Callable[[str], Path]) -> None:
    duration_s, width, height, fps, audio_codec = REAL_CLIPS[name]
    path = sample(name)
    result = run_cli("info", "--json", str(path))
    assert result.code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["duration_s"] == pytest.approx(duration_s, abs=0.01)
    assert (info["width"], info["height"]) == (width, height)
    assert info["fps"] == pytest.approx(fps, abs=0.001)
    assert info["rotation_deg"] == 0
    assert info["size_bytes"] == path.stat().st_size
    assert (info["audio"] or {}).get("codec") == audio_codec


def test_info_text_on_vtest(sample: Callable[[str], Path]) -> None:
    result = run_cli("info", str(sample("vtest.avi")))
    assert result.code == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].endswith("vtest.avi")
    fields = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in lines[1:])
    assert fields["duration"] == "1:19.5 (79.50 s)"
    assert fields["frame rate"] == "10 fps (constant)"
    assert fields["frames"] == "795"
    assert fields["resolution"] == "768x576"
    assert fields["audio"] == "none"
    assert fields["file size"] == "7.8 MiB (8,131,690 bytes)"


def test_info_reports_audio_and_rotation(narrated_rotated: Path) -> None:
    result = run_cli("info", "--json", str(narrated_rotated))
    info = json.loads(result.stdout)
    assert info["rotation_deg"] == 90
    assert (info["coded_width"], info["coded_height"]) == (320, 180)
    assert (info["width"], info["height"]) == (180, 320)
    assert info["audio"]["codec"] == "aac" and info["audio"]["decodable"] is True


def test_python_dash_m_works() -> None:
    output = subprocess.run([sys.executable, "-m", "videoqa", "--version"], capture_output=True,
                            text=True, check=True)
    assert videoqa.__version__ in output.stdout
