"""Cited moments as clips: a few seconds of video around a moment, cut with ffmpeg into a playable mp4.

A clip is stream-copied (fast, no quality lost) when the video's codec plays in an mp4 and a keyframe
lies at or shortly before the wanted start: the clip then starts on that keyframe, up to
``MAX_COPY_LEAD_S`` early. Otherwise it is re-encoded (H.264 and AAC) and starts exactly where asked.
ffmpeg runs with an argument list (never a shell) under a time-out, and writes to a temporary name that
is renamed into place, so a reader never sees half a clip.
"""

from __future__ import annotations

import math
import os
import secrets
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from videoqa.errors import InputError, VideoError, VideoqaError
from videoqa.media.timefmt import format_clock
from videoqa.media.video import probe
from videoqa.types import VideoInfo

DEFAULT_CONTEXT_S = 3.0
# A keyframe this far at most before the wanted start lets the clip be copied from it: a second more of
# video is a fair price for an instant, lossless cut.
MAX_COPY_LEAD_S = 1.0


@dataclass(frozen=True)
class _Copyable:
    """A video codec an mp4 holds and players (browsers included) play, in these pixel formats."""

    pixel_formats: tuple[str, ...]
    tag: tuple[str, ...] = ()  # ffmpeg arguments that tag the track as players expect


_EIGHT_BIT = ("yuv420p", "yuvj420p")
# 10-bit H.264 and 4:4:4 or 4:2:2 of any codec play in few browsers: those are re-encoded. hev1, ffmpeg's
# default tag for HEVC, does not play on Apple devices; hvc1 plays everywhere HEVC does.
_COPYABLE_VIDEO = {
    "h264": _Copyable(_EIGHT_BIT),
    "hevc": _Copyable((*_EIGHT_BIT, "yuv420p10le"), ("-tag:v", "hvc1")),
    "av1": _Copyable((*_EIGHT_BIT, "yuv420p10le")),
}
_COPYABLE_AUDIO = ("aac", "mp3")
# A moment may end this far past the last frame: speech segments and scene ends are rounded outward.
_END_TOLERANCE_S = 0.5
# Keyframe search: demuxing (no decoding) costs ~20 us a packet, so this bounds it to well under a second.
_MAX_SCANNED_PACKETS = 20_000
# ffmpeg's time-out: a start-up allowance plus generous time per second of clip (re-encoding large
# frames on a small machine runs slower than real time).
_TIMEOUT_BASE_S = 60.0
_TIMEOUT_PER_CLIP_SECOND_S = 5.0
_TIME_EPSILON_S = 1e-6

ClipMethod = Literal["copy", "encode"]


class ClipError(VideoqaError):
    """ffmpeg could not cut the clip (or could not run)."""


@dataclass(frozen=True)
class Clip:
    """A clip written to ``path``: the stretch ``start_s``-``end_s`` of the video (seconds from its first
    frame), its video stream copied or re-encoded."""

    path: Path
    start_s: float
    end_s: float
    method: ClipMethod


@dataclass(frozen=True)
class _Plan:
    """How one clip is cut: its span in the video, and whether the video stream is copied."""

    start_s: float
    end_s: float
    method: ClipMethod
    offset_s: float  # ffmpeg counts -ss from the file's start, which lies this far before the video's


def cut_clip(
    video: Path, start_s: float, end_s: float, out: Path, context_s: float = DEFAULT_CONTEXT_S
) -> Path:
    """Cut [start_s - context_s, end_s + context_s] of ``video`` (clamped to it) into the mp4 ``out``.

    Raises InputError for a bad range or output path, VideoError for an unreadable video, ClipError when
    ffmpeg fails. ``make_clip`` says also where the clip starts and how it was cut.
    """
    return make_clip(video, start_s, end_s, out, context_s).path


def make_clip(
    video: Path, start_s: float, end_s: float, out: Path, context_s: float = DEFAULT_CONTEXT_S
) -> Clip:
    """``cut_clip``, telling the clip's span in the video and whether it was stream-copied."""
    _check_range(start_s, end_s, context_s)
    _check_output(out)
    info = probe(video)
    wanted_start_s, wanted_end_s = _clamped_span(info, start_s, end_s, context_s)
    plan = _plan(Path(video), info, wanted_start_s, wanted_end_s)
    _run_ffmpeg(_ffmpeg_command(Path(video), info, plan, _partial_name(out)), out, video, plan)
    return Clip(out, plan.start_s, plan.end_s, plan.method)


def clip_name(video: Path, start_s: float, end_s: float) -> str:
    """The file name of a clip of ``video``'s moment ``start_s``-``end_s``: ``story_0m49s-0m52s.mp4``.

    Whole seconds, rounded outward so the name covers the moment; characters that are awkward in a
    file name or a download (spaces, quotes) become ``_``.
    """
    span = f"{_name_time(math.floor(start_s))}-{_name_time(math.ceil(end_s))}"
    return f"{_safe_stem(Path(video).stem)}_{span}.mp4"


def merge_moments(moments: Iterable[tuple[float, float]], context_s: float) -> list[tuple[float, float]]:
    """Moments (start, end) in time order, the same ones once, those whose clips would overlap as one."""
    merged: list[tuple[float, float]] = []
    for start_s, end_s in sorted(set(moments)):
        if merged and start_s - context_s <= merged[-1][1] + context_s:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end_s))
        else:
            merged.append((start_s, end_s))
    return merged


# --- checks ---------------------------------------------------------------------------------------------


def _check_range(start_s: float, end_s: float, context_s: float) -> None:
    if not (math.isfinite(start_s) and math.isfinite(end_s) and 0 <= start_s < end_s):
        raise InputError(f"a clip needs 0 <= start < end (seconds), got start {start_s} and end {end_s}")
    if not (math.isfinite(context_s) and context_s >= 0):
        raise InputError(f"a clip's context must be 0 seconds or more, got {context_s}")


def _check_output(out: Path) -> None:
    folder = out.parent
    if not folder.is_dir():
        raise InputError(f"{out}: the folder {folder} does not exist; create it first")
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give a file name for the clip")


def _clamped_span(info: VideoInfo, start_s: float, end_s: float, context_s: float) -> tuple[float, float]:
    """The moment widened by the context on both sides, clamped to the part of the video that can be read."""
    last_s = info.readable_until_s if info.readable_until_s is not None else info.duration_s
    if start_s >= last_s or end_s > last_s + _END_TOLERANCE_S:
        raise InputError(
            f"{info.path}: the moment {_clock(start_s)}-{_clock(end_s)} lies outside the video "
            f"(0:00-{_clock(last_s)})"
        )
    return max(0.0, start_s - context_s), min(last_s, end_s + context_s)


# --- planning: copy or encode ---------------------------------------------------------------------------


def _plan(video: Path, info: VideoInfo, start_s: float, end_s: float) -> _Plan:
    keyframe_s, offset_s = _keyframe_before(video, info, start_s)
    codec = _COPYABLE_VIDEO.get(info.video_codec)
    copyable = codec is not None and info.pixel_format in codec.pixel_formats
    if copyable and keyframe_s is not None and start_s - keyframe_s <= MAX_COPY_LEAD_S:
        return _Plan(keyframe_s, end_s, "copy", offset_s)
    return _Plan(start_s, end_s, "encode", offset_s)


def _keyframe_before(video: Path, info: VideoInfo, time_s: float) -> tuple[float | None, float]:
    """The last keyframe at or before ``time_s`` (None when none is found), and how far the video's start
    lies after the file's (what ffmpeg counts -ss from)."""
    import av

    try:
        container = av.open(str(video), metadata_errors="replace")
    except av.FFmpegError as exc:
        raise VideoError(f"{info.path}: cannot open it to find its keyframes ({exc})") from None
    with container:
        file_start_s = float(container.start_time) / 1e6 if container.start_time is not None else 0.0
        try:
            keyframe_s = _scan_keyframes(container, container.streams.video[0], info.start_s, time_s)
        except av.FFmpegError:
            keyframe_s = None  # a damaged stretch: re-encoding still cuts what ffmpeg can decode
    return keyframe_s, info.start_s - file_start_s


def _scan_keyframes(container: Any, stream: Any, stream_start_s: float, time_s: float) -> float | None:
    # A backward seek lands on a keyframe at or before the time when the index says where they are; the
    # scan from there finds the last one up to the time even when the seek lands earlier.
    container.seek(round((time_s + stream_start_s) / stream.time_base), stream=stream, backward=True)
    found: float | None = None
    for count, packet in enumerate(container.demux(stream)):
        stamp = packet.pts if packet.pts is not None else packet.dts
        if packet.size == 0 or stamp is None:
            continue
        packet_s = float(stamp * packet.time_base) - stream_start_s
        if packet_s > time_s + _TIME_EPSILON_S or count >= _MAX_SCANNED_PACKETS:
            break
        if packet.is_keyframe:
            found = packet_s
    return found


# --- running ffmpeg -------------------------------------------------------------------------------------


def _ffmpeg_command(video: Path, info: VideoInfo, plan: _Plan, out: Path) -> list[str]:
    # -ss before -i seeks the input: to the keyframe itself when copying (a microsecond past it, so float
    # rounding cannot land on the keyframe before), exactly when encoding (ffmpeg decodes from the
    # keyframe before and drops the frames ahead of the start).
    seek_s = plan.start_s + plan.offset_s + (_TIME_EPSILON_S if plan.method == "copy" else 0.0)
    return [
        "ffmpeg",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-ss",
        f"{max(0.0, seek_s):.6f}",
        "-i",
        str(video),
        "-t",
        f"{plan.end_s - plan.start_s:.6f}",
        # the first video and audio tracks: subtitles, data and chapters would not fit or be wrong
        *("-map", "0:v:0", "-map", "0:a:0?", "-map_chapters", "-1"),
        *(_copy_codecs(info) if plan.method == "copy" else _encode_codecs()),
        # the index up front: a browser plays the clip while it downloads
        *("-movflags", "+faststart", "-f", "mp4", str(out)),
    ]


def _copy_codecs(info: VideoInfo) -> list[str]:
    audio = info.audio
    copy_audio = audio is None or audio.codec in _COPYABLE_AUDIO
    tag = _COPYABLE_VIDEO[info.video_codec].tag
    return ["-c:v", "copy", *tag, "-c:a", "copy" if copy_audio else "aac"]


def _encode_codecs() -> list[str]:
    # yuv420p is what players decode; it needs an even width and height
    return [
        *("-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"),
        *("-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", "-c:a", "aac"),
    ]


def _run_ffmpeg(command: list[str], out: Path, video: Path, plan: _Plan) -> None:
    """Run ffmpeg writing the partial file (the command's last argument), then rename it to ``out``."""
    partial = Path(command[-1])
    what = f"{video} at {_clock(plan.start_s)}-{_clock(plan.end_s)}"
    timeout_s = _TIMEOUT_BASE_S + _TIMEOUT_PER_CLIP_SECOND_S * (plan.end_s - plan.start_s)
    try:
        result = _run(command, timeout_s, what)
        if result.returncode != 0:
            tail = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise ClipError(f"ffmpeg could not cut {what}: {tail.strip()}")
        os.replace(partial, out)
    except OSError as exc:
        raise ClipError(f"cannot write the clip {out}: {exc.strerror or exc}") from None
    finally:
        partial.unlink(missing_ok=True)


def _run(command: list[str], timeout_s: float, what: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s
        )
    except FileNotFoundError:
        raise ClipError("ffmpeg is not installed; install it (e.g. apt-get install ffmpeg)") from None
    except subprocess.TimeoutExpired:
        raise ClipError(f"ffmpeg did not cut {what} within {timeout_s:.0f} s") from None


def _partial_name(out: Path) -> Path:
    """A hidden name next to ``out`` that no other writer uses, so the rename into place is atomic."""
    return out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")


# --- names ----------------------------------------------------------------------------------------------


def _clock(seconds: float) -> str:
    return format_clock(max(0.0, seconds), 0) if math.isfinite(seconds) else str(seconds)


def _name_time(seconds: int) -> str:
    """``49`` -> ``0m49s``; ``3725`` -> ``1h02m05s``."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _safe_stem(stem: str) -> str:
    kept = "".join(char if char.isalnum() or char in "-_." else "_" for char in stem).strip("._")
    return kept or "clip"
