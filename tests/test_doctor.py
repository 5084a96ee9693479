"""``videoqa doctor``: every part checked for real, problems named with their fix, exit 1 on any."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_llama_runtime import NATIVE_SAPPHIRE_RAPIDS

from videoqa.cli import doctor_checks as doctor
from videoqa.cli.doctor_checks import CheckResult, run_checks
from videoqa.llm import runtime
from videoqa.store import models

from helpers import run_cli


@pytest.mark.usefixtures("installed_models")
def test_everything_works_here() -> None:
    result = run_cli("doctor")
    assert result.code == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok"] * len(doctor.CHECKS)
    shown = "\n".join(lines)
    assert "kitchen" in shown and "EXIT 42" in shown and "AVX2" in shown


def _store_with_one_damaged_file(tmp_path: Path) -> Path:
    """A copy of the model store (links, not copies) whose text embedder's config.json is edited."""
    store = tmp_path / "models"
    for name in doctor.default_models():
        source = models.model_dir(name)
        for file in source.rglob("*"):
            if file.is_file():
                target = store / name / file.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(file)
    damaged = store / "all-minilm-l6-v2" / "config.json"
    text = damaged.read_text()
    damaged.unlink()
    damaged.write_text(text.replace("384", "385"))
    return store


@pytest.mark.usefixtures("installed_models")
def test_a_damaged_model_and_an_unusable_cache_are_problems_with_fixes(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    env = {
        **os.environ,
        "VIDEOQA_MODELS": str(_store_with_one_damaged_file(tmp_path)),
        "VIDEOQA_CACHE": str(blocker / "cache"),
    }
    result = run_cli("doctor", env=env)
    assert result.code == 1
    assert "Traceback" not in result.stdout + result.stderr
    rows = {
        line.split()[1]: line for line in result.stdout.splitlines() if line.startswith(("ok", "PROBLEM"))
    }
    assert rows["models"].startswith("PROBLEM") and "all-minilm-l6-v2" in rows["models"]
    assert rows["cache"].startswith("PROBLEM") and str(blocker) in rows["cache"]
    assert "fix: videoqa models pull all-minilm-l6-v2" in result.stdout
    assert "fix: export VIDEOQA_CACHE=" in result.stdout
    assert result.stderr_lines[-1] == "2 of 8 checks found a problem"


def test_missing_models_are_named_with_the_command_that_fetches_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIDEOQA_MODELS", str(tmp_path / "empty"))
    wanted = ("models", "llama.cpp generate", "speech")
    results = {r.part: r for r in run_checks(tuple(c for c in doctor.CHECKS if c[0] in wanted))}
    assert not any(result.ok for result in results.values())
    assert results["models"].fix == "videoqa models pull " + " ".join(doctor.default_models())
    assert results["speech"].fix.startswith("videoqa models pull whisper")


def test_an_amx_build_is_a_problem_with_the_portable_reinstall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "system_info", lambda: NATIVE_SAPPHIRE_RAPIDS)
    result = doctor.check_llama_build()
    assert not result.ok and "AMX_INT8" in result.detail
    assert result.fix == runtime.REINSTALL_COMMAND and "-DGGML_NATIVE=OFF" in result.fix


def test_a_check_that_breaks_is_a_problem_line() -> None:
    def broken() -> CheckResult:
        raise AttributeError("a half-installed package")

    [result] = run_checks((("torch device", broken),))
    assert not result.ok and result.detail == "AttributeError: a half-installed package"


def test_no_ffmpeg_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = doctor.check_decoding()
    assert not result.ok and result.fix.startswith("apt-get install ffmpeg")
