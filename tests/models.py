"""Tiny random image-text models of real architectures, saved the way a user's model folder is.

Built from configs (hidden 32, 2 layers) next to a small byte-level BPE tokenizer and a
preprocessor_config.json; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
MERGES = [("r", "e"), ("re", "d</w>"), ("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>")]
MAX_TOKENS = 24


def byte_symbols() -> list[str]:
    """The 256 printable characters that byte-level BPE (GPT-2, CLIP) uses to stand for bytes."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), 256)]
    others = [byte for byte in range(256) if byte not in printable]
    return [chr(byte) for byte in printable] + [chr(256 + index) for index in range(len(others))]


def tiny_tokenizer() -> Any:
    from transformers import CLIPTokenizer

    symbols = byte_symbols()
    tokens = [
        *symbols,
        *(symbol + "</w>" for symbol in symbols),
        *(a + b for a, b in MERGES),
        "<|startoftext|>",
        "<|endoftext|>",
    ]
    merges: Any = list(MERGES)  # the tokenizers backend wants pairs; transformers' hint says strings
    return CLIPTokenizer(vocab={token: index for index, token in enumerate(tokens)}, merges=merges)


TINY_TOWER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
# The image tower of OpenAI's CLIP ViT-B/32: the real compute cost per frame, with random weights.
VIT_B32_TOWER = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "image_size": 224,
    "patch_size": 32,
}


def save_tiny_model(folder: Path, model_type: str = "clip", seed: int = 0) -> Path:
    """A random CLIP or SigLIP with 32-wide, 2-layer towers on 32 px images, saved as a user's folder."""
    return save_random_clip(
        folder,
        {**TINY_TOWER, "image_size": 32, "patch_size": 8},
        projection_dim=16,
        model_type=model_type,
        seed=seed,
    )


def save_random_clip(
    folder: Path, vision: dict[str, int], projection_dim: int, model_type: str = "clip", seed: int = 0
) -> Path:
    """A random CLIP (or SigLIP) with the given image tower and a tiny text tower, saved as a user's
    folder (weights, tokenizer, preprocessor_config.json)."""
    from transformers import CLIPConfig, CLIPModel, SiglipConfig, SiglipModel

    tokenizer = tiny_tokenizer()
    text = {
        **TINY_TOWER,
        "vocab_size": len(tokenizer),
        "max_position_embeddings": MAX_TOKENS,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    size = vision["image_size"]
    torch.manual_seed(seed)
    if model_type == "clip":
        model: Any = CLIPModel(
            CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection_dim)
        )
        processor = {
            "image_mean": CLIP_MEAN,
            "image_std": CLIP_STD,
            "do_center_crop": True,
            "crop_size": {"height": size, "width": size},
            "size": {"shortest_edge": size},
        }
    else:
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        processor = {"image_mean": [0.5] * 3, "image_std": [0.5] * 3, "size": {"height": size, "width": size}}
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return folder
