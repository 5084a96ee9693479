"""Frame decoders behind one small protocol, and a watchdog that stops a decoder that stalls.

A decoder is given sorted target times (seconds from the first frame) and yields, in order, the frames
shown at those times (the last frame whose presentation time is <= the target), each frame once, upright
(as a player shows it), resized to the requested size. Asked for a detail copy too, it gives each frame
at a second, larger size from the same decoded picture (``DetailedBatch``): the index embeds the small
copy and the screen-text reader reads the large one, so neither decodes the video again. ``video.py``
picks decoders and falls back from one to the next.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from videoqa.errors import VideoqaError
from videoqa.host.cores import available_cores
from videoqa.media.timefmt import format_clock
from videoqa.types import FrameBatch, VideoInfo

log = logging.getLogger("videoqa")

# A target this close after a frame's presentation time counts as showing that frame (float noise).
_TIME_EPSILON_S = 1e-6
# Frames closer than this many frame intervals before a target are always decoded (see _PyAVCursor).
_SKIP_MARGIN_FRAMES = 3
# A batch holds at most this many bytes of pixels, so full-size 4K frames stay a few per batch.
MAX_BATCH_BYTES = 8 * 2**20
# Seeking costs a decoder flush and a demuxer jump; skip it unless it saves this many frames of decoding.
_MIN_FRAMES_SAVED_BY_SEEK = 8


class DecoderFailure(VideoqaError):
    """This decoder cannot read (the rest of) the file; another decoder may."""


class DecoderStalled(DecoderFailure):
    """The decoder produced nothing within the stall time-out."""


@dataclass(frozen=True)
class DecodeRequest:
    """What every decoder is built from."""

    path: str
    info: VideoInfo
    size: tuple[int, int] | None  # upright (width, height) of the output; None keeps the full size
    batch_size: int
    detail: bool = False  # also a second copy of every frame, made from the same decoded picture
    detail_size: tuple[int, int] | None = None  # its upright (width, height); None keeps the full size
    threads: int | None = None  # decoding threads; None: one per available core


@dataclass(frozen=True, eq=False)
class DetailedBatch(FrameBatch):
    """A FrameBatch whose frames also come at a larger size: ``detail`` is (n, height, width, 3) uint8 RGB,
    the same frames as ``pixels``, upright."""

    detail: npt.NDArray[np.uint8]

    def kept(self, keep: npt.NDArray[np.bool_]) -> DetailedBatch:
        return DetailedBatch(self.timestamps_s[keep], self.pixels[keep], self.detail[keep])


class FrameDecoder(Protocol):
    """Yields the frames shown at sorted target times, upright, as batches."""

    def read(self, times_s: npt.NDArray[np.float64]) -> Iterator[FrameBatch]: ...


class PyAVDecoder:
    """FFmpeg through PyAV: reads every codec FFmpeg knows; skips damaged packets, with one warning.

    Decodes straight through while targets are close together and seeks when the next target lies past
    the next keyframe, learning the keyframe spacing from the frames it decodes.
    """

    def __init__(self, request: DecodeRequest) -> None:
        self._request = request

    def read(self, times_s: npt.NDArray[np.float64]) -> Iterator[FrameBatch]:
        import av

        request = self._request
        try:
            container = av.open(request.path, metadata_errors="replace")
        except av.FFmpegError as exc:
            raise DecoderFailure(f"PyAV cannot open the file: {exc}") from exc
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            # FFmpeg's automatic count (cores + 1) oversubscribes small machines: 25 % slower on 2 cores.
            stream.codec_context.thread_count = request.threads or available_cores()
            cursor = _PyAVCursor(container, stream, request.info)
            try:
                yield from self._frames(cursor, times_s)
            finally:
                cursor.damage.report(request.info)

    def _frames(self, cursor: _PyAVCursor, times_s: npt.NDArray[np.float64]) -> Iterator[FrameBatch]:
        request = self._request
        small = _Converter(request.info, request.size)
        detail = _Converter(request.info, request.detail_size) if request.detail else None
        batch = _BatchBuilder(request.batch_size)
        for target_s in times_s:
            frame = cursor.frame_at(float(target_s) + request.info.start_s)
            if frame is None:
                break
            time_s = float(frame.time) - request.info.start_s
            if batch.already_has(time_s):
                continue
            yield from batch.add(time_s, small.pixels(frame), detail.pixels(frame) if detail else None)
        yield from batch.finish()


class _Converter:
    """Turns a decoded PyAV frame into upright RGB pixels of one size."""

    def __init__(self, info: VideoInfo, size: tuple[int, int] | None) -> None:
        self._width, self._height = _stored_size(info, size)
        self._interpolation = "AREA" if size else None
        self._turns = (info.rotation_deg // 90) % 4

    def pixels(self, frame: Any) -> npt.NDArray[np.uint8]:
        pixels: npt.NDArray[np.uint8] = frame.to_ndarray(
            format="rgb24", width=self._width, height=self._height, interpolation=self._interpolation
        )
        # Players turn the picture counter-clockwise by the display rotation.
        return np.rot90(pixels, k=self._turns) if self._turns else pixels


class _DamageTally:
    """The damaged stretches one read skips, told in one warning at its end, not one per stretch: a
    badly damaged file has dozens. A stretch is a run of packets that fail to decode."""

    def __init__(self) -> None:
        self._stretches = 0
        self._inside = False  # the previous packet failed too: the same stretch goes on
        self._first_s = math.inf  # stream seconds of the first and last damaged packet with a time
        self._last_s = -math.inf
        self._unreadable_from: tuple[float | None, str] | None = None

    def damaged(self, time_s: float | None) -> None:
        if not self._inside:
            self._stretches += 1
        self._inside = True
        if time_s is not None:
            self._first_s, self._last_s = min(self._first_s, time_s), max(self._last_s, time_s)

    def intact(self) -> None:
        self._inside = False

    def unreadable(self, time_s: float | None, reason: str) -> None:
        """The demuxer gave up here: nothing after it can be read."""
        self._unreadable_from = (time_s, reason)

    def report(self, info: VideoInfo) -> None:
        if self._stretches:
            what = f"{self._stretches} damaged stretch" + ("es" if self._stretches > 1 else "")
            where = ""
            if self._first_s <= self._last_s:
                first, last = (_clock(t, info) for t in (self._first_s, self._last_s))
                where = f" at {first}" if first == last else f" between {first} and {last}"
            log.warning("%s: skipped %s of video data%s", info.path, what, where)
        if self._unreadable_from is not None:
            time_s, reason = self._unreadable_from
            where = f"past {_clock(time_s, info)}" if time_s is not None else "further"
            log.warning(
                "%s: the video data cannot be read %s (%s); using what was read", info.path, where, reason
            )


def _clock(stream_time_s: float, info: VideoInfo) -> str:
    """A stream time as a clock time in the video, kept inside it (damaged packets carry any time)."""
    return format_clock(min(max(stream_time_s - info.start_s, 0.0), info.duration_s))


class _PyAVCursor:
    """Position in a PyAV stream: answers "which frame is shown at time t" for increasing t."""

    def __init__(self, container: Any, stream: Any, info: VideoInfo) -> None:
        self._container = container
        self._stream = stream
        self._frame_interval_s = 1.0 / info.fps if info.fps > 0 else 0.04
        self._shown: Any = None  # last frame whose time is <= the latest target
        self._ahead: Any = None  # first decoded frame past the latest target
        self._exhausted = False
        self._last_key_s: float | None = None
        self._gop_s: float | None = None  # longest keyframe spacing seen while decoding straight through
        self.damage = _DamageTally()
        self._packet_s: float | None = None  # stream time of the last packet read
        # Non-reference frames well before the next target are not decoded at all: no other frame needs
        # them and none of them is shown at a target. Only at a constant frame rate, where "well before"
        # (a few frame intervals) cannot hide the frame shown at the target behind a long gap.
        self._may_skip = not info.variable_fps
        self._skip_before_pts = -math.inf  # packets with an earlier pts may be skipped when non-reference
        self._skipping = False
        self._frames = self._decode_from_here(measure_gop=True)

    def frame_at(self, target_s: float) -> Any:
        """The frame shown at ``target_s`` (stream seconds); None when the data ends before it."""
        if self._seek_saves_work(target_s):
            self._seek(target_s)
        if self._may_skip:
            margin_s = _SKIP_MARGIN_FRAMES * self._frame_interval_s
            self._skip_before_pts = (target_s - margin_s) / float(self._stream.time_base)
        while True:
            if self._ahead is None:
                self._ahead = next(self._frames, None)
                if self._ahead is None:
                    self._exhausted = True
                    break
            if float(self._ahead.time) > target_s + _TIME_EPSILON_S:
                break
            self._shown, self._ahead = self._ahead, None
        if self._shown is None:
            return self._ahead  # the target precedes the first frame
        if self._exhausted and target_s > self._shown_until_s():
            return None
        return self._shown

    def _shown_until_s(self) -> float:
        """When the last frame of the data stops being shown: after its own duration when it has one
        (a file whose only decodable frame lasts the whole video), else after two frame intervals."""
        frame = self._shown
        own_s = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else 0.0
        return float(frame.time) + max(own_s, 2 * self._frame_interval_s)

    def _position_s(self) -> float | None:
        frame = self._ahead if self._ahead is not None else self._shown
        return None if frame is None else float(frame.time)

    def _seek_saves_work(self, target_s: float) -> bool:
        position_s = self._position_s()
        if self._gop_s is None or self._last_key_s is None or position_s is None:
            return False
        next_key_s = self._last_key_s + self._gop_s
        saved_s = next_key_s - position_s
        return target_s >= next_key_s and saved_s >= _MIN_FRAMES_SAVED_BY_SEEK * self._frame_interval_s

    def _seek(self, target_s: float) -> None:
        offset = int(target_s / float(self._stream.time_base))
        self._container.seek(offset, stream=self._stream, backward=True, any_frame=False)
        self._shown = self._ahead = None
        self._last_key_s = None
        self._frames = self._decode_from_here(measure_gop=False)

    def _decode_from_here(self, measure_gop: bool) -> Iterator[Any]:
        import av

        packets = self._container.demux(self._stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                self.damage.unreadable(self._packet_s, str(getattr(exc, "strerror", None) or exc))
                return
            time_s = float(packet.pts * packet.time_base) if packet.pts is not None else None
            self._packet_s = time_s if time_s is not None else self._packet_s
            self._skip_if_far(packet)
            try:
                frames = packet.decode()
            except av.FFmpegError:
                self.damage.damaged(time_s)
                continue
            self.damage.intact()
            for frame in frames:
                if frame.time is None:
                    continue
                if frame.key_frame:
                    measure_gop = self._note_keyframe(float(frame.time), measure_gop)
                yield frame

    def _skip_if_far(self, packet: Any) -> None:
        far = packet.pts is not None and packet.pts < self._skip_before_pts
        if far != self._skipping:
            self._stream.codec_context.skip_frame = "NONREF" if far else "DEFAULT"
            self._skipping = far

    def _note_keyframe(self, time_s: float, measure_gop: bool) -> bool:
        """Track keyframe spacing; the first keyframe after a seek starts a new measurement."""
        if measure_gop and self._last_key_s is not None and time_s > self._last_key_s:
            self._gop_s = max(self._gop_s or 0.0, time_s - self._last_key_s)
        self._last_key_s = time_s
        return True


class DecordDecoder:
    """decord: an index of every frame built on open, then batched seeks.

    decord applies the display rotation itself, and resizes after rotating.
    """

    def __init__(self, request: DecodeRequest) -> None:
        self._request = request

    def read(self, times_s: npt.NDArray[np.float64]) -> Iterator[FrameBatch]:
        reader = self._open()
        starts_s = self._frame_times(reader)
        # Targets well past the last indexed frame are beyond the data, as with the other decoders.
        times_s = times_s[times_s <= starts_s[-1] + 2 * self._frame_interval_s()]
        indices = np.searchsorted(starts_s, times_s + _TIME_EPSILON_S, side="right") - 1
        indices = np.unique(np.clip(indices, 0, len(starts_s) - 1))
        info = self._request.info
        frame_bytes = 3 * math.prod(self._decoded_size() or (info.width, info.height))
        per_batch = max(1, min(self._request.batch_size, MAX_BATCH_BYTES // frame_bytes))
        for first in range(0, len(indices), per_batch):
            chunk = indices[first : first + per_batch]
            try:
                pixels = reader.get_batch(chunk.tolist()).asnumpy()
            except Exception as exc:  # decord raises bare DECORDError/RuntimeError subclasses
                raise DecoderFailure(
                    f"decord stopped near {starts_s[chunk[0]]:.1f} s: {_first_line(exc)}"
                ) from exc
            yield self._batch(starts_s[chunk].astype(np.float64), pixels)

    def _decoded_size(self) -> tuple[int, int] | None:
        """The size decord decodes to: the output's, or with a detail copy the larger of the two (both
        copies are shrunk from it)."""
        request = self._request
        if not request.detail:
            return request.size
        if request.size is None or request.detail_size is None:
            return None
        return max(request.size, request.detail_size, key=math.prod)

    def _batch(self, times_s: npt.NDArray[np.float64], pixels: npt.NDArray[np.uint8]) -> FrameBatch:
        request = self._request
        if not request.detail:
            return FrameBatch(timestamps_s=times_s, pixels=pixels)
        # decord decodes at one size: the copies are shrunk from it (box filter, as FFmpeg's area
        # scaling), so a fallback read gives nearly, not exactly, PyAV's pixels.
        decoded = self._decoded_size()
        small, detail = (
            pixels if size in (None, decoded) else _shrunk(pixels, size)
            for size in (request.size, request.detail_size)
        )
        return DetailedBatch(timestamps_s=times_s, pixels=small, detail=detail)

    def _frame_interval_s(self) -> float:
        fps = self._request.info.fps
        return 1.0 / fps if fps > 0 else 0.04

    def _open(self) -> Any:
        import decord

        decord.logging.set_level(decord.logging.QUIET)
        width, height = self._decoded_size() or (-1, -1)
        try:
            return decord.VideoReader(
                self._request.path,
                ctx=decord.cpu(0),
                width=width,
                height=height,
                num_threads=self._request.threads or available_cores(),
            )
        except Exception as exc:  # decord raises bare DECORDError/RuntimeError subclasses
            raise DecoderFailure(f"decord cannot open the file: {_first_line(exc)}") from exc

    def _frame_times(self, reader: Any) -> npt.NDArray[np.float64]:
        """Presentation times from decord's index, checked: decord misreads some containers (AVI)."""
        if len(reader) == 0:
            raise DecoderFailure("decord found no frames")
        stamps = np.asarray(reader.get_frame_timestamp(np.arange(len(reader)))[:, 0], dtype=np.float64)
        starts_s: npt.NDArray[np.float64] = stamps - self._request.info.start_s
        duration_s = self._request.info.duration_s
        plausible = (
            np.all(np.isfinite(starts_s))
            and np.all(np.diff(starts_s) > 0)
            and starts_s[0] > -1.0
            and starts_s[-1] < duration_s + 1.0
        )
        if not plausible:
            raise DecoderFailure("decord reports implausible frame times for this file")
        return starts_s


def _stored_size(info: VideoInfo, size: tuple[int, int] | None) -> tuple[int, int]:
    """Output ``size`` (upright; None: full) in the orientation the frames are stored in (before the
    display rotation)."""
    if size is None:
        return info.coded_width, info.coded_height
    width, height = size
    return (height, width) if info.rotation_deg in (90, 270) else (width, height)


def _shrunk(pixels: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    """Frames (n, h, w, 3) shrunk to (width, height) with a box filter."""
    from PIL import Image

    resample = Image.Resampling.BOX
    return np.stack([np.asarray(Image.fromarray(frame).resize(size, resample)) for frame in pixels])


DECODERS: dict[str, Callable[[DecodeRequest], FrameDecoder]] = {
    "pyav": PyAVDecoder,
    "decord": DecordDecoder,
}


class _BatchBuilder:
    """Writes frames straight into FrameBatch-sized arrays (one copy, no stacking), dropping repeats; with
    detail copies, into a DetailedBatch (both copies count against the batch's bytes)."""

    def __init__(self, batch_size: int) -> None:
        self._size = batch_size
        self._times: list[float] = []
        self._pixels: npt.NDArray[np.uint8] | None = None
        self._detail: npt.NDArray[np.uint8] | None = None
        self._last_time_s: float | None = None

    def already_has(self, time_s: float) -> bool:
        return self._last_time_s is not None and time_s <= self._last_time_s + _TIME_EPSILON_S

    def add(
        self, time_s: float, pixels: npt.NDArray[np.uint8], detail: npt.NDArray[np.uint8] | None = None
    ) -> Iterator[FrameBatch]:
        if self._pixels is None or not self._fits(pixels, detail):
            yield from self.finish()
            frame_bytes = pixels.nbytes + (detail.nbytes if detail is not None else 0)
            capacity = max(1, min(self._size, MAX_BATCH_BYTES // frame_bytes))
            self._pixels = np.empty((capacity, *pixels.shape), dtype=np.uint8)
            self._detail = np.empty((capacity, *detail.shape), dtype=np.uint8) if detail is not None else None
        count = len(self._times)
        self._pixels[count] = pixels
        if self._detail is not None and detail is not None:
            self._detail[count] = detail
        self._times.append(time_s)
        self._last_time_s = time_s
        if len(self._times) == len(self._pixels):
            yield from self.finish()

    def _fits(self, pixels: npt.NDArray[np.uint8], detail: npt.NDArray[np.uint8] | None) -> bool:
        """Whether a frame of these shapes goes into the arrays being filled (a size change starts anew)."""
        assert self._pixels is not None
        if detail is None or self._detail is None:
            same_detail = detail is None and self._detail is None
        else:
            same_detail = self._detail.shape[1:] == detail.shape
        return self._pixels.shape[1:] == pixels.shape and same_detail

    def finish(self) -> Iterator[FrameBatch]:
        if self._times and self._pixels is not None:
            count = len(self._times)
            times = np.asarray(self._times, dtype=np.float64)
            if self._detail is not None:
                yield DetailedBatch(times, self._pixels[:count], self._detail[:count])
            else:
                yield FrameBatch(timestamps_s=times, pixels=self._pixels[:count])
        self._times, self._pixels, self._detail = [], None, None


T = TypeVar("T")


def run_with_watchdog(produce: Callable[[], Iterable[T]], stall_timeout_s: float, what: str) -> Iterator[T]:
    """Iterate ``produce()`` in a worker thread; raise DecoderStalled if no item comes in time.

    The worker runs at most two items ahead, which overlaps decoding with whatever the caller does with
    each item while keeping memory bounded. A worker stuck inside native code cannot be killed; it is a
    daemon thread, abandoned once the caller gives up on it.
    """
    handoff = _Handoff()
    threading.Thread(target=handoff.work, args=(produce,), name=f"videoqa-{what}", daemon=True).start()
    try:
        while True:
            kind, payload = handoff.take(stall_timeout_s, what)
            if kind == "done":
                return
            if kind == "error":
                raise payload
            yield payload
    finally:
        handoff.stop.set()


class _Handoff:
    """A worker thread's items, handed to the caller through a small queue the caller can close."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=2)
        self.stop = threading.Event()

    def work(self, produce: Callable[[], Iterable[Any]]) -> None:
        try:
            for item in produce():
                if not self._put("item", item):
                    return
            self._put("done", None)
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            self._put("error", exc)

    def take(self, timeout_s: float, what: str) -> tuple[str, Any]:
        try:
            return self.items.get(timeout=timeout_s)
        except queue.Empty:
            raise DecoderStalled(f"{what} produced nothing for {timeout_s:g} s") from None

    def _put(self, kind: str, payload: Any) -> bool:
        """False once the caller has stopped listening."""
        while not self.stop.is_set():
            try:
                self.items.put((kind, payload), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False


def _first_line(exc: BaseException) -> str:
    """The first line of an error, without decord's "[time] file.cc:123: Error: " prefix."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return re.sub(r"^\[[^\]]*\]\s+\S+:\d+:\s+(Error:\s*)?", "", first)
