"""Fuzzing: damaged, odd and wrong files through the real CLI, each run in its own process.

Every file is made here from one small generated clip, with seeded mutations (flipped bytes, cuts,
zeroed headers, shuffled chunks, ...), so a failure names a case that the next run makes again. For each,
``videoqa info`` and then (when the file opens) ``videoqa scenes`` with the pixel embedder, which reads
frames the way ``ask`` does, must end with exit code 0 or 2, print nothing on stderr but ``warning: ...``
and ``error: ...`` lines (at most one error), no traceback and no "internal error", within a time-out.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from videoqa.host.cores import available_cores

from helpers import ffmpeg

# A run that takes this long has hung: the slowest case takes ~2 s on a loaded 2-core machine, and the
# product's own stall limits (60 s) are far beyond it.
RUN_TIMEOUT_S = 30
# Each kind of trouble (decoder switch, damaged stretches, unreadable tail, truncation, audio) is told
# once per run, so a run prints a handful of lines at most, never one per damaged packet.
MAX_STDERR_LINES = 4
SWEEP_SIZE = 100  # seeded byte mutations in the slow sweep: about 2 minutes on one loaded core


@dataclass(frozen=True)
class Clips:
    """The clean files every case starts from: 4 s, 160x90, 10 fps H.264 with AAC audio."""

    mp4: Path  # index (moov) at the end, as ffmpeg writes by default
    faststart: Path  # index up front: a cut-off copy still opens
    mkv: Path
    folder: Path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    folder = tmp_path_factory.mktemp("fuzz-clips")
    mp4, faststart, mkv = folder / "clip.mp4", folder / "faststart.mp4", folder / "clip.mkv"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x90:rate=10",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=16000",
        "-t",
        "4",
        "-c:v",
        "libx264",
        "-g",
        "10",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "32k",
        "-shortest",
        str(mp4),
    )
    ffmpeg("-i", str(mp4), "-c", "copy", "-movflags", "+faststart", str(faststart))
    ffmpeg("-i", str(mp4), "-c", "copy", str(mkv))
    return Clips(mp4=mp4, faststart=faststart, mkv=mkv, folder=folder)


# -- mutations: bytes in, bytes out, every choice from the seeded generator -------------------------


def flip_bytes(data: bytes, rng: random.Random, count: int, region: tuple[float, float] = (0, 1)) -> bytes:
    """XOR ``count`` bytes inside the ``region`` (fractions of the file) with non-zero values."""
    out = bytearray(data)
    low, high = int(region[0] * len(out)), max(int(region[0] * len(out)) + 1, int(region[1] * len(out)))
    for _ in range(count):
        out[rng.randrange(low, high)] ^= rng.randrange(1, 256)
    return bytes(out)


def zero_block(data: bytes, rng: random.Random, size: int) -> bytes:
    start = rng.randrange(len(data))
    return data[:start] + bytes(len(data[start : start + size])) + data[start + size :]


def shuffle_chunks(data: bytes, rng: random.Random, chunk: int = 1024, span: int = 8) -> bytes:
    """Shuffle ``span`` neighbouring chunks somewhere in the file (blocks written out of order)."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    first = rng.randrange(max(1, len(pieces) - span))
    window = pieces[first : first + span]
    rng.shuffle(window)
    pieces[first : first + span] = window
    return b"".join(pieces)


def insert_junk(data: bytes, rng: random.Random, size: int) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.randbytes(size) + data[at:]


def duplicate_chunk(data: bytes, rng: random.Random, size: int) -> bytes:
    at = rng.randrange(len(data) - size)
    return data[: at + size] + data[at : at + size] + data[at + size :]


def zero_timescale(source: Path, target: Path, boxes: tuple[bytes, ...]) -> Path:
    """Copy an mp4 with the timescale of its movie (mvhd) and/or track media (mdhd) headers set to 0."""
    data = bytearray(source.read_bytes())
    for box in boxes:
        at = data.find(box)
        assert at > 0, box
        version = data[at + 4]
        # type, version+flags, then creation and modification times: 4 bytes each, 8 in version 1
        offset = at + 8 + (16 if version == 1 else 8)
        assert struct.unpack(">I", data[offset : offset + 4])[0] > 0
        data[offset : offset + 4] = bytes(4)
    target.write_bytes(data)
    return target


# -- the cases ----------------------------------------------------------------------------------------

Maker = Callable[[Clips, Path], Path]  # (clean clips, empty folder) -> the path to give the CLI


def mutant(
    source: str, name: str, change: Callable[[bytes, random.Random], bytes], suffix: str | None = None
) -> Maker:
    """A case: ``change`` applied to clip ``source`` with a generator seeded by the case's name."""

    def make(clips: Clips, folder: Path) -> Path:
        original: Path = getattr(clips, source)
        path = folder / f"{name}{suffix or original.suffix}"
        path.write_bytes(change(original.read_bytes(), random.Random(name)))
        return path

    return make


def cut(fraction: float) -> Callable[[bytes, random.Random], bytes]:
    return lambda data, rng: data[: int(len(data) * fraction)]


def flipped(count: int) -> Callable[[bytes, random.Random], bytes]:
    return lambda data, rng: flip_bytes(data, rng, count)


def generated(name: str, *args: str) -> Maker:
    """A case made by ffmpeg from generated sources (``OUT`` stands for the output path)."""

    def make(clips: Clips, folder: Path) -> Path:
        path = folder / name
        ffmpeg(*(str(path) if arg == "OUT" else arg for arg in args))
        return path

    return make


def special(build: Callable[[Path], object], name: str = "clip.mp4") -> Maker:
    """A case that is not a video file at all: ``build`` makes whatever ``name`` should be."""

    def make(clips: Clips, folder: Path) -> Path:
        build(folder / name)
        return folder / name

    return make


def _copy_named(source: str, name: str) -> Maker:
    def make(clips: Clips, folder: Path) -> Path:
        (folder / name).write_bytes(getattr(clips, source).read_bytes())
        return folder / name

    return make


def _zero_timescales(boxes: tuple[bytes, ...]) -> Maker:
    return lambda clips, folder: zero_timescale(clips.mp4, folder / "zero.mp4", boxes)


TESTSRC = ("-f", "lavfi", "-i")
# Files that are odd but whole: both commands must succeed on them.
READABLE: dict[str, Maker] = {
    "one-frame": generated(
        "one.mp4", *TESTSRC, "testsrc2=size=160x90:rate=10", "-frames:v", "1", "-pix_fmt", "yuv420p", "OUT"
    ),
    "2x2": generated(
        "tiny.mp4", *TESTSRC, "testsrc2=size=2x2:rate=10", "-t", "1", "-pix_fmt", "yuv420p", "OUT"
    ),
    "0.2-s": generated(
        "blink.mp4", *TESTSRC, "testsrc2=size=160x90:rate=25", "-t", "0.2", "-pix_fmt", "yuv420p", "OUT"
    ),
    "vfr-mkv": generated(
        "vfr.mkv",
        *TESTSRC,
        "color=red:size=64x64:rate=10:duration=1",
        *TESTSRC,
        "color=blue:size=64x64:rate=30:duration=1",
        "-filter_complex",
        "[0][1]concat=n=2:v=1",
        "-fps_mode",
        "vfr",
        "-pix_fmt",
        "yuv420p",
        "OUT",
    ),
    "mp4-named-mkv": _copy_named("mp4", "clip.mkv"),
    "mkv-named-mp4": _copy_named("mkv", "clip.mp4"),
    "mp4-named-txt": _copy_named("mp4", "clip.txt"),
    "zero-track-timescale": _zero_timescales((b"mdhd",)),
}
# Files that are damaged or not videos: each command either reads them or says why in one line.
DAMAGED: dict[str, Maker] = {
    **{f"flip-{count}": mutant("mp4", f"flip-{count}", flipped(count)) for count in (1, 8, 64, 512)},
    **{
        f"flip-index-{seed}": mutant(
            "mp4", f"flip-index-{seed}", lambda d, r: flip_bytes(d, r, 4, region=(0.9, 1.0))
        )
        for seed in (1, 2)
    },
    **{f"cut-{fraction}": mutant("mp4", f"cut-{fraction}", cut(fraction)) for fraction in (0.1, 0.5, 0.999)},
    **{
        f"faststart-cut-{fraction}": mutant("faststart", f"faststart-cut-{fraction}", cut(fraction))
        for fraction in (0.3, 0.8)
    },
    "first-1000-bytes": mutant("mp4", "first-1000-bytes", lambda d, r: d[:1000]),
    "zeroed-header-64": mutant("mp4", "zeroed-header-64", lambda d, r: bytes(64) + d[64:]),
    "zeroed-block-4k": mutant("mp4", "zeroed-block-4k", lambda d, r: zero_block(d, r, 4096)),
    "shuffled-chunks": mutant("mp4", "shuffled-chunks", lambda d, r: shuffle_chunks(d, r)),
    "faststart-shuffled": mutant("faststart", "faststart-shuffled", lambda d, r: shuffle_chunks(d, r)),
    "junk-inserted": mutant("mp4", "junk-inserted", lambda d, r: insert_junk(d, r, 3000)),
    "chunk-duplicated": mutant("mp4", "chunk-duplicated", lambda d, r: duplicate_chunk(d, r, 2000)),
    "mkv-flip-64": mutant("mkv", "mkv-flip-64", lambda d, r: flip_bytes(d, r, 64)),
    "mkv-cut-0.6": mutant("mkv", "mkv-cut-0.6", cut(0.6)),
    "mkv-zeroed-block": mutant("mkv", "mkv-zeroed-block", lambda d, r: zero_block(d, r, 4096)),
    "zero-movie-and-track-timescale": _zero_timescales((b"mdhd", b"mvhd")),
    "random-bytes": mutant("mp4", "random-bytes", lambda d, r: r.randbytes(50_000)),
    "audio-only": generated("song.mp4", "-f", "lavfi", "-i", "sine=frequency=440", "-t", "2", "OUT"),
    "png-named-mp4": generated(
        "photo.mp4",
        *TESTSRC,
        "testsrc2=size=64x64:rate=1",
        "-frames:v",
        "1",
        "-f",
        "image2",
        "-c:v",
        "png",
        "OUT",
    ),
    "empty": special(lambda path: path.touch()),
    "text": special(lambda path: path.write_text("meeting notes, not a video\n" * 40)),
    "fifo": special(os.mkfifo),
    "dangling-symlink": special(lambda path: path.symlink_to(path.parent / "gone.mp4")),
    "directory": special(lambda path: path.mkdir(), name="videos"),
}


# -- running the CLI ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def run_videoqa(home: Path, *args: str) -> Run:
    """``python -m videoqa ARGS`` in a process of its own (a native crash cannot take pytest down),
    with caches and state under ``home``."""
    env = {
        **os.environ,
        "VIDEOQA_CACHE": str(home / "cache"),
        "XDG_CACHE_HOME": str(home / "xdg-cache"),
        "XDG_DATA_HOME": str(home / "xdg-data"),
        "VIDEOQA_EMBEDDER": "pixel",
    }
    env.pop("VIDEOQA_DEBUG", None)  # tracebacks are what this looks for; none must reach the user
    try:
        done = subprocess.run(
            [sys.executable, "-m", "videoqa", *args],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"videoqa {' '.join(args)} hung (no end within {RUN_TIMEOUT_S} s)")
    return Run(done.returncode, done.stdout, done.stderr)


def check_contract(run: Run, what: str) -> None:
    """Exit 0 or 2, a few one-line warnings and errors on stderr, one error exactly when it exits 2."""
    assert run.code in (0, 2), f"{what}: exit code {run.code}\n{run.stderr}"
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, f"{what}:\n{run.stderr}"
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) <= MAX_STDERR_LINES, f"{what}: {len(lines)} lines on stderr\n{run.stderr}"
    odd = [line for line in lines if not line.startswith(("warning: ", "error: "))]
    assert not odd, f"{what}: stderr lines that are not warnings or errors: {odd}"
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == (1 if run.code == 2 else 0), f"{what}: {errors}"


def exercise(make: Maker, clips: Clips, folder: Path) -> tuple[Run, Run | None]:
    """Run ``info`` and, when it reads the file, ``scenes`` on the case; both must keep the contract."""
    path = make(clips, folder)
    info = run_videoqa(folder, "info", str(path))
    check_contract(info, f"info {path.name}")
    if info.code != 0:
        return info, None
    scenes = run_videoqa(folder, "scenes", str(path), "--embedder", "pixel")
    check_contract(scenes, f"scenes {path.name}")
    return info, scenes


@pytest.mark.parametrize("case", sorted(READABLE))
def test_odd_but_whole_files_are_read(case: str, clips: Clips, tmp_path: Path) -> None:
    info, scenes = exercise(READABLE[case], clips, tmp_path)
    assert info.code == 0 and scenes is not None and scenes.code == 0, (info.stderr, scenes)
    assert scenes.stdout.strip(), "no scene listed"


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_files_get_one_clear_line(case: str, clips: Clips, tmp_path: Path) -> None:
    exercise(DAMAGED[case], clips, tmp_path)


@pytest.mark.slow
def test_sweep_of_seeded_mutations(clips: Clips, tmp_path: Path) -> None:
    """A wider sweep: SWEEP_SIZE mutants of the three clips, four kinds of damage in turn.

    Each case runs in processes of its own with its own folder, so cases run side by side, one per
    core: the same cases in about half the time on 2 cores."""
    changes: list[Callable[[bytes, random.Random], bytes]] = [
        lambda d, r: flip_bytes(d, r, r.choice((1, 8, 64, 512))),
        lambda d, r: d[: r.randrange(len(d))],
        lambda d, r: zero_block(d, r, r.choice((16, 256, 4096))),
        lambda d, r: shuffle_chunks(d, r),
    ]

    def case(number: int) -> None:
        source = ("mp4", "mkv", "faststart")[number % 3]
        name = f"sweep-{number}"
        folder = tmp_path / name
        folder.mkdir()
        exercise(mutant(source, name, changes[number % len(changes)]), clips, folder)

    with ThreadPoolExecutor(max_workers=available_cores()) as pool:
        list(pool.map(case, range(SWEEP_SIZE)))  # a case's failure is raised here
