"""Frame sampling: real presentation times, both decoders agreeing, rotation, VFR, fallback, stalls."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from test_fuzz import zero_timescale

from videoqa.cli.main import _info_text
from videoqa.errors import VideoError
from videoqa.media import decoders, video
from videoqa.media.decoders import (
    MAX_BATCH_BYTES,
    DecodeRequest,
    DecoderFailure,
    PyAVDecoder,
    run_with_watchdog,
)
from videoqa.media.video import SamplingOptions, frame_at, plan_times, probe, read_frames, sample_frames
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthVideo
from videoqa.types import FrameBatch
from videoqa.visual.index import index_video

from helpers import ThumbnailEmbedder, assert_one_line_error, ffmpeg, run_cli


def collect(batches: Iterator[FrameBatch]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
    items = list(batches)
    assert items, "no frames"
    return (np.concatenate([b.timestamps_s for b in items]), np.concatenate([b.pixels for b in items]))


def ffmpeg_frame(path: Path, index: int) -> npt.NDArray[np.uint8]:
    """Frame ``index`` as the ffmpeg program decodes it (auto-rotated), as the reference."""
    info = probe(path)
    raw = subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-i",
            str(path),
            "-vf",
            f"select=eq(n\\,{index})",
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(info.height, info.width, 3)


# -- planning ---------------------------------------------------------------------------------------


def test_plan_times_are_interval_middles(narrated: SynthVideo) -> None:
    info = probe(narrated.path)
    assert plan_times(info, SamplingOptions(fps=1)).tolist() == [i + 0.5 for i in range(12)]
    assert len(plan_times(info, SamplingOptions(fps=4))) == 48
    budget = plan_times(info, SamplingOptions(fps=4, max_frames=6))
    assert budget.tolist() == pytest.approx([1, 3, 5, 7, 9, 11])
    window = plan_times(info, SamplingOptions(fps=2, start_s=3.0, end_s=5.0))
    assert window.tolist() == [3.25, 3.75, 4.25, 4.75]


@pytest.mark.parametrize(
    "bad",
    [
        {"fps": 0},
        {"fps": float("nan")},
        {"max_frames": 0},
        {"start_s": -1},
        {"start_s": 5, "end_s": 2},
        {"max_side": 4},
        {"batch_size": 0},
        {"backend": "opencv"},
        {"stall_timeout_s": 0},
    ],
)
def test_sampling_options_are_validated(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SamplingOptions(**bad)  # type: ignore[arg-type]


# -- timestamps and decoders ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["pyav", "decord"])
@pytest.mark.parametrize("fps", [1.0, 4.0])
def test_timestamps_are_real_frame_times(narrated: SynthVideo, backend: str, fps: float) -> None:
    options = SamplingOptions(fps=fps, backend=backend, batch_size=5)
    times, pixels = collect(sample_frames(narrated.path, options))
    targets = plan_times(probe(narrated.path), options)
    assert len(times) == len(targets)
    # Each is the frame shown at its target: a multiple of 1/30 s, at most one frame before it.
    assert np.allclose(times * 30, np.round(times * 30), atol=1e-3)
    assert np.all(times <= targets + 1e-6) and np.all(targets - times < 1 / 30 + 1e-6)
    assert pixels.shape == (len(times), 180, 320, 3) and pixels.dtype == np.uint8


def test_batches_have_the_requested_size(narrated: SynthVideo) -> None:
    sizes = [len(b) for b in sample_frames(narrated.path, SamplingOptions(fps=2, batch_size=5))]
    assert sizes == [5, 5, 5, 5, 4]


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_big_frames_make_smaller_batches(sample: Callable[[str], Path], backend: str) -> None:
    # 1280x720 RGB is 2.6 MiB a frame: a batch holds at most MAX_BATCH_BYTES, whatever batch_size says.
    options = SamplingOptions(fps=4, batch_size=16, backend=backend)
    batches = list(sample_frames(sample("bigbuckbunny.mp4"), options))
    assert [len(b) for b in batches] == [3] * 7
    assert all(b.pixels.nbytes <= MAX_BATCH_BYTES for b in batches)


@pytest.mark.parametrize(
    "name", ["vtest.avi", "tree.avi", "bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"]
)
def test_decoders_agree_on_real_clips(name: str, sample: Callable[[str], Path]) -> None:
    path = sample(name)
    pyav_times, pyav_pixels = collect(sample_frames(path, SamplingOptions(backend="pyav")))
    decord_times, decord_pixels = collect(sample_frames(path, SamplingOptions(backend="decord")))
    np.testing.assert_allclose(pyav_times, decord_times, atol=1e-4)
    assert np.abs(pyav_pixels.astype(int) - decord_pixels).mean() < 1.0


def test_decord_refuses_avi_timestamps_and_auto_still_reads(
    sample: Callable[[str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    path = sample("Megamind.avi")
    with pytest.raises(VideoError, match="implausible frame times"):
        list(sample_frames(path, SamplingOptions(backend="decord")))
    times, _ = collect(sample_frames(path, SamplingOptions()))
    assert len(times) == 11 and times[0] == pytest.approx(0.417, abs=1e-3)


def test_damaged_clip_is_read(sample: Callable[[str], Path]) -> None:
    times, pixels = collect(sample_frames(sample("Megamind_bugy.avi"), SamplingOptions(fps=2)))
    assert len(times) >= 15 and np.all(np.diff(times) > 0)
    assert pixels.std() > 10  # real pictures, not blank frames


def _av1_encoder() -> str | None:
    listed = subprocess.run(
        ["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True, check=True
    ).stdout
    return next((name for name in ("libaom-av1", "libsvtav1") if f" {name} " in listed), None)


@pytest.fixture(scope="module")
def av1_clip(media_dir: Path) -> Path:
    """2 s of AV1 at 10 fps, which FFmpeg decodes with libdav1d (a decoder named unlike the codec)."""
    encoder = _av1_encoder()
    if encoder is None:
        pytest.skip("this ffmpeg has no AV1 encoder (libaom-av1 or libsvtav1)")
    path = media_dir / "av1.mp4"
    speed = ["-cpu-used", "8"] if encoder == "libaom-av1" else ["-preset", "12"]
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=128x72:rate=10",
        "-t",
        "2",
        "-c:v",
        encoder,
        *speed,
        "-crf",
        "40",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    return path


def test_av1_is_read_by_pyav_when_decord_cannot(av1_clip: Path) -> None:
    with pytest.raises(VideoError, match="decord cannot open"):
        list(sample_frames(av1_clip, SamplingOptions(backend="decord")))
    times, _ = collect(sample_frames(av1_clip, SamplingOptions()))
    assert times.tolist() == pytest.approx([0.5, 1.5])


def test_av1_is_named_by_its_codec_not_its_decoder(av1_clip: Path) -> None:
    assert probe(av1_clip).video_codec == "av1"  # FFmpeg decodes it with "libdav1d"


def test_max_side_resizes_keeping_the_aspect_ratio(sample: Callable[[str], Path]) -> None:
    for backend in ("pyav", "decord"):
        _, pixels = collect(
            sample_frames(sample("bigbuckbunny.mp4"), SamplingOptions(max_side=320, backend=backend))
        )
        assert pixels.shape[1:] == (180, 320, 3)


# -- rotation and variable frame rate ---------------------------------------------------------------


@pytest.mark.parametrize("degrees", [90, 180, 270])
@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_rotated_video_comes_out_upright(rotated: dict[int, Path], degrees: int, backend: str) -> None:
    path = rotated[degrees]
    assert probe(path).rotation_deg == degrees
    times, pixels = collect(sample_frames(path, SamplingOptions(fps=1, backend=backend)))
    expected_shape = (160, 90, 3) if degrees in (90, 270) else (90, 160, 3)
    assert pixels.shape[1:] == expected_shape
    for time_s, frame in zip(times, pixels, strict=True):
        reference = ffmpeg_frame(path, round(time_s * 10))
        assert np.abs(frame.astype(int) - reference).mean() < 1.0


def _red_then_blue(path: Path, blue_s: int) -> Path:
    """2 s of red at 10 fps, then ``blue_s`` of blue at 30 fps, kept variable in one file."""
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=red:size=64x64:rate=10:duration=2",
        "-f",
        "lavfi",
        "-i",
        f"color=blue:size=64x64:rate=30:duration={blue_s}",
        "-filter_complex",
        "[0][1]concat=n=2:v=1",
        "-fps_mode",
        "vfr",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    return path


def test_variable_frame_rate_timestamps(media_dir: Path) -> None:
    # 2 s of red at 10 fps, then 2 s of blue at 30 fps, kept variable in one file.
    path = _red_then_blue(media_dir / "vfr.mp4", blue_s=2)
    info = probe(path)
    assert info.variable_fps
    for backend in ("pyav", "decord"):
        times, pixels = collect(sample_frames(path, SamplingOptions(fps=4, backend=backend)))
        assert len(times) == 16
        slow, fast = times[times < 2.0], times[times >= 2.0]
        assert np.allclose(slow * 10, np.round(slow * 10), atol=1e-3)  # on the 10 fps grid
        assert np.allclose((fast - 2.0) * 30, np.round((fast - 2.0) * 30), atol=1e-3)
        red = pixels[:, :, :, 0].mean(axis=(1, 2)) > pixels[:, :, :, 2].mean(axis=(1, 2))
        assert red.tolist() == (times < 2.0).tolist()


# -- single frames, truncation ----------------------------------------------------------------------


def test_frame_at_returns_the_frame_shown_then(narrated: SynthVideo) -> None:
    batch = frame_at(narrated.path, 6.01)
    assert batch.timestamps_s.tolist() == pytest.approx([6.0])
    # The text card (white letters in a dark box, centred) is on screen at 5-7 s, not at 4.5 s.
    during, before = batch.pixels[0, 70:110, 100:220], frame_at(narrated.path, 4.5).pixels[0, 70:110]
    assert (during.max(axis=-1) > 200).any() and (during.max(axis=-1) < 40).any()
    assert not (before.max(axis=-1) > 200).any()
    with pytest.raises(VideoError, match="outside the video"):
        frame_at(narrated.path, 13.0)


def test_truncated_file_yields_the_readable_part(
    narrated: SynthVideo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(narrated.path.read_bytes()[: narrated.path.stat().st_size // 2])
    info = probe(truncated)
    assert info.readable_until_s is not None
    with caplog.at_level(logging.WARNING, logger="videoqa"):
        times, _ = collect(sample_frames(truncated, SamplingOptions(), info))
    assert times[-1] == pytest.approx(info.readable_until_s, abs=1.0)
    assert "looks truncated" in caplog.text


# -- watchdog and fallback --------------------------------------------------------------------------


class HangingDecoder:
    """Never yields: stands in for a decoder stuck inside native code."""

    release = threading.Event()  # replaced for each test by the release_hanging fixture

    def __init__(self, request: DecodeRequest) -> None:
        pass

    def read(self, times_s: npt.NDArray[np.float64]) -> Iterator[FrameBatch]:
        HangingDecoder.release.wait(30)
        yield from ()


class FailsAfterOneBatch:
    """Yields the first batch of the real decoder, then fails."""

    def __init__(self, request: DecodeRequest) -> None:
        self._real = PyAVDecoder(request)

    def read(self, times_s: npt.NDArray[np.float64]) -> Iterator[FrameBatch]:
        yield next(iter(self._real.read(times_s)))
        raise DecoderFailure("simulated damage")


@pytest.fixture
def release_hanging() -> Iterator[None]:
    HangingDecoder.release = threading.Event()
    yield
    HangingDecoder.release.set()  # lets the abandoned worker thread finish


def test_stalled_decoder_hands_over(
    narrated: SynthVideo,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    release_hanging: None,
) -> None:
    # Only the hanging decoder gets the short limit: the one the product applies to every decoder would
    # also hold decord to 0.5 s for opening and indexing the file, which a loaded machine can exceed.
    def short_limit_for_pyav(
        produce: Callable[[], Iterator[FrameBatch]], stall_timeout_s: float, what: str
    ) -> Iterator[FrameBatch]:
        return run_with_watchdog(produce, 0.5 if what == "pyav decoder" else stall_timeout_s, what)

    monkeypatch.setitem(decoders.DECODERS, "pyav", HangingDecoder)
    monkeypatch.setattr(video, "run_with_watchdog", short_limit_for_pyav)
    with caplog.at_level(logging.WARNING, logger="videoqa"):
        times, _ = collect(sample_frames(narrated.path, SamplingOptions(stall_timeout_s=60.0)))
    assert len(times) == 12
    assert "pyav decoder produced nothing for 0.5 s; switching to the decord decoder" in caplog.text


def test_stalled_last_decoder_is_a_video_error(
    narrated: SynthVideo, monkeypatch: pytest.MonkeyPatch, release_hanging: None
) -> None:
    monkeypatch.setitem(decoders.DECODERS, "pyav", HangingDecoder)
    with pytest.raises(VideoError, match="produced nothing"):
        list(sample_frames(narrated.path, SamplingOptions(backend="pyav", stall_timeout_s=0.5)))


def test_failing_decoder_resumes_without_repeats(
    narrated: SynthVideo, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected, _ = collect(sample_frames(narrated.path, SamplingOptions(fps=2, batch_size=4)))
    monkeypatch.setitem(decoders.DECODERS, "pyav", FailsAfterOneBatch)
    times, _ = collect(sample_frames(narrated.path, SamplingOptions(fps=2, batch_size=4)))
    np.testing.assert_allclose(times, expected, atol=1e-4)


def test_watchdog_passes_errors_through() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise KeyError("boom")

    seen = []
    with pytest.raises(KeyError, match="boom"):
        for item in run_with_watchdog(broken, 5.0, "test"):
            seen.append(item)
    assert seen == [1]


def test_sparse_sampling_seeks_and_matches_sequential(narrated: SynthVideo) -> None:
    # One frame every 5 s with keyframes every 2 s: the PyAV decoder seeks; results must not change.
    info = probe(narrated.path)
    targets = np.asarray([0.5, 5.5, 10.5])
    request = DecodeRequest(str(narrated.path), info, None, 8)
    sparse = collect(PyAVDecoder(request).read(targets))
    dense_times, dense_pixels = collect(
        read_frames(info, np.arange(0.5, 12, 0.5), SamplingOptions(backend="pyav"))
    )
    picked = np.isin(np.round(dense_times, 4), np.round(sparse[0], 4))
    np.testing.assert_allclose(sparse[0], dense_times[picked])
    assert np.array_equal(sparse[1], dense_pixels[picked])


# -- short, damaged and odd files -------------------------------------------------------------------


def test_video_shorter_than_a_sampling_interval_gives_one_frame(media_dir: Path, tmp_path: Path) -> None:
    path = media_dir / "blink.mp4"  # 0.2 s: five frames at 25 fps
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x90:rate=25",
        "-t",
        "0.2",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )
    info = probe(path)
    assert plan_times(info, SamplingOptions(fps=1)).tolist() == pytest.approx([0.1])
    window = plan_times(probe(path), SamplingOptions(fps=1, start_s=0.05, end_s=0.15))
    assert window.tolist() == pytest.approx([0.1])
    times, pixels = collect(sample_frames(path, SamplingOptions(fps=1)))
    assert times.tolist() == pytest.approx([0.08]) and pixels.shape == (1, 90, 160, 3)
    index = index_video(path, ThumbnailEmbedder(), cache=IndexCache(tmp_path / "cache"))
    assert len(index.timestamps_s) == 1 and len(index.scenes) == 1


@pytest.mark.parametrize("boxes", [(b"mdhd",), (b"mdhd", b"mvhd")], ids=["track", "track+movie"])
def test_zero_timescale_gives_a_real_frame_rate(
    rotated: dict[int, Path], tmp_path: Path, boxes: tuple[bytes, ...]
) -> None:
    # FFmpeg reads a zero timescale as 1: each frame then lasts 1024 s (1/1024 fps). The frame count over
    # the duration, or else the codec's own timing, gives the real 10 fps.
    plain = rotated[90].parent / "plain.mp4"  # 3 s at 10 fps
    info = probe(zero_timescale(plain, tmp_path / "zero.mp4", boxes))
    assert info.fps == pytest.approx(10.0)
    assert info.frame_count == 30 and info.frame_count_exact


def test_untrusted_frame_rate_and_count_are_shown_as_unknown(rotated: dict[int, Path]) -> None:
    info = replace(probe(rotated[180]), fps=0.0, frame_count=0, frame_count_exact=False)
    text = _info_text(info)
    assert "frame rate   unknown\n" in text and "frames       unknown\n" in text


def test_truncation_is_only_reported_within_the_video(rotated: dict[int, Path], tmp_path: Path) -> None:
    indexed_first = tmp_path / "faststart.mp4"  # the index up front: a cut-off file still opens
    ffmpeg(
        "-i",
        str(rotated[90].parent / "plain.mp4"),
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        str(indexed_first),
    )
    data = bytearray(indexed_first.read_bytes())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 3 // 4])
    readable_s = probe(cut).readable_until_s
    assert readable_s is not None and 1.0 < readable_s < 3.0
    # The same cut with the track's duration damaged to 0.3 s: the index's frames past the cut lie beyond
    # that duration, and "readable up to 2 s of 0.3 s" is no truncation to report.
    at = data.find(b"mdhd")
    timescale, _ = struct.unpack(">II", data[at + 16 : at + 24])
    data[at + 20 : at + 24] = struct.pack(">I", round(0.3 * timescale))
    damaged = tmp_path / "damaged_duration.mp4"
    damaged.write_bytes(data[: len(data) * 3 // 4])
    info = probe(damaged)
    assert info.duration_s == pytest.approx(0.3) and info.readable_until_s is None


def test_variable_frame_rate_mkv_frames_are_counted(media_dir: Path) -> None:
    # mkv stores no frame count; FFmpeg's guessed rate (30) x duration would say 209 for 170 frames.
    path = _red_then_blue(media_dir / "vfr.mkv", blue_s=5)
    info = probe(path)
    assert info.frame_count == 20 + 150 and info.frame_count_exact
    assert info.variable_fps and info.fps == pytest.approx(170 / 7, rel=0.03)


@pytest.mark.parametrize(("codec", "kind"), [("png", "PNG"), ("mjpeg", "JPEG")])
def test_still_image_named_mp4_is_not_a_video(tmp_path: Path, codec: str, kind: str) -> None:
    picture = tmp_path / "holiday.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x64:rate=1",
        "-frames:v",
        "1",
        "-f",
        "image2",
        "-c:v",
        codec,
        str(picture),
    )
    with pytest.raises(VideoError, match=f"holiday.mp4 is a {kind} image, not a video"):
        probe(picture)
    assert_one_line_error(run_cli("info", str(picture)), f"is a {kind} image, not a video")


def _damage_packets(source: Path, target: Path, times_s: tuple[float, ...]) -> Path:
    """Copy ``source`` with the video packets shown at ``times_s`` overwritten by 0xFF bytes."""
    import av

    data = bytearray(source.read_bytes())
    with av.open(str(source)) as container:
        for packet in container.demux(container.streams.video[0]):
            if (
                packet.size
                and packet.pts is not None
                and any(abs(float(packet.pts * packet.time_base) - t) < 1e-3 for t in times_s)
            ):
                data[packet.pos : packet.pos + packet.size] = b"\xff" * packet.size
    target.write_bytes(data)
    return target


def test_damaged_stretches_are_one_warning_per_read(
    media_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clip = media_dir / "twelve.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x90:rate=10",
        "-t",
        "12",
        "-c:v",
        "libx264",
        "-g",
        "20",
        "-pix_fmt",
        "yuv420p",
        str(clip),
    )
    # Three stretches, 5 s apart (each used to get its own warning); 1.0 and 1.1 s are one stretch.
    damaged = _damage_packets(clip, tmp_path / "damaged.mp4", (1.0, 1.1, 6.0, 11.0))
    given = os.path.relpath(damaged)
    with caplog.at_level(logging.WARNING, logger="videoqa"):
        times, _ = collect(sample_frames(given, SamplingOptions(fps=4, backend="pyav")))
    assert len(times) > 40
    damage = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(damage) == 1, damage
    assert damage[0].startswith(f"{given}: skipped 3 damaged stretches of video data between 0:01.")
    assert damage[0].endswith(" and 0:11.0") or damage[0].endswith(" and 0:10.9")


def test_messages_name_the_file_as_given(rotated: dict[int, Path], tmp_path: Path) -> None:
    folder = rotated[90].parent
    shown = run_cli("info", "./plain.mp4", cwd=folder)
    assert shown.code == 0 and shown.stdout.splitlines()[0] == "./plain.mp4"
    assert_one_line_error(run_cli("info", "./missing.mp4", cwd=folder), "./missing.mp4: no such file")
    link = tmp_path / "clip.mp4"
    link.symlink_to(tmp_path / "moved-away.mp4")
    assert_one_line_error(run_cli("info", str(link)), "a link to a file that does not exist")
