"""On-screen text (OCR): read the words shown in frames, clean them up, and place them in time.

    from videoqa.channels.ocr import OcrOptions, load_reader, read_screen_text
    reader = load_reader(OcrOptions())                    # the default engine (see ENGINES)
    lines = reader.read(frames)                           # per frame: its TextLines, top to bottom
    texts = read_screen_text("talk.mp4", reader)          # a ScreenText per stretch a text stays on screen

Two engines, picked by name: "rapidocr" (the PP-OCRv4 text detector and recogniser on onnxruntime, models
inside the wheel) and "tesseract" (the tesseract program, run on each frame with an argument list, never
a shell). ``benchmarks/ocr.py`` compares them on synthetic videos with text at known times.
Frames are read at full size and small ones enlarged: a caption in a 360p video is a dozen pixels high,
already too few for either engine, and the index's 448-px frames lose it entirely. Over a whole video
(``ScreenTextPass``) the reader is given the index's frames, each with a full-size copy decoded with it,
and spends little on most: a cheap look on the small copy first, then only the text boxes that are new
or changed since the last frame read are recognised.

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
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from videoqa.errors import OptionsError, VideoqaError
from videoqa.host.cores import thread_plan
from videoqa.media.decoders import DetailedBatch
from videoqa.media.video import Detail, SamplingOptions, plan_times, probe, read_frames
from videoqa.store import registry
from videoqa.types import FrameBatch, VideoInfo

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

# ScreenTextPass looks at a frame that changed at most this often: at the index's 1 fps, text shown for
# this long or longer always lands on a frame that is looked at (of three frames in a row, one), and
# unchanged frames cost nothing. Every 2 s cost 50 % more looks and reads on the benchmark story
# (docs/benchmarks.md, issue 16); reading a frame every 3 s within each scene had read text shown 4.5 s.
DEFAULT_LOOK_EVERY_S = 3.0
# A frame counts as unchanged when no cell of a 160x90 grid of block means (of the index-size frame)
# moved by more than this many grey levels: grain and compression on a still shot (x264 crf 28) move them
# by 3-4, a caption 12 px high drawn on a 1080p frame (3 px in the 448-px copy) by 25 or more.
_THUMBNAIL_SIZE = (160, 90)
_CHANGE_LEVELS = 8.0
# A text box found on a frame keeps the reading of a box of the last frame read when the two overlap this
# much (intersection over union) and no block of _BOX_BLOCK x _BOX_BLOCK pixels of the old box's place
# changed by more than _BOX_LEVELS grey levels: compression noise on a still caption moves block means by
# 2-3, a changed glyph by tens, and a caption over moving footage (no box under it) is read again.
_BOX_OVERLAP = 0.7
_BOX_BLOCK = 4
_BOX_LEVELS = 12.0
# The cheap look runs the text detector on the index's 448-px copy of the frame enlarged to this long side,
# with lower thresholds than the finder's (it only decides whether to read): on both sets of
# benchmarks/ocr.py it passes over no frame the full read finds text on. At 448 px it cost 18 ms but
# missed 7 of 73 such frames (small overlaid text); at 512 one on the held-out set.
_LOOK_SIDE = 544
_LOOK_THRESHOLD = 0.2  # a pixel's text probability (the finder's: 0.3)
_LOOK_BOX_THRESHOLD = 0.3  # a box's mean probability (the finder's: 0.5)
# The look's boxes are read as they are when the finder would see the frame at most this much closer (a
# 360p frame: the finder's 640 px against the look's 544): detecting again cost ~40 ms a frame and read
# the same (benchmarks/ocr.py: the same figures on both sets, 31 and 29 frames read from the look's boxes).
_LOOK_BOXES_RATIO = 1.3


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
    # onnxruntime threads (rapidocr): indexing reads frames while speech is recognised beside it, so the
    # frame side's share of the cores; more would oversubscribe them (host/cores.py)
    threads: int = field(default_factory=lambda: thread_plan().frames)

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
        if not isinstance(self.threads, int) or self.threads < 1:
            raise OptionsError(f"threads must be a whole number of at least 1, got {self.threads!r}")

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


Quad = npt.NDArray[np.float32]  # (4, 2): a text box's corners (x, y) in a frame's pixels


@runtime_checkable
class BoxReader(TextReader, Protocol):
    """A TextReader that also works a box at a time, so a pass over a video can look cheaply for text and
    recognise only the boxes that changed (``ScreenTextPass``). ``read`` is ``assemble(recognise(image,
    find(image)))`` for each frame."""

    def look(self, image: npt.NDArray[np.uint8]) -> list[Quad]:
        """Where a small (index-size) copy of a frame may hold text, in the copy's pixels; [] when
        nowhere. Cheap, and never passing over text that ``read`` would find on the frame (checked by
        benchmarks/ocr.py)."""
        ...

    def find(
        self,
        image: npt.NDArray[np.uint8],
        looked: Sequence[Quad] = (),
        looked_shape: tuple[int, ...] | None = None,
    ) -> list[Quad]:
        """The text boxes of one (height, width, 3) uint8 RGB frame, in its pixels, top to bottom. Given
        what ``look`` found on a copy of the frame of ``looked_shape``, those boxes may be taken as they
        are where detecting again would not see the frame closer."""
        ...

    def recognise(self, image: npt.NDArray[np.uint8], boxes: Sequence[Quad]) -> list[TextLine]:
        """What each box of ``image`` reads: one piece a box, in order, unfiltered."""
        ...

    def assemble(self, pieces: Sequence[TextLine]) -> list[TextLine]:
        """A frame's pieces -> its lines, top to bottom (``lines_from_pieces`` with the reader's floor)."""
        ...


def load_reader(options: OcrOptions | None = None) -> TextReader:
    """The reader for ``options.engine``; raises OcrError, saying what to install, when it is missing."""
    options = options or OcrOptions()
    return _LOADERS[options.engine](options)


def reader_id(options: OcrOptions | None = None) -> str:
    """The id ``load_reader(options)`` would give its reader, without loading its models where the
    engine allows (rapidocr): it keys cached screen text, so a cached video needs no OCR model loaded.
    Raises OcrError as loading does when the engine is missing."""
    options = options or OcrOptions()
    if options.engine == "rapidocr":
        return _rapidocr_id(options)
    return load_reader(options).id  # tesseract: a program, nothing to load but its version


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


# -- text over time: where text can be, and only what is new --------------------------------------


def read_screen_text(
    video: str | os.PathLike[str] | VideoInfo,
    reader: TextReader,
    sampling: SamplingOptions | None = None,
    look_every_s: float = DEFAULT_LOOK_EVERY_S,
    detail: Detail | None = None,
) -> list[ScreenText]:
    """The text on screen of a whole video, in order of time (see ``ScreenTextPass``).

    Frames are sampled as the index samples them (``sampling``, default 1 fps at 448 px), each with a
    detail copy (default: the full frame, at most ``OcrOptions().max_side``) for the reader. Indexing
    runs the same pass on the frames it decodes for the image model; this decodes them on its own.
    """
    info = video if isinstance(video, VideoInfo) else probe(video)
    sampling = sampling or SamplingOptions(fps=1.0, max_side=448)
    screen = ScreenTextPass(reader, info.duration_s, look_every_s)
    for batch in read_frames(info, plan_times(info, sampling), sampling, detail or screen_detail()):
        screen.add(batch)
    return screen.finish()


def screen_detail(options: OcrOptions | None = None) -> Detail:
    """The detail copy the reader gets: the full frame, shrunk only past what the reader reads at."""
    return Detail(max_side=(options or OcrOptions()).max_side)


@dataclass
class ScreenStats:
    """What a ScreenTextPass did, for reports and benchmarks."""

    frames: int = 0  # frames given to it
    samples: int = 0  # frames that stand for their stretch of video (looked at, or unchanged since)
    looks: int = 0  # frames looked at for text (the cheap look)
    reads: int = 0  # frames whose text boxes were found and read
    boxes_read: int = 0  # text boxes recognised
    boxes_kept: int = 0  # text boxes unchanged since the last frame read, their reading reused


class ScreenTextPass:
    """Reads the text on screen of one video from its sampled frames, given in time order.

    The pass sees every frame the index samples (1 fps) and spends little on most of them:

    * a frame that looks like the last one looked at (see ``_CHANGE_LEVELS``) takes its reading;
    * a changed frame is looked at when ``look_every_s`` has passed since the last look, so text shown
      that long or longer always lands on a frame that is looked at, and a busy shot costs one look per
      ``look_every_s``; the changed frames in between are left out;
    * a look is cheap (a reader that can, ``BoxReader``, runs its text detector on the small index-size
      copy, ~18 ms); only a frame where it finds text has its boxes found on the detail copy, and of
      those only the boxes that are new or changed since the last frame read are recognised: a box at
      the same place (``_BOX_OVERLAP``) whose pixels did not change (``_BOX_LEVELS``) keeps its reading.

    Each frame looked at, or taken as unchanged, stands for the stretch halfway to its neighbours;
    neighbours that read the same text (up to OCR noise, ``same_text``) give one ScreenText covering
    them all, and frames with no text give none. Readers without a cheap look (tesseract, test fakes)
    read every frame looked at, whole. Batch indexing and streaming run this same pass on the same
    frames, so a scene gets the same text either way.
    """

    def __init__(
        self, reader: TextReader, duration_s: float, look_every_s: float = DEFAULT_LOOK_EVERY_S
    ) -> None:
        if not look_every_s > 0:
            raise ValueError(f"look_every_s must be positive, got {look_every_s!r}")
        self.reader, self.look_every_s = reader, look_every_s
        self.stats = ScreenStats()
        self._runs = _Runs(duration_s)
        self._boxes = _BoxMemory()
        self._last: _LastLook | None = None

    def add(self, batch: FrameBatch) -> None:
        """Read the frames of a batch (index-size ``pixels``; a ``DetailedBatch``'s ``detail`` is what is
        read, else the pixels themselves)."""
        detail = batch.detail if isinstance(batch, DetailedBatch) else batch.pixels
        for time_s, small, large in zip(batch.timestamps_s.tolist(), batch.pixels, detail, strict=True):
            self._frame(time_s, small, large)

    def finish(self) -> list[ScreenText]:
        """Every ScreenText of the video, the last one running to its end."""
        return self._runs.finish()

    def shown_between(self, start_s: float, end_s: float) -> list[ScreenText]:
        """The texts on screen during [start_s, end_s) as far as the frames given so far tell (the stretch
        still open is included), in time order; texts that ended before ``start_s`` are forgotten."""
        return self._runs.between(start_s, end_s)

    def _frame(self, time_s: float, small: npt.NDArray[np.uint8], large: npt.NDArray[np.uint8]) -> None:
        self.stats.frames += 1
        thumbnail = _thumbnail(small)
        last = self._last
        if last is not None and float(np.abs(thumbnail - last.thumbnail).max()) <= _CHANGE_LEVELS:
            self._sample(time_s, last.text)
            return
        if last is not None and time_s - last.time_s < self.look_every_s - 1e-6:
            return  # changed, but looked at a moment ago: the frames either side stand for it
        text = self._read(small, large)
        self._last = _LastLook(thumbnail, time_s, text)
        self._sample(time_s, text)

    def _sample(self, time_s: float, text: str) -> None:
        self.stats.samples += 1
        self._runs.sample(time_s, text)

    def _read(self, small: npt.NDArray[np.uint8], large: npt.NDArray[np.uint8]) -> str:
        reader = self.reader
        self.stats.looks += 1
        if not isinstance(reader, BoxReader):
            self.stats.reads += 1
            return join_lines(reader.read(large[None])[0])
        looked = reader.look(small)
        if not looked:
            self._boxes.clear()
            return ""
        self.stats.reads += 1
        boxes = reader.find(large, looked, small.shape)
        grey = _grey(large)
        kept = [self._boxes.reading(box, grey) for box in boxes]
        fresh = [box for box, piece in zip(boxes, kept, strict=True) if piece is None]
        read = iter(reader.recognise(large, fresh) if fresh else [])
        pieces = [piece if piece is not None else next(read) for piece in kept]
        self.stats.boxes_read += len(fresh)
        self.stats.boxes_kept += len(boxes) - len(fresh)
        self._boxes.remember(boxes, pieces, grey)
        return join_lines(reader.assemble(pieces))


@dataclass(frozen=True)
class _LastLook:
    """The last frame looked at: its thumbnail, its time and what it read."""

    thumbnail: npt.NDArray[np.float32]
    time_s: float
    text: str


def _thumbnail(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """``frame`` in grey, shrunk to a _THUMBNAIL_SIZE grid of block means."""
    from PIL import Image

    grey = Image.fromarray(frame).convert("L").resize(_THUMBNAIL_SIZE, Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float32)


def _grey(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    from PIL import Image

    return np.asarray(Image.fromarray(frame).convert("L"), dtype=np.float32)


class _BoxMemory:
    """The text boxes of the last frame read: where each was, its pixels (block means) and its reading."""

    def __init__(self) -> None:
        self._boxes: list[tuple[tuple[int, int, int, int], npt.NDArray[np.float32], TextLine]] = []

    def clear(self) -> None:
        self._boxes = []

    def reading(self, box: Quad, grey: npt.NDArray[np.float32]) -> TextLine | None:
        """The reading of a remembered box at the same place whose pixels are unchanged, else None."""
        rect = _rect(box, grey.shape)
        for old_rect, signature, piece in self._boxes:
            if _overlap(rect, old_rect) >= _BOX_OVERLAP:
                now = _signature(grey, old_rect)  # the same pixels then and now, wherever the detector
                if float(np.abs(now - signature).max(initial=0.0)) <= _BOX_LEVELS:  # drew the box this time
                    return piece
        return None

    def remember(
        self, boxes: Sequence[Quad], pieces: Sequence[TextLine], grey: npt.NDArray[np.float32]
    ) -> None:
        self._boxes = [
            (rect, _signature(grey, rect), piece)
            for rect, piece in (
                (_rect(box, grey.shape), piece) for box, piece in zip(boxes, pieces, strict=True)
            )
        ]


def _rect(box: Quad, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A box's bounding rectangle (left, top, right, bottom), inside a frame of ``shape``."""
    height, width = shape[:2]
    left, top = np.floor(box.min(axis=0)).astype(int).tolist()
    right, bottom = np.ceil(box.max(axis=0)).astype(int).tolist()
    return max(0, left), max(0, top), min(width, max(right, left + 1)), min(height, max(bottom, top + 1))


def _overlap(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> float:
    """Intersection over union of two rectangles."""
    width = min(first[2], second[2]) - max(first[0], second[0])
    height = min(first[3], second[3]) - max(first[1], second[1])
    if width <= 0 or height <= 0:
        return 0.0
    area = width * height
    union = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return area / (union - area)


def _signature(grey: npt.NDArray[np.float32], rect: tuple[int, int, int, int]) -> npt.NDArray[np.float32]:
    """The rectangle's pixels as means of _BOX_BLOCK-pixel blocks (a sliver under a block is left out):
    compression noise averages out, a changed glyph does not."""
    left, top, right, bottom = rect
    rows, columns = (bottom - top) // _BOX_BLOCK, (right - left) // _BOX_BLOCK
    if rows == 0 or columns == 0:  # smaller than a block: its pixels as they are
        return grey[top:bottom, left:right]
    crop = grey[top : top + rows * _BOX_BLOCK, left : left + columns * _BOX_BLOCK]
    blocks = crop.reshape(rows, _BOX_BLOCK, columns, _BOX_BLOCK)
    means: npt.NDArray[np.float32] = blocks.mean(axis=(1, 3), dtype=np.float32)
    return means


class _Runs:
    """Samples (a time and its reading) -> ScreenTexts: each sample stands for the stretch halfway to its
    neighbours (the first from 0, the last to the end), and neighbours that read the same text merge; the
    longest reading of a run wins (a caption fading in or half hidden reads short)."""

    def __init__(self, duration_s: float) -> None:
        self._duration_s = duration_s
        self._done: list[ScreenText] = []
        self._open: ScreenText | None = None  # the run the last settled sample belongs to
        self._previous = ""  # the last settled sample's reading
        self._pending: tuple[float, float, str] | None = None  # (time, stretch start, reading), end unknown

    def sample(self, time_s: float, text: str) -> None:
        if self._pending is not None:
            edge_s = (self._pending[0] + time_s) / 2
            self._settle(edge_s)
            self._pending = (time_s, edge_s, text)
        else:
            self._pending = (time_s, 0.0, text)

    def finish(self) -> list[ScreenText]:
        if self._pending is not None:
            self._settle(max(self._duration_s, self._pending[0]))
            self._pending = None
        if self._open is not None:
            self._done.append(self._open)
            self._open = None
        return list(self._done)

    def between(self, start_s: float, end_s: float) -> list[ScreenText]:
        self._done = [text for text in self._done if text.end_s > start_s]
        shown = [*self._done, *([self._open] if self._open is not None else [])]
        if self._pending is not None:  # its stretch reaches at least its own time
            time_s, stretch_s, text = self._pending
            if (
                shown
                and self._open is not None
                and shown[-1] is self._open
                and same_text(self._previous, text)
            ):
                shown[-1] = replace(self._open, end_s=time_s)
            elif text:
                shown.append(ScreenText(stretch_s, time_s, text, time_s))
        return [item for item in shown if item.start_s < end_s and item.end_s > start_s]

    def _settle(self, end_s: float) -> None:
        """The pending sample's stretch ends at ``end_s``: add it to its run."""
        assert self._pending is not None
        time_s, start_s, text = self._pending
        run = self._open
        if run is not None and same_text(self._previous, text):
            best = text if len(text) > len(run.text) else run.text
            self._open = ScreenText(run.start_s, end_s, best, run.frame_s)
        else:
            if run is not None:
                self._done.append(run)
            self._open = ScreenText(start_s, end_s, text, time_s) if text else None
        self._previous = text


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
        # Its detector keeps the size it is given below 960 px (rapidocr's "max" limit), so one engine
        # serves the finder and the recogniser; the look's detector has its own thresholds.
        threads = min(options.threads, os.cpu_count() or 1)  # rapidocr refuses more than the machine's
        settings = {
            "use_cls": False,
            "text_score": 0.0,
            "det_unclip_ratio": _RAPIDOCR_UNCLIP,
            "det_limit_side_len": _FINDER_MAX_SIDE,
            "det_limit_type": "max",
            "intra_op_num_threads": threads,
        }
        self._engine = RapidOCR(**settings)
        looker = RapidOCR(**settings, det_thresh=_LOOK_THRESHOLD, det_box_thresh=_LOOK_BOX_THRESHOLD)
        self._look_detector = looker.text_det  # its recogniser is never used: let it go
        for holder in (self._engine.text_det.infer, self._engine.text_rec.session, looker.text_det.infer):
            _lean_session(holder, threads)
        self.id = _rapidocr_id(options)

    def read(self, images: npt.NDArray[np.uint8]) -> list[list[TextLine]]:
        """(n, height, width, 3) uint8 RGB frames -> for each frame its lines, top to bottom."""
        _check_images(images)
        return [self.assemble(self.recognise(image, self.find(image))) for image in images]

    def look(self, image: npt.NDArray[np.uint8]) -> list[Quad]:
        """The boxes the look's detector finds on the frame at _LOOK_SIDE px on its long side, in the
        frame's pixels."""
        scale = _LOOK_SIDE / max(image.shape[0], image.shape[1])
        small = np.ascontiguousarray(np.asarray(_resized(image, scale))[..., ::-1])  # BGR, as OpenCV's
        boxes, _ = self._look_detector(small)
        return [np.asarray(box, dtype=np.float32) / scale for box in (boxes if boxes is not None else [])]

    def find(
        self,
        image: npt.NDArray[np.uint8],
        looked: Sequence[Quad] = (),
        looked_shape: tuple[int, ...] | None = None,
    ) -> list[Quad]:
        """Text boxes found on a small copy of the frame (see _FINDER_MIN_SIDE), top to bottom, in the
        frame's pixels; or the look's boxes, when the finder's copy would be at most _LOOK_BOXES_RATIO
        times as large as what the look saw (a 360p video)."""
        height, width = image.shape[:2]
        scale = min(max(1.0, _FINDER_MIN_SIDE / min(height, width)), _FINDER_MAX_SIDE / max(height, width))
        if looked and looked_shape is not None:
            looked_scale = _LOOK_SIDE / max(looked_shape[0], looked_shape[1]) * looked_shape[1] / width
            if scale <= _LOOK_BOXES_RATIO * looked_scale:
                return [np.asarray(box, dtype=np.float32) * (width / looked_shape[1]) for box in looked]
        small = np.ascontiguousarray(np.asarray(_resized(image, scale))[..., ::-1])
        boxes, _ = self._engine.auto_text_det(small)
        return [np.asarray(box, dtype=np.float32) / scale for box in (boxes if boxes is not None else [])]

    def recognise(self, image: npt.NDArray[np.uint8], boxes: Sequence[Quad]) -> list[TextLine]:
        """Each box read on the frame enlarged to ``min_side``: detecting again at that size would cost
        most of the time and find the same boxes."""
        if not boxes:
            return []
        scale = _scale(image.shape[0], image.shape[1], self._options)
        bgr = np.ascontiguousarray(np.asarray(_resized(image, scale))[..., ::-1])
        enlarged = [np.asarray(box, dtype=np.float32) * scale for box in boxes]
        crops = self._engine.get_crop_img_list(bgr, enlarged)
        read, _ = self._engine.text_rec(crops)
        return [
            TextLine(str(text), float(score), _box(box.tolist(), scale))
            for box, (text, score) in zip(enlarged, read, strict=True)
        ]

    def assemble(self, pieces: Sequence[TextLine]) -> list[TextLine]:
        return lines_from_pieces(pieces, self._options.confidence_floor)


def _lean_session(holder: Any, threads: int) -> None:
    """Open the model of one of rapidocr's onnxruntime sessions again, with a memory arena and without
    memory patterns: rapidocr turns the arena off and leaves patterns on, so each run allocates every
    intermediate tensor afresh, and its detector's peak on a 640x360 frame was 240 MiB; this way it is
    45 MiB and as fast (34 against 36 ms). Kept as rapidocr made it when its session does not say which
    model it holds (another rapidocr version)."""
    import onnxruntime  # type: ignore[import-untyped]  # no stubs; imported only when a reader loads

    path = getattr(getattr(holder, "session", None), "_model_path", None)
    if not isinstance(path, str):
        log.debug("rapidocr session of an unknown shape: left with its own memory settings")
        return
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # rapidocr's: errors from onnxruntime reach us as exceptions
    options.intra_op_num_threads = threads
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = False
    # Its threads wait without spinning: beside speech recognition a spinning thread burns a core the
    # other side needs (with two threads on a busy machine a detection took 2-3x as long).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The arena grows by what is asked, not in doubling steps (rapidocr's own provider setting).
    provider = ("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})
    holder.session = onnxruntime.InferenceSession(path, sess_options=options, providers=[provider])


def _rapidocr_id(options: OcrOptions) -> str:
    try:
        version = importlib.metadata.version("rapidocr-onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        raise OcrError(
            f"the rapidocr OCR engine needs rapidocr-onnxruntime; install it: {ENGINES['rapidocr'].install}"
        ) from None
    finder = f"unclip{_RAPIDOCR_UNCLIP:g}-find{_FINDER_MIN_SIDE}"
    return f"rapidocr-{version}-ppocrv4-{finder}-{_settings_id(options)}"


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
