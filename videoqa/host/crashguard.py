"""Say what crashed last time: a native crash (llama.cpp, CTranslate2, ONNX Runtime, a decoder) kills
the process with a bare "Segmentation fault", so each run keeps a crash record that the next run reads.

Every command writes Python's ``faulthandler`` report to ``RUNS/PID.crash`` while it runs and deletes
the file when it ends normally. A file whose process is gone and which holds a fatal-error report is a
crash: the next ``videoqa`` command names the command that crashed, the part that was running (from
the native library on the crashing stack) and points at ``videoqa doctor``, once, then keeps the report
as ``RUNS/last-crash.txt``. The folder is ``$VIDEOQA_STATE`` or videoqa's cache folder ``runs/``.
"""

from __future__ import annotations

import atexit
import faulthandler
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from videoqa.store.paths import user_dir

LAST_CRASH = "last-crash.txt"
# Which part of videoqa a module on the crashing stack belongs to; the first match from the top wins.
_PARTS = (
    ("llama_cpp", "llama.cpp (the language model runtime)"),
    ("ctranslate2", "speech recognition (faster-whisper on CTranslate2)"),
    ("faster_whisper", "speech recognition (faster-whisper on CTranslate2)"),
    ("onnxruntime", "ONNX Runtime (speech-activity detection, on-screen text reading)"),
    ("rapidocr", "on-screen text reading (ONNX Runtime)"),
    ("decord", "video decoding (decord)"),
    ("/av/", "video decoding (PyAV/FFmpeg)"),
    ("torch", "PyTorch"),
    ("transformers", "PyTorch"),
    ("sentence_transformers", "PyTorch"),
)
_FATAL = re.compile(r"Fatal Python error: (.+)")
_FRAME = re.compile(r'File "([^"]+)", line \d+ in (\S+)')

_report: IO[str] | None = None


def runs_dir() -> Path:
    """Where the crash records live."""
    return user_dir("VIDEOQA_STATE", "cache", "runs")


@dataclass(frozen=True)
class Crash:
    """A run that died in native code, as its report tells."""

    command: str
    error: str  # "Segmentation fault", "Illegal instruction", ...
    part: str  # the part of videoqa that was running
    report: Path


def start(command: str) -> Crash | None:
    """Guard this run (``command`` names it in a later report) and return the last run's crash, if any.

    Never fails the command: a folder that cannot be written only means no record is kept.
    """
    folder = runs_dir()
    try:
        crash = _collect(folder)
        _begin(folder, command)
    except OSError:
        return None
    return crash


def _begin(folder: Path, command: str) -> None:
    global _report
    # One guard per process (the CLI's tests run many commands in one); and a faulthandler someone else
    # enabled (python -X faulthandler, pytest) already reports a crash where its owner wants it.
    if _report is not None or faulthandler.is_enabled():
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{os.getpid()}.crash"
    _report = open(path, "w", encoding="utf-8")  # noqa: SIM115  # open until the process ends
    _report.write(json.dumps({"command": command}) + "\n")
    _report.flush()
    faulthandler.enable(file=_report, all_threads=True)
    atexit.register(_finish, path)


def _finish(path: Path) -> None:
    global _report
    faulthandler.disable()
    if _report is not None:
        _report.close()
        _report = None
    path.unlink(missing_ok=True)


def _collect(folder: Path) -> Crash | None:
    """The newest crash among the records of processes that are gone; every such record is removed."""
    crashes: list[tuple[float, Crash]] = []
    for record in folder.glob("*.crash") if folder.is_dir() else ():
        if not record.stem.isdigit() or _alive(int(record.stem)):
            continue
        crash = read_report(record.read_text(encoding="utf-8", errors="replace"), folder / LAST_CRASH)
        if crash is not None:
            crashes.append((record.stat().st_mtime, crash))
            (folder / LAST_CRASH).write_text(
                record.read_text(encoding="utf-8", errors="replace"), encoding="utf-8"
            )
        record.unlink(missing_ok=True)
    return max(crashes, key=lambda pair: pair[0])[1] if crashes else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def read_report(text: str, saved_as: Path) -> Crash | None:
    """The crash a faulthandler report describes; None for a run that ended without one (killed)."""
    lines = text.splitlines()
    fatal = next((m for line in lines if (m := _FATAL.search(line))), None)
    if fatal is None:
        return None
    try:
        command = str(json.loads(lines[0])["command"])
    except (json.JSONDecodeError, KeyError, IndexError, TypeError):
        command = "videoqa"
    return Crash(command=command, error=fatal.group(1).strip(), part=_crashed_part(lines), report=saved_as)


def _crashed_part(lines: list[str]) -> str:
    """The library named by the innermost recognisable frame of the thread that crashed, and the
    videoqa module that called it."""
    files = [frame.replace("\\", "/") for frame in _current_thread(lines)]
    library = next((part for file in files for marker, part in _PARTS if marker in file), "a native library")
    caller = next((file.rsplit("/", 1)[-1] for file in files if "/videoqa/" in file), None)
    return f"{library}, called from {caller}" if caller else library


def _current_thread(lines: list[str]) -> list[str]:
    """File names of the crashing thread's frames, innermost first (faulthandler's order)."""
    files: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("Current thread"):
            inside = True
        elif inside and (match := _FRAME.search(line)):
            files.append(match.group(1))
        elif inside and files:  # the blank line or the next thread's header ends the list
            break
    return files


def describe(crash: Crash) -> str:
    """The one line a user reads about the last crash."""
    return (
        f"the last `videoqa {crash.command}` crashed ({crash.error}) in {crash.part}; "
        f"run `videoqa doctor` to find the broken part (report: {crash.report})"
    )
