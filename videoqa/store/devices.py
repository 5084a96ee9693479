"""Where models run: the device names a user may give, which of them each kind of model accepts, and the
weight quantizations a model may be loaded with.

One definition for every stage: the options of each backend, the assistant and the command line all
read these, so a device is accepted or refused with the same words everywhere.
"""

from __future__ import annotations

from videoqa.store.registry import ANSWER, IMAGE_EMBEDDING, SPEECH, TEXT_EMBEDDING, VISION

# Every device name: "auto" takes a GPU when there is one (CUDA, then Apple's MPS), else the CPU.
DEVICES = ("auto", "cpu", "cuda", "mps")
# The devices that are always usable: checking any other one needs torch.
ALWAYS_AVAILABLE = ("auto", "cpu")
# llama.cpp, transformers VLMs and CTranslate2 are built here for the CPU and CUDA only.
_NO_MPS = tuple(device for device in DEVICES if device != "mps")
# The devices each kind of model's backend accepts; OCR engines take no device (they run on the CPU).
DEVICES_BY_KIND: dict[str, tuple[str, ...]] = {
    ANSWER: _NO_MPS,
    VISION: _NO_MPS,
    SPEECH: _NO_MPS,
    TEXT_EMBEDDING: DEVICES,  # sentence-transformers, through torch
    IMAGE_EMBEDDING: DEVICES,  # CLIP and SigLIP through torch; the pixel embedder ignores it
}
# bitsandbytes weight quantization for transformers models: "none" loads the weights as they are.
QUANTIZATIONS = ("none", "4bit", "8bit")


def devices_for(kind: str) -> tuple[str, ...]:
    """The devices models of ``kind`` (a registry kind) run on; KeyError for a kind that takes none."""
    return DEVICES_BY_KIND[kind]
