"""The command line: help, version, and ``info`` on every real sample clip."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import videoqa
from videoqa.cli.util import check_device, reports_user_errors
from videoqa.errors import OptionsError, QuestionError
from videoqa.visual.embed import device_problem

from helpers import assert_one_line_error, run_cli


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
    code = (
        "import sys; from videoqa.cli.main import cli; "
        "from click.testing import CliRunner; CliRunner().invoke(cli, ['--help']); "
        "print([m for m in ('numpy', 'av', 'decord', 'torch') if m in sys.modules])"
    )
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
    output = subprocess.run(
        [sys.executable, "-m", "videoqa", "--version"], capture_output=True, text=True, check=True
    )
    assert videoqa.__version__ in output.stdout


# -- one-line errors: the user's mistakes exit 2, bugs are internal errors ---------------------------


def _guarded(error: Exception) -> click.Command:
    @click.command()
    @reports_user_errors
    def command() -> None:
        raise error

    return command


def test_only_videoqa_errors_are_user_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIDEOQA_DEBUG", raising=False)
    user = CliRunner().invoke(_guarded(OptionsError("beam_size must be at least 1, got 0")))
    assert (user.exit_code, user.stderr) == (2, "error: beam_size must be at least 1, got 0\n")
    bug = CliRunner().invoke(_guarded(ValueError("a bug, not bad input")))
    assert bug.exit_code == 1 and isinstance(bug.exception, ValueError) and bug.stderr == ""


def test_videoqa_debug_shows_the_traceback_of_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOQA_DEBUG", "1")
    result = CliRunner().invoke(_guarded(QuestionError("the question is empty")))
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "QuestionError" in result.stderr
    assert result.stderr.splitlines()[-1] == "error: the question is empty"


# Runs the real entry point with check_file replaced by one that raises a ValueError: a bug in videoqa.
BUGGY_ASK = """
import sys
import videoqa.media.video
def buggy(path):
    raise ValueError("simulated bug")
videoqa.media.video.check_file = buggy
sys.argv = ["videoqa", "ask", "clip.mp4", "what happens?"]
from videoqa.cli.main import main
main()
"""


@pytest.mark.parametrize("debug", [False, True])
def test_a_value_error_from_a_bug_is_an_internal_error(debug: bool, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "VIDEOQA_DEBUG"}
    if debug:
        env["VIDEOQA_DEBUG"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", BUGGY_ASK], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert "error: simulated bug" not in result.stderr
    if debug:
        assert "Traceback" in result.stderr and result.stderr.rstrip().endswith("ValueError: simulated bug")
    else:
        assert result.stderr.startswith("internal error: ValueError: simulated bug")
        assert "Traceback" not in result.stderr


# -- warnings: one line per kind, library warnings silenced -----------------------------------------

# A command that warns as a badly damaged file makes the pipeline warn, run as its own process: pytest
# records Python warnings itself, so what reaches stderr can only be seen from outside.
WARNING_COMMAND = """
import logging, warnings
import click
from videoqa.cli.util import report_warnings
from videoqa.media.timefmt import format_clock

@click.group()
@click.pass_context
def cli(ctx):
    report_warnings(ctx)

@cli.command()
def damaged():
    log = logging.getLogger("videoqa")
    for at_s in range(58):  # a badly damaged 4-s file: a warning at every packet
        log.warning("%s: skipped damaged video data near %s", "./clip.mp4", format_clock(at_s / 10))
    log.warning("%s: skipped damaged video data near %s", "other.mp4", "0:02.0")
    log.warning("the index was built %d s ago", 12)
    log.warning("the index was built %d s ago", 13)
    # A library's warning, made as torch or transformers make theirs (its module is not videoqa's).
    exec(compile("import warnings; warnings.warn('this will change', FutureWarning)", "lib.py", "exec"),
         {"__name__": "somelibrary.module"})
    exec(compile("import warnings; warnings.warn('from videoqa itself')", "own.py", "exec"),
         {"__name__": "videoqa.something"})
    click.echo("the answer")

for _ in range(2):  # the second run starts afresh: nothing is remembered from the first
    cli.main(["damaged"], standalone_mode=False)
"""


def _run_warning_command(debug: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIDEOQA_DEBUG", "PYTHONWARNINGS")}
    if debug:
        env["VIDEOQA_DEBUG"] = "1"
    return subprocess.run(
        [sys.executable, "-c", WARNING_COMMAND],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=60,
    )


def test_repeats_of_a_warning_are_one_line_and_a_count() -> None:
    result = _run_warning_command(debug=False)
    assert result.stdout == "the answer\n" * 2
    one_run = [
        "warning: ./clip.mp4: skipped damaged video data near 0:00.0",
        "warning: other.mp4: skipped damaged video data near 0:02.0",
        "warning: the index was built 12 s ago",
        "own.py:1: UserWarning: from videoqa itself",
        'warning: 57 more like "./clip.mp4: skipped damaged video data near 0:00.0"',
        'warning: 1 more like "the index was built 12 s ago"',
    ]
    lines = [line for line in result.stderr.splitlines() if not line.startswith("  ")]  # warnings' source
    assert lines == one_run * 2, result.stderr


def test_videoqa_debug_shows_library_warnings() -> None:
    assert "FutureWarning: this will change" in _run_warning_command(debug=True).stderr


# -- --device: checked before any work, the same line in every command ------------------------------


def _torch_sees(cuda: bool) -> bool:
    import torch

    return bool(torch.cuda.is_available()) if cuda else bool(torch.backends.mps.is_available())


@pytest.mark.parametrize(
    "command", [("ask", "clip.mp4", "what happens?"), ("caption", "clip.mp4"), ("chat", "clip.mp4")]
)
@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_a_device_torch_does_not_see_is_one_line_exit_2(command: tuple[str, ...], device: str) -> None:
    if _torch_sees(cuda=device == "cuda"):
        pytest.skip(f"torch sees a {device} device")
    result = run_cli(*command, "--device", device)
    assert_one_line_error(result, f"--device {device}: ", "; use --device cpu or auto")
    assert "Torch not compiled" not in result.stderr


def test_the_device_check_names_the_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    assert device_problem("cuda") == "no CUDA device is visible to torch (this torch build is CPU-only)"
    message = (
        "--device cuda: no CUDA device is visible to torch (this torch build is CPU-only); "
        "use --device cpu or auto"
    )
    with pytest.raises(click.ClickException, match=f"^{re.escape(message)}$"):
        check_device(None, None, "cuda")
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    assert "a CUDA 12.4 build" in str(device_problem("cuda"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_problem("cuda") is None and check_device(None, None, "cuda") == "cuda"
    assert device_problem("auto") is None and device_problem("cpu") is None


def test_auto_and_cpu_devices_import_no_torch() -> None:
    code = (
        "import sys; from videoqa.cli.util import check_device; check_device(None, None, 'auto'); "
        "check_device(None, None, 'cpu'); print('torch' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"
