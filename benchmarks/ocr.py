"""OCR benchmark: how well and how fast each engine reads on-screen text, and what it reads where there is
none.

Usage:
    python benchmarks/ocr.py                       # every registered engine with its default options
    python benchmarks/ocr.py --config rapidocr --config tesseract:min_side=1080,min_confidence=0.5
    python benchmarks/ocr.py --json out.json       # also write the rows and every reading
    python benchmarks/ocr.py --seed 7              # another set of frames (the defaults were tuned on the
                                                   # first; this one checked them)
    python benchmarks/ocr.py --config rapidocr --config rapidocr+look   # as indexing reads: see below

The frames are built once (seeded) into the bench cache:
  card-180p, card-360p, card-720p  synthetic videos (testmedia.synth) at 320x180, 640x360 and 1280x720: 12
                 scenes of 4 s, half real footage (the sample clips), half text-free patterns, each with a
                 text card (white on a dark box, centred, 1/12 of the height) from 1 to 3 s into the scene;
                 the frame 2 s into each scene, decoded at full size
  overlay        frames of the real clips with text drawn straight on them, no box: random place, size
                 (1/30 to 1/8 of the height), colour and font, half with a subtitle-style outline, saved
                 through JPEG; harder
  slides         1280x720 slides: a title and two or three lines, dark on light or light on dark, saved
                 through JPEG; each line must be read, in order (lectures, screen recordings)
  no-card        from each synthetic video, the frame 3.5 s into each scene, after its card has gone
Card texts are seeded mixes of words, names and numbers ("GATE 42", "Platform 9", "Dr. Okafor", "Flight
BA2490", mixed case). Texts are compared NFKC-normalised, case-folded, with single spaces:
  exact        share of frames where one line read, or all lines joined, equals the card text
  no-space     the same, ignoring spaces (PP-OCR's recogniser sometimes drops one: "GATE42")
  CER          character error rate: edit distance from everything read to the card text / its length
  words        share of the card's words found among the words read
  false-pos    share of no-card frames where anything was read (after the engine's own filtering)
  ms/frame     wall clock per frame, read in batches of 8 frames of one size, the engine loaded before
  peak MiB     max RSS of the benchmark process plus that of its largest child (the tesseract program)
A configuration ending in "+look" reads as indexing does (``ScreenTextPass``): each frame is first shrunk
to the index's 448 px and given the reader's cheap look; only a frame where it finds text is read. Its
rows show what the look loses (a text frame it passes over reads as nothing), and its ms/frame the look
plus the reads. Every configuration runs in a fresh process.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import numpy.typing as npt

from videoqa.channels.ocr import ENGINES, BoxReader, OcrOptions, load_reader
from videoqa.media.video import SamplingOptions, probe, read_frames
from videoqa.testmedia.samples import sample_path
from videoqa.testmedia.synth import SynthScene, SynthSpec, TextCard, render

DATA_VERSION = 2  # bump when the frames change, so a stale set is rebuilt
SEED = 20261121
BATCH = 8
SIZES = ((320, 180), (640, 360), (1280, 720))
SCENE_S = 4.0
CARD_START_S, CARD_S = 1.0, 2.0  # within each scene
CARD_FRAME_S, NO_CARD_FRAME_S = 2.0, 3.5  # within each scene
REAL_CLIPS = ("vtest.avi", "bikes.mp4", "bigbuckbunny.mp4", "Megamind.avi", "tree.avi")
# Generated sources with no text in them (testsrc2 draws a clock); seeded where they start random.
PATTERNS = (
    "cellauto=rule=110:seed=1",
    "smptebars",
    "life=mold=10:ratio=0.2:seed=1",
    "gradients=c0=0x7030a0:c1=0xffd966:speed=0.02:seed=1",
    "rgbtestsrc",
    "color=c=0x404040",
)
SCENES_PER_VIDEO = 12
OVERLAY_FRAMES = 24
SLIDES = 12
SLIDE_SIZE = (1280, 720)
FONTS = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf")
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

WORDS = (
    "harbour",
    "station",
    "market",
    "museum",
    "library",
    "north",
    "river",
    "garden",
    "bridge",
    "castle",
    "orange",
    "silver",
    "winter",
    "coffee",
    "ticket",
    "window",
    "island",
    "valley",
    "forest",
    "meeting",
    "budget",
    "report",
    "launch",
    "design",
    "camera",
    "signal",
    "planet",
    "engine",
    "quiet",
    "yellow",
    "exit",
    "closed",
    "welcome",
    "danger",
    "arrivals",
    "chapter",
    "lesson",
    "results",
    "total",
    "sales",
    "weather",
    "forecast",
    "breaking",
    "news",
    "update",
)
FIRST_NAMES = ("Maria", "James", "Aiko", "Olu", "Priya", "Lars", "Chen", "Fatima", "Diego", "Hannah")
LAST_NAMES = ("Lopez", "Okafor", "Tanaka", "Novak", "Schmidt", "Patel", "Moreau", "Kowalski", "Haddad")


@dataclass(frozen=True)
class Case:
    """One frame and the text on it ("" for none)."""

    group: str  # card-180p, card-360p, card-720p, overlay or no-card
    image: str  # path of a PNG
    truth: str


# -- the frames -------------------------------------------------------------------------------------


def card_text(rng: random.Random) -> str:
    """A card text of one of a dozen kinds, seeded."""

    def word() -> str:
        return rng.choice(WORDS)

    def name() -> str:
        return rng.choice(LAST_NAMES)

    kinds: list[Callable[[], str]] = [
        lambda: f"GATE {rng.randint(1, 99)}",
        lambda: f"Platform {rng.randint(1, 20)}",
        lambda: f"Room {rng.randint(100, 999)}",
        lambda: f"{rng.choice(FIRST_NAMES)} {name()}",
        lambda: f"Dr. {name()}",
        lambda: f"{word().upper()} {word().upper()}",
        lambda: f"{word().capitalize()} {word()}",
        lambda: f"{word()} {word()} {word()}",
        lambda: (
            f"Flight {rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}"
            f"{rng.randint(100, 9999)}"
        ),
        lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d} {word().capitalize()}",
        lambda: f"Exit {rng.choice('ABCDEFGH')}{rng.randint(1, 9)}",
        lambda: f"Chapter {rng.randint(1, 30)}: {word().capitalize()}",
    ]
    return rng.choice(kinds)()


def scene_sources(rng: random.Random) -> list[SynthScene]:
    """Alternating real footage (from a random point of a random clip) and text-free patterns."""
    scenes = []
    for index in range(SCENES_PER_VIDEO):
        if index % 2 == 0:
            clip = sample_path(rng.choice(REAL_CLIPS))
            scenes.append(SynthScene(SCENE_S, str(clip), offset_s=round(rng.uniform(0, 3), 2)))
        else:
            scenes.append(SynthScene(SCENE_S, "lavfi:" + PATTERNS[(index // 2) % len(PATTERNS)]))
    return scenes


def build_cards(rng: random.Random, folder: Path) -> list[Case]:
    """Render one synthetic video per size and save its card and no-card frames."""
    cases = []
    for width, height in SIZES:
        scenes = scene_sources(rng)
        cards = tuple(
            TextCard(index * SCENE_S + CARD_START_S, CARD_S, card_text(rng)) for index in range(len(scenes))
        )
        video = render(
            SynthSpec(scenes=tuple(scenes), cards=cards, width=width, height=height, audio=False),
            folder / f"cards-{height}p.mp4",
        )
        times = sorted(
            [index * SCENE_S + CARD_FRAME_S for index in range(len(scenes))]
            + [index * SCENE_S + NO_CARD_FRAME_S for index in range(len(scenes))]
        )
        info = probe(video.path)
        frames = [
            (float(t), pixels)
            for batch in read_frames(info, np.asarray(times), SamplingOptions())
            for t, pixels in zip(batch.timestamps_s, batch.pixels, strict=True)
        ]
        for time_s, pixels in frames:
            scene = int(time_s // SCENE_S)
            has_card = time_s - scene * SCENE_S < NO_CARD_FRAME_S - 0.5
            image = folder / f"{height}p-{time_s:06.2f}.png"
            save_png(pixels, image)
            cases.append(
                Case(
                    f"card-{height}p" if has_card else "no-card",
                    str(image),
                    cards[scene].text if has_card else "",
                )
            )
    return cases


def build_overlays(rng: random.Random, folder: Path) -> list[Case]:
    """Frames of the real clips with text drawn on them: no box, random place, size, colour, font."""
    from PIL import Image, ImageDraw, ImageFont

    cases = []
    for index in range(OVERLAY_FRAMES):
        clip = sample_path(REAL_CLIPS[index % len(REAL_CLIPS)])
        info = probe(clip)
        time_s = rng.uniform(0.2, info.duration_s - 0.5)
        batch = next(iter(read_frames(info, np.asarray([time_s]), SamplingOptions(batch_size=1))))
        picture = Image.fromarray(batch.pixels[0])
        text = card_text(rng)
        font = ImageFont.truetype(
            str(FONT_DIR / rng.choice(FONTS)), rng.randint(max(12, picture.height // 30), picture.height // 8)
        )
        draw = ImageDraw.Draw(picture)
        outline = rng.random() < 0.5
        stroke = max(1, font.size // 12) if outline else 0
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font, stroke_width=stroke)
        x = rng.randint(0, max(0, picture.width - int(right - left)))
        y = rng.randint(0, max(0, picture.height - int(bottom - top)))
        colour = rng.choice([(255, 255, 255), (255, 230, 0), (20, 20, 20)])
        edge = (0, 0, 0) if sum(colour) > 300 else (255, 255, 255)
        draw.text(
            (x - int(left), y - int(top)), text, font=font, fill=colour, stroke_width=stroke, stroke_fill=edge
        )
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=80)  # compression artefacts, as in a real video
        image = folder / f"overlay-{index:02d}.png"
        save_png(np.asarray(Image.open(buffer).convert("RGB")), image)
        cases.append(Case("overlay", str(image), text))
    return cases


def build_slides(rng: random.Random, folder: Path) -> list[Case]:
    """Plain slides: a bold title over two or three lines of text, dark on light or light on dark."""
    from PIL import Image, ImageDraw, ImageFont

    cases = []
    for index in range(SLIDES):
        dark = index % 3 == 2
        background = (30, 34, 48) if dark else rng.choice([(255, 255, 255), (245, 241, 230), (232, 238, 246)])
        ink = (235, 235, 235) if dark else (25, 25, 25)
        picture = Image.new("RGB", SLIDE_SIZE, background)
        draw = ImageDraw.Draw(picture)
        lines = [card_text(rng) for _ in range(rng.randint(3, 4))]
        y = rng.randint(40, 120)
        for number, line in enumerate(lines):
            size = rng.randint(44, 60) if number == 0 else rng.randint(22, 36)
            font = ImageFont.truetype(str(FONT_DIR / (FONTS[1] if number == 0 else rng.choice(FONTS))), size)
            draw.text((rng.randint(60, 120), y), line, font=font, fill=ink)
            y += int(size * rng.uniform(1.6, 2.4))
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=80)
        image = folder / f"slide-{index:02d}.png"
        save_png(np.asarray(Image.open(buffer).convert("RGB")), image)
        cases.append(Case("slides", str(image), "\n".join(lines)))
    return cases


def save_png(pixels: npt.NDArray[np.uint8], path: Path) -> None:
    from PIL import Image

    Image.fromarray(pixels).save(path)


def build_cases(seed: int) -> list[Case]:
    """The frames and their texts, built once per seed into the bench cache."""
    from platformdirs import user_cache_path

    folder = user_cache_path("videoqa") / "bench" / f"ocr-v{DATA_VERSION}-seed{seed}"
    manifest = folder / "cases.json"
    if manifest.is_file():
        return [Case(**case) for case in json.loads(manifest.read_text())]
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    cases = build_cards(rng, folder) + build_overlays(rng, folder) + build_slides(rng, folder)
    manifest.write_text(json.dumps([dataclasses.asdict(case) for case in cases], indent=1))
    return cases


# -- one configuration, in its own process ----------------------------------------------------------


LOOK_SUFFIX = "+look"
INDEX_SIDE = 448  # the index's frames, which the look is given (visual/index.py)


def parse_config(config: str) -> OcrOptions:
    """ "ENGINE[+look][:FIELD=VALUE,...]" -> OcrOptions; values that read as numbers are numbers."""
    engine, _, settings = config.partition(":")
    engine = engine.removesuffix(LOOK_SUFFIX)
    values: dict[str, Any] = {"engine": engine}
    for setting in filter(None, settings.split(",")):
        name, _, value = setting.partition("=")
        values[name] = number_or_text(value)
    return OcrOptions(**values)


def number_or_text(value: str) -> int | float | str:
    for convert in (int, float):
        try:
            return convert(value)
        except ValueError:
            pass
    return value


def measure(config: str, manifest: Path) -> dict[str, Any]:
    """Load the engine, read every case in batches of one frame size; readings, timings, peak RSS."""
    from PIL import Image

    cases = [Case(**case) for case in json.loads(manifest.read_text())]
    start = time.perf_counter()
    reader = load_reader(parse_config(config))
    load_s = time.perf_counter() - start
    readings: list[list[tuple[str, float]]] = []
    seconds = 0.0
    looking = config.partition(":")[0].endswith(LOOK_SUFFIX)
    for batch in batches(cases):
        pixels = np.stack([np.asarray(Image.open(case.image).convert("RGB")) for case in batch])
        small = [index_copy(frame) for frame in pixels] if looking else []
        start = time.perf_counter()
        lines = read_looking(reader, pixels, small) if looking else reader.read(pixels)
        seconds += time.perf_counter() - start
        readings += [[(line.text, line.confidence) for line in frame] for frame in lines]
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "id": reader.id,
        "load_s": load_s,
        "seconds": seconds,
        "readings": readings,
        "peak_mib": (own + child) / 1024,
    }


def index_copy(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The frame as the index decodes it: shrunk (area filter) so its long side is at most INDEX_SIDE."""
    from PIL import Image

    height, width = frame.shape[:2]
    scale = INDEX_SIDE / max(height, width)
    if scale >= 1:
        return frame
    size = (max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2))
    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BOX))


def read_looking(
    reader: Any, pixels: npt.NDArray[np.uint8], small: list[npt.NDArray[np.uint8]]
) -> list[list[Any]]:
    """Each frame read only when the reader's look at its index copy finds text, from the boxes
    ScreenTextPass reads (the look's own on a frame the finder would not see closer)."""
    if not isinstance(reader, BoxReader):
        raise SystemExit(f"error: {reader.id} has no cheap look (it is not a BoxReader)")
    readings = []
    for frame, copy in zip(pixels, small, strict=True):
        looked = reader.look(copy)
        boxes = reader.find(frame, looked, copy.shape) if looked else []
        readings.append(reader.assemble(reader.recognise(frame, boxes)))
    return readings


def batches(cases: list[Case]) -> list[list[Case]]:
    """Consecutive cases of one frame size, at most BATCH at a time (an array needs one size)."""
    from PIL import Image

    groups: list[list[Case]] = []
    previous_size = None
    for case in cases:
        with Image.open(case.image) as image:
            size = image.size
        if not groups or size != previous_size or len(groups[-1]) == BATCH:
            groups.append([])
        groups[-1].append(case)
        previous_size = size
    return groups


def run_isolated(config: str, manifest: Path) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--one", config, str(manifest)],
        capture_output=True,
        text=True,
        check=False,
    )
    if output.returncode != 0:
        return {"error": (output.stderr.strip().splitlines() or ["failed"])[-1]}
    result: dict[str, Any] = json.loads(output.stdout.splitlines()[-1])
    return result


# -- scores -----------------------------------------------------------------------------------------


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def squeezed(text: str) -> str:
    return text.replace(" ", "")


def edit_distance(first: str, second: str) -> int:
    previous = list(range(len(second) + 1))
    for i, char in enumerate(first, start=1):
        current = [i]
        for j, other in enumerate(second, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]


def words(text: str) -> list[str]:
    return ["".join(char for char in word if char.isalnum()) for word in normalise(text).split()]


def score(cases: list[Case], readings: list[list[tuple[str, float]]]) -> dict[str, float]:
    """Exact, CER and word recall over cases with text; false positives over cases without."""
    exact, spaceless, errors, truth_chars, found, truth_words, false_pos, empty = 0, 0, 0, 0, 0, 0, 0, 0
    for case, lines in zip(cases, readings, strict=True):
        texts = [normalise(text) for text, _ in lines]
        joined = " ".join(texts)
        if not case.truth:
            empty += 1
            false_pos += bool(lines)
            continue
        truth = normalise(case.truth)
        exact += truth in texts or truth == joined
        spaceless += squeezed(truth) in map(squeezed, texts) or squeezed(truth) == squeezed(joined)
        errors += edit_distance(joined, truth)
        truth_chars += len(truth)
        read_words = set(words(joined))
        found += sum(word in read_words for word in words(case.truth))
        truth_words += len(words(case.truth))
    with_text = len(cases) - empty
    return {
        "frames": len(cases),
        "exact": exact / with_text if with_text else float("nan"),
        "no_space": spaceless / with_text if with_text else float("nan"),
        "cer": errors / truth_chars if truth_chars else float("nan"),
        "words": found / truth_words if truth_words else float("nan"),
        "false_pos": false_pos / empty if empty else float("nan"),
    }


GROUPS = ("card-180p", "card-360p", "card-720p", "overlay", "slides", "no-card")


def report(config: str, cases: list[Case], result: dict[str, Any]) -> list[dict[str, Any]]:
    """Print and return one row per group of frames and one for all of them."""
    if "error" in result:
        print(f"{config:<40} error: {result['error']}")
        return [{"config": config, "error": result["error"]}]
    rows = []
    ms = 1000 * result["seconds"] / len(cases)
    for group in (*GROUPS, "all"):
        chosen = [i for i, case in enumerate(cases) if group in ("all", case.group)]
        scores = score([cases[i] for i in chosen], [result["readings"][i] for i in chosen])
        rows.append({"config": config, "id": result["id"], "group": group, **scores})
        cells = " ".join(
            "     -" if scores[key] != scores[key] else f"{scores[key]:6.2f}"
            for key in ("exact", "no_space", "cer", "words", "false_pos")
        )
        tail = f" {ms:8.0f} {result['load_s']:6.1f} {result['peak_mib']:8.0f}" if group == "all" else ""
        print(f"{config:<40} {group:<10} {scores['frames']:>6.0f} {cells}{tail}", flush=True)
    rows[-1].update(
        ms_per_frame=ms, load_s=result["load_s"], peak_mib=result["peak_mib"], readings=result["readings"]
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--one", nargs=2, metavar=("CONFIG", "MANIFEST"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--config",
        action="append",
        help="ENGINE[:FIELD=VALUE,...] with OcrOptions fields; repeat for more "
        "(default: every registered engine)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help=f"another set of frames (default {SEED}: the set the defaults were tuned on)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows, readings included, to this file")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], Path(args.one[1]))))
        return
    cases = build_cases(args.seed)
    manifest = Path(cases[0].image).parent / "cases.json"
    header = (
        f"{'config':<40} {'frames':<10} {'count':>6} {'exact':>6} {'no-sp':>6} {'CER':>6} {'words':>6} "
        f"{'false+':>6} {'ms/frame':>8} {'load s':>6} {'peak MiB':>8}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for config in args.config or list(ENGINES):
        rows += report(config, cases, run_isolated(config, manifest))
    print(
        f"(median card text length: {statistics.median(len(c.truth) for c in cases if c.truth):.0f} "
        "characters)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
