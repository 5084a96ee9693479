"""A tiny random Idefics3 (SmolVLM) turned into the GGUF model + vision projector (mmproj) pair that
llama.cpp users download, built offline for the tests.

The converter is the one llama.cpp ships, taken from the llama-cpp-python source package of the installed
version (fetched once with ``pip download``); its own copy of the ``gguf`` package travels with it.
Everything is cached under ``~/.cache/videoqa/test-assets`` (``VIDEOQA_TEST_ASSETS`` overrides it): the
extracted converter by llama-cpp-python version, the built pair by the builder's parameters. Every cache
entry is made in a temporary folder and renamed into place, so a killed run leaves nothing half-made.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from filelock import FileLock

# Bump when the way the pair is built changes, so cached pairs from the old recipe are not reused.
RECIPE_VERSION = 1
CONVERTER_MEMBERS = ("convert_hf_to_gguf.py", "conversion", "gguf-py")  # what the converter imports
SDIST_TIMEOUT_S = 240  # ~10 s on a good line; under pytest's 300-s limit, so a stall reads as a skip
CONVERT_TIMEOUT_S = 300

# The chat markers, and the tokens mtmd looks up by text to frame an Idefics3 picture; as control tokens
# llama.cpp reads each of them as one token wherever it appears in a prompt.
SPECIAL_TOKENS = ("<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<global-img>", "<image>")
BOS, EOS = "<s>", "<|im_end|>"
# Idefics3's template in miniature: content is a string, or a list of parts of which mtmd has already
# turned every picture into its text marker.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class AssetUnavailable(Exception):
    """The converter cannot be fetched (no package index reachable); tests that need it skip."""


@dataclass(frozen=True)
class TinyVlmSpec:
    """The shape of the tiny model; every field is part of the cache key."""

    text_hidden: int = 64  # the language model's width (the GGUF's n_embd)
    text_layers: int = 2
    vision_hidden: int = 32
    vision_layers: int = 2
    image_size: int = 32  # pixels a side the vision tower sees
    patch_size: int = 8  # 4 x 4 patches, pixel-shuffled by 2: 4 visual tokens a picture
    seed: int = 0  # torch seed for the random weights

    def key(self) -> str:
        recipe = {**asdict(self), "recipe": RECIPE_VERSION, "llama_cpp": version("llama-cpp-python")}
        return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class GgufPair:
    model: Path  # the language model
    mmproj: Path  # the vision projector made for it


def cache_dir() -> Path:
    return Path(os.environ.get("VIDEOQA_TEST_ASSETS", "~/.cache/videoqa/test-assets")).expanduser()


def tiny_vlm_gguf(spec: TinyVlmSpec = TinyVlmSpec()) -> GgufPair:
    """The GGUF pair for ``spec``, built on first use and cached. Raises ``AssetUnavailable`` when the
    converter has to be downloaded and cannot be."""
    root = cache_dir()
    folder = root / f"tiny-idefics3-{spec.key()}"
    pair = GgufPair(folder / "model.gguf", folder / "mmproj-model.gguf")
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{folder.name}.lock")):  # parallel test runs build it once
        if not folder.is_dir():
            converter = converter_script(root)
            with tempfile.TemporaryDirectory(dir=root, prefix=".building-") as work:
                staging = Path(work) / "pair"
                staging.mkdir()
                hf_dir = save_tiny_idefics3(Path(work) / "hf", spec)
                convert(converter, hf_dir, staging / pair.model.name, mmproj=False)
                convert(converter, hf_dir, staging / pair.mmproj.name, mmproj=True)
                staging.rename(folder)
    return pair


def converter_script(root: Path) -> Path:
    """``convert_hf_to_gguf.py`` of the installed llama-cpp-python, extracted once from its sdist."""
    llama_version = version("llama-cpp-python")
    folder = root / f"llama-cpp-converter-{llama_version}"
    with FileLock(str(root / f"{folder.name}.lock")):
        if not folder.is_dir():
            with tempfile.TemporaryDirectory(dir=root, prefix=".extracting-") as work:
                sdist = download_sdist(llama_version, Path(work))
                staging = Path(work) / "converter"
                extract_converter(sdist, staging)
                staging.rename(folder)
    return folder / "convert_hf_to_gguf.py"


def download_sdist(llama_version: str, into: Path) -> Path:
    # --no-binary names the package alone: with ":all:" pip would also build the build tools it needs to
    # read the sdist's metadata (cmake among them) from source, five minutes instead of ten seconds
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        "llama-cpp-python",
        "--disable-pip-version-check",
        "--quiet",
        "--retries",
        "1",
        "--dest",
        str(into),
        f"llama-cpp-python=={llama_version}",
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=SDIST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AssetUnavailable(f"pip download of llama-cpp-python {llama_version} timed out") from None
    archives = sorted(into.glob("llama_cpp_python-*.tar.gz"))
    if result.returncode != 0 or not archives:
        last_line = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise AssetUnavailable(
            f"cannot download the llama-cpp-python {llama_version} sdist "
            f"(needed for its GGUF converter): {last_line}"
        )
    return archives[0]


def extract_converter(sdist: Path, into: Path) -> None:
    """Copy only the converter and what it imports out of ``vendor/llama.cpp`` (the sdist is 75 MB)."""
    with tarfile.open(sdist) as archive:
        top = archive.getnames()[0].split("/")[0]
        prefix = f"{top}/vendor/llama.cpp/"
        wanted = [
            member
            for member in archive.getmembers()
            if member.name.startswith(prefix)
            and member.name[len(prefix) :].split("/")[0] in CONVERTER_MEMBERS
        ]
        archive.extractall(into, members=wanted, filter="data")
    for name in CONVERTER_MEMBERS:
        shutil.move(into / prefix / name, into / name)
    shutil.rmtree(into / top)


def convert(converter: Path, hf_dir: Path, outfile: Path, mmproj: bool) -> None:
    """Run llama.cpp's converter on a transformers folder (its own ``gguf`` copy comes first on its path)."""
    command = [sys.executable, str(converter), str(hf_dir), "--outfile", str(outfile), "--outtype", "f32"]
    if mmproj:
        command.append("--mmproj")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, env=env)
    if result.returncode != 0 or not outfile.is_file():
        raise RuntimeError(f"convert_hf_to_gguf.py failed on {hf_dir}:\n{result.stderr[-4000:]}")


def save_tiny_idefics3(folder: Path, spec: TinyVlmSpec) -> Path:
    """A random Idefics3 saved as a user's transformers folder: weights, config, tokenizer, chat template
    and preprocessor_config.json."""
    import torch
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration

    folder.mkdir(parents=True)
    pieces = save_tokenizer(folder)
    # the architecture of the text half tells the converter which converter class writes the GGUF
    text = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": spec.text_hidden,
        "intermediate_size": 2 * spec.text_hidden,
        "num_hidden_layers": spec.text_layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": len(pieces),
        "max_position_embeddings": 4096,
        "bos_token_id": pieces.index(BOS),
        "eos_token_id": pieces.index(EOS),
    }
    vision = {
        "hidden_size": spec.vision_hidden,
        "intermediate_size": 2 * spec.vision_hidden,
        "num_hidden_layers": spec.vision_layers,
        "num_attention_heads": 2,
        "image_size": spec.image_size,
        "patch_size": spec.patch_size,
    }
    config = Idefics3Config(
        text_config=text,
        vision_config=vision,
        scale_factor=2,
        image_token_id=pieces.index("<image>"),
        tie_word_embeddings=False,
    )
    torch.manual_seed(spec.seed)
    Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    processor = {
        "image_processor_type": "Idefics3ImageProcessor",
        "do_resize": True,
        "size": {"longest_edge": spec.image_size},
        "image_mean": [0.5] * 3,
        "image_std": [0.5] * 3,
        "max_image_size": {"longest_edge": spec.image_size},
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return folder


def save_tokenizer(folder: Path) -> list[str]:
    """A SentencePiece vocabulary written by hand (nothing to train): control tokens, the 256 byte
    pieces every character falls back to, and printable ASCII, with "\\n" and "\\n\\n" as single pieces
    because mtmd frames Idefics3 pictures with exactly those tokens. Returns the pieces in id order."""
    # generated protobuf code: mypy sees none of its classes
    sp: Any = importlib.import_module("sentencepiece.sentencepiece_model_pb2")
    kind = sp.ModelProto.SentencePiece.Type
    typed = [("<unk>", kind.UNKNOWN), (BOS, kind.CONTROL), ("</s>", kind.CONTROL)]
    typed += [(token, kind.CONTROL) for token in SPECIAL_TOKENS]
    typed += [(f"<0x{byte:02X}>", kind.BYTE) for byte in range(256)]
    typed += [(text, kind.NORMAL) for text in ("\n\n", "\n", "\u2581", *map(chr, range(33, 127)))]
    model = sp.ModelProto()
    for rank, (text, piece_type) in enumerate(typed):
        model.pieces.add(piece=text, score=-float(rank), type=piece_type)
    model.trainer_spec.model_type = sp.TrainerSpec.UNIGRAM
    model.trainer_spec.byte_fallback = True
    model.trainer_spec.unk_id, model.trainer_spec.bos_id, model.trainer_spec.eos_id = 0, 1, 2
    model.trainer_spec.pad_id = -1
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = False
    model.normalizer_spec.remove_extra_whitespaces = False
    (folder / "tokenizer.model").write_bytes(model.SerializeToString())
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "bos_token": BOS,
        "eos_token": EOS,
        "unk_token": "<unk>",
        "add_bos_token": True,
        "add_eos_token": False,
        "add_prefix_space": False,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return [text for text, _ in typed]
