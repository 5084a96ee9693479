"""``videoqa search``: the speech, screen-text and (with a CLIP model) visual channels of one video or a
library, fused into one ranking, through the real CLI; a library searched through its passage index;
the relevance cut-off; and the search-hit record."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from videoqa.cli.visual import MIN_TEXT_SIMILARITY, RELATIVE_CUT, Moment, cut_off
from videoqa.respond.writers import (
    SearchHit,
    SearchResults,
    formats_holding,
    search_hit_record,
    writer,
)
from videoqa.testmedia.synth import SpokenLine, SynthScene, SynthSpec, SynthVideo, render

from helpers import assert_one_line_error, run_cli

RECORD_FIELDS = [
    "video",
    "channel",
    "start_s",
    "end_s",
    "start",
    "end",
    "best_frame_s",
    "text",
    "scene",
    "similarity",
    "lexical",
    "score",
]


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    """Run the CLI against a cache of its own."""
    return {**os.environ, "VIDEOQA_CACHE": str(tmp_path / "cache")}


def search_json(*args: str, env: dict[str, str]) -> list[dict[str, object]]:
    result = run_cli("search", *args, "--json", env=env)
    assert result.code == 0, result.stderr
    hits: list[dict[str, object]] = json.loads(result.stdout)
    return hits


def test_speech_and_screen_text_without_a_clip_model(
    narrated: SynthVideo, installed_models: None, tmp_path: Path, cache_env: dict[str, str]
) -> None:
    meeting = search_json("what time is the meeting", str(narrated.path), "--top-k", "2", env=cache_env)
    assert len(meeting) == 2
    best = meeting[0]
    assert list(best) == RECORD_FIELDS
    assert best["video"] == str(narrated.path)
    assert best["channel"] == "speech" and best["text"] == "The meeting starts at noon."
    assert 8.0 <= best["start_s"] <= 9.0 and best["scene"] == 2  # type: ignore[operator]
    assert best["start_s"] <= best["best_frame_s"] < best["end_s"]  # type: ignore[operator]
    assert meeting[0]["score"] > meeting[1]["score"]  # type: ignore[operator]

    # A name or number is found by word too: the card beats every other passage, in the table as well.
    frame = tmp_path / "gate.png"
    table = run_cli("search", "gate 42", str(narrated.path), "--save-frame", str(frame), env=cache_env)
    assert table.code == 0, table.stderr
    first = table.stdout.splitlines()[0].split()
    assert first[1:3] == [str(narrated.path), "screen"]
    # The card is on screen 5-7 s; frames read once a second each stand for half a second either side.
    shown_from, shown_to = (clock_seconds(part) for part in first[3].split("-"))
    assert 4.0 <= shown_from <= 6.0 and 7.0 <= shown_to <= 8.0, first[3]
    assert table.stdout.splitlines()[0].endswith('"GATE 42"')
    scores = [float(line.split()[0]) for line in table.stdout.splitlines()]
    assert scores == sorted(scores, reverse=True) and len(scores) <= 5
    with Image.open(frame) as image:  # the card's frame, full size
        assert image.size == (320, 180)
        red, green, blue = image.convert("RGB").getpixel((20, 20))
        assert (
            blue > red and blue > green
        )  # the blue scene (1) behind the card, not the bars or the test card


def test_a_clip_model_adds_the_scenes(
    narrated: SynthVideo, tiny_clip_dir: Path, installed_models: None, cache_env: dict[str, str]
) -> None:
    # a query for both the spoken sentence and the card, so both text channels have hits worth listing
    query = "the meeting starts at noon at gate 42"
    args = (query, str(narrated.path), "--embedder", str(tiny_clip_dir))
    hits = search_json(*args, "--top-k", "50", env=cache_env)
    assert {hit["channel"] for hit in hits} == {"speech", "screen", "visual"}
    scenes = [hit for hit in hits if hit["channel"] == "visual"]
    assert sorted(hit["scene"] for hit in scenes) == [0, 1, 2]  # type: ignore[type-var]
    for hit in scenes:
        assert hit["text"] is None and hit["lexical"] is None
        assert hit["start_s"] <= hit["best_frame_s"] < hit["end_s"]  # type: ignore[operator]
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    # the spoken sentence matches by meaning and by most words: first, ahead of any scene
    assert hits[0]["channel"] == "speech"


def _talk(line: str) -> SynthSpec:
    return SynthSpec(
        scenes=(SynthScene(5.0, "lavfi:testsrc2"),),
        speech=(SpokenLine(0.5, line),),
        width=320,
        height=180,
        fps=15.0,
        keyframe_interval=30,
    )


# A library of five videos, four of them with speech: (path in the library, the sentence said in it)
TALKS = {
    "bakery.mp4": "The bakery on the corner opens at seven every morning.",
    "trips/ferry.mp4": "The ferry to the island leaves from the northern pier.",
    "garden.mp4": "My grandmother planted tomatoes and beans in the garden.",
}


@pytest.fixture(scope="module")
def library(
    narrated: SynthVideo,
    sample: Callable[[str], Path],
    installed_models: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[str, str]]:
    """The folder after ``videoqa index``, and the environment naming its cache."""
    folder = tmp_path_factory.mktemp("videos")
    (folder / "monday").mkdir()
    shutil.copyfile(narrated.path, folder / "monday" / "talk.mp4")
    shutil.copyfile(sample("bikes.mp4"), folder / "bikes.mp4")
    for name, line in TALKS.items():
        render(_talk(line), folder / name)
        (folder / name).with_suffix(".json").unlink()  # the synth manifest: not part of the library
    (folder / "broken.mp4").write_text("not a video\n" * 10)
    env = {**os.environ, "VIDEOQA_CACHE": str(tmp_path_factory.mktemp("cache"))}
    indexed = run_cli("index", str(folder), "--device", "cpu", env=env)
    assert indexed.code == 0, indexed.stderr
    return folder, env


def test_a_library_names_each_video_and_skips_bad_files(library: tuple[Path, dict[str, str]]) -> None:
    folder, env = library
    result = run_cli("search", "gate 42", "--library", str(folder), "--json", env=env)
    assert result.code == 0, result.stderr
    # found bad when the library was indexed: not probed again, said once
    about_it = [line for line in result.stderr_lines if "broken.mp4" in line]
    assert len(about_it) == 1 and about_it[0].startswith("warning: skipped broken.mp4: known bad since ")
    hits = json.loads(result.stdout)
    assert hits[0]["video"] == os.path.join("monday", "talk.mp4")
    assert hits[0]["text"] == "GATE 42"
    assert len(hits) == 1  # nothing else holds the words, or comes near them in meaning

    ferry = search_json("when does the boat to the island go", "--library", str(folder), env=env)
    assert ferry[0]["video"] == os.path.join("trips", "ferry.mp4") and ferry[0]["channel"] == "speech"


def test_a_library_search_reads_only_the_likeliest_videos(
    library: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from videoqa.assistant import Assistant
    from videoqa.cli.util import VideoProgress
    from videoqa.cli.visual import _search_options, _StageLabels, library_candidates, rank_moments
    from videoqa.store.cache import IndexCache

    folder, env = library
    monkeypatch.setenv("VIDEOQA_CACHE", env["VIDEOQA_CACHE"])
    assistant = Assistant(_search_options("pixel", "cpu", 1.0), cache=IndexCache())
    read: list[str] = []
    knowledge = assistant.knowledge

    def recorded(video: str | os.PathLike[str]) -> object:
        read.append(Path(video).relative_to(folder.resolve()).as_posix())
        return knowledge(video)

    monkeypatch.setattr(assistant, "knowledge", recorded)
    with VideoProgress() as progress:
        searched = library_candidates(
            folder, "what did grandmother grow", assistant, _StageLabels(progress), 1
        )
    indexed = assistant.library(folder).videos
    assert len(indexed) == 5  # every video but the bad file
    # the library's passage index chose the candidates (the 3 likeliest by passage vector, and those
    # holding the query's rarer words): not every video's knowledge was read
    assert "garden.mp4" in read and len(read) <= 3, read
    best = rank_moments("what did grandmother grow", searched, assistant.text_embedder, assistant.embedder)
    assert best[0].hit.video == "garden.mp4"


def _hit(channel: str, similarity: float, lexical: float | None) -> Moment:
    text = None if channel == "visual" else "words"
    hit = SearchHit("v.mp4", channel, 0.0, 1.0, 0.5, text, 0, similarity, lexical, 0.0)
    return Moment(hit, Path("v.mp4"))


def test_the_cut_off_lists_the_hits_near_the_best_one() -> None:
    best = _hit("speech", 0.8, 4.0)
    half_as_similar = _hit("screen", 0.4, 0.0)  # 0.4 >= 0.5 x 0.8, and above the floor
    less_than_half = _hit("speech", 0.39, 0.0)
    a_word_is_enough = _hit("screen", 0.1, 2.0)  # BM25 half the best's: kept, however far in meaning
    too_few_words = _hit("screen", 0.1, 1.9)
    scene = _hit("visual", 0.05, None)  # a CLIP model's scenes are bounded by --top-k alone
    moments = [best, half_as_similar, less_than_half, a_word_is_enough, too_few_words, scene]
    assert cut_off(moments) == [best, half_as_similar, a_word_is_enough, scene]
    # below the floor without a word of the query: not listed, even when it is the best there is
    weak = _hit("speech", MIN_TEXT_SIMILARITY - 0.01, 0.0)
    assert cut_off([weak]) == [] and cut_off([_hit("speech", 0.5, 0.0)]) != []
    assert RELATIVE_CUT == 0.5 and cut_off([]) == []


def test_the_cut_off_keeps_what_a_query_asks_for(installed_models: None) -> None:
    """On a seeded stand-in video (passages of spoken facts, signs and filler), each fact asked as a
    question and as its keywords: the passage asked about is listed for nearly every query, beside few
    others. The figures behind MIN_TEXT_SIMILARITY and RELATIVE_CUT (docs/cli.md)."""
    from videoqa.channels.text_embedder import embedding_text, load_text_embedder
    from videoqa.retrieval.relevance import content_words
    from videoqa.retrieval.textindex import score_passages
    from videoqa.store import models
    from videoqa.testmedia.facts import question_set
    from videoqa.types import Passage

    embedder = load_text_embedder(fetch=models.pull)
    questions = question_set(seed=1, facts=40)
    passages = [Passage(channel, start, end, text) for channel, text, start, end in questions.passages]
    vectors = embedder.embed([embedding_text(p) for p in passages])
    asked_about = [
        (query, asked.passage)
        for asked in questions.questions
        if asked.passage is not None
        for query in (asked.question, " ".join(content_words(asked.question)))
    ]
    query_vectors = embedder.embed([query for query, _ in asked_about])  # one batch, not 300 calls
    kept, listed = [], []
    for (query, passage), query_vector in zip(asked_about, query_vectors, strict=True):
        scores = score_passages(query, query_vector, passages, vectors)
        moments = [
            _hit(p.channel, float(dense), float(lexical))
            for p, dense, lexical in zip(passages, scores.dense, scores.lexical, strict=True)
        ]
        shown = {id(m) for m in cut_off(moments)}
        kept.append(id(moments[passage]) in shown)
        listed.append(len(shown))
    assert len(kept) > 300
    assert sum(kept) / len(kept) >= 0.97, sum(kept) / len(kept)
    assert sum(listed) / len(listed) <= 0.1 * len(passages), (sum(listed) / len(listed), len(passages))


def test_top_k_is_the_most_listed_and_nothing_may_match(
    narrated: SynthVideo, installed_models: None, cache_env: dict[str, str]
) -> None:
    both = search_json("gate 42 and the meeting at noon", str(narrated.path), env=cache_env)
    assert {hit["text"] for hit in both} >= {"GATE 42", "The meeting starts at noon."}
    one = search_json("gate 42 and the meeting at noon", str(narrated.path), "--top-k", "1", env=cache_env)
    assert one == both[:1]
    nothing = run_cli("search", "a submarine under the arctic ice", str(narrated.path), env=cache_env)
    assert nothing.code == 0 and nothing.stdout == ""
    assert nothing.stderr_lines == ['nothing matches "a submarine under the arctic ice" closely enough']


def test_bad_inputs(narrated: SynthVideo, tmp_path: Path, cache_env: dict[str, str]) -> None:
    assert_one_line_error(run_cli("search", "  ", str(narrated.path), env=cache_env), "search text is empty")
    assert_one_line_error(run_cli("search", "x" * 2001, str(narrated.path), env=cache_env), "at most 2,000")
    assert_one_line_error(
        run_cli("search", "x", str(tmp_path / "missing.mp4"), env=cache_env), "no such file"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_cli("search", "x", "--library", str(empty), env=cache_env), "no videos")
    assert_one_line_error(
        run_cli("search", "x", "--library", str(narrated.path), env=cache_env), "not a folder"
    )
    no_model = str(tmp_path / "no-model")
    assert_one_line_error(
        run_cli("search", "x", str(narrated.path), "--embedder", no_model, env=cache_env), "no-model"
    )
    # click's own range check, as for ask: its usage lines, exit 2, no traceback
    zero = run_cli("search", "x", str(narrated.path), "--top-k", "0", env=cache_env)
    assert zero.code == 2 and "--top-k" in zero.stderr and "Traceback" not in zero.stderr


SPOKEN = SearchHit(
    video="talk.mp4",
    channel="speech",
    start_s=8.123456,
    end_s=9.87654,
    frame_s=9.000001,
    text="The meeting starts at noon.",
    scene=2,
    similarity=0.612345678,
    lexical=3.14159265,
    score=0.0327868852,
)
SEEN = SearchHit("talk.mp4", "visual", 4.0, 8.0, 5.0, None, 1, 0.2512345, None, 0.0163934426)


def test_search_hit_record_rounds_like_the_others() -> None:
    assert search_hit_record(SPOKEN) == {
        "video": "talk.mp4",
        "channel": "speech",
        "start_s": 8.123,
        "end_s": 9.877,
        "start": "0:08",
        "end": "0:10",
        "best_frame_s": 9.0,
        "text": "The meeting starts at noon.",
        "scene": 2,
        "similarity": 0.6123,
        "lexical": 3.1416,
        "score": 0.03279,
    }
    assert search_hit_record(SEEN)["lexical"] is None and search_hit_record(SEEN)["text"] is None


def test_search_results_in_text_and_json() -> None:
    results = SearchResults((SPOKEN, SEEN))
    assert [spec.name for spec in formats_holding(SearchResults)] == ["text", "json"]
    assert json.loads(writer("json").render(results)) == [search_hit_record(SPOKEN), search_hit_record(SEEN)]
    lines = writer("text").render(results).splitlines()
    assert lines[0].split()[:5] == ["0.03279", "talk.mp4", "speech", "0:08.1-0:09.9", "scene"]
    assert lines[0].endswith('"The meeting starts at noon."')
    assert lines[1].split()[:3] == ["0.01639", "talk.mp4", "visual"]
    assert lines[1].endswith("best frame 0:05.0")
    assert writer("text").render(SearchResults(())) == ""


def clock_seconds(clock: str) -> float:
    """ "0:05.5" -> 5.5."""
    minutes, seconds = clock.split(":")
    return int(minutes) * 60 + float(seconds)
