"""Embedders: the pixel embedder's behaviour, and tiny random CLIP/SigLIP models loaded as a user would.

The models are built from configs (hidden 32, 2 layers), saved with save_pretrained next to a small
byte-level BPE tokenizer and a preprocessor_config.json, and loaded with ``load_embedder(folder)``. Nothing
is downloaded.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch

from videoqa.visual.embed import REGISTRY, EmbedderError, EmbedOptions, ImageEmbedder, load_embedder
from videoqa.visual.embed.clip import BatchBackoff, ImagePreprocess
from videoqa.visual.embed.pixel import PixelEmbedder

from models import save_tiny_model


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_dir: Path) -> ImageEmbedder:
    return load_embedder(str(tiny_clip_dir), EmbedOptions(device="cpu", batch_size=2))


@pytest.fixture(scope="session")
def frames() -> npt.NDArray[np.uint8]:
    """Five varied 40x56 frames: noise, a gradient, solid colours."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (2, 40, 56, 3), dtype=np.uint8)
    gradient = np.broadcast_to(np.linspace(0, 255, 56, dtype=np.uint8)[None, None, :, None], (1, 40, 56, 3))
    solids = np.stack([np.full((40, 56, 3), colour, dtype=np.uint8) for colour in ([200, 30, 30], [0, 0, 0])])
    return np.concatenate([noise, gradient, solids])


def assert_unit_rows(vectors: npt.NDArray[np.float32], count: int, dim: int) -> None:
    assert vectors.shape == (count, dim)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def one_line_error(excinfo: pytest.ExceptionInfo[EmbedderError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# -- package surface and options -------------------------------------------------------------------


def test_importing_the_package_loads_no_torch() -> None:
    code = "import sys, videoqa.visual.embed; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_registry_is_data_with_the_pixel_default() -> None:
    assert REGISTRY["pixel"].backend == "pixel"
    assert REGISTRY["clip-vit-b32"].hub_id == "openai/clip-vit-base-patch32"
    assert all(spec.backend in ("pixel", "clip") and spec.summary for spec in REGISTRY.values())


@pytest.mark.parametrize(
    "bad",
    [
        {"device": "gpu"},
        {"device": "CUDA"},
        {"dtype": "fp16"},
        {"dtype": "float64"},
        {"batch_size": 0},
        {"batch_size": 2.5},
    ],
)
def test_embed_options_refuse_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        EmbedOptions(**bad)


def test_embed_options_defaults() -> None:
    options = EmbedOptions()
    assert (options.device, options.dtype, options.batch_size) == ("auto", "auto", 32)


# -- pixel embedder ---------------------------------------------------------------------------------


def test_pixel_embeddings_are_deterministic_unit_rows(frames: npt.NDArray[np.uint8]) -> None:
    embedder = load_embedder("pixel")
    assert isinstance(embedder, PixelEmbedder)
    vectors = embedder.embed_images(frames)
    assert_unit_rows(vectors, len(frames), embedder.dim)
    assert np.array_equal(vectors, embedder.embed_images(frames.copy()))
    one_by_one = np.concatenate([embedder.embed_images(frames[i : i + 1]) for i in range(len(frames))])
    assert np.allclose(vectors, one_by_one, atol=1e-6)
    assert embedder.id == "pixel-hist8-thumb16-v1"
    assert embedder.embed_images(frames[:0]).shape == (0, embedder.dim)


def test_pixel_embedder_separates_different_frames_more_than_near_identical_ones() -> None:
    rng = np.random.default_rng(0)
    red = np.full((48, 64, 3), (220, 20, 20), dtype=np.uint8)
    blue = np.full((48, 64, 3), (20, 20, 220), dtype=np.uint8)
    noise = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    nudged = np.clip(noise.astype(int) + rng.integers(-4, 5, noise.shape), 0, 255).astype(np.uint8)
    darker_red = red - 6
    red_v, blue_v, noise_v, nudged_v, darker_v = PixelEmbedder().embed_images(
        np.stack([red, blue, noise, nudged, darker_red])
    )
    different = max(red_v @ blue_v, red_v @ noise_v, blue_v @ noise_v)
    assert different < 0.2
    assert min(noise_v @ nudged_v, red_v @ darker_v) > 0.9


def test_pixel_embedder_takes_any_frame_size() -> None:
    rng = np.random.default_rng(1)
    for height, width in ((1, 1), (5, 7), (17, 300), (90, 160)):
        vectors = PixelEmbedder().embed_images(rng.integers(0, 256, (2, height, width, 3), dtype=np.uint8))
        assert_unit_rows(vectors, 2, PixelEmbedder.dim)


def test_pixel_embedder_refuses_text_saying_how_to_add_a_model() -> None:
    with pytest.raises(EmbedderError) as excinfo:
        PixelEmbedder().embed_texts(["a red car"])
    message = one_line_error(excinfo)
    assert "cannot embed text" in message
    assert "save_pretrained" in message and "--embedder checkpoints/NAME" in message


@pytest.mark.parametrize(
    "bad",
    [np.zeros((2, 8, 8), np.uint8), np.zeros((1, 8, 8, 4), np.uint8), np.zeros((1, 8, 8, 3), np.float32)],
)
def test_embedders_refuse_arrays_that_are_not_rgb_frames(bad: npt.NDArray[Any]) -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        PixelEmbedder().embed_images(bad)


# -- CLIP / SigLIP through transformers --------------------------------------------------------------


def test_clip_image_embeddings(tiny_clip: ImageEmbedder, frames: npt.NDArray[np.uint8]) -> None:
    vectors = tiny_clip.embed_images(frames)
    assert_unit_rows(vectors, len(frames), 16)
    assert tiny_clip.dim == 16
    assert np.array_equal(vectors, tiny_clip.embed_images(frames))
    one_by_one = np.concatenate([tiny_clip.embed_images(frames[i : i + 1]) for i in range(len(frames))])
    assert np.allclose(vectors, one_by_one, atol=1e-5)
    assert tiny_clip.embed_images(frames[:0]).shape == (0, 16)
    similarity = vectors @ vectors.T
    assert similarity[0, 3] < 0.999  # noise and a solid colour do not collapse to one vector


def test_clip_text_embeddings(tiny_clip: ImageEmbedder) -> None:
    texts = ["a red cat", "a dog", "a very long caption " * 20, "ünïcode & symbols!"]
    vectors = tiny_clip.embed_texts(texts)
    assert_unit_rows(vectors, len(texts), tiny_clip.dim)
    one_by_one = np.concatenate([tiny_clip.embed_texts([text]) for text in texts])
    assert np.allclose(vectors, one_by_one, atol=1e-5)
    assert vectors[0] @ vectors[1] < 0.999
    assert tiny_clip.embed_texts([]).shape == (0, tiny_clip.dim)


def test_clip_id_names_model_preprocessing_and_dtype(
    tiny_clip: ImageEmbedder, tiny_clip_dir: Path, tmp_path: Path
) -> None:
    assert tiny_clip.id.startswith("clip:tiny-clip@")
    assert tiny_clip.id.endswith(":32px-crop:float32")
    retrained = load_embedder(save_tiny_model(tmp_path / "tiny-clip", seed=1), EmbedOptions(device="cpu"))
    assert retrained.id != tiny_clip.id  # same folder name, other weights
    bf16 = load_embedder(tiny_clip_dir, EmbedOptions(device="cpu", dtype="bfloat16"))
    assert bf16.id.endswith(":bfloat16")
    assert bf16.embed_images(np.zeros((1, 32, 32, 3), np.uint8)).dtype == np.float32


def test_siglip_folder_loads_with_its_own_preprocessing(
    tmp_path: Path, frames: npt.NDArray[np.uint8]
) -> None:
    siglip = load_embedder(save_tiny_model(tmp_path / "tiny-siglip", "siglip"), EmbedOptions(device="cpu"))
    assert siglip.id.startswith("siglip:tiny-siglip@")
    assert siglip.id.endswith(":32px-squash:float32")
    assert_unit_rows(siglip.embed_images(frames), len(frames), 32)
    assert_unit_rows(siglip.embed_texts(["a red cat", "a dog"]), 2, 32)


def test_preprocessor_settings_come_from_the_folder(
    tiny_clip: ImageEmbedder,
    tiny_clip_dir: Path,
    tmp_path: Path,
    frames: npt.NDArray[np.uint8],
    caplog: pytest.LogCaptureFixture,
) -> None:
    edited = Path(shutil.copytree(tiny_clip_dir, tmp_path / "tiny-clip"))
    (edited / "preprocessor_config.json").write_text(json.dumps({"image_mean": 0.5, "image_std": 0.5}))
    changed = load_embedder(edited, EmbedOptions(device="cpu"))
    assert changed.id != tiny_clip.id
    assert not np.allclose(changed.embed_images(frames), tiny_clip.embed_images(frames), atol=1e-3)
    (edited / "preprocessor_config.json").unlink()
    with caplog.at_level(logging.WARNING, logger="videoqa"):
        fallback = load_embedder(edited, EmbedOptions(device="cpu"))
    assert "no preprocessor_config.json" in caplog.text
    # Without the file, CLIP's standard constants apply: the same numbers as the original folder's file.
    assert np.allclose(fallback.embed_images(frames), tiny_clip.embed_images(frames), atol=1e-6)


def test_registered_name_is_read_from_checkpoints(
    tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(tiny_clip_dir, tmp_path / "checkpoints" / "clip-vit-b32")
    monkeypatch.chdir(tmp_path)
    embedder = load_embedder("clip-vit-b32", EmbedOptions(device="cpu"))
    assert embedder.id.startswith("clip:clip-vit-b32@")


def test_image_preprocess_crops_the_middle_or_squashes() -> None:
    wide = np.zeros((1, 32, 96, 3), dtype=np.uint8)
    wide[:, :, 32:64] = (255, 0, 0)  # a red middle third between black sides
    crop = ImagePreprocess(32, (0.0,) * 3, (1.0,) * 3, center_crop=True)(torch.tensor(wide))
    assert crop.shape == (1, 3, 32, 32)
    assert torch.allclose(crop[0, 0], torch.ones(32, 32), atol=1e-3) and crop[0, 1:].abs().max() < 1e-3
    squash = ImagePreprocess(16, (0.5,) * 3, (0.5,) * 3, center_crop=False)(torch.tensor(wide))
    assert squash.shape == (1, 3, 16, 16)
    assert squash[0, 0, :, 0].max() < -0.99 and squash[0, 0, :, 8].min() > 0.99  # black sides survive


# -- errors a user can act on ------------------------------------------------------------------------


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError) as excinfo:
        load_embedder(tmp_path / "nowhere")
    message = one_line_error(excinfo)
    assert "nowhere: no such folder" in message and "save_pretrained" in message and "pixel" in message


def test_folder_without_a_model(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(EmbedderError) as excinfo:
        load_embedder(tmp_path)
    assert "no config.json" in one_line_error(excinfo)


def test_file_instead_of_folder(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\0" * 16)
    with pytest.raises(EmbedderError) as excinfo:
        load_embedder(weights)
    assert "not a folder" in one_line_error(excinfo)


def test_pickled_weights_are_refused(tiny_clip_dir: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_clip_dir, tmp_path / "pickled"))
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    with pytest.raises(EmbedderError) as excinfo:
        load_embedder(folder)
    assert "no .safetensors weights" in one_line_error(excinfo)


def test_folder_without_a_tokenizer_is_refused(tiny_clip_dir: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_clip_dir, tmp_path / "no-tokenizer"))
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).unlink()
    with pytest.raises(EmbedderError) as excinfo:
        load_embedder(folder)
    assert "no tokenizer" in one_line_error(excinfo)


def test_damaged_weights_are_reported(tiny_clip_dir: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(tiny_clip_dir, tmp_path / "damaged"))
    (folder / "model.safetensors").write_bytes(b"not safetensors" * 4)
    with pytest.raises(EmbedderError) as excinfo:
        load_embedder(folder, EmbedOptions(device="cpu"))
    assert "cannot load the model" in one_line_error(excinfo)


def test_other_model_types_are_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(EmbedderError) as excinfo:
        load_embedder(tmp_path)
    message = one_line_error(excinfo)
    assert "'bert'" in message and "clip" in message and "siglip" in message


def test_hub_model_offline_names_the_folder_to_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    for name, folder in (
        ("clip-vit-b32", "checkpoints/clip-vit-b32/"),
        ("hf-hub:videoqa-tests/missing-model", "checkpoints/missing-model/"),
    ):
        with pytest.raises(EmbedderError) as excinfo:
            load_embedder(name)
        message = one_line_error(excinfo)
        assert "cannot download" in message and folder in message and "save_pretrained" in message


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_absent_device_is_refused(device: str, tiny_clip_dir: Path) -> None:
    from videoqa.visual.embed.clip import resolve_device

    if torch.cuda.is_available() if device == "cuda" else torch.backends.mps.is_available():
        pytest.skip(f"this machine has {device}")
    assert resolve_device("auto").type == "cpu"
    with pytest.raises(EmbedderError) as excinfo:
        load_embedder(tiny_clip_dir, EmbedOptions(device=device))
    assert f"device '{device}' is not available" in one_line_error(excinfo)


# -- out-of-memory back-off ------------------------------------------------------------------------


def oom_above(limit: int, calls: list[tuple[int, int]]) -> Any:
    """A batch step that runs out of CUDA memory on batches larger than ``limit``."""

    def step(start: int, stop: int) -> list[int]:
        calls.append((start, stop))
        if stop - start > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return list(range(start, stop))

    return step


def test_batch_backoff_halves_until_batches_fit(caplog: pytest.LogCaptureFixture) -> None:
    backoff = BatchBackoff(8)
    calls: list[tuple[int, int]] = []
    with caplog.at_level(logging.WARNING, logger="videoqa"):
        results = backoff.map(oom_above(3, calls), 11)
    assert [item for batch in results for item in batch] == list(range(11))
    assert backoff.batch_size == 2
    assert calls[:3] == [(0, 8), (0, 4), (0, 2)]
    assert "out of GPU memory" in caplog.text
    calls.clear()
    assert backoff.map(oom_above(3, calls), 3) == [[0, 1], [2]]  # the smaller size is kept
    assert calls == [(0, 2), (2, 3)]


def test_batch_backoff_gives_up_at_one() -> None:
    with pytest.raises(EmbedderError, match="even one item at a time"):
        BatchBackoff(4).map(oom_above(0, []), 5)


def test_batch_backoff_passes_other_errors_through() -> None:
    def broken(start: int, stop: int) -> None:
        raise RuntimeError("a bug, not memory")

    with pytest.raises(RuntimeError, match="a bug"):
        BatchBackoff(4).map(broken, 5)


# -- GPU -------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_half_precision_matches_cpu(
    tiny_clip: ImageEmbedder, tiny_clip_dir: Path, frames: npt.NDArray[np.uint8]
) -> None:
    gpu = load_embedder(tiny_clip_dir)  # auto: cuda, float16
    assert gpu.id.endswith(":float16")
    assert np.allclose(gpu.embed_images(frames), tiny_clip.embed_images(frames), atol=2e-2)
    assert np.allclose(gpu.embed_texts(["a red cat"]), tiny_clip.embed_texts(["a red cat"]), atol=2e-2)
