"""On-screen text: both engines read real text, place a card in time, and fail in one actionable line.

The engines are the real ones (rapidocr's models ship in its wheel; tesseract is a Debian program), run
on frames of the rendered ``narrated`` video (card "GATE 42" at 5-7 s over a flat blue scene) and on a
drawn slide. Which frames are read, which boxes are recognised again, and how readings merge over time
are tested with scripted readers.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from videoqa.channels.ocr import (
    DEFAULT_ENGINE,
    ENGINES,
    BoxReader,
    OcrError,
    OcrOptions,
    ScreenTextPass,
    TextLine,
    TextReader,
    clean_line,
    join_lines,
    lines_from_pieces,
    load_reader,
    read_screen_text,
    reader_id,
    same_text,
)
from videoqa.media.video import frame_at
from videoqa.testmedia.synth import SynthVideo
from videoqa.types import FrameBatch

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
    texts = read_screen_text(narrated.path, default_reader)
    cards = [text for text in texts if squeezed(text.text) == squeezed(CARD)]
    assert len(cards) == 1, texts
    card = cards[0]
    # Frames at 0.5, 1.5, ... s; a changed frame is looked at 3 s after the last look: 0.5 and 3.5 s (the
    # clock), 6.5 s (the card), 9.5 s (colour bars, unchanged after). So the card is read at 6.5 s and
    # stands for halfway to the frames looked at either side.
    assert card.frame_s == pytest.approx(6.5, abs=0.05)
    assert card.start_s == pytest.approx(5.0, abs=0.05) and card.end_s == pytest.approx(8.0, abs=0.05)
    # The first scene's test pattern shows a clock; nothing else is read while the card is up.
    assert all(text.end_s <= CARD_START_S or text.start_s >= CARD_END_S for text in texts if text != card)


def test_the_look_finds_the_card_and_reading_box_by_box_is_reading_the_frame(
    default_reader: TextReader, narrated: SynthVideo
) -> None:
    assert isinstance(default_reader, BoxReader)
    card, bars = frame(narrated, 6.0)[0], frame(narrated, 10.0)[0]
    looked = default_reader.look(card)
    assert looked and default_reader.look(bars) == []
    boxes = default_reader.find(card)
    pieces = default_reader.recognise(card, boxes)
    assert len(pieces) == len(boxes) >= 1
    assert default_reader.assemble(pieces) == default_reader.read(card[None])[0]
    assert default_reader.recognise(card, []) == [] and default_reader.find(bars) == []
    # On a 320x180 frame the finder would not see closer than the look did: the look's boxes are read.
    found = default_reader.find(card, looked, card.shape)
    assert len(found) == len(looked) and all(np.array_equal(a, b) for a, b in zip(found, looked, strict=True))
    texts = [line.text for line in default_reader.assemble(default_reader.recognise(card, looked))]
    assert texts == [CARD]


def test_reader_id_is_known_without_loading_the_engine(default_reader: TextReader) -> None:
    assert reader_id() == default_reader.id
    assert reader_id(OcrOptions(min_side=360)) != default_reader.id
    assert reader_id(OcrOptions(threads=2)) == default_reader.id  # threads do not change what is read


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


# -- text over time, with scripted readers -----------------------------------------------------------


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
    # Looked at: 0.5, 3.5 (clock), 6.5 (card), 9.5 (bars; 10.5 and 11.5 unchanged, not read again).
    # OCR noise on the last: a space lost, a letter misread; the longer reading is kept.
    reader = ScriptedReader(
        ["", "Platform 9 to Kings Cross", "Platform 9 to Kings Cross", "Platform 9 KingsCr0ss"]
    )
    (text,) = read_screen_text(narrated.path, reader)
    assert reader.frames_read == 4
    assert (text.start_s, text.end_s, text.text) == (2.0, 12.0, "Platform 9 to Kings Cross")
    assert text.frame_s == pytest.approx(3.5, abs=0.05)


def test_text_that_goes_and_comes_back_gives_two(narrated: SynthVideo) -> None:
    reader = ScriptedReader(["Exit A", "", "", "Exit A"])
    texts = read_screen_text(narrated.path, reader)
    assert [(text.start_s, text.end_s, text.text) for text in texts] == [
        (0.0, 2.0, "Exit A"),
        (8.0, 12.0, "Exit A"),
    ]


def test_a_changing_shot_is_looked_at_every_so_often(narrated: SynthVideo) -> None:
    reader = ScriptedReader(["Slide 1", "Slide 2"] + [""] * 6)
    texts = read_screen_text(narrated.path, reader, look_every_s=1.0)
    # A look a second: the clock's four frames (every one changes), the blue scene's first, the card
    # coming (5.5 s; at 6.5 s it is still there: unchanged) and going (7.5 s), and the bars' first.
    assert reader.frames_read == 8
    assert [(text.text, text.start_s, text.end_s) for text in texts] == [
        ("Slide 1", 0.0, 1.0),
        ("Slide 2", 1.0, 2.0),
    ]


def test_frames_that_do_not_change_are_read_once(narrated: SynthVideo) -> None:
    reader = ScriptedReader(["", "", "", "Colour bars"])
    # The still colour bars (8-12 s): the frame at 9.5 s is read, the later ones take its reading.
    texts = read_screen_text(narrated.path, reader)
    assert reader.frames_read == 4
    assert [(text.start_s, text.end_s, text.text) for text in texts] == [(8.0, 12.0, "Colour bars")]


def test_a_pass_must_look_at_some_pace() -> None:
    with pytest.raises(ValueError, match="look_every_s must be positive"):
        ScreenTextPass(ScriptedReader([]), 12.0, look_every_s=0.0)


class BoxScript:
    """A BoxReader over synthetic frames: its look sees text where a frame has white pixels, its finder
    returns the fixed CAPTION box, and its recogniser reads the box's brightness as the text, counting
    the boxes it is asked to read."""

    id = "box-script"

    def __init__(self) -> None:
        self.recognised = 0

    def read(self, images: npt.NDArray[np.uint8]) -> list[list[TextLine]]:
        return [self.assemble(self.recognise(image, self.find(image))) for image in images]

    def look(self, image: npt.NDArray[np.uint8]) -> list[npt.NDArray[np.float32]]:
        return [CAPTION.copy()] if (image == 255).any() else []

    def find(
        self, image: npt.NDArray[np.uint8], looked: Sequence[Any] = (), shape: Any = None
    ) -> list[npt.NDArray[np.float32]]:
        return [CAPTION.copy()] if (image == 255).any() else []

    def recognise(
        self, image: npt.NDArray[np.uint8], boxes: Sequence[npt.NDArray[np.float32]]
    ) -> list[TextLine]:
        self.recognised += len(boxes)
        pieces = []
        for box in boxes:
            (left, top), (right, bottom) = box.min(axis=0).astype(int), box.max(axis=0).astype(int)
            pieces.append(
                TextLine(
                    f"caption {int(image[top:bottom, left:right].mean())}", 1.0, (left, top, right, bottom)
                )
            )
        return pieces

    def assemble(self, pieces: Sequence[TextLine]) -> list[TextLine]:
        return list(pieces)


CAPTION = np.asarray([[40, 60], [120, 60], [120, 80], [40, 80]], dtype=np.float32)


def caption_frames(count: int, glyphs: Sequence[int], seed: int = 0) -> FrameBatch:
    """``count`` 90x160 frames of fresh noise each second (a busy shot), with a black caption box holding
    a white bar ``glyphs[i]`` pixels wide on frame i (its "text"); 0: no caption."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 200, size=(count, 90, 160, 3), dtype=np.uint8)
    for index, width in enumerate(glyphs):
        if width:
            pixels[index, 60:80, 40:120] = 0
            pixels[index, 66:74, 44 : 44 + width] = 255
    return FrameBatch(np.arange(count, dtype=np.float64) + 0.5, pixels)


def test_only_new_or_changed_boxes_are_recognised() -> None:
    reader = BoxScript()
    screen = ScreenTextPass(reader, 10.0, look_every_s=1.0)
    # Ten seconds of a busy shot: the caption shows 2-6 s, its text changes at 5 s; none again from 8 s.
    screen.add(caption_frames(10, [0, 0, 30, 30, 30, 50, 50, 0, 0, 0]))
    texts = screen.finish()
    # Every frame changes, so each is looked at; the box is read when it appears and when its text
    # changes, and reused on the frames in between, whose background moved but whose box did not.
    assert reader.recognised == 2
    assert screen.stats.looks == 10 and screen.stats.reads == 5 and screen.stats.boxes_kept == 3
    assert [(text.start_s, text.end_s) for text in texts] == [(2.0, 5.0), (5.0, 7.0)]
    assert texts[0].text != texts[1].text


def test_streaming_sees_the_texts_of_a_stretch_as_far_as_the_frames_tell() -> None:
    screen = ScreenTextPass(BoxScript(), 10.0, look_every_s=1.0)
    screen.add(caption_frames(6, [0, 0, 30, 30, 30, 30]))
    (open_text,) = screen.shown_between(0.0, 6.0)  # still on screen: it runs to the last frame so far
    assert (open_text.start_s, open_text.end_s) == (2.0, 5.5)
    assert screen.shown_between(0.0, 2.0) == []
    screen.add(FrameBatch(np.asarray([6.5, 7.5]), caption_frames(2, [0, 0], seed=1).pixels))
    (closed,) = screen.shown_between(2.0, 8.0)
    assert (closed.start_s, closed.end_s, closed.text) == (2.0, 6.0, open_text.text)
    assert screen.shown_between(7.0, 8.0) == []


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
        ({"threads": 0}, "threads must be a whole number"),
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
