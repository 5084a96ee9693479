"""On-screen text: both engines read real text, place a card in time, and fail in one actionable line.

The engines are the real ones (rapidocr's models ship in its wheel; tesseract is a Debian program), run
on frames of the rendered ``narrated`` video (card "GATE 42" at 5-7 s over a flat blue scene) and on a
drawn slide. The merging of readings over time is tested with a scripted reader.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from videoqa.channels.ocr import (
    DEFAULT_ENGINE,
    ENGINES,
    OcrError,
    OcrOptions,
    TextLine,
    TextReader,
    clean_line,
    join_lines,
    lines_from_pieces,
    load_reader,
    read_screen_text,
    same_text,
)
from videoqa.media.video import frame_at
from videoqa.testmedia.synth import SynthVideo

CARD = "GATE 42"
CARD_START_S, CARD_END_S = 5.0, 7.0
SCENES = ((0.0, 4.0, 2.0), (4.0, 8.0, 6.0), (8.0, 12.0, 10.0))  # the narrated video's scenes
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def squeezed(text: str) -> str:
    return "".join(char for char in text.casefold() if char.isalnum())


@pytest.fixture(scope="module")
def default_reader() -> TextReader:
    return load_reader()


@pytest.fixture(scope="module")
def tesseract() -> TextReader:
    return load_reader(OcrOptions(engine="tesseract"))


def frame(video: SynthVideo, time_s: float) -> npt.NDArray[np.uint8]:
    return frame_at(video.path, time_s).pixels


def slide(lines: list[str]) -> npt.NDArray[np.uint8]:
    """A 640x360 white slide with ``lines`` in black, 28 px: what a lecture recording shows."""
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.new("RGB", (640, 360), "white")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.truetype(FONT, 28)
    for index, line in enumerate(lines):
        draw.text((40, 40 + 60 * index), line, font=font, fill="black")
    return np.asarray(picture)[None]


# -- the engines, on real pixels ---------------------------------------------------------------------


def test_default_engine_reads_the_card_and_nothing_where_there_is_none(
    default_reader: TextReader, narrated: SynthVideo
) -> None:
    card, bars = default_reader.read(np.concatenate([frame(narrated, 6.0), frame(narrated, 10.0)]))
    assert [line.text for line in card] == [CARD]
    assert 0.7 <= card[0].confidence <= 1.0
    left, top, right, bottom = card[0].box  # centred on the 320x180 frame, in its pixels
    assert 100 < left < 160 < right < 220 and 70 < top < 90 < bottom < 110
    assert bars == []  # SMPTE colour bars


def test_every_engine_reads_a_slide_line_by_line(default_reader: TextReader, tesseract: TextReader) -> None:
    lines = ["Platform 9 to Kings Cross", "Departures 10:45"]
    for reader in (default_reader, tesseract):
        (read,) = reader.read(slide(lines))
        assert [squeezed(line.text) for line in read] == [squeezed(line) for line in lines], reader.id
        assert read[0].box[1] < read[1].box[1]


def test_a_blank_frame_reads_as_nothing(tesseract: TextReader, default_reader: TextReader) -> None:
    blank = np.full((2, 90, 160, 3), 128, dtype=np.uint8)
    assert default_reader.read(blank) == [[], []]
    assert tesseract.read(blank) == [[], []]
    assert tesseract.read(np.zeros((0, 90, 160, 3), dtype=np.uint8)) == []


def test_screen_text_places_the_card_in_time(default_reader: TextReader, narrated: SynthVideo) -> None:
    texts = read_screen_text(narrated.path, SCENES, default_reader, every_s=1.5)
    cards = [text for text in texts if squeezed(text.text) == squeezed(CARD)]
    assert len(cards) == 1, texts
    card = cards[0]
    # Read at 6 s; frames at 4.75 s and 7.75 s show no card, so it stands for halfway to each.
    assert card.frame_s == pytest.approx(6.0, abs=0.05)
    assert card.start_s == pytest.approx(5.375, abs=0.05) and card.end_s == pytest.approx(6.875, abs=0.05)
    # The first scene's test pattern shows a clock; nothing else is read while the card is up.
    assert all(text.end_s <= CARD_START_S or text.start_s >= CARD_END_S for text in texts if text != card)


def test_reader_ids_name_engine_and_settings(default_reader: TextReader, tesseract: TextReader) -> None:
    assert default_reader.id.startswith(f"{DEFAULT_ENGINE}-")
    assert tesseract.id.startswith("tesseract-5.") or tesseract.id.startswith("tesseract-4.")
    assert "-conf0.7-" in default_reader.id
    stricter = load_reader(OcrOptions(engine="tesseract", min_confidence=0.9, min_side=360))
    assert stricter.id != tesseract.id and "-conf0.9-" in stricter.id and "side360" in stricter.id
    assert "-conf0.8-" in tesseract.id


def test_frames_must_be_rgb_uint8(default_reader: TextReader, tesseract: TextReader) -> None:
    for reader in (default_reader, tesseract):
        with pytest.raises(ValueError, match="uint8 RGB"):
            reader.read(np.zeros((1, 20, 20), dtype=np.uint8))
        with pytest.raises(ValueError, match="uint8 RGB"):
            reader.read(np.zeros((1, 20, 20, 3), dtype=np.float32))


# -- text over time, with a scripted reader ----------------------------------------------------------


class ScriptedReader:
    """Reads the queued texts, one per frame, in the order frames arrive."""

    id = "scripted"

    def __init__(self, texts: list[str]) -> None:
        self._texts: Iterator[str] = iter(texts)
        self.frames_read = 0

    def read(self, images: npt.NDArray[np.uint8]) -> list[list[TextLine]]:
        self.frames_read += len(images)
        return [
            [TextLine(text, 1.0, (0, 0, 10, 10))] if text else []
            for text in (next(self._texts) for _ in images)
        ]


def test_neighbouring_frames_that_agree_give_one_screen_text(narrated: SynthVideo) -> None:
    # OCR noise on the third frame: a space lost, a letter misread; the longer reading is kept.
    reader = ScriptedReader(["", "Platform 9 to Kings Cross", "Platform 9 to KingsCr0ss"])
    (text,) = read_screen_text(narrated.path, SCENES, reader)
    assert (text.start_s, text.end_s, text.text) == (4.0, 12.0, "Platform 9 to Kings Cross")
    assert text.frame_s == pytest.approx(6.0, abs=0.05)


def test_text_that_goes_and_comes_back_gives_two(narrated: SynthVideo) -> None:
    reader = ScriptedReader(["Exit A", "", "Exit A"])
    texts = read_screen_text(narrated.path, SCENES, reader)
    assert [(text.start_s, text.end_s, text.text) for text in texts] == [
        (0.0, 4.0, "Exit A"),
        (8.0, 12.0, "Exit A"),
    ]


def test_long_spans_are_read_every_so_often(narrated: SynthVideo) -> None:
    reader = ScriptedReader(["Slide 1", "Slide 1", "Slide 2", "Slide 2"])
    texts = read_screen_text(narrated.path, [(0.0, 12.0, 5.0)], reader, every_s=3.0)
    # The keyframe (5 s) and the middles of the 3-s steps at least 1.5 s from it: 1.5, 7.5 and 10.5 s
    # (4.5 s is the keyframe's). Each stands for halfway to its neighbours: 0-3.25-6.25-9-12 s.
    assert reader.frames_read == 4
    assert [(text.text, text.start_s, text.end_s) for text in texts] == [
        ("Slide 1", 0.0, 6.25),
        ("Slide 2", 6.25, 12.0),
    ]


def test_frames_that_do_not_change_are_read_once(narrated: SynthVideo) -> None:
    reader = ScriptedReader(["Colour bars"])
    # Five frames of the still colour bars (8-12 s): the first is read, the others take its reading.
    (text,) = read_screen_text(narrated.path, [(8.0, 12.0, 10.0)], reader, every_s=1.0)
    assert reader.frames_read == 1
    assert (text.start_s, text.end_s, text.text) == (8.0, 12.0, "Colour bars")


def test_no_spans_read_nothing(narrated: SynthVideo) -> None:
    reader = ScriptedReader([])
    assert read_screen_text(narrated.path, [], reader) == []
    assert reader.frames_read == 0


@pytest.mark.parametrize(
    "spans, every_s, message",
    [
        ([(5.0, 4.0, 4.5)], 10.0, "start_s < end_s"),
        ([(0.0, 4.0, 5.0)], 10.0, "keyframe_s <= end_s"),
        ([(-1.0, 4.0, 2.0)], 10.0, "0 <= start_s"),
        (SCENES, 0.0, "every_s must be positive"),
    ],
)
def test_bad_spans_are_refused(
    narrated: SynthVideo, spans: list[tuple[float, float, float]], every_s: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        read_screen_text(narrated.path, spans, ScriptedReader([]), every_s=every_s)


# -- cleaning ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, cleaned",
    [
        ("  GATE   42 ", "GATE 42"),
        ("| Platform 9 |", "Platform 9"),
        ("\uff27\uff21\uff34\uff25\uff14\uff12", "GATE42"),  # full-width forms folded
        ("— ~ .", ""),  # punctuation only
        ("7", ""),  # a lone glyph
        ("Dr. Lopez", "Dr. Lopez"),
        ("RO0M 97", "ROOM 97"),  # a zero among letters is a misread O ...
        ("FLO0R 30 B0B", "FLOOR 30 BOB"),
        ("A0 size 100", "A0 size 100"),  # ... but not in numbers or a letter-and-digit code
    ],
)
def test_clean_line(raw: str, cleaned: str) -> None:
    assert clean_line(raw) == cleaned


def test_pieces_on_one_row_join_and_junk_goes() -> None:
    pieces = [
        TextLine("Garden", 0.95, (120, 10, 200, 40)),
        TextLine("18:47", 0.99, (40, 12, 110, 40)),  # same row, a word space to the left
        TextLine("Platform", 0.9, (40, 100, 160, 130)),
        TextLine("2", 0.9, (600, 100, 615, 130)),  # same height, but far to the right: its own line
        TextLine("ee", 0.4, (40, 200, 60, 220)),  # unsure
        TextLine("|", 0.99, (300, 200, 305, 230)),  # not text
    ]
    lines = lines_from_pieces(pieces, min_confidence=0.7)
    assert [line.text for line in lines] == ["18:47 Garden", "Platform"]
    assert lines[0].box == (40, 10, 200, 40)
    assert lines[0].confidence == pytest.approx((0.99 * 5 + 0.95 * 6) / 11)
    assert join_lines(lines) == "18:47 Garden\nPlatform"


def test_overlapping_pieces_do_not_repeat_what_they_share() -> None:
    # A detector cut "18:47 Garden" into two boxes that overlap by about a glyph; both read the "7".
    pieces = [TextLine("18:47", 0.99, (406, 329, 623, 394)), TextLine("7 Garden", 0.95, (578, 324, 879, 398))]
    assert [line.text for line in lines_from_pieces(pieces, 0.7)] == ["18:47 Garden"]
    apart = [TextLine("GATE 7", 0.99, (0, 0, 100, 30)), TextLine("7", 0.99, (110, 0, 125, 30))]
    assert [line.text for line in lines_from_pieces(apart, 0.7)] == ["GATE 7 7"]


def test_same_text_forgives_a_little_noise() -> None:
    assert same_text("GATE 42", "gate42")
    assert same_text("Platform 9 to Kings Cross", "Platform 9 to Kings Cros")
    assert not same_text("GATE 42", "GATE 43")  # in a short text one character is a different text
    assert not same_text("", "")


# -- options and failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"engine": "nope"}, "engine must be one of"),
        ({"language": "eng; rm -rf /"}, "language must be codes"),
        ({"engine": "rapidocr", "language": "deu"}, "reads only eng, chi_sim, not deu"),
        ({"min_confidence": 1.5}, "between 0 and 1"),
        ({"min_side": 8}, "at least 16"),
        ({"max_side": 360.5}, "whole number"),
        ({"min_side": 1080, "max_side": 720}, "must be at least min_side"),
    ],
)
def test_options_are_checked_up_front(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OcrOptions(**kwargs)  # type: ignore[arg-type]


def test_confidence_floor_is_the_engines_unless_given() -> None:
    assert OcrOptions(engine="tesseract").confidence_floor == ENGINES["tesseract"].min_confidence
    assert OcrOptions(engine="tesseract", min_confidence=0.2).confidence_floor == 0.2


def one_line(excinfo: pytest.ExceptionInfo[OcrError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_missing_tesseract_is_one_actionable_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OcrError) as excinfo:
        load_reader(OcrOptions(engine="tesseract"))
    message = one_line(excinfo)
    assert "tesseract program, not found on PATH" in message and "apt-get install tesseract-ocr" in message


def test_missing_tesseract_language_names_its_package() -> None:
    with pytest.raises(OcrError) as excinfo:
        load_reader(OcrOptions(engine="tesseract", language="eng+chi_tra"))
    assert "apt-get install tesseract-ocr-chi-tra" in one_line(excinfo)


def test_missing_rapidocr_is_one_actionable_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)  # import fails as if not installed
    with pytest.raises(OcrError) as excinfo:
        load_reader(OcrOptions(engine="rapidocr"))
    assert "pip install --no-deps rapidocr-onnxruntime" in one_line(excinfo)


def test_importing_the_module_loads_no_engine() -> None:
    code = (
        "import sys, videoqa.channels.ocr; "
        "print([name for name in ('rapidocr_onnxruntime', 'onnxruntime', 'cv2') if name in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
