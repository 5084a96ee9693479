"""The needle-in-a-haystack bench: where needles go, how answers are judged, a real haystack checked by
reading and hearing it back, and `videoqa bench needle` end to end."""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Callable
from difflib import SequenceMatcher
from pathlib import Path

import numpy as np
import pytest

from videoqa.bench.needle import (
    EDGE_S,
    NEEDLE_S,
    LengthRun,
    Needle,
    NeedleOptions,
    NeedleResult,
    accuracy_grid,
    build_haystack,
    footage_files,
    judge,
    needle_start,
    plan_needles,
    table_rows,
)
from videoqa.errors import VideoError
from videoqa.respond.answer import Answer
from videoqa.retrieval.retrieve import Evidence

from helpers import assert_one_line_error, run_cli


def test_depths_map_to_times_inside_the_video_and_inside_a_render_chunk() -> None:
    assert needle_start(0, 600.0) == EDGE_S
    assert needle_start(100, 120.0) == pytest.approx(120.0 - NEEDLE_S - EDGE_S)
    # 50 % of ten minutes would cross the first 300-s chunk's end: moved to end inside it
    assert needle_start(50, 600.0) == pytest.approx(300.0 - NEEDLE_S - 0.5)
    assert needle_start(25, 3600.0) == pytest.approx(EDGE_S + 0.25 * (3600.0 - NEEDLE_S - 2 * EDGE_S))


def test_needles_are_distinct_facts_apart_in_time() -> None:
    needles = plan_needles(60.0, (0, 25, 50, 75, 100), ("speech", "text"), random.Random(3))
    assert len(needles) == 10
    assert len({n.question for n in needles}) == 10
    assert len({a for n in needles for a in n.answers}) == sum(len(n.answers) for n in needles)
    for kind in ("speech", "text"):  # two sentences or two signs never overlap
        starts = sorted(n.start_s for n in needles if n.kind == kind)
        assert all(b - a >= NEEDLE_S for a, b in itertools.pairwise(starts)), starts
    assert all(n.start_s > 0 and n.end_s <= 60.0 - EDGE_S + 1e-6 for n in needles)
    again = plan_needles(60.0, (0, 25, 50, 75, 100), ("speech", "text"), random.Random(3))
    assert again == needles  # seeded


def _needle(start_s: float = 30.0) -> Needle:
    return Needle(
        "speech",
        50,
        start_s,
        start_s + 4,
        "The train to Oslo leaves from platform 85.",
        "Which platform does the train to Oslo leave from?",
        ("85", "eighty-five"),
    )


def _answer(text: str, at: list[float], abstained: bool = False) -> Answer:
    evidence = tuple(Evidence("speech", t, t + 3, "words", 0, 0.7, 0.03, "match") for t in at)
    return Answer("q", text, evidence, abstained, False, "none", 0.7, None, {})


def test_judging_wants_the_fact_and_a_citation_near_the_needle() -> None:
    needle = _needle()
    assert judge(_answer("It leaves from platform 85.", [31.0]), needle, 5.0) == (True, True)
    assert judge(_answer("Platform eighty-five.", [20.0]), needle, 5.0) == (True, False)  # 7 s before
    assert judge(_answer("Platform eighty-five.", [20.0]), needle, 8.0) == (True, True)
    assert judge(_answer("Platform 58.", [31.0]), needle, 5.0) == (False, True)
    assert judge(_answer("85", [31.0], abstained=True), needle, 5.0)[0] is False


def test_grid_and_table_count_found_needles_per_depth_and_length() -> None:
    def result(depth: int, kind: str, found: bool) -> NeedleResult:
        needle = Needle(kind, depth, 1.0, 5.0, "t", "q", ("a",))
        return NeedleResult(1.0, "espeak", needle, "a", found, True, 0.5)

    runs = [
        LengthRun(
            1.0,
            "espeak",
            1.0,
            2.0,
            100.0,
            (
                result(0, "speech", True),
                result(0, "text", False),
                result(100, "speech", True),
                result(100, "text", True),
            ),
        ),
        LengthRun(1.0, "piper", 1.0, 2.0, 100.0, (result(0, "speech", True), result(0, "text", True))),
        LengthRun(5.0, "espeak", 1.0, 2.0, 120.0, (result(0, "speech", False), result(0, "text", False))),
    ]
    assert accuracy_grid(runs, (0, 100)) == [[0.5, 1.0, 0.0], [1.0, None, None]]
    assert accuracy_grid(runs, (0, 100), "text") == [[0.0, 1.0, 0.0], [1.0, None, None]]
    rows = table_rows(runs, (0, 100))
    assert [(r["length_min"], r["voice"], r["depth"], r["found"], r["asked"]) for r in rows] == [
        (1.0, "espeak", 0, 1, 2),
        (1.0, "espeak", 100, 2, 2),
        (1.0, "piper", 0, 2, 2),
        (1.0, "piper", 100, 0, 0),
        (5.0, "espeak", 0, 0, 2),
        (5.0, "espeak", 100, 0, 0),
    ]
    assert rows[0]["by_kind"] == {"speech": 1.0, "text": 0.0}


@pytest.fixture(scope="module")
def haystack_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("haystacks")


def test_a_haystack_holds_its_needles_where_asked_in_sound_and_picture(
    haystack_folder: Path, sample: Callable[[str], Path], installed_models: None
) -> None:
    from videoqa.channels.ocr import load_reader
    from videoqa.channels.speech import SpeechOptions, load_transcriber, transcribe_video
    from videoqa.media.video import SamplingOptions, probe, read_frames

    options = NeedleOptions(lengths_min=(1.0,), depths=(0, 50, 100))
    haystack = build_haystack(1.0, options, [str(sample("vtest.avi"))], haystack_folder)
    info = probe(haystack.path)
    assert info.duration_s == pytest.approx(60.0, abs=0.2) and info.audio is not None
    # the signs are on screen at their times (read back by OCR from the rendered file) ...
    reader = load_reader()
    for needle in (n for n in haystack.needles if n.kind == "text"):
        times = np.asarray([needle.start_s + 1.0, needle.end_s - 1.0])
        frames = np.concatenate([b.pixels for b in read_frames(info, times, SamplingOptions())])
        read = [" ".join(line.text for line in lines) for lines in reader.read(frames)]
        # OCR noise allowed ("RO0M 97" for "ROOM 97"); an absent or other sign is not
        assert all(SequenceMatcher(None, text, needle.text).ratio() >= 0.75 for text in read), (
            needle.text,
            read,
        )
    # ... and the sentences are heard when they should be: sound and picture stay in step
    transcript = transcribe_video(info, transcriber=load_transcriber(SpeechOptions(cpu_threads=2)))
    for needle in (n for n in haystack.needles if n.kind == "speech"):
        # whisper tiny.en mishears names ("Some you'll want 40 blanket sat in a workshop"), so the words
        # need only resemble the sentence; the time must be right (no filler is said within 8 s)
        heard = [s.text.lower() for s in transcript.segments if abs(s.start_s - needle.start_s) <= 1.0]
        assert any(SequenceMatcher(None, said, needle.text.lower()).ratio() >= 0.5 for said in heard), (
            needle,
            transcript.segments,
        )
    # a second build is the cached file
    stamp = haystack.path.stat().st_mtime_ns
    again = build_haystack(1.0, options, [str(sample("vtest.avi"))], haystack_folder)
    assert again == haystack and again.path.stat().st_mtime_ns == stamp


def test_footage_folders_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such footage folder"):
        footage_files(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("not a video")
    with pytest.raises(ValueError, match="no videos"):
        footage_files(tmp_path)
    (tmp_path / "broken.mp4").write_text("not a video either")
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        footage_files(tmp_path)


@pytest.mark.slow  # two 30-s haystacks (one a voice) rendered, indexed and asked: about 40 s on two cores
def test_bench_needle_end_to_end_with_both_voices_side_by_side(
    installed_models: None, tmp_path: Path
) -> None:
    env = {**os.environ, "VIDEOQA_BENCH_CACHE": str(tmp_path / "bench"), "VIDEOQA_CACHE": str(tmp_path / "c")}
    out = tmp_path / "out"
    result = run_cli(
        "bench",
        "needle",
        "--lengths",
        "0.5",
        "--depths",
        "0,100",
        "--kind",
        "speech",
        "--voice",
        "both",
        "--out",
        str(out),
        "--device",
        "cpu",
        env=env,
    )
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["minutes", "depth", "voice", "found", "accuracy"]
    # each depth's voices on adjacent rows, then a total for each voice
    assert [line.split()[1:3] for line in lines[1:5]] == [
        ["0%", "espeak"],
        ["0%", "piper"],
        ["100%", "espeak"],
        ["100%", "piper"],
    ]
    assert [line.split()[:2] for line in lines[5:]] == [["all", "espeak"], ["all", "piper"]]
    report = json.loads((out / "needle.json").read_text())
    by_voice = {voice: [n for n in report["needles"] if n["voice"] == voice] for voice in ("espeak", "piper")}
    assert [n["depth"] for n in by_voice["espeak"]] == [0, 100]
    placed = {voice: [(n["question"], n["start_s"]) for n in needles] for voice, needles in by_voice.items()}
    assert placed["espeak"] == placed["piper"]  # the same facts at the same times: a fair comparison
    assert {"found", "answer", "states_fact", "cites_needle", "seconds"} <= set(report["needles"][0])
    assert report["options"]["voices"] == ["espeak", "piper"]
    assert len(list((tmp_path / "bench" / "needles").glob("haystack-*.mp4"))) == 2  # one haystack a voice
    assert (out / "needle.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--depths", "0,120"), "depths"),
        (("--lengths", "0"), "lengths"),
        (("--kind", "smell"), "kinds"),
        (("--voice", "festival"), "'festival' is not one of"),
        (("--lengths", "one"), "comma-separated"),
        (("--footage", "/no/such/folder"), "no such footage folder"),
    ],
)
def test_bad_bench_input_is_one_line(args: tuple[str, ...], fragment: str, tmp_path: Path) -> None:
    result = run_cli("bench", "needle", *args, "--out", str(tmp_path / "o"))
    if fragment in ("comma-separated", "'festival' is not one of"):  # click's usage error: exit 2, on stderr
        assert result.code == 2 and fragment in result.stderr and "Traceback" not in result.stderr
        return
    assert_one_line_error(result, fragment)


def test_a_haystack_from_your_own_footage_folder(sample: Callable[[str], Path], tmp_path: Path) -> None:
    footage = tmp_path / "my-videos"
    footage.mkdir()
    (footage / "walk.avi").symlink_to(sample("tree.avi"))
    (footage / "notes.txt").write_text("not a video: ignored")
    files = footage_files(footage)
    assert [Path(f).name for f in files] == ["walk.avi"]
    options = NeedleOptions(lengths_min=(0.5,), depths=(50,), kinds=("text",))
    haystack = build_haystack(0.5, options, files, tmp_path / "haystacks")
    assert [n.kind for n in haystack.needles] == ["text"] and haystack.path.is_file()
    # other footage is another haystack: the cache key holds what the haystack is cut from
    other = build_haystack(0.5, options, footage_files(None)[:1], tmp_path / "haystacks")
    assert other.path != haystack.path
