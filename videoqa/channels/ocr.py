"""On-screen text (OCR): read the words shown in frames, clean them up, and place them in time.

    from videoqa.channels.ocr import OcrOptions, load_reader, read_screen_text
    reader = load_reader(OcrOptions())                    # the default engine (see ENGINES)
    lines = reader.read(frames)                           # per frame: its TextLines, top to bottom
    texts = read_screen_text("talk.mp4", spans, reader)   # a ScreenText per stretch a text stays on screen

Two engines, picked by name: "rapidocr" (the PP-OCRv4 text detector and recogniser on onnxruntime, models
inside the wheel) and "tesseract" (the tesseract program, run on each frame with an argument list, never
a shell). ``benchmarks/ocr.py`` compares them on synthetic videos with text at known times.
Frames are read at full size and small ones enlarged: a caption in a 360p video is a dozen pixels high,
already too few for either engine, and the index's 448-px frames lose it entirely.

Every engine returns pieces of text with a score and a box; what happens next is shared: pieces scored
below the confidence floor are dropped, pieces side by side on one row are joined into a line (detectors
split a line at wide gaps), and lines that are not text (a lone glyph, punctuation) are dropped.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import io
import itertools
import logging
import os
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from videoqa.errors import OptionsError, VideoqaError
from videoqa.media.video import SamplingOptions, probe, read_frames
from videoqa.store import registry
from videoqa.types import VideoInfo

log = logging.getLogger("videoqa")

ProgressCallback = Callable[[float, float], None]  # (seconds of video done, seconds in all)

# Bump when cleaning or preprocessing changes what a reader returns: it is part of every reader's id.
_READER_VERSION = 3
# Characters trimmed from both ends of a line: the edges of boxes and underlines read as these.
_EDGE_JUNK = "|_=~`"
# A line needs this many letters or digits: a lone glyph is far more often texture than text.
_MIN_ALNUM = 2
# Pieces join into one line when they overlap vertically by this share of the shorter one's height and the
# gap between them is at most this many heights (a word space is about a third of one).
_ROW_OVERLAP = 0.5
_ROW_GAP = 1.0
# Boxes that overlap read the glyphs they share twice ("18:47" + "7 Garden"); up to this many are dropped.
_MAX_REPEAT = 3
# Two readings of one caption on neighbouring frames differ by a character or two of OCR noise; readings
# this alike (difflib's ratio on their letters and digits) count as the same text.
_SAME_TEXT_RATIO = 0.9
_FRAMES_PER_BATCH = 8  # frames decoded and read together by ScreenTextPass
# tesseract takes 0.1-1 s for a frame, but minutes for some dense textures (cellular automata, foliage):
# past this, a frame reads as empty, with a warning.
_TESSERACT_SECONDS_PER_FRAME = 10.0
# tesseract's page segmentation mode 11, "sparse text": finds scattered captions and signs rather than
# looking for the columns of a page.
_TESSERACT_PSM = "11"
# How far rapidocr grows each detected text box (its default is 1.6): the recogniser, which sees every box
# 48 px high, then keeps the spaces between words more often (exact reads in benchmarks/ocr.py rose from
# 0.79 and 0.71 to 0.88 on two sets of frames).
_RAPIDOCR_UNCLIP = 2.4
# Most frames of most videos hold no text. rapidocr looks for text boxes on a small copy of the frame
# (short side enlarged to 360 px at most, long side shrunk to 960 at most; ~35 ms) and reads only those
# boxes, cut from the frame enlarged to min_side. Detecting again at that size cost ~250 ms a frame and
# read no better: benchmarks/ocr.py, exact / word recall / false positives 0.90 / 0.95 / 0.03 at 118 ms a
# frame against 0.89 / 0.94 / 0.00 at 345 ms; held-out seed 7: 0.88 / 0.93 / 0.00 at 117 ms against
# 0.88 / 0.93 / 0.00 at 272 ms.
_FINDER_MIN_SIDE = 360
_FINDER_MAX_SIDE = 960
_LANGUAGE = re.compile(r"[A-Za-z_]+(\+[A-Za-z_]+)*")

# read_screen_text reads a frame this often within a span: a caption shown for 4.5 s or longer is always
# read (samples are at most 1.5 steps apart), and unchanged frames cost no reading.
DEFAULT_EVERY_S = 3.0
# A frame counts as unchanged when no cell of a 160x90 grid of block means moved by more than this many
# grey levels: grain and compression on a still shot (x264 crf 28) move them by 3-4, a caption 12 px high
# drawn on a 1080p frame by 25 or more.
_THUMBNAIL_SIZE = (160, 90)
_CHANGE_LEVELS = 8.0


class OcrError(VideoqaError):
    """An OCR engine is missing or failed (no tesseract program, no language data, no rapidocr)."""


@dataclass(frozen=True)
class EngineSpec:
    """How videoqa runs an OCR engine of the model registry (``store/registry.py``)."""

    summary: str  # one line for listings (the registry's)
    install: str  # what a user runs to get it (the registry's)
    languages: tuple[str, ...] | None  # language codes its models read; None: the installed tesseract data
    # Pieces scored lower are dropped by default; each engine scores on its own scale (benchmarks/ocr.py).
    min_confidence: float


def _engine(name: str, languages: tuple[str, ...] | None, min_confidence: float) -> EngineSpec:
    """The settings of the registry's OCR engine ``name``, with its summary and install command."""
    spec = registry.MODELS[name]
    if spec.kind != registry.OCR or not isinstance(spec.source, registry.Package | registry.Program):
        raise ValueError(f"{name} is not an OCR engine that a package or program installs")
    return EngineSpec(spec.summary, spec.source.install, languages, min_confidence)


ENGINES: dict[str, EngineSpec] = {
    # One recogniser reads Chinese and Latin script alike. Floors of 0.6-0.8 read alike on both benchmark
    # sets; 0.5 let junk through on one.
    "rapidocr": _engine("rapidocr", ("eng", "chi_sim"), 0.7),
    # Its words on textures (foliage, cellular automata) score up to 0.8: at 0.7 it read text on about
    # 20% of frames with none, at 0.8 on 6-14%; 0.85 lost words of slides on one benchmark set.
    "tesseract": _engine("tesseract", None, 0.8),
}
DEFAULT_ENGINE = registry.DEFAULT_OCR_ENGINE  # why rapidocr: see the registry


@dataclass(frozen=True)
class OcrOptions:
    """Which engine reads frames, and how."""

    engine: str = DEFAULT_ENGINE  # a name in ENGINES
    language: str = "eng"  # tesseract language codes joined by "+", e.g. "eng+deu"
    min_confidence: float | None = None  # drop pieces scored lower, 0-1; None: the engine's own floor
    min_side: int = 720  # frames whose shorter side is smaller are enlarged to it: small text needs pixels
    max_side: int = 1920  # frames whose longer side is larger are shrunk to it: time grows with pixels

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise OptionsError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if not isinstance(self.language, str) or not _LANGUAGE.fullmatch(self.language):
            raise OptionsError(f"language must be codes like 'eng' or 'eng+deu', got {self.language!r}")
        supported = ENGINES[self.engine].languages
        unsupported = [code for code in self.language.split("+") if supported and code not in supported]
        if unsupported:
            raise OptionsError(
                f"the {self.engine} engine reads only {', '.join(supported or ())}, "
                f"not {', '.join(unsupported)}"
            )
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise OptionsError(f"min_confidence must be between 0 and 1, got {self.min_confidence!r}")
        for name in ("min_side", "max_side"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 16:
                raise OptionsError(f"{name} must be a whole number of pixels, at least 16, got {value!r}")
        if self.max_side < self.min_side:
            raise OptionsError(f"max_side ({self.max_side}) must be at least min_side ({self.min_side})")

    @property
    def confidence_floor(self) -> float:
        """The confidence floor in force: ``min_confidence``, or the engine's own."""
        return ENGINES[self.engine].min_confidence if self.min_confidence is None else self.min_confidence


@dataclass(frozen=True)
class TextLine:
    """One line of text read from a frame (from an engine: one piece of a line, as it read it)."""

    text: str  # cleaned: single spaces, no junk at the ends
    confidence: float  # 0-1, the engine's own score (of a joined line: the mean over its characters)
    box: tuple[int, int, int, int]  # left, top, right, bottom, in pixels of the frame as given


@dataclass(frozen=True)
class ScreenText:
    """Text on screen over a stretch of video (see ``read_screen_text``)."""

    start_s: float  # the stretch the frames that read it stand for (halfway to the frames read either side)
    end_s: float
    text: str  # its lines, cleaned, joined with newlines
    frame_s: float  # time of the frame it was read from (the first one, when neighbours agree)


class TextReader(Protocol):
    """Reads the text in frames."""

    @property
    def id(self) -> str:
        """Names the engine, its version and every setting that changes what it reads (for cache keys)."""
        ...

    def read(self, images: npt.NDArray[np.uint8]) -> list[list[TextLine]]:
        """(n, height, width, 3) uint8 RGB frames -> for each frame its lines, top to bottom."""
        ...


def load_reader(options: OcrOptions | None = None) -> TextReader:
    """The reader for ``options.engine``; raises OcrError, saying what to install, when it is missing."""
    options = options or OcrOptions()
    return _LOADERS[options.engine](options)


# -- cleaning ---------------------------------------------------------------------------------------


def clean_line(text: str) -> str:
    """``text`` with unicode compatibility forms folded, runs of white space made single spaces and
    junk trimmed from the ends; "" when what is left is not text (fewer than two letters or digits)."""
    line = " ".join(unicodedata.normalize("NFKC", text).split()).strip(_EDGE_JUNK + " ")
    line = _ZERO_IN_WORD.sub(_zero_as_letter, line)
    return line if sum(char.isalnum() for char in line) >= _MIN_ALNUM else ""


# A zero among letters is a misread capital O ("RO0M 97", "FLO0R 37" on signs): a word that starts with
# a letter and holds letters and zeros only.
_ZERO_IN_WORD = re.compile(r"\b[A-Za-z][A-Za-z0]*0[A-Za-z0]*\b")


def _zero_as_letter(word: re.Match[str]) -> str:
    text = word.group()
    letters = sum(char.isalpha() for char in text)
    return text.replace("0", "O") if letters >= 2 else text  # "A0" (a paper size, a grid square) stays


def join_lines(lines: Sequence[TextLine]) -> str:
    """The lines of one frame as one text, a line each."""
    return "\n".join(line.text for line in lines)


def same_text(first: str, second: str) -> bool:
    """Whether two readings are of the same text, allowing for a little OCR noise; "" matches nothing."""
    first_key, second_key = _letters_and_digits(first), _letters_and_digits(second)
    if not first_key or not second_key:
        return False
    return (
        first_key == second_key
        or difflib.SequenceMatcher(None, first_key, second_key).ratio() >= _SAME_TEXT_RATIO
    )


def _letters_and_digits(text: str) -> str:
    return "".join(char for char in text.casefold() if char.isalnum())


def lines_from_pieces(pieces: Sequence[TextLine], min_confidence: float) -> list[TextLine]:
    """An engine's pieces (words or detected boxes) -> clean lines, top to bottom.

    Pieces scored below ``min_confidence`` are dropped, pieces side by side on one row joined with a
    space, and lines that are not text after ``clean_line`` dropped.
    """
    kept = [piece for piece in pieces if piece.confidence >= min_confidence and piece.text.strip()]
    rows: list[list[TextLine]] = []
    for piece in sorted(kept, key=lambda piece: piece.box[0]):
        row = next((row for row in rows if _continues(row[-1].box, piece.box)), None)
        if row is None:
            rows.append([piece])
        else:
            row.append(piece)
    lines = [line for line in map(_joined, rows) if line.text]
    return sorted(lines, key=lambda line: (line.box[1], line.box[0]))


def _continues(left: tuple[int, int, int, int], right: tuple[int, int, int, int]) -> bool:
    """Whether the box ``right`` carries on the row that ends with the box ``left``."""
    heights = (left[3] - left[1], right[3] - right[1])
    overlap = min(left[3], right[3]) - max(left[1], right[1])
    gap = right[0] - left[2]
    return overlap >= _ROW_OVERLAP * min(heights) and -max(heights) <= gap <= _ROW_GAP * max(heights)


def _joined(row: list[TextLine]) -> TextLine:
    texts = [row[0].text, *(_unrepeated(left, right) for left, right in itertools.pairwise(row))]
    text = clean_line(" ".join(texts))
    weights = [max(1, len(piece.text)) for piece in row]
    confidence = sum(piece.confidence * weight for piece, weight in zip(row, weights, strict=True)) / sum(
        weights
    )
    box = (
        min(p.box[0] for p in row),
        min(p.box[1] for p in row),
        max(p.box[2] for p in row),
        max(p.box[3] for p in row),
    )
    return TextLine(text, confidence, box)


def _unrepeated(left: TextLine, right: TextLine) -> str:
    """The text of ``right`` less the glyphs at its start that repeat the end of ``left``, when their boxes
    overlap (a detector can cut one line into overlapping boxes)."""
    head = right.text.lstrip()
    if right.box[0] >= left.box[2]:
        return head
    tail = left.text.rstrip()
    repeated = next(
        (size for size in range(min(_MAX_REPEAT, len(head)), 0, -1) if tail.endswith(head[:size])), 0
    )
    return head[repeated:]


# -- text over time ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sample:
    """A frame to read, and the stretch of its span it stands for."""

    time_s: float
    start_s: float
    end_s: float


def read_screen_text(
    video: str | os.PathLike[str] | VideoInfo,
    spans: Sequence[tuple[float, float, float]],
    reader: TextReader,
    every_s: float = DEFAULT_EVERY_S,
    on_progress: ProgressCallback | None = None,
) -> list[ScreenText]:
    """The text on screen in ``spans`` of a video, in order of time (see ``ScreenTextPass``)."""
    info = video if isinstance(video, VideoInfo) else probe(video)
    return ScreenTextPass(info, reader, every_s).read(spans, on_progress)


class ScreenTextPass:
    """Reads the text on screen of one video, span after span in time order.

    ``spans`` are (start_s, end_s, keyframe_s) triples, e.g. a video's scenes. The keyframe of each span is
    read, plus a frame every ``every_s`` seconds of a span longer than that (captions, slides and lower
    thirds come and go within one shot). Frames are decoded at full size; a frame that looks like the last
    one read (see ``_CHANGE_LEVELS``) takes its reading instead of being read again, across calls too.
    Neighbouring frames that read the same text (up to OCR noise, see ``same_text``) give one ScreenText
    that covers them all; frames with no text give none. The same pass reads a whole indexed video at
    once or, when streaming, each scene as it closes: both see the same frames with the same settings.
    """

    def __init__(self, info: VideoInfo, reader: TextReader, every_s: float = DEFAULT_EVERY_S) -> None:
        if not every_s > 0:
            raise ValueError(f"every_s must be positive, got {every_s!r}")
        self.info, self.reader, self.every_s = info, reader, every_s
        self._last: _LastRead | None = None

    def read(
        self, spans: Sequence[tuple[float, float, float]], on_progress: ProgressCallback | None = None
    ) -> list[ScreenText]:
        samples = _plan(spans, self.every_s, self.info.duration_s)
        if not samples:
            return []
        times_s = np.asarray([sample.time_s for sample in samples], dtype=np.float64)
        read: list[tuple[_Sample, float, str]] = []
        for batch in read_frames(self.info, times_s, SamplingOptions(batch_size=_FRAMES_PER_BATCH)):
            texts, self._last = _read_changed(batch.pixels, self.reader, self._last)
            for frame_s, text in zip(batch.timestamps_s.tolist(), texts, strict=True):
                # A decoder returns the frame shown at a target time: the first target at or after its time.
                index = min(int(np.searchsorted(times_s, frame_s - 1e-6)), len(samples) - 1)
                read.append((samples[index], frame_s, text))
            if on_progress is not None:
                on_progress(read[-1][0].end_s, self.info.duration_s)
        return _merge_runs(read)


@dataclass(frozen=True)
class _LastRead:
    """The last frame given to the reader: its thumbnail and what it read."""

    thumbnail: npt.NDArray[np.float32]
    text: str


def _read_changed(
    pixels: npt.NDArray[np.uint8], reader: TextReader, last: _LastRead | None
) -> tuple[list[str], _LastRead | None]:
    """The text of each frame of a batch, reading only those that differ from the last frame read."""
    thumbnails = [_thumbnail(frame) for frame in pixels]
    sources: list[int] = []  # per frame: the frame of this batch whose reading it takes; -1: ``last``'s
    reference = last.thumbnail if last is not None else None
    for index, thumbnail in enumerate(thumbnails):
        if reference is None or float(np.abs(thumbnail - reference).max()) > _CHANGE_LEVELS:
            reference = thumbnail
            sources.append(index)
        else:
            sources.append(sources[-1] if sources else -1)
    fresh = sorted({source for source in sources if source >= 0})
    readings = {-1: last.text} if last is not None else {}
    if fresh:
        readings.update(zip(fresh, map(join_lines, reader.read(pixels[fresh])), strict=True))
        last = _LastRead(thumbnails[fresh[-1]], readings[fresh[-1]])
    return [readings[source] for source in sources], last


def _thumbnail(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """``frame`` in grey, shrunk to a _THUMBNAIL_SIZE grid of block means."""
    from PIL import Image

    grey = Image.fromarray(frame).convert("L").resize(_THUMBNAIL_SIZE, Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float32)


def _plan(spans: Sequence[tuple[float, float, float]], every_s: float, duration_s: float) -> list[_Sample]:
    """The frames to read, in order of time, each with the part of its span it stands for."""
    samples: list[_Sample] = []
    last_frame_s = max(0.0, duration_s - 1e-3)
    for start_s, end_s, keyframe_s in sorted(spans):
        if not 0 <= start_s <= keyframe_s <= end_s or start_s >= end_s:
            raise ValueError(
                f"a span needs 0 <= start_s <= keyframe_s <= end_s and start_s < end_s, got "
                f"({start_s}, {end_s}, {keyframe_s})"
            )
        times = sorted(
            {min(time_s, last_frame_s) for time_s in _span_times(start_s, end_s, keyframe_s, every_s)}
        )
        # Spans that touch may share a frame; it is read once, for the first.
        times = [time_s for time_s in times if not samples or time_s > samples[-1].time_s + 1e-6]
        edges = [start_s, *((a + b) / 2 for a, b in itertools.pairwise(times)), end_s]
        samples += [_Sample(time_s, edges[i], edges[i + 1]) for i, time_s in enumerate(times)]
    return samples


def _span_times(start_s: float, end_s: float, keyframe_s: float, every_s: float) -> list[float]:
    """The keyframe, plus the middles of every_s-long steps across a longer span, skipping those the
    keyframe already stands for: the ones within a quarter step of it. (Half a step skipped too much: a
    keyframe near the edge of its step stood for the whole step, and a 2-s card in the step's middle was
    never read.)"""
    if end_s - start_s <= every_s:
        return [keyframe_s]
    steps = start_s + every_s * (np.arange(np.ceil((end_s - start_s) / every_s)) + 0.5)
    extra = steps[(steps < end_s) & (np.abs(steps - keyframe_s) >= every_s / 4)]
    return [keyframe_s, *extra.tolist()]


def _merge_runs(read: list[tuple[_Sample, float, str]]) -> list[ScreenText]:
    """One ScreenText per run of neighbouring frames that read the same text; the longest reading wins
    (a caption fading in or half hidden reads short)."""
    merged: list[ScreenText] = []
    previous = ""
    for sample, frame_s, text in read:
        if merged and same_text(previous, text):
            last = merged[-1]
            best = text if len(text) > len(last.text) else last.text
            merged[-1] = ScreenText(last.start_s, sample.end_s, best, last.frame_s)
        elif text:
            merged.append(ScreenText(sample.start_s, sample.end_s, text, frame_s))
        previous = text
    return merged


# -- shared by the engines --------------------------------------------------------------------------


def _check_images(images: npt.NDArray[np.uint8]) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(
            f"frames must be a (n, height, width, 3) uint8 RGB array, got shape {images.shape} {images.dtype}"
        )


def _scale(height: int, width: int, options: OcrOptions) -> float:
    """How much to enlarge (or shrink) a frame before reading it; see OcrOptions.min_side/max_side."""
    scale = max(1.0, options.min_side / min(height, width))
    return min(scale, options.max_side / max(height, width))


def _resized(image: npt.NDArray[np.uint8], scale: float) -> Any:
    """``image`` as a PIL image ``scale`` times the size (bicubic: sharp edges for the recognisers)."""
    from PIL import Image

    picture = Image.fromarray(image)
    if abs(scale - 1.0) < 1e-3:
        return picture
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return picture.resize(size, Image.Resampling.BICUBIC)


def _box(points: Sequence[Sequence[float]], scale: float) -> tuple[int, int, int, int]:
    """The bounding box of ``points`` (x, y) in a frame enlarged by ``scale``, in the frame as given."""
    xs = [point[0] / scale for point in points]
    ys = [point[1] / scale for point in points]
    return round(min(xs)), round(min(ys)), round(max(xs)), round(max(ys))


def _settings_id(options: OcrOptions) -> str:
    return (
        f"{options.language}-side{options.min_side}-{options.max_side}"
        f"-conf{options.confidence_floor:g}-v{_READER_VERSION}"
    )


# -- rapidocr ---------------------------------------------------------------------------------------


class RapidOcrReader:
    """PP-OCRv4 through rapidocr-onnxruntime: a text detector finds boxes, a recogniser reads each one."""

    def __init__(self, options: OcrOptions) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise OcrError(
                f"the rapidocr OCR engine needs rapidocr-onnxruntime ({exc}); install it: "
                f"{ENGINES['rapidocr'].install}"
            ) from None
        self._options = options
        # Without the angle classifier, which only turns upside-down boxes (video text never is), and
        # without its own score filter: pieces are filtered in lines_from_pieces, alike for every engine.
        self._engine = RapidOCR(use_cls=False, text_score=0.0, det_unclip_ratio=_RAPIDOCR_UNCLIP)
        self._finder = RapidOCR(
            use_cls=False,
            text_score=0.0,
            det_unclip_ratio=_RAPIDOCR_UNCLIP,
            det_limit_side_len=_FINDER_MAX_SIDE,
            det_limit_type="max",
        )
        version = importlib.metadata.version("rapidocr-onnxruntime")
        self.id = (
            f"rapidocr-{version}-ppocrv4-unclip{_RAPIDOCR_UNCLIP:g}-find{_FINDER_MIN_SIDE}-"
            f"{_settings_id(options)}"
        )

    def read(self, images: npt.NDArray[np.uint8]) -> list[list[TextLine]]:
        """(n, height, width, 3) uint8 RGB frames -> for each frame its lines, top to bottom."""
        _check_images(images)
        return [lines_from_pieces(self._pieces(image), self._options.confidence_floor) for image in images]

    def _pieces(self, image: npt.NDArray[np.uint8]) -> list[TextLine]:
        boxes, finder_scale = self._find_boxes(image)
        if not boxes:
            return []
        scale = _scale(image.shape[0], image.shape[1], self._options)
        # RapidOCR takes arrays as OpenCV's BGR. The boxes found on the small copy are read on the enlarged
        # frame: detecting again at that size would cost most of the time and find the same boxes.
        bgr = np.ascontiguousarray(np.asarray(_resized(image, scale))[..., ::-1])
        ratio = scale / finder_scale
        enlarged = [np.asarray(box, dtype=np.float32) * ratio for box in boxes]
        crops = self._engine.get_crop_img_list(bgr, enlarged)
        read, _ = self._engine.text_rec(crops)
        return [
            TextLine(str(text), float(score), _box(box.tolist(), scale))
            for box, (text, score) in zip(enlarged, read, strict=True)
        ]

    def _find_boxes(self, image: npt.NDArray[np.uint8]) -> tuple[list[Any], float]:
        """Text boxes found on a small copy of the frame (see _FINDER_MIN_SIDE), top to bottom, in the copy's
        pixels, and the copy's scale."""
        height, width = image.shape[:2]
        scale = min(max(1.0, _FINDER_MIN_SIDE / min(height, width)), _FINDER_MAX_SIDE / max(height, width))
        small = np.ascontiguousarray(np.asarray(_resized(image, scale))[..., ::-1])
        boxes, _ = self._finder.auto_text_det(small)
        return (list(boxes) if boxes is not None else []), scale


def _load_rapidocr(options: OcrOptions) -> TextReader:
    return RapidOcrReader(options)


# -- tesseract --------------------------------------------------------------------------------------


class TesseractReader:
    """The tesseract program, one single-threaded run per frame, as many at once as there are CPU cores."""

    def __init__(self, options: OcrOptions, program: str) -> None:
        self._options = options
        self._program = program
        _check_tesseract_languages(program, options.language)
        self.id = f"tesseract-{_tesseract_version(program)}-psm{_TESSERACT_PSM}-{_settings_id(options)}"

    def read(self, images: npt.NDArray[np.uint8]) -> list[list[TextLine]]:
        """(n, height, width, 3) uint8 RGB frames -> for each frame its lines, top to bottom."""
        _check_images(images)
        if len(images) == 0:
            return []
        with ThreadPoolExecutor(max_workers=min(len(images), os.cpu_count() or 1)) as pool:
            return list(pool.map(self._read_one, images))

    def _read_one(self, image: npt.NDArray[np.uint8]) -> list[TextLine]:
        scale = _scale(image.shape[0], image.shape[1], self._options)
        grey = io.BytesIO()
        _resized(image, scale).convert("L").save(grey, format="PPM")  # uncompressed: nothing to decode
        arguments = ["stdin", "stdout", "--psm", _TESSERACT_PSM, "-l", self._options.language, "tsv"]
        try:
            tsv = _run_tesseract(self._program, arguments, _TESSERACT_SECONDS_PER_FRAME, grey.getvalue())
        except subprocess.TimeoutExpired:
            log.warning(
                "tesseract took over %.0f s on a frame; reading it as having no text",
                _TESSERACT_SECONDS_PER_FRAME,
            )
            return []
        return lines_from_pieces(
            [_piece(fields, scale) for fields in _tsv_words(tsv)], self._options.confidence_floor
        )


def _load_tesseract(options: OcrOptions) -> TextReader:
    program = shutil.which("tesseract")
    if program is None:
        raise OcrError(
            f"the tesseract OCR engine needs the tesseract program, not found on PATH; install "
            f"it ({ENGINES['tesseract'].install}) or use the rapidocr engine"
        )
    return TesseractReader(options, program)


def _run_tesseract(program: str, arguments: list[str], timeout_s: float, image: bytes = b"") -> str:
    """tesseract's standard output, given ``image`` on its standard input; raises
    subprocess.TimeoutExpired past ``timeout_s``, OcrError when it cannot run or fails."""
    # One thread each: tesseract's OpenMP threads made it twice as slow on video frames, and frames are
    # read in parallel instead.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        result = subprocess.run(
            [program, *arguments], input=image, capture_output=True, timeout=timeout_s, env=env
        )
    except OSError as exc:
        raise OcrError(f"tesseract could not run: {exc}") from None
    if result.returncode != 0:
        detail = (result.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise OcrError(f"tesseract failed: {detail}")
    return result.stdout.decode("utf-8", errors="replace")


def _tesseract_version(program: str) -> str:
    first_line = (_run_tesseract(program, ["--version"], 30.0).splitlines() or ["unknown"])[0]
    return first_line.split()[-1]


def _check_tesseract_languages(program: str, language: str) -> None:
    # The listing's first line is a heading: 'List of available languages in "/usr/share/...":'.
    installed = set(_run_tesseract(program, ["--list-langs"], 30.0).splitlines()[1:])
    missing = [code for code in language.split("+") if code not in installed]
    if missing:
        packages = " ".join(f"tesseract-ocr-{code.lower().replace('_', '-')}" for code in missing)
        raise OcrError(
            f"tesseract has no language data for {', '.join(missing)}; install it (Debian: "
            f"apt-get install {packages})"
        )


def _tsv_words(tsv: str) -> list[list[str]]:
    """The word rows of tesseract's TSV output. A row's fields: level, page_num, block_num, par_num,
    line_num, word_num, left, top, width, height, conf (0-100) and text."""
    rows = (row.split("\t") for row in tsv.splitlines()[1:])
    # Rows of level 5 are words; the others (page, block, paragraph, line) carry no text.
    return [fields for fields in rows if len(fields) == 12 and fields[0] == "5" and fields[11].strip()]


def _piece(fields: list[str], scale: float) -> TextLine:
    left, top, width, height = (int(value) for value in fields[6:10])
    return TextLine(
        fields[11], float(fields[10]) / 100, _box([(left, top), (left + width, top + height)], scale)
    )


# Engines by registered name; each imports or finds what it needs only when loaded.
_LOADERS: dict[str, Callable[[OcrOptions], TextReader]] = {
    "rapidocr": _load_rapidocr,
    "tesseract": _load_tesseract,
}
