"""Video decoding: probe a file, sample frames by time in bounded memory, fetch a frame at a time.

Sampling is by presentation time, never by frame index, so variable frame rate videos are sampled
evenly and every timestamp we report is the real time at which that frame is shown (seconds from the
first frame). Rotated phone videos come out upright. Decoding runs behind a stall watchdog; a decoder
that fails or stalls hands over to the next one (see ``decoders.py``) and the user is told once.
"""

from __future__ import annotations

import logging
import math
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from videoqa.errors import OptionsError, VideoError
from videoqa.media.decoders import (
    DECODERS,
    DecodeRequest,
    DecoderFailure,
    DecoderStalled,
    DetailedBatch,
    run_with_watchdog,
)
from videoqa.types import AudioInfo, FrameBatch, VideoInfo

log = logging.getLogger("videoqa")

BACKENDS = ("auto", *DECODERS)
# Decoders tried, in order, for backend="auto". PyAV comes first: in benchmarks/decode.py it matched the
# fastest reader at 1 and 4 fps and beat decord's seeking on sparse sampling, with half decord's memory,
# and decord misreads AVI timestamps. decord takes over when PyAV fails or stalls.
AUTO_ORDER = ("pyav", "decord")
# Packets read while probing to judge whether the frame rate varies; enough for ~10 s at 60 fps.
_VFR_PROBE_PACKETS = 600
# Frame intervals further than this from the median count as irregular; more than _VFR_SHARE of them
# makes the video variable frame rate (a few dropped frames do not).
_VFR_TOLERANCE = 0.1
_VFR_SHARE = 0.02
_AUDIO_PROBE_PACKETS = 8
# When the container does not store the frame count (mkv, webm, ts), probing counts the video packets
# when that is cheap: demuxing without decoding costs ~20 us a packet here, so files up to this size and
# packet count (about an hour at 30 fps) take at most ~2 s. Others get duration x frame rate, estimated.
_COUNT_PACKETS_MAX_BYTES = 256 * 2**20
_COUNT_PACKETS_MAX = 100_000
# Frame rates outside this range come from a broken time scale (a zero mdhd timescale read as 1 gives
# 1/1024 fps), not from a real video: slower than a frame a minute, or faster than any camera stores.
_FPS_RANGE = (1 / 60, 1000.0)
# FFmpeg demuxers that read one still picture (png_pipe, jpeg_pipe, ..., and image2 for numbered files).
_STILL_IMAGE_SUFFIX = "_pipe"
_STILL_IMAGE_FORMATS = ("image2",)
# Names people call a still image by, where FFmpeg's codec name is not one (a JPEG is "mjpeg").
_IMAGE_NAMES = {"mjpeg": "JPEG", "jpegls": "JPEG-LS", "jpeg2000": "JPEG 2000", "webp": "WebP"}


@dataclass(frozen=True)
class SamplingOptions:
    """Which frames to sample and how to decode them."""

    fps: float = 1.0  # frames sampled per second of video
    max_frames: int | None = None  # cap on frames: when fps would give more, spread this many evenly
    start_s: float = 0.0  # sample from this time on
    end_s: float | None = None  # sample up to this time (None: the end of the video)
    max_side: int | None = None  # shrink frames so the longer side is at most this (None: full size)
    batch_size: int = 16  # frames per FrameBatch (fewer for big frames: a batch holds at most 8 MiB)
    backend: str = "auto"  # "auto", "pyav" or "decord"
    stall_timeout_s: float = 60.0  # give up on a decoder that yields nothing for this long
    threads: int | None = None  # decoding threads; None: one per available core

    def __post_init__(self) -> None:
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise OptionsError(f"fps must be a positive number, got {self.fps}")
        if self.max_frames is not None and self.max_frames < 1:
            raise OptionsError(f"max_frames must be at least 1, got {self.max_frames}")
        if self.start_s < 0 or (self.end_s is not None and self.end_s <= self.start_s):
            raise OptionsError(f"need 0 <= start_s < end_s, got {self.start_s} and {self.end_s}")
        if self.max_side is not None and self.max_side < 16:
            raise OptionsError(f"max_side must be at least 16 pixels, got {self.max_side}")
        if self.batch_size < 1:
            raise OptionsError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.backend not in BACKENDS:
            raise OptionsError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.stall_timeout_s <= 0:
            raise OptionsError(f"stall_timeout_s must be positive, got {self.stall_timeout_s}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise OptionsError(f"threads must be a whole number of at least 1, got {self.threads!r}")


@dataclass(frozen=True)
class Detail:
    """A second, larger copy of every sampled frame, made from the same decoded picture (``read_frames``)."""

    max_side: int | None = None  # shrink so the longer side is at most this (None: full size)

    def __post_init__(self) -> None:
        if self.max_side is not None and (not isinstance(self.max_side, int) or self.max_side < 16):
            raise OptionsError(f"max_side must be at least 16 pixels, got {self.max_side!r}")


def check_file(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` if it names a non-empty regular file we can read; raise VideoError otherwise.

    Messages name the file as the caller gave it, so the user recognises what they typed.
    """
    file, name = Path(path), os.fspath(path)
    try:
        status = file.stat()
    except FileNotFoundError:
        if file.is_symlink():
            raise VideoError(
                f"{name}: a link to a file that does not exist ({os.readlink(file)}); check the link"
            ) from None
        raise VideoError(f"{name}: no such file; check the path") from None
    except OSError as exc:
        raise VideoError(f"{name}: cannot access it ({exc.strerror})") from None
    if stat.S_ISDIR(status.st_mode):
        raise VideoError(f"{name}: is a directory; give a video file")
    if not stat.S_ISREG(status.st_mode):
        raise VideoError(f"{name}: not a regular file (a pipe or device); give a video file")
    if status.st_size == 0:
        raise VideoError(f"{name}: the file is empty (0 bytes); it may still be downloading or copying")
    try:
        with file.open("rb") as handle:
            handle.read(1)
    except PermissionError:
        raise VideoError(f"{name}: permission denied; make the file readable (chmod +r)") from None
    except OSError as exc:
        raise VideoError(f"{name}: cannot read it ({exc.strerror})") from None
    return file


def probe(path: str | os.PathLike[str], timeout_s: float = 60.0) -> VideoInfo:
    """Read what a user needs to know about a video: length, frame rate, size, rotation, codecs, audio.

    Raises VideoError for anything that is not a readable video. Decodes the first video frame (to
    learn the rotation and prove the video track decodes) and a few audio packets (to learn whether the
    audio track can be used), all under a time-out.
    """
    file, name = check_file(path), os.fspath(path)
    try:
        return next(iter(run_with_watchdog(lambda: [_probe(file, name)], timeout_s, "probe")))
    except DecoderStalled:
        raise VideoError(
            f"{name}: reading the file stalled for {timeout_s:.0f} s; it may be damaged or on a slow disk"
        ) from None


def _probe(file: Path, name: str) -> VideoInfo:
    import av

    try:
        container = _open_quietly(file)
    except av.FFmpegError as exc:
        raise VideoError(_unopenable_message(file, name, _ffmpeg_reason(exc))) from None
    with container:
        stream = _video_stream(container, name)
        first = _first_video_frame(container, stream, name)
        start_s = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        duration_s = _duration_s(container, stream, name)
        size_bytes = file.stat().st_size
        # One open for everything: each open of a long mp4 parses its whole index (MBs per hour).
        stored_count = int(stream.frames or 0)
        scan = _scan_packets(
            container, stream, count_all=not stored_count and size_bytes <= _COUNT_PACKETS_MAX_BYTES
        )
        frame_count = stored_count or scan.count or 0
        fps = _frame_rate(stream, duration_s, frame_count, scan)
        audio = _probe_audio(container) if container.streams.audio else None
        return VideoInfo(
            path=name,
            size_bytes=size_bytes,
            container=str(container.format.name),
            video_codec=_codec_name(stream),
            duration_s=duration_s,
            start_s=start_s,
            fps=fps,
            variable_fps=_is_variable_fps(scan.times_s),
            frame_count=frame_count or round(duration_s * fps),
            frame_count_exact=frame_count > 0,
            coded_width=int(stream.codec_context.width),
            coded_height=int(stream.codec_context.height),
            rotation_deg=int(first.rotation) % 360,
            pixel_format=str(
                stream.codec_context.format.name if stream.codec_context.format else first.format.name
            ),
            bit_rate_bps=int(container.bit_rate) if container.bit_rate else None,
            audio=audio,
            readable_until_s=_readable_until_s(stream, size_bytes, start_s, duration_s),
        )


def _video_stream(container: Any, name: str) -> Any:
    """The first video track; VideoError for a still image or a file without one."""
    if not container.streams.video:
        kind = "only audio" if container.streams.audio else "no video track"
        raise VideoError(f"{name}: the file has {kind}; give a file with a video track")
    stream = container.streams.video[0]
    demuxer = str(container.format.name)
    if demuxer.endswith(_STILL_IMAGE_SUFFIX) or demuxer in _STILL_IMAGE_FORMATS:
        codec = _codec_name(stream)
        raise VideoError(
            f"{name} is a {_IMAGE_NAMES.get(codec, codec.upper())} image, not a video; give a video file"
        )
    return stream


def _codec_name(stream: Any) -> str:
    """The codec's own name ("av1"), not that of the decoder FFmpeg picked for it ("libdav1d")."""
    context = stream.codec_context
    if context is None:
        return "unknown"
    return str(context.codec.canonical_name if context.codec is not None else context.name)


# Box types that can open an ISO media file (mp4, mov, m4v, 3gp).
_ISO_MEDIA_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot")


def _unopenable_message(file: Path, name: str, reason: str) -> str:
    with file.open("rb") as handle:
        head = handle.read(512)
    if "moov atom not found" in reason and head[4:8] in _ISO_MEDIA_BOXES:
        return (
            f"{name}: the file is incomplete (its index, the moov atom, is missing); it was "
            "probably cut short while downloading, copying or recording - get the complete file"
        )
    if _is_text(head):
        return f"{name}: not a video file (it holds text); check that you gave the right file"
    return f"{name}: not a video file FFmpeg can read ({reason})"


def _is_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(char.isprintable() or char in "\r\n\t" for char in decoded)


def _open_quietly(file: Path) -> Any:
    """Open with FFmpeg's error messages captured, so a failure can say why (they reach no terminal)."""
    import av.logging

    previous_level = av.logging.get_level()
    with av.logging.Capture():
        av.logging.set_level(av.logging.ERROR)
        try:
            # Damaged tags are not worth refusing the file over: shown with replacement characters.
            return av.open(str(file), metadata_errors="replace")
        finally:
            av.logging.set_level(previous_level)


def _first_video_frame(container: Any, stream: Any, name: str) -> Any:
    import av

    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                return frame
    except av.FFmpegError as exc:
        raise VideoError(f"{name}: the video track cannot be decoded ({_ffmpeg_reason(exc)})") from None
    raise VideoError(f"{name}: the video track holds no decodable frame; the file may be truncated")


def _duration_s(container: Any, stream: Any, name: str) -> float:
    if stream.duration is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return float(container.duration) / 1_000_000  # AV_TIME_BASE
    raise VideoError(
        f"{name}: the file does not say how long it is; remux it with ffmpeg -i IN -c copy OUT.mp4"
    )


@dataclass(frozen=True)
class _PacketScan:
    """What the video packets tell without decoding them."""

    times_s: npt.NDArray[np.float64]  # sorted presentation times of the first packets (stream seconds)
    count: int | None  # packets in the whole track; None when it was not read to the end
    rate_fps: float | None  # frames per second over all the packets read (None: fewer than two times)


def _scan_packets(container: Any, stream: Any, count_all: bool) -> _PacketScan:
    """Read packets from the start: the first ``_VFR_PROBE_PACKETS``, or up to ``_COUNT_PACKETS_MAX``
    when ``count_all``. The count is known when the track ended before that.
    """
    import av

    times: list[float] = []
    count, timed, first_s, last_s, complete = 0, 0, math.inf, -math.inf, False
    limit = _COUNT_PACKETS_MAX if count_all else _VFR_PROBE_PACKETS
    try:
        container.seek(0)
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the empty packet that ends the track (it flushes decoders)
            count += 1
            if packet.pts is not None:
                time_s = float(packet.pts * packet.time_base)
                timed, first_s, last_s = timed + 1, min(first_s, time_s), max(last_s, time_s)
                if len(times) < _VFR_PROBE_PACKETS:
                    times.append(time_s)
            if count >= limit:
                break
        else:
            complete = True
    except av.FFmpegError:
        pass  # a damaged stretch ends the scan early: judge from what was read, count nothing
    rate_fps = (timed - 1) / (last_s - first_s) if timed >= 2 and last_s > first_s else None
    return _PacketScan(np.sort(np.asarray(times, dtype=np.float64)), count if complete else None, rate_fps)


def _frame_rate(stream: Any, duration_s: float, frame_count: int, scan: _PacketScan) -> float:
    """The average frame rate from the first plausible source; 0.0 when none is (unknown).

    In order: what the container says, the real frames' presentation times, the frame count over the
    duration, then FFmpeg's guesses and the codec's own timing. A damaged time scale makes the first
    ones absurd (outside ``_FPS_RANGE``) while a later one still holds.
    """
    counted = frame_count / duration_s if frame_count and duration_s > 0 else None
    framerate = stream.codec_context.framerate if stream.codec_context is not None else None
    for rate in (
        stream.average_rate,
        scan.rate_fps,
        counted,
        stream.guessed_rate,
        stream.base_rate,
        framerate,
    ):
        if rate is not None and _FPS_RANGE[0] <= float(rate) <= _FPS_RANGE[1]:
            return float(rate)
    return 0.0


def _is_variable_fps(times: npt.NDArray[np.float64]) -> bool:
    """Judge from the packets' presentation times, sorted (B-frames arrive out of order)."""
    intervals = np.diff(times)
    intervals = intervals[intervals > 0]
    if len(intervals) < 3:
        return False
    median = float(np.median(intervals))
    irregular = np.abs(intervals - median) > _VFR_TOLERANCE * median
    # One gap (a dropped frame, a cut-off tail) does not make a video variable frame rate.
    return bool(irregular.sum() >= 3 and np.mean(irregular) > _VFR_SHARE)


def _probe_audio(container: Any) -> AudioInfo:
    """Describe the first audio track and try to decode its first few packets."""
    import av

    stream = container.streams.audio[0]
    context = stream.codec_context
    codec = _codec_name(stream)
    info = AudioInfo(
        codec=codec,
        sample_rate_hz=int(getattr(context, "sample_rate", 0) or 0),
        channels=int(getattr(context, "channels", 0) or 0),
        decodable=False,
    )
    try:
        container.seek(0)
        decoded = 0
        for index, packet in enumerate(container.demux(stream)):
            decoded += len(packet.decode())
            if decoded or index >= _AUDIO_PROBE_PACKETS:
                break
    except av.FFmpegError as exc:
        return replace(info, problem=_ffmpeg_reason(exc))
    if not decoded:
        return replace(info, problem="no audio could be decoded from the first packets")
    return replace(info, decodable=True)


def _readable_until_s(stream: Any, size_bytes: int, start_s: float, duration_s: float) -> float | None:
    """For a file cut short, where its readable frames end (from the container's index); else None.

    Containers with an index up front (mp4 with faststart, mkv) still open when the tail is missing;
    the index then points past the end of the file. A damaged index can give any time: only a time
    within the video counts as a truncation.
    """
    until_s = _last_indexed_s(stream, size_bytes, start_s)
    return until_s if until_s is not None and until_s < duration_s else None


def _last_indexed_s(stream: Any, size_bytes: int, start_s: float) -> float | None:
    """The time of the last index entry that lies inside the file, when some entry lies past its end."""
    entries = stream.index_entries
    count = len(entries) if entries is not None else 0
    if count == 0 or _entry_end(entries[count - 1]) <= size_bytes:
        return None
    low, high = 0, count - 1  # binary search for the last entry that lies inside the file
    while low < high:
        middle = (low + high + 1) // 2
        if _entry_end(entries[middle]) <= size_bytes:
            low = middle
        else:
            high = middle - 1
    if _entry_end(entries[low]) > size_bytes:
        return 0.0
    return max(0.0, float(entries[low].timestamp * stream.time_base) - start_s)


def _entry_end(entry: Any) -> int:
    return int(entry.pos) + int(entry.size)


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's own explanation when it logged one (e.g. "moov atom not found"), else the error text."""
    log_record = getattr(exc, "log", None)
    if isinstance(log_record, tuple) and len(log_record) == 3 and str(log_record[2]).strip():
        return str(log_record[2]).strip().rstrip(".")
    reason = getattr(exc, "strerror", None) or str(exc)
    return str(reason).strip().rstrip(".")


def plan_times(info: VideoInfo, options: SamplingOptions) -> npt.NDArray[np.float64]:
    """Target times in seconds: the middle of each sampling interval between start and end.

    With ``fps`` the intervals are 1/fps long; when that would exceed ``max_frames`` frames, the span is
    split into ``max_frames`` equal intervals instead. A span shorter than one interval (a 0.2-s clip at
    1 fps) still gets one time, its middle. Shape (n,), increasing.
    """
    end_s = min(options.end_s, info.duration_s) if options.end_s is not None else info.duration_s
    span_s = end_s - options.start_s
    if span_s <= 0:
        return np.zeros(0, dtype=np.float64)
    count = max(1, math.ceil(span_s * options.fps - 1e-9))
    if options.max_frames is not None:
        count = min(count, options.max_frames)
    step_s = (
        span_s / count
        if options.max_frames is not None and count == options.max_frames
        else 1.0 / options.fps
    )
    times = options.start_s + (np.arange(count, dtype=np.float64) + 0.5) * step_s
    times = times[times < end_s]
    return times if len(times) else np.asarray([options.start_s + span_s / 2], dtype=np.float64)


def sample_frames(
    path: str | os.PathLike[str], options: SamplingOptions | None = None, info: VideoInfo | None = None
) -> Iterator[FrameBatch]:
    """Yield upright frames sampled by time (see ``plan_times``) in batches; memory stays flat."""
    options = options or SamplingOptions()
    info = info or probe(path)
    yield from read_frames(info, plan_times(info, options), options)


def frame_at(
    path: str | os.PathLike[str], time_s: float, max_side: int | None = None, info: VideoInfo | None = None
) -> FrameBatch:
    """The frame shown at ``time_s`` seconds, upright, as a one-frame batch."""
    info = info or probe(path)
    if not 0 <= time_s <= info.duration_s:
        raise VideoError(f"{info.path}: time {time_s:.2f} s is outside the video (0-{info.duration_s:.2f} s)")
    options = SamplingOptions(max_side=max_side, batch_size=1)
    target = np.asarray([min(time_s, max(0.0, info.duration_s - 1e-3))], dtype=np.float64)
    for batch in read_frames(info, target, options):
        return batch
    raise VideoError(f"{info.path}: no frame could be decoded at {time_s:.2f} s")


def read_frames(
    info: VideoInfo,
    times_s: npt.NDArray[np.float64],
    options: SamplingOptions,
    detail: Detail | None = None,
) -> Iterator[FrameBatch]:
    """Yield the frames shown at sorted ``times_s``, upright, each once, falling back between decoders.

    With ``detail`` the batches are ``DetailedBatch``es: each frame also at the detail size, converted
    from the same decoded picture (one decode feeds the index and the screen-text reader).
    A decoder that fails or stalls hands the remaining times to the next one with one warning; when the
    last one fails the error is a VideoError. Frames that end early (a truncated file) give a warning.
    """
    request = DecodeRequest(
        path=info.path,
        info=info,
        size=_output_size(info, options.max_side),
        batch_size=options.batch_size,
        detail=detail is not None,
        detail_size=_output_size(info, detail.max_side) if detail is not None else None,
        threads=options.threads,
    )
    order = AUTO_ORDER if options.backend == "auto" else (options.backend,)
    last_time_s = -math.inf
    for position, name in enumerate(order):
        remaining = times_s[times_s > last_time_s]
        decoder = DECODERS[name](request)
        try:
            produced = False
            for batch in run_with_watchdog(
                partial(decoder.read, remaining), options.stall_timeout_s, f"{name} decoder"
            ):
                batch = _after(batch, last_time_s)
                if len(batch):
                    produced = True
                    last_time_s = float(batch.timestamps_s[-1])
                    yield batch
            if len(remaining) and not produced:
                raise DecoderFailure(f"the {name} decoder found no frame at the requested times")
        except DecoderFailure as exc:
            if position + 1 < len(order):
                log.warning("%s: %s; switching to the %s decoder", info.path, exc, order[position + 1])
                continue
            raise VideoError(f"{info.path}: {exc}") from None
        break
    _warn_if_cut_short(info, times_s, last_time_s)


def _after(batch: FrameBatch, time_s: float) -> FrameBatch:
    keep = batch.timestamps_s > time_s + 1e-6
    if keep.all():
        return batch
    if isinstance(batch, DetailedBatch):
        return batch.kept(keep)
    return FrameBatch(batch.timestamps_s[keep], batch.pixels[keep])


def _warn_if_cut_short(info: VideoInfo, times_s: npt.NDArray[np.float64], last_time_s: float) -> None:
    if len(times_s) == 0:
        return
    frame_interval_s = 1.0 / info.fps if info.fps > 0 else 0.04
    if last_time_s < times_s[-1] - max(1.0, 2 * frame_interval_s):
        readable = max(last_time_s, 0.0)
        log.warning(
            "%s: frames end at %.1f s of %.1f s; the file looks truncated, using the part that can be read",
            info.path,
            readable,
            info.duration_s,
        )


def _output_size(info: VideoInfo, max_side: int | None) -> tuple[int, int] | None:
    """Upright output size with the longer side at most ``max_side``, rounded to even numbers."""
    longest = max(info.width, info.height)
    if max_side is None or longest <= max_side:
        return None
    scale = max_side / longest
    return (max(2, round(info.width * scale / 2) * 2), max(2, round(info.height * scale / 2) * 2))
