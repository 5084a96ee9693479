"""After a native crash, the next run says what crashed and points at ``videoqa doctor``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from videoqa.host import crashguard

from helpers import run_cli

CRASHER = """
import ctypes

def generate():
    ctypes.string_at(0)  # a read of address 0: what a faulting native library does
"""


def _crash_in(tmp_path: Path, env: dict[str, str], package: str) -> int:
    """Run a guarded ``ask`` that dies with SIGSEGV inside a module of ``package``; its exit status."""
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "crasher.py").write_text(CRASHER)
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r})\n"
        "from videoqa.host import crashguard\n"
        "crashguard.start('ask')\n"
        f"from {package} import crasher\n"
        "crasher.generate()\n"
    )
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60).returncode


def test_the_run_after_a_crash_names_it_once(tmp_path: Path) -> None:
    env = {**os.environ, "VIDEOQA_STATE": str(tmp_path / "runs")}
    assert _crash_in(tmp_path, env, "fake_llama_cpp") == -signal.SIGSEGV
    after = run_cli("models", "list", env=env)
    assert after.code == 0
    warnings = [line for line in after.stderr_lines if line.startswith("warning:")]
    assert len(warnings) == 1, after.stderr
    assert "the last `videoqa ask` crashed (Segmentation fault) in llama.cpp" in warnings[0]
    assert "videoqa doctor" in warnings[0]
    assert (tmp_path / "runs" / crashguard.LAST_CRASH).read_text().count("Fatal Python error") == 1
    again = run_cli("models", "list", env=env)
    assert not any(line.startswith("warning:") for line in again.stderr_lines), again.stderr
    assert list((tmp_path / "runs").glob("*.crash")) == []


def test_the_crashing_part_is_read_from_the_stack(tmp_path: Path) -> None:
    env = {**os.environ, "VIDEOQA_STATE": str(tmp_path / "runs")}
    assert _crash_in(tmp_path, env, "ctranslate2_fake") == -signal.SIGSEGV
    crash = crashguard._collect(tmp_path / "runs")
    assert crash is not None and crash.command == "ask"
    assert crash.part.startswith("speech recognition")


def test_runs_that_end_or_are_killed_leave_no_warning(tmp_path: Path) -> None:
    env = {**os.environ, "VIDEOQA_STATE": str(tmp_path / "runs")}
    assert run_cli("models", "list", env=env).code == 0
    assert list((tmp_path / "runs").glob("*.crash")) == []
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal; from videoqa.host import crashguard; "
            "crashguard.start('caption'); os.kill(os.getpid(), signal.SIGKILL)",
        ],
        env=env,
        timeout=60,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    after = run_cli("models", "list", env=env)
    assert not any(line.startswith("warning:") for line in after.stderr_lines), after.stderr
    assert list((tmp_path / "runs").glob("*.crash")) == []


def test_an_unwritable_state_folder_does_not_stop_the_command(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("models", "list", env={**os.environ, "VIDEOQA_STATE": str(blocker / "runs")})
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_a_faulthandler_enabled_by_someone_else_is_left_to_them(tmp_path: Path) -> None:
    env = {**os.environ, "VIDEOQA_STATE": str(tmp_path / "runs")}
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "faulthandler",
            "-c",
            "from videoqa.host import crashguard; crashguard.start('ask'); "
            "import ctypes; ctypes.string_at(0)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGSEGV
    assert "Fatal Python error: Segmentation fault" in done.stderr  # where python -X faulthandler said
    assert not list((tmp_path / "runs").glob("*.crash"))
