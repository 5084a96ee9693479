"""Tiny random vision-language models of real architectures, saved the way a user's model folder is.

LLaVA-1.5, LLaVA-NeXT and Idefics3 (SmolVLM's architecture): a 32-wide, 2-layer image tower on 32 px
pictures, a 64-wide, 2-layer Llama, a byte-level BPE tokenizer trained here on a few sentences (holding the
image token and a chat template), and each family's own processor, all written with save_pretrained.
Nothing is downloaded; building one takes well under a second.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

FAMILIES = ("llava", "llava_next", "idefics3")
IMAGE_TOKEN = "<image>"
# Idefics3's processor wraps each picture's image tokens in these; it looks them up in the vocabulary.
IDEFICS3_TOKENS = ("<fake_token_around_image>", "<global-img>", "<end_of_utterance>")
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", IMAGE_TOKEN, *IDEFICS3_TOKENS)
CORPUS = (
    "USER: What is in the picture? ASSISTANT: A red car parks by the door.",
    "USER: Describe the scene. ASSISTANT: Two people walk past a green tree.",
    "SYSTEM: Answer briefly.\nUSER: Who speaks first?\nASSISTANT: The man in the blue coat.",
)
VOCAB_SIZE = 320  # the 256 byte symbols, the special tokens, and merges learnt from CORPUS
# Each message as "ROLE: text"; a picture is one image token the processor expands, then a newline.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['role'] | upper }}: "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}" + IMAGE_TOKEN + "{{ '\\n' }}"
    "{% else %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
IMAGE_PX = 32
PATCH_PX = 8
TOWER = {
    "model_type": "clip_vision_model",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": IMAGE_PX,
    "patch_size": PATCH_PX,
}
TEXT_HIDDEN = 64
TEXT_POSITIONS = 1024  # the language model's max_position_embeddings
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# LLaVA-NeXT tiles a picture into 32 px crops on the best-fitting of these grids.
GRID_PINPOINTS = [[32, 64], [64, 32], [64, 64]]
IDEFICS3_SCALE = 2  # pixel shuffle: 2x2 tower outputs become one image token


def tiny_vlm_tokenizer() -> Any:
    """A byte-level BPE tokenizer trained on ``CORPUS``, with the image token and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _text_config(tokenizer: Any) -> dict[str, Any]:
    return {
        "model_type": "llama",
        "vocab_size": len(tokenizer),
        "hidden_size": TEXT_HIDDEN,
        "intermediate_size": 2 * TEXT_HIDDEN,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": TEXT_POSITIONS,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _llava(tokenizer: Any) -> tuple[Any, Any]:
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor

    config = LlavaConfig(
        vision_config=TOWER,
        text_config=_text_config(tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    images = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_PX}, crop_size=IMAGE_PX, image_mean=CLIP_MEAN, image_std=CLIP_STD
    )
    # One token a 8 px patch; the tower's class token is dropped ("default"), as in LLaVA-1.5.
    processor = LlavaProcessor(  # type: ignore[no-untyped-call]
        images,
        tokenizer,
        patch_size=PATCH_PX,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    return LlavaForConditionalGeneration(config), processor


def _llava_next(tokenizer: Any) -> tuple[Any, Any]:
    from transformers import (
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    config = LlavaNextConfig(
        vision_config=TOWER,
        text_config=_text_config(tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        image_grid_pinpoints=GRID_PINPOINTS,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    images = LlavaNextImageProcessor(
        size={"shortest_edge": IMAGE_PX},
        crop_size=IMAGE_PX,
        image_grid_pinpoints=GRID_PINPOINTS,
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    processor = LlavaNextProcessor(  # type: ignore[no-untyped-call]
        images,
        tokenizer,
        patch_size=PATCH_PX,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )
    return LlavaNextForConditionalGeneration(config), processor


def _idefics3(tokenizer: Any) -> tuple[Any, Any]:
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    tower = {**TOWER, "model_type": "idefics3_vision"}
    config = Idefics3Config(
        vision_config=tower,
        text_config=_text_config(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        scale_factor=IDEFICS3_SCALE,
    )
    # Pictures larger than 32 px are split into 32 px tiles plus a 32 px global view, as SmolVLM does.
    images = Idefics3ImageProcessor(
        size={"longest_edge": 2 * IMAGE_PX},
        max_image_size={"longest_edge": IMAGE_PX},
        image_mean=[0.5] * 3,
        image_std=[0.5] * 3,
    )
    tokens_per_tile = (IMAGE_PX // PATCH_PX) ** 2 // IDEFICS3_SCALE**2
    processor = Idefics3Processor(
        images, tokenizer, image_seq_len=tokens_per_tile, chat_template=CHAT_TEMPLATE
    )
    return Idefics3ForConditionalGeneration(config), processor


_BUILDERS: dict[str, Callable[[Any], tuple[Any, Any]]] = {
    "llava": _llava,
    "llava_next": _llava_next,
    "idefics3": _idefics3,
}


def save_tiny_vlm(folder: Path, family: str, seed: int = 0) -> Path:
    """A random tiny model of ``family`` (one of ``FAMILIES``) with its processor, saved into ``folder``
    with safetensors weights, as a user's checkpoints/NAME/ folder holds it."""
    torch.manual_seed(seed)
    model, processor = _BUILDERS[family](tiny_vlm_tokenizer())
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder
