"""One question across a library of videos: ``videoqa ask --library DIR`` and ``videoqa chat --library
DIR`` on generated narrated videos with the real offline models, the library's manifest, resuming an
interrupted index, bad files remembered, and bad inputs."""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from videoqa.assistant import Assistant, AssistantOptions
from videoqa.knowledge.build import VideoKnowledge
from videoqa.library import badfiles
from videoqa.library.passages import PassageLibrary
from videoqa.respond.answer import Answer
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SpokenLine, SynthScene, SynthSpec, TextCard, render

from helpers import assert_one_line_error, run_cli

TIME_TOLERANCE_S = 2.5


def _spec(
    first: str, second: str, speech: tuple[SpokenLine, ...], cards: tuple[TextCard, ...] = ()
) -> SynthSpec:
    return SynthSpec(
        scenes=(SynthScene(5.0, f"lavfi:{first}"), SynthScene(5.0, f"lavfi:{second}")),
        cards=cards,
        speech=speech,
        width=320,
        height=180,
        fps=15.0,
        keyframe_interval=30,
    )


# (path in the library, spec): each fact lives in one video only, at a known time
VIDEOS = {
    "station.mp4": _spec(
        "testsrc2",
        "color=c=0x1f4e79",
        (SpokenLine(1.0, "The last train to London leaves from platform seven."),),
        (TextCard(6.0, 3.0, "STATION MAP"),),
    ),
    "meetings/budget.mp4": _spec(
        "smptebars",
        "color=c=0x6b8e23",
        (
            SpokenLine(1.0, "Welcome to the council meeting."),
            SpokenLine(5.5, "The committee approved a budget of four million euros."),
        ),
    ),
    "garden.mp4": _spec(
        "color=c=0x8b4513",
        "testsrc2",
        (
            SpokenLine(1.0, "My grandmother planted tomatoes in the garden."),
            SpokenLine(5.5, "After the planting, she painted the fence blue."),
        ),
    ),
    "sports/football.mp4": _spec(
        "color=c=0x2f4f4f",
        "smptebars",
        (
            SpokenLine(1.0, "Our football team won the final match by three goals."),
            SpokenLine(5.5, "After the match, the players celebrated with their families."),
        ),
    ),
    "lectures/museum.mp4": _spec(
        "testsrc2",
        "color=c=0x4b0082",
        (SpokenLine(1.0, "Our guided tour of the museum begins in the main hall."),),
        (TextCard(6.0, 3.0, "MUSEUM CLOSED ON MONDAY"),),
    ),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("library")
    for name, spec in VIDEOS.items():
        render(spec, folder / name)
        (folder / name).with_suffix(".json").unlink()  # the synth manifest: not part of the library
    (folder / "broken.mp4").write_text("this is not a video\n" * 20)
    return folder


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {**os.environ, "VIDEOQA_CACHE": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def indexed(library: Path, cache_env: dict[str, str], installed_models: None) -> Path:
    """The library after ``videoqa index DIR``: the broken file is listed and skipped, never fatal."""
    result = run_cli("index", str(library), "--device", "cpu", env=cache_env)
    assert result.code == 0, result.stderr
    summary = f"{len(VIDEOS)} indexed, 0 unchanged, 0 removed, 1 skipped"
    assert result.stdout.strip().endswith(summary), result.stdout
    assert any(line.startswith("warning: skipped broken.mp4") for line in result.stderr_lines)
    return library


@pytest.fixture(scope="module")
def assistant(indexed: Path, cache_env: dict[str, str]) -> Assistant:
    return Assistant(AssistantOptions(device="cpu"), cache=IndexCache(Path(cache_env["VIDEOQA_CACHE"])))


def _cites(answer: Answer, video: str, time_s: float) -> bool:
    answering = [e for e in answer.evidence if e.role != "anchor"]
    return all(getattr(e, "video", None) == video for e in answer.evidence) and any(
        e.start_s - TIME_TOLERANCE_S <= time_s <= e.end_s + TIME_TOLERANCE_S for e in answering
    )


@pytest.mark.parametrize(
    ("question", "video", "time_s"),
    [
        ("Which platform does the train to London leave from?", "station.mp4", 1.0),
        ("How much money did the committee approve for the budget?", "meetings/budget.mp4", 5.5),
        ("What did the grandmother plant in the garden?", "garden.mp4", 1.0),
        ("What did she do after the planting?", "garden.mp4", 5.5),
        ("By how many goals did the football team win the final?", "sports/football.mp4", 1.0),
        ("Which day is the museum closed?", "lectures/museum.mp4", 6.0),
    ],
)
def test_answers_name_the_right_video_and_time(
    assistant: Assistant, indexed: Path, question: str, video: str, time_s: float
) -> None:
    result = assistant.ask_library(indexed, question)
    assert not result.answer.abstained, result.answer
    assert result.video == video and result.answer.text.startswith(f"In {video}: ")
    assert _cites(result.answer, video, time_s), result.answer.evidence


def test_a_fact_in_no_video_abstains(assistant: Assistant, indexed: Path) -> None:
    result = assistant.ask_library(indexed, "What is the name of the submarine captain in Lisbon?")
    assert result.answer.abstained and result.video is None and result.answer.evidence == ()
    assert result.answer.text == f"None of the {len(VIDEOS)} indexed videos seems to show or say this."


def test_the_manifest_records_each_video(assistant: Assistant, indexed: Path) -> None:
    videos = assistant.library(indexed).videos
    assert sorted(videos) == sorted(VIDEOS)
    models = assistant.index_models()
    for name, entry in videos.items():
        assert entry["fingerprint"] == IndexCache().fingerprint(indexed / name)
        assert entry["duration_s"] == pytest.approx(10.0, abs=0.3)
        assert entry["models"] == models and models["speech"] != "off" and models["screen"] != "off"
        assert entry["channels"]["speech"] >= 1
    assert videos["station.mp4"]["channels"]["screen"] >= 1
    assert videos["lectures/museum.mp4"]["channels"]["screen"] >= 1


def test_an_interrupted_index_resumes(assistant: Assistant, indexed: Path, tmp_path: Path) -> None:
    library = PassageLibrary(indexed, assistant.index_models(), IndexCache(tmp_path / "cache"))

    def crash_in_budget(path: Path) -> VideoKnowledge:
        if path.name == "budget.mp4":
            raise KeyboardInterrupt  # the process stops in the middle of the second video in order
        return assistant.knowledge(path)

    with pytest.raises(KeyboardInterrupt):
        library.sync(crash_in_budget)
    report = PassageLibrary(indexed, assistant.index_models(), IndexCache(tmp_path / "cache")).sync(
        assistant.knowledge
    )
    assert report.interrupted == "meetings/budget.mp4"
    # Finished and saved before the crash: skipped. The first video is saved at once; the next may not
    # have been (saves are spaced out by their cost), and is indexed again then.
    finished = ("garden.mp4", "lectures/museum.mp4")
    assert report.unchanged[:1] == ("garden.mp4",) and set(report.unchanged) <= set(finished)
    assert set(report.indexed) == set(VIDEOS) - set(report.unchanged)
    assert {"meetings/budget.mp4", "station.mp4"} <= set(report.indexed)
    assert [name for name, _ in report.failed] == ["broken.mp4"]


def test_ask_library_through_the_cli(indexed: Path, cache_env: dict[str, str], tmp_path: Path) -> None:
    question = "How much money did the committee approve for the budget?"
    clips = tmp_path / "clips"
    clips.mkdir()
    result = run_cli(
        "ask",
        "--library",
        str(indexed),
        question,
        "--json",
        "--save-clips",
        str(clips),
        "--device",
        "cpu",
        env=cache_env,
    )
    assert result.code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["video"] == str(indexed) and not record["abstained"]
    assert record["answer"].startswith("In meetings/budget.mp4: ")
    assert record["evidence"] and {item["video"] for item in record["evidence"]} == {"meetings/budget.mp4"}
    assert any(line.startswith("warning: skipped broken.mp4") for line in result.stderr_lines)
    # the clip is cut from the video the answer rests on
    assert len(record["clips"]) == 1 and Path(record["clips"][0]).name.startswith("budget")
    assert Path(record["clips"][0]).stat().st_size > 0


def test_a_single_video_answer_has_no_video_per_item(indexed: Path, cache_env: dict[str, str]) -> None:
    video = str(indexed / "garden.mp4")
    result = run_cli(
        "ask", video, "What did the grandmother plant?", "--json", "--device", "cpu", env=cache_env
    )
    assert result.code == 0, result.stderr
    assert all("video" not in item for item in json.loads(result.stdout)["evidence"])


def test_bad_library_inputs(tmp_path: Path, cache_env: dict[str, str]) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "clip.mp4").write_bytes(b"")
    both = run_cli("ask", "--library", str(tmp_path), str(tmp_path / "clip.mp4"), "what?", env=cache_env)
    assert_one_line_error(both, "either VIDEO or --library")
    missing = run_cli("ask", "--library", str(tmp_path / "nowhere"), "what?", env=cache_env)
    assert_one_line_error(missing, "nowhere", "not a folder")
    empty = run_cli("ask", "--library", str(tmp_path / "empty"), "what?", env=cache_env)
    assert_one_line_error(empty, "no videos in the folder")


def _known_bad(reason: str) -> str:
    return f"known bad since {datetime.date.today().isoformat()}: {reason}"


def test_a_bad_file_is_reported_once_as_known_bad(indexed: Path, cache_env: dict[str, str]) -> None:
    again = run_cli("index", str(indexed), "--device", "cpu", env=cache_env)
    assert again.code == 0, again.stderr
    assert again.stdout.strip().endswith(f"0 indexed, {len(VIDEOS)} unchanged, 0 removed, 1 skipped")
    about_it = [line for line in again.stderr_lines if "broken.mp4" in line]
    assert len(about_it) == 1, again.stderr
    assert re.match(
        r"warning: skipped broken\.mp4: known bad since \d{4}-\d\d-\d\d: .*not a video", about_it[0]
    )


def test_a_known_bad_file_is_not_probed_until_it_changes(
    assistant: Assistant, indexed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(indexed / "station.mp4", folder / "station.mp4")
    bad = folder / "broken.mp4"
    bad.write_text("this is not a video\n" * 20)
    cache = IndexCache(tmp_path / "cache")
    tried: list[str] = []

    def know(path: Path) -> VideoKnowledge:
        tried.append(path.name)
        return assistant.knowledge(path)

    def sync() -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        tried.clear()
        report = PassageLibrary(folder, assistant.index_models(), cache).sync(know)
        return report.indexed, report.failed

    indexed_now, failed = sync()
    assert indexed_now == ("station.mp4",) and [name for name, _ in failed] == ["broken.mp4"]
    reason = failed[0][1]
    assert "not a video" in reason and tried == ["broken.mp4", "station.mp4"]

    def no_probe(path: Path) -> None:
        raise AssertionError(f"{path} was probed again")

    with monkeypatch.context() as patched:
        patched.setattr(badfiles, "probe", no_probe)
        assert sync() == ((), (("broken.mp4", _known_bad(reason)),))
        assert tried == []  # neither indexed nor probed
        assert PassageLibrary(folder, assistant.index_models(), cache).pending() == []  # --ray sends nothing

    bad.write_text("other bytes, still no video\n")  # changed: tried (and probed) again
    indexed_now, failed = sync()
    assert tried == ["broken.mp4"] and indexed_now == ()
    assert [name for name, _ in failed] == ["broken.mp4"] and not failed[0][1].startswith("known bad")
    bad.unlink()  # gone: forgotten
    assert sync() == ((), ())


def _answers(stdout: str) -> list[tuple[str, list[str]]]:
    """The chat's answers, each with its evidence lines (indented under it)."""
    blocks: list[tuple[str, list[str]]] = []
    for line in stdout.splitlines():
        if line.startswith("  "):
            blocks[-1][1].append(line.strip())
        elif line.strip():
            blocks.append((line, []))
    return blocks


def test_chat_about_a_library_driven_by_piped_input(
    indexed: Path, cache_env: dict[str, str], tmp_path: Path
) -> None:
    transcript = tmp_path / "chat.md"
    script = "\n".join(
        [
            "/scenes",
            "What did the grandmother plant in the garden?",
            "and after that?",
            "/scenes",
            "By how many goals did the football team win the final?",
            "/videos",
            f"/save {transcript}",
            "/bogus",
            "",
        ]
    )
    result = run_cli("chat", "--library", str(indexed), "--device", "cpu", input=script, env=cache_env)
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"chatting about the {len(VIDEOS)} indexed videos in {indexed}" in result.stderr
    (planted, first), (then, after), (goals, won) = _answers(result.stdout)
    assert planted.startswith("In garden.mp4: ") and "tomato" in planted.lower()
    assert first and all(line.startswith("garden.mp4 [0:0") for line in first)
    # the follow-up moves on in time within the garden video: what follows the planting, at 0:05
    assert then.startswith("In garden.mp4: ")
    assert any(re.match(r"garden\.mp4 \[0:0[56]-.*fence", line) for line in after), after
    assert goals.startswith("In sports/football.mp4: ") and won[0].startswith("sports/football.mp4 [0:01-")
    errors = [line for line in result.stderr_lines if line.startswith("error:")]
    assert errors[0].startswith("error: /scenes lists the scenes of the video the last answer came from")
    assert "scenes of garden.mp4:\n  scene 1  [0:00-" in result.stderr
    assert "  lectures/museum.mp4  (0:10)" in result.stderr and "unknown command /bogus" in result.stderr
    assert "saved 3 turns" in result.stderr
    assert (
        transcript.read_text().count("**You:**") == 3 and "In sports/football.mp4: " in transcript.read_text()
    )


def test_bad_library_chat_inputs(indexed: Path, cache_env: dict[str, str], tmp_path: Path) -> None:
    video = str(indexed / "garden.mp4")
    both = run_cli("chat", video, "--library", str(indexed), input="", env=cache_env)
    assert_one_line_error(both, "either VIDEO or --library")
    assert_one_line_error(run_cli("chat", input="", env=cache_env), "VIDEO", "--library")
    missing = run_cli("chat", "--library", str(tmp_path / "nowhere"), input="", env=cache_env)
    assert_one_line_error(missing, "nowhere", "not a folder")
    assert_one_line_error(run_cli("chat", "--library", video, input="", env=cache_env), "not a folder")
    (tmp_path / "empty").mkdir()
    empty = run_cli("chat", "--library", str(tmp_path / "empty"), input="", env=cache_env)
    assert_one_line_error(empty, "no videos in the folder")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copyfile(video, fresh / "garden.mp4")  # a video, but nothing indexed in this folder
    unindexed = run_cli("chat", "--library", str(fresh), "--device", "cpu", input="", env=cache_env)
    assert_one_line_error(unindexed, "no indexed videos", f"videoqa index {fresh}")
