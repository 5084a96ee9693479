"""``videoqa doctor``: check every part the user's commands need, on this machine, and say how to fix
what does not work.

Each check does the real thing on a small input it makes itself (a generated clip, a spoken sentence
shipped with videoqa, a rendered sign) with the models the commands use by default, and returns one
``CheckResult``. Checks that load native code that can crash the process (llama.cpp) run it in a child
process. Nothing is downloaded: a missing model is reported with the command that fetches it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from videoqa.errors import VideoqaError
from videoqa.store import models

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# espeak-ng -v en-us -s 140 "Please open the red door and walk to the kitchen.", 16 kHz mono Opus
SPOKEN_SAMPLE = "doctor-speech.ogg"
SPOKEN_WORDS = ("open", "red", "door", "kitchen")  # all but one must be heard
SIGN_TEXT = "EXIT 42"
MIN_FREE_BYTES = 2 * 2**30  # an hour of video's cache entries plus a model or two
INSTALL_COMMAND = ".venv/bin/pip install -c constraints/cpu.txt -e . (see README: Quick start)"


@dataclass(frozen=True)
class CheckResult:
    """One part of the machine: whether it works, what was seen, and the command that fixes it."""

    part: str
    ok: bool
    detail: str
    fix: str = ""


Check = Callable[[], CheckResult]


def run_checks(checks: tuple[tuple[str, Check], ...] | None = None) -> list[CheckResult]:
    """Run every check; one that fails unexpectedly becomes a problem line, never an exception."""
    results = []
    for part, check in checks or CHECKS:
        try:
            results.append(check())
        except Exception as exc:  # a diagnosis must report every broken part, whatever it raises
            results.append(CheckResult(part, False, f"{type(exc).__name__}: {exc}", _fix_for(part)))
    return results


def _fix_for(part: str) -> str:
    return {"models": "videoqa models pull " + " ".join(default_models())}.get(part, INSTALL_COMMAND)


def default_models() -> tuple[str, ...]:
    """The model-store models the commands use when no model option is given."""
    from videoqa.channels.speech import SpeechOptions
    from videoqa.channels.text_embedder import DEFAULT_TEXT_EMBEDDER

    return (answering_model(), DEFAULT_TEXT_EMBEDDER, SpeechOptions().model)


def answering_model() -> str:
    """The store model ``ask`` answers with: $VIDEOQA_MODEL when it names a GGUF store model, else the
    default (a file or a VLM named there is the user's own, not the store's to check)."""
    chosen = models.REGISTRY.get(models.default_llm())
    return chosen.name if chosen is not None and chosen.format == "gguf" else models.DEFAULT_LLM


# --- decoding ----------------------------------------------------------------------------------------


def check_decoding() -> CheckResult:
    """ffmpeg makes a 2-s clip; PyAV and decord each read frames from it."""
    part = "video decoding"
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        return CheckResult(
            part, False, "ffmpeg is not on PATH", "apt-get install ffmpeg (macOS: brew install ffmpeg)"
        )
    version = (
        subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, check=False, timeout=30)
        .stdout.split("\n", 1)[0]
        .split(" Copyright")[0]
    )
    with tempfile.TemporaryDirectory(prefix="videoqa-doctor-") as folder:
        clip = Path(folder) / "clip.mp4"
        made = subprocess.run(
            [
                ffmpeg,
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=160x90:rate=10",
                "-t",
                "2",
                "-pix_fmt",
                "yuv420p",
                str(clip),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if made.returncode != 0:
            why = made.stderr.strip()[-200:]
            return CheckResult(
                part,
                False,
                f"{version} cannot encode a test clip: {why}",
                "install an ffmpeg build with an H.264 or MPEG-4 encoder",
            )
        counts = {backend: _frames_read(clip, backend) for backend in ("pyav", "decord")}
    broken = [f"{backend}: {count}" for backend, count in counts.items() if isinstance(count, str)]
    if broken:
        return CheckResult(part, False, f"{version}; " + "; ".join(broken), INSTALL_COMMAND)
    return CheckResult(
        part,
        True,
        f"{version}; PyAV read {counts['pyav']} and decord {counts['decord']} frames of a generated clip",
    )


def _frames_read(clip: Path, backend: str) -> int | str:
    """Frames read at 5 fps by one backend, or why it could not read them."""
    from videoqa.media.video import SamplingOptions, plan_times, probe, read_frames

    options = SamplingOptions(fps=5.0, backend=backend)
    info = probe(clip)
    try:
        return sum(len(batch.timestamps_s) for batch in read_frames(info, plan_times(info, options), options))
    except VideoqaError as exc:
        return str(exc)


# --- models ------------------------------------------------------------------------------------------


def check_models() -> CheckResult:
    """Every default model is in the store and every file matches its sha256."""
    missing, damaged = [], []
    for name in default_models():
        if not models.installed(name):
            missing.append(name)
            continue
        damaged += [f"{name}: {problem}" for problem in models.verify(name)]
    names = ", ".join(default_models())
    if missing or damaged:
        pull = " ".join(missing + [problem.split(":")[0] for problem in damaged])
        return CheckResult(
            "models",
            False,
            "; ".join([f"not installed: {', '.join(missing)}"] * bool(missing) + damaged),
            f"videoqa models pull {pull}",
        )
    return CheckResult("models", True, f"{names}: present, every file matches its sha256")


# --- llama.cpp ---------------------------------------------------------------------------------------


def check_llama_build() -> CheckResult:
    """The installed llama.cpp was built without AMX and for instruction sets this CPU has."""
    from videoqa.llm import runtime

    try:
        features = runtime.compiled_features(runtime.system_info())
    except RuntimeError as exc:
        return CheckResult("llama.cpp build", False, str(exc), runtime.REINSTALL_COMMAND)
    crashing = runtime.crash_prone(features)
    missing = runtime.missing_on_this_cpu(features)
    shown = ", ".join(sorted(features)) or "none reported"
    part = "llama.cpp build"
    if crashing:
        return CheckResult(
            part,
            False,
            f"compiled with {', '.join(crashing)}: llama.cpp crashes on the first answer on CPUs with AMX",
            runtime.REINSTALL_COMMAND,
        )
    if missing:
        # An older CPU without AVX2: a build for this very CPU is the one that runs (it has no AMX).
        return CheckResult(
            part,
            False,
            f"compiled for {', '.join(missing)}, which this CPU lacks (it would "
            "stop with an illegal instruction)",
            runtime.NATIVE_REINSTALL_COMMAND,
        )
    return CheckResult(part, True, f"llama-cpp-python {_version('llama_cpp')}, CPU features: {shown}")


def check_llama_generate() -> CheckResult:
    """The default model generates a few tokens, in a child process (a crash is reported, not suffered)."""
    from videoqa.llm import runtime

    name = answering_model()
    if not models.installed(name):
        return CheckResult(
            "llama.cpp generate", False, f"{name} is not installed", f"videoqa models pull {name}"
        )
    result = runtime.generate_in_child(models.main_file(name))
    if not result.ok:
        return CheckResult(
            "llama.cpp generate", False, f"{name}: {result.problem}", runtime.REINSTALL_COMMAND
        )
    return CheckResult(
        "llama.cpp generate", True, f"{name} wrote {result.text.strip()[:40]!r} in {result.seconds:.1f} s"
    )


# --- speech and screen text --------------------------------------------------------------------------


def check_speech() -> CheckResult:
    """The default speech model transcribes a spoken sentence shipped with videoqa."""
    from videoqa.channels.speech import SpeechOptions, load_transcriber

    options = SpeechOptions()
    if not models.installed(options.model):
        return CheckResult(
            "speech", False, f"{options.model} is not installed", f"videoqa models pull {options.model}"
        )
    transcriber = load_transcriber(options)
    audio = _spoken_sample()
    heard = " ".join(segment.text for segment in transcriber.transcribe(audio)).strip()
    missed = [word for word in SPOKEN_WORDS if word not in heard.lower()]
    if len(missed) > 1:
        return CheckResult(
            "speech",
            False,
            f"{options.model} heard {heard!r}, missing {', '.join(missed)}",
            f"videoqa models pull {options.model}",
        )
    return CheckResult("speech", True, f"{options.model} heard {heard!r}")


def _spoken_sample() -> npt.NDArray[np.float32]:
    """The shipped sentence as 16 kHz mono float32 samples (decoded with PyAV)."""
    import av
    import numpy as np

    from videoqa.channels.speech import SAMPLE_RATE_HZ

    sample = resources.files("videoqa.cli").joinpath(SPOKEN_SAMPLE)
    pieces = []
    with resources.as_file(sample) as path, av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE_HZ)
        for frame in container.decode(audio=0):
            pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    return np.concatenate(pieces).astype(np.float32)


def check_screen_text() -> CheckResult:
    """The default OCR engine reads a sign rendered here."""
    from videoqa.channels.ocr import OcrOptions, join_lines, load_reader

    reader = load_reader(OcrOptions())
    lines = reader.read(_rendered_sign()[None])[0]
    read = join_lines(lines)
    if SIGN_TEXT.replace(" ", "") not in read.upper().replace(" ", ""):
        return CheckResult(
            "screen text", False, f"read {read!r} from a sign saying {SIGN_TEXT!r}", INSTALL_COMMAND
        )
    return CheckResult("screen text", True, f"{reader.id.split('-')[0]} read {read!r} from a rendered sign")


def _rendered_sign() -> npt.NDArray[np.uint8]:
    """A 640x360 dark frame with SIGN_TEXT in large white letters, as (h, w, 3) uint8."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (640, 360), (20, 40, 70))
    draw = ImageDraw.Draw(image)
    try:
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype("DejaVuSans-Bold.ttf", 72)
    except OSError:  # no DejaVu on this machine: Pillow's own scalable font
        font = ImageFont.load_default(size=72)
    draw.text((320, 180), SIGN_TEXT, fill=(255, 255, 255), font=font, anchor="mm")
    return np.asarray(image, dtype=np.uint8)


# --- torch and disk ----------------------------------------------------------------------------------


def check_torch_device() -> CheckResult:
    """Which device ``--device auto`` picks: CUDA, MPS or the CPU (each is fine; this only tells)."""
    import torch

    if torch.cuda.is_available():
        where = f"cuda ({torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s))"
    elif torch.backends.mps.is_available():
        where = "mps (Apple GPU)"
    else:
        cuda = torch.version.cuda
        where = "cpu (CPU-only build)" if cuda is None else f"cpu (CUDA {cuda} build, no GPU seen)"
    return CheckResult("torch device", True, f"torch {torch.__version__}: --device auto uses {where}")


def check_disk() -> CheckResult:
    """The index cache folder can be written and has room."""
    from videoqa.store.cache import cache_dir

    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as exc:
        return CheckResult(
            "cache folder",
            False,
            f"{folder}: cannot write there ({exc.strerror or exc})",
            "export VIDEOQA_CACHE=/a/writable/folder",
        )
    free = shutil.disk_usage(folder).free
    if free < MIN_FREE_BYTES:
        return CheckResult(
            "cache folder",
            False,
            f"{folder}: only {free / 2**30:.1f} GiB free",
            "free some space, or export VIDEOQA_CACHE=/a/folder/with/room",
        )
    return CheckResult("cache folder", True, f"{folder}: writable, {free / 2**30:.0f} GiB free")


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module.replace("_", "-") + ("-python" if module == "llama_cpp" else ""))
    except PackageNotFoundError:
        return "(version unknown)"


CHECKS: tuple[tuple[str, Check], ...] = (
    ("video decoding", check_decoding),
    ("models", check_models),
    ("llama.cpp build", check_llama_build),
    ("llama.cpp generate", check_llama_generate),
    ("speech", check_speech),
    ("screen text", check_screen_text),
    ("torch device", check_torch_device),
    ("cache folder", check_disk),
)
