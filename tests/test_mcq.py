"""``bench mcq``: the three benchmarks' annotation files (fabricated here with their real field names),
reading the model's choice, finding videos, and scoring on the narrated video with a scripted model and,
through the CLI, with the real default one."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from videoqa.assistant import Assistant, AssistantOptions
from videoqa.bench.mcq import (
    McqQuestion,
    McqReport,
    McqResult,
    answer_question,
    evaluate,
    find_video,
    load_questions,
    parse_choice,
    search_text,
    strip_listed_options,
)
from videoqa.cli.main import cli
from videoqa.cli.mcq import report_table
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthVideo

from helpers import CliResult, ScriptedLlm, assert_one_line_error

NEXTQA_HEADER = [
    "video",
    "frame_count",
    "width",
    "height",
    "question",
    "answer",
    "qid",
    "type",
    "a0",
    "a1",
    "a2",
    "a3",
    "a4",
]


def _write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _write_nextqa(path: Path, rows: list[list[object]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(NEXTQA_HEADER)
        writer.writerows(rows)
    return path


def _egoschema_question(uid: str, question: str, options: list[str]) -> dict[str, str]:
    return {
        "q_uid": uid,
        "google_drive_id": "1abc",
        "question": question,
        **{f"option {i}": text for i, text in enumerate(options)},
    }


FIVE = ["c walks the dog", "c cooks dinner", "c reads a book", "c paints a wall", "c washes a car"]


@pytest.fixture
def egoschema(tmp_path: Path) -> tuple[Path, Path]:
    questions = [
        _egoschema_question("0074f737-11cb", "What is c doing overall?", FIVE),
        _egoschema_question("00b9a0de-c59e", "What does c do first?", FIVE[::-1]),
        _egoschema_question("00f7bd0b-4ab4", "Why does c stop?", FIVE),
    ]
    answers = {"0074f737-11cb": 1, "00b9a0de-c59e": "4"}  # the third is not in the public subset
    return (
        _write_json(tmp_path / "questions.json", questions),
        _write_json(tmp_path / "subset_answers.json", answers),
    )


@pytest.fixture
def nextqa(tmp_path: Path) -> Path:
    return _write_nextqa(
        tmp_path / "val.csv",
        [
            [
                4010069381,
                1112,
                640,
                480,
                "why did the boy pick up the ball",
                3,
                6,
                "CW",
                "to throw",
                "to eat",
                "to hide",
                "to play with it",
                "to sleep",
            ],
            [
                4010069381,
                1112,
                640,
                480,
                "what did the boy do after picking up the ball",
                0,
                7,
                "TN",
                "ran away",
                "sat down",
                "cried",
                "laughed",
                "jumped",
            ],
            [
                2399193711,
                540,
                640,
                360,
                "how many dogs are there",
                1,
                0,
                "DC",
                "one",
                "two",
                "three",
                "four",
                "five",
            ],
        ],
    )


@pytest.fixture
def mlvu(tmp_path: Path) -> Path:
    return _write_json(
        tmp_path / "1_plotQA.json",
        [
            {
                "video": "movie101_66.mp4",
                "duration": 246,
                "question": "What colour is the main car?",
                "candidates": ["red", "blue", "green", "white"],
                "answer": "blue",
                "question_type": "plotQA",
            },
            {
                "video": "needle_32.mp4",
                "duration": 467,
                "question": "What is the girl holding?\nOptions:\n(A) a cup\n(B) a phone\n(C) a book",
                "candidates": ["a cup", "a phone", "a book"],
                "answer": "a book",
                "question_type": "findNeedle",
            },
        ],
    )


# --- reading the formats --------------------------------------------------------------------------------


def test_egoschema_questions_take_their_answers_from_the_separate_key(egoschema: tuple[Path, Path]) -> None:
    questions_file, answers_file = egoschema
    questions = load_questions(questions_file, answers=answers_file)
    assert [q.qid for q in questions] == ["0074f737-11cb", "00b9a0de-c59e", "00f7bd0b-4ab4"]
    first = questions[0]
    assert first.video == "0074f737-11cb.mp4" and first.question == "What is c doing overall?"
    assert first.options == tuple(FIVE) and first.qtype == "all"
    assert [q.answer for q in questions] == [1, 4, None]
    assert [q.answer for q in load_questions(questions_file)] == [None, None, None]  # no key given


def test_nextqa_rows_are_keyed_by_video_and_qid_and_typed(nextqa: Path) -> None:
    questions = load_questions(nextqa)
    assert [q.qid for q in questions] == ["4010069381_6", "4010069381_7", "2399193711_0"]
    assert [q.qtype for q in questions] == ["CW", "TN", "DC"]
    assert [q.answer for q in questions] == [3, 0, 1]
    assert questions[0].video == "4010069381.mp4"
    assert questions[0].options == ("to throw", "to eat", "to hide", "to play with it", "to sleep")


def test_mlvu_answers_are_candidate_texts_and_listed_options_leave_the_question(mlvu: Path) -> None:
    plot, needle = load_questions(mlvu)
    assert (plot.qid, plot.video, plot.qtype, plot.answer) == ("1_plotQA-1", "movie101_66.mp4", "plotQA", 1)
    assert needle.question == "What is the girl holding?"
    assert needle.options == ("a cup", "a phone", "a book") and needle.answer == 2


def test_the_named_format_overrides_detection(egoschema: tuple[Path, Path]) -> None:
    questions_file, _ = egoschema
    with pytest.raises(
        ValueError,
        match=r"questions\.json: no usable question: all 3 records skipped "
        r"\(no 'candidates' field: 3\); the first: question 1 has no",
    ):
        load_questions(questions_file, fmt="mlvu")
    with pytest.raises(ValueError, match="unknown format 'tvqa'"):
        load_questions(questions_file, fmt="tvqa")


def test_listed_options_are_cut_from_the_question_only_when_listed() -> None:
    assert strip_listed_options("Which one? (A) red (B) blue") == "Which one?"
    assert strip_listed_options("Who wins in Plan A. or B.?") == "Who wins in Plan A. or B.?"


MALFORMED = [
    ("broken.json", '[{"q_uid": "x",', "not valid JSON"),
    ("dict.json", '{"q_uid": "x"}', "expected a JSON list of question objects"),
    ("unknown.json", '[{"clip": "a.mp4"}]', "cannot tell the format"),
    ("empty.json", "[]", "holds no questions"),
    (
        "ego.json",
        json.dumps([{"q_uid": "x", "question": "q?", "option 0": "a"}]),
        "question 1 (x) has no 'option 1' field",
    ),
    (
        "mlvu.json",
        json.dumps(
            [
                {
                    "video": "v.mp4",
                    "question": "q?",
                    "candidates": ["a", "b"],
                    "answer": "c",
                    "question_type": "count",
                }
            ]
        ),
        "question 1: the answer 'c' is not one of its candidates",
    ),
    ("columns.csv", "video,question,answer\n1,q?,0\n", "no column qid, a0, a1, a2, a3, a4"),
    (
        "range.csv",
        ",".join(NEXTQA_HEADER) + "\n7,1,1,1,q?,5,0,CW,a,b,c,d,e\n",
        "question 7_0: answer 5 is out of range for 5 options",
    ),
    (
        "letter.csv",
        ",".join(NEXTQA_HEADER) + "\n7,1,1,1,q?,x,0,CW,a,b,c,d,e\n",
        "line 2: answer 'x' is not an option number",
    ),
]


@pytest.mark.parametrize(("name", "content", "fragment"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_a_malformed_file_is_one_line_naming_it(
    tmp_path: Path, name: str, content: str, fragment: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError) as raised:
        load_questions(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and fragment in message and "\n" not in message


def test_a_bad_answer_key_is_named(egoschema: tuple[Path, Path], nextqa: Path, tmp_path: Path) -> None:
    questions_file, answers_file = egoschema
    bad_key = _write_json(tmp_path / "answers.json", {"0074f737-11cb": "B"})
    with pytest.raises(ValueError, match=r"answers\.json: question 0074f737-11cb: answer 'B' is not"):
        load_questions(questions_file, answers=bad_key)
    with pytest.raises(ValueError, match="answer key is read for EgoSchema only"):
        load_questions(nextqa, answers=answers_file)


def _mlvu_record(
    video: str, question: str, candidates: list[str], answer: str, qtype: str, duration: float = 467.98
) -> dict[str, object]:
    """One record as MLVU's json/<n>_<task>.json files give it, field for field."""
    return {
        "video": video,
        "duration": duration,
        "question": question,
        "candidates": candidates,
        "answer": answer,
        "question_type": qtype,
    }


DRONE = ["Fishing", "Catching the drone", "Launching the drone", "Sunbathing"]


@pytest.fixture
def propagating(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let caplog see videoqa's warnings: the CLI may have turned propagation off."""
    monkeypatch.setattr(logging.getLogger("videoqa"), "propagate", True)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_mlvu_records_that_cannot_be_asked_are_skipped_in_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, propagating: None
) -> None:
    # As in the real 2_needle.json: two records whose answer is not among their candidates.
    needle = _write_json(
        tmp_path / "2_needle.json",
        [
            _mlvu_record(
                "needle_32.mp4",
                "What does the hand coming out of the computer do?",
                ["Delivers a product", "Shakes the woman's hand"],
                "Delivers a product",
                "findNeedle",
            ),
            _mlvu_record(
                "needle_77.mp4",
                "What is the man doing?",
                DRONE,
                "Catching a flying drone quadcopter",
                "findNeedle",
            ),
            _mlvu_record(
                "needle_12.mp4", "What colour is the cup?", ["red", "blue", "green"], "green", "findNeedle"
            ),
            _mlvu_record(
                "needle_90.mp4",
                "What is the man doing?",
                DRONE[::-1],
                "Catching a flying drone quadcopter",
                "findNeedle",
            ),
        ],
    )
    with caplog.at_level(logging.WARNING, logger="videoqa"):
        questions = load_questions(needle)
    assert [(q.qid, q.answer) for q in questions] == [("2_needle-1", 0), ("2_needle-3", 2)]
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"{needle}: 2 of 4 records skipped (answer not among candidates: 2); "
        "the first: question 2: the answer 'Catching a flying drone"
    )

    # As in the real 7_topic_reasoning.json: one record whose every field is empty.
    caplog.clear()
    topic = _write_json(
        tmp_path / "7_topic_reasoning.json",
        [
            _mlvu_record(
                "AWA-6.mp4",
                "What is the main background of the video?",
                ["Grassland", "Lake", "Ocean", "Desert"],
                "Grassland",
                "topic_reasoning",
                450.0,
            ),
            _mlvu_record("movie101_89.mp4", "", ["", "", "", ""], "", "topic_reasoning", 677),
        ],
    )
    with caplog.at_level(logging.WARNING, logger="videoqa"):
        assert [q.video for q in load_questions(topic)] == ["AWA-6.mp4"]
    warnings = _warnings(caplog)
    assert len(warnings) == 1 and "1 of 2 records skipped (empty question: 1)" in warnings[0]


def test_a_file_with_no_usable_record_is_one_error(tmp_path: Path) -> None:
    path = _write_json(
        tmp_path / "2_needle.json",
        [
            _mlvu_record(
                "needle_77.mp4",
                "What is the man doing?",
                DRONE,
                "Catching a flying drone quadcopter",
                "findNeedle",
            ),
            _mlvu_record("needle_78.mp4", "", ["a", "b"], "a", "findNeedle"),
        ],
    )
    with pytest.raises(ValueError) as raised:
        load_questions(path)
    assert str(raised.value) == (
        f"{path}: no usable question: all 2 records skipped (answer not among candidates: 1, empty question: "
        "1); the first: question 1: the answer 'Catching a flying drone quadcopter' is not one of its "
        "candidates"
    )


def _sub_scene(tmp_path: Path) -> Path:
    """MLVU's 8_sub_scene.json: free-text answers with scoring points, no candidates."""
    return _write_json(
        tmp_path / "8_sub_scene.json",
        [
            {
                "video": "subPlot_new_all_126.mp4",
                "duration": 5632.83,
                "question": (
                    "Please describe the scene when the man in the green plaid shirt leads the players in."
                ),
                "answer": "He leads the football players into the golf course with a swagger.",
                "question_type": "subPlot",
                "scoring_points": ["The man leads the players with a swagger"],
            }
        ],
    )


def test_mlvu_open_ended_tasks_are_refused_as_open_ended(tmp_path: Path) -> None:
    summary = _write_json(
        tmp_path / "9_summary.json",
        [
            {
                "video": "217.mp4",
                "duration": 480.0,
                "question": "Please summarize this video.",
                "answer": "Waves lap against the rocks; a boat with two men appears.",
                "question_type": "summary",
            }
        ],
    )
    for path, task in ((_sub_scene(tmp_path), "subPlot"), (summary, "summary")):
        for fmt in (None, "mlvu"):
            with pytest.raises(ValueError) as raised:
                load_questions(path, fmt=fmt)
            message = str(raised.value)
            assert message.startswith(f"{path}: MLVU's open-ended task ({task}) has free-text answers")
            assert "GPT-4" in message and "1_plotQA.json to 7_topic_reasoning.json" in message
            assert "\n" not in message


def test_nextqa_counts_tp_as_tn_and_names_the_types_as_its_evaluation_does(tmp_path: Path) -> None:
    path = _write_nextqa(
        tmp_path / "val.csv",
        [
            [4010069381, 369, 640, 480, "what did the man do before playing", 1, 3, "TP", *FIVE],
            [4010069381, 369, 640, 480, "what did the man do after playing", 2, 4, "TN", *FIVE],
            [4882821564, 2697, 640, 480, "why did the boy pick up one present", 2, 1, "CW", *FIVE],
        ],
    )
    questions = load_questions(path)
    assert [q.qtype for q in questions] == ["TN", "TN", "CW"]
    report = McqReport(tuple(_result(q, choice) for q, choice in zip(questions, (1, 0, 2), strict=True)))
    assert {name: (t.n, t.correct) for name, t in report.by_type.items()} == {"CW": (1, 1), "TN": (2, 1)}
    assert {name: (t.n, t.correct) for name, t in report.by_family.items()} == {"C": (1, 1), "T": (2, 1)}
    table = report_table(report).splitlines()
    assert [line.split("  ")[0].strip() for line in table[1:-1]] == [
        "CW (Why)",
        "TN (Bef&Aft)",
        "C (causal)",
        "T (temporal)",
        "total",
    ]
    assert table[2].split()[-3:] == ["2", "1", "50.0%"]


def _result(q: McqQuestion, choice: int | None) -> McqResult:
    return McqResult(q.qid, q.qtype, q.video, choice, q.answer, "model", "", 0.0)


def test_duplicate_and_empty_candidates_are_scored_as_the_official_scripts_score_them(tmp_path: Path) -> None:
    # MLVU (choice_bench.py): the right letter is that of the last candidate equal to the answer, and an
    # answer of "" that is a candidate is that candidate. Records from the real 1_plotQA and 3_ego files.
    mlvu = load_questions(
        _write_json(
            tmp_path / "1_plotQA.json",
            [
                _mlvu_record(
                    "movie101_40.mp4",
                    "How many people are in the car?",
                    ["Six", "Three", "Three", "Eight"],
                    "Three",
                    "plotQA",
                ),
                _mlvu_record(
                    "ego_12.mp4",
                    "Where did I put the hammer?",
                    ["In the garage", "In the toolbox", "", "On the shelf"],
                    "",
                    "ego",
                ),
                _mlvu_record("ego_13.mp4", "Did I lock the door?", ["Yes ", "No", "Yes"], "Yes ", "ego"),
            ],
        )
    )
    assert [q.answer for q in mlvu] == [2, 2, 0]  # "Yes " is not "Yes": compared as given
    assert [_result(mlvu[0], choice).correct for choice in (1, 2)] == [False, True]
    assert mlvu[1].options == ("In the garage", "In the toolbox", "", "On the shelf")
    # NExT-QA (eval_mc.py): the predicted index against the annotated one, whatever the texts.
    nextqa = load_questions(
        _write_nextqa(
            tmp_path / "test.csv",
            [
                [
                    3842638015,
                    900,
                    640,
                    480,
                    "how did the lady feel",
                    4,
                    4,
                    "DO",
                    "embarrassed",
                    "happy to see the baby walking",
                    "calmer and happier",
                    "happy",
                    "happy",
                ]
            ],
        )
    )
    assert [_result(nextqa[0], choice).correct for choice in (3, 4)] == [False, True]


# --- reading the model's choice -------------------------------------------------------------------------

OPTIONS = ("at midnight", "at noon", "at dawn", "gate 42", "noon")


@pytest.mark.parametrize(
    ("reply", "choice"),
    [
        ("B", 1),
        ("Answer: (C)", 2),
        ("(B)", 1),
        ("B. at noon", 1),
        ("the answer is d", 3),
        ("c", 2),
        ("D) gate 42", 3),
        ("A", 0),
        ("A is right", 0),
        ("Option E.", 4),
        ("It starts at noon.", 1),  # the option's text: "at noon" is longer than "noon", which it holds
        ("A meeting at dawn", 2),  # "A" is the article here; the option's text decides
        ("I think the answer is the red car", None),
        ("", None),
        ("at midnight or at dawn", None),
    ],
)
def test_the_choice_is_read_from_the_reply(reply: str, choice: int | None) -> None:
    assert parse_choice(reply, OPTIONS) == choice


def test_a_letter_beyond_the_options_is_not_a_choice() -> None:
    assert parse_choice("E", ("yes", "no", "maybe")) is None


# --- finding videos -------------------------------------------------------------------------------------


def _question(
    video: str,
    qtype: str = "all",
    answer: int | None = 0,
    question: str = "what?",
    options: tuple[str, ...] = ("a", "b"),
) -> McqQuestion:
    return McqQuestion(
        qid=f"q-{video}-{question}",
        video=video,
        question=question,
        options=options,
        answer=answer,
        qtype=qtype,
    )


def test_videos_are_found_by_name_by_stem_and_one_folder_down(tmp_path: Path) -> None:
    for name in (
        "exact.mp4",
        "other.mkv",
        "both.mp4",
        "plotQA/deep.mp4",
        "plotQA/both.mp4",
        "a/b/too_deep.mp4",
    ):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert find_video(tmp_path, _question("exact.mp4")) == tmp_path / "exact.mp4"
    assert find_video(tmp_path, _question("other.mp4")) == tmp_path / "other.mkv"
    assert find_video(tmp_path, _question("deep.mp4")) == tmp_path / "plotQA" / "deep.mp4"
    assert find_video(tmp_path, _question("both.mp4")) == tmp_path / "both.mp4"  # the folder itself first
    assert find_video(tmp_path, _question("too_deep.mp4")) is None
    assert find_video(tmp_path, _question("absent.mp4")) is None


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"x")


def test_mlvu_videos_are_looked_for_in_their_own_task_folder_first(tmp_path: Path) -> None:
    # As released: MLVU/json/<n>_<task>.json and MLVU/video/<n>_<task>/; names repeat across tasks.
    root = tmp_path / "MLVU"
    _touch(
        root / "video",
        "1_plotQA/movie101_51.mp4",
        "7_topic_reasoning/movie101_51.mp4",
        "9_summary/movie101_51.mp4",
        "1_plotQA/movie101_66.mp4",
    )
    topic = _write_json(
        tmp_path / "7_topic_reasoning.json",
        [
            _mlvu_record(
                "movie101_51.mp4", "What is the genre?", ["Comedy", "Horror"], "Comedy", "topic_reasoning"
            ),
            _mlvu_record(
                "movie101_66.mp4", "What is the genre?", ["Comedy", "Horror"], "Horror", "topic_reasoning"
            ),
        ],
    )
    first, elsewhere = load_questions(topic)
    assert first.folders == ("7_topic_reasoning", "topic_reasoning")
    videos = root / "video"
    assert find_video(videos, first) == videos / "7_topic_reasoning" / "movie101_51.mp4"
    assert find_video(videos, elsewhere) == videos / "1_plotQA" / "movie101_66.mp4"  # then any folder
    assert find_video(videos / "7_topic_reasoning", first) == videos / "7_topic_reasoning" / "movie101_51.mp4"
    # choice_bench.py's own paths name the folder by task: video/topic_reasoning
    by_task = tmp_path / "by_task"
    _touch(by_task, "plotQA/movie101_51.mp4", "topic_reasoning/movie101_51.mp4")
    assert find_video(by_task, first) == by_task / "topic_reasoning" / "movie101_51.mp4"


def test_egoschema_and_nextqa_videos_are_found_in_their_layouts(
    egoschema: tuple[Path, Path], nextqa: Path, tmp_path: Path
) -> None:
    questions_file, answers_file = egoschema
    ego = load_questions(questions_file, answers=answers_file)
    _touch(tmp_path / "videos", *(f"{q.qid}.mp4" for q in ego))  # EgoSchema: videos/<q_uid>.mp4
    assert [find_video(tmp_path / "videos", q) for q in ego] == [
        tmp_path / "videos" / f"{q.qid}.mp4" for q in ego
    ]
    # NExT-QA: NExTVideo/<folder>/<video>.mp4, the folder as map_vid_vidorID.json gives it
    _touch(tmp_path / "NExTVideo", "1006/4010069381.mp4", "0101/2399193711.mp4")
    found = [find_video(tmp_path / "NExTVideo", q) for q in load_questions(nextqa)]
    assert found == [tmp_path / "NExTVideo" / "1006" / "4010069381.mp4"] * 2 + [
        tmp_path / "NExTVideo" / "0101" / "2399193711.mp4"
    ]


def test_egoschema_is_scored_by_index_on_the_keyed_questions_only(egoschema: tuple[Path, Path]) -> None:
    questions_file, answers_file = egoschema
    questions = load_questions(questions_file, answers=answers_file)
    report = McqReport(tuple(_result(q, choice) for q, choice in zip(questions, (1, 3, 0), strict=True)))
    assert (report.overall.n, report.overall.correct, report.unscored) == (2, 1, 1)
    assert report.by_family == {}


# --- answering and scoring on a real video --------------------------------------------------------------


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One index cache for the module: the CLI test reuses the index the scripted tests built."""
    return tmp_path_factory.mktemp("mcq-cache")


@pytest.fixture
def scripted(installed_models: None, cache_dir: Path) -> Assistant:
    return Assistant(AssistantOptions(device="cpu"), cache=IndexCache(cache_dir))


WHEN = ("at midnight", "at noon", "at dawn", "at three in the afternoon", "it was cancelled")
GATES = ("gate 12", "gate 7", "gate 42", "gate 99", "gate 3")
SAID = ("a red car drives past", "the meeting starts at noon", "it is raining")


def test_search_text_adds_the_options_unless_they_break_the_temporal_reading() -> None:
    plain = _question("v.mp4", question="What does the speaker announce?", options=("a delay", "a gate"))
    assert search_text(plain) == "What does the speaker announce? a delay a gate"
    temporal = _question("v.mp4", question="What happens after the card?", options=("talk", "silence"))
    assert search_text(temporal) == "What happens after the card?"
    hijacked = _question("v.mp4", question="What does he do?", options=("leaves after eating", "stays"))
    assert search_text(hijacked) == "What does he do?"


@pytest.mark.slow
def test_evaluate_scores_per_type_skips_missing_and_unreadable_videos(
    scripted: Assistant,
    narrated: SynthVideo,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    videos = tmp_path / "videos"
    (videos / "0001").mkdir(parents=True)
    (videos / "0001" / "narrated.mp4").symlink_to(narrated.path)
    (videos / "broken.mp4").write_text("not a video at all")
    questions = [
        _question("narrated", "TN", 1, "When does the meeting start?", WHEN),
        _question("narrated", "DC", 2, "Which gate number is shown on the card?", GATES),
        _question("narrated", "CW", 1, "What does the speaker say?", SAID),
        _question("narrated", "DC", 1, "Which gate is shown?", GATES),
        _question("absent.mp4", "CH", 0, "Why?", SAID),
        _question("broken.mp4", "CH", 0, "Why?", SAID),
        _question("narrated", "TN", None, "When does the meeting start?", WHEN),
    ]
    llm = ScriptedLlm("B", "Answer: (C)", "I think the answer is the red car", "D", "A")
    scripted._llm = llm  # the fake stands in for the model the assistant would load
    monkeypatch.setattr(logging.getLogger("videoqa"), "propagate", True)  # the CLI may have turned it off
    seen: list[str] = []
    with caplog.at_level(logging.WARNING, logger="videoqa"):
        report = evaluate(scripted, questions, videos, on_result=lambda result: seen.append(result.qid))

    assert seen == [q.qid for q in questions]
    assert [r.choice for r in report.results] == [1, 2, 1, 3, None, None, 0]
    assert [r.method for r in report.results] == [
        "model",
        "model",
        "similarity",
        "model",
        None,
        None,
        "model",
    ]
    assert [r.correct for r in report.results] == [True, True, True, False, None, None, None]
    assert {name: (t.n, t.correct) for name, t in report.by_type.items()} == {
        "CW": (1, 1),
        "DC": (2, 1),
        "TN": (1, 1),
    }
    assert {name: (t.n, t.correct) for name, t in report.by_family.items()} == {
        "C": (1, 1),
        "T": (1, 1),
        "D": (2, 1),
    }
    assert (report.overall.n, report.overall.correct, report.overall.accuracy) == (4, 3, 0.75)
    assert (report.skipped, report.unscored) == (2, 1)
    assert "no video absent.mp4" in report.results[4].skipped  # type: ignore[operator]
    assert "not a video file" in report.results[5].skipped  # type: ignore[operator]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("skipped" in w for w in warnings)
    assert len(llm.prompts) == 5 and not llm.replies  # skipped questions never reach the model


def test_the_prompt_holds_the_evidence_and_lettered_options(
    scripted: Assistant, narrated: SynthVideo
) -> None:
    llm = ScriptedLlm("B")
    scripted._llm = llm
    answer = answer_question(
        scripted, narrated.path, _question("narrated", "TN", 1, "When does the meeting start?", WHEN)
    )
    assert (answer.choice, answer.method) == (1, "model")
    system, user = llm.prompts[0]
    assert system.role == "system" and "letter" in system.content
    assert "A. at midnight\nB. at noon\nC. at dawn" in user.content
    assert 'speech: "The meeting starts at noon."' in user.content
    assert answer.evidence and all(line in user.content for line in answer.evidence)


# --- the command ----------------------------------------------------------------------------------------


def _invoke(*args: str) -> Result:
    """``videoqa bench mcq ARGS`` through the real command group, in this process."""
    return CliRunner().invoke(cli, ["bench", "mcq", *args])


def _as_cli_result(result: Result) -> CliResult:
    return CliResult(subprocess.CompletedProcess([], result.exit_code, result.stdout, result.stderr))


@pytest.mark.slow
def test_mcq_end_to_end_with_the_default_model(
    narrated: SynthVideo,
    installed_models: None,
    cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIDEOQA_CACHE", str(cache_dir))
    videos = tmp_path / "NExTVideo"
    (videos / "0001").mkdir(parents=True)
    (videos / "0001" / "narrated.mp4").symlink_to(narrated.path)
    questions = _write_nextqa(
        tmp_path / "val.csv",
        [
            ["narrated", 360, 320, 180, "when does the meeting start", 1, 0, "TN", *WHEN],
            ["narrated", 360, 320, 180, "which gate number is shown on the card", 2, 1, "DC", *GATES],
            ["narrated", 360, 320, 180, "what is written on the screen", 2, 2, "DO", *GATES],
        ],
    )
    out = tmp_path / "report.json"
    result = _invoke(
        "--questions", str(questions), "--videos", str(videos), "--device", "cpu", "--out", str(out)
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["type", "n", "correct", "accuracy"]
    assert [line.split()[0] for line in lines[1:-1]] == ["DC", "DO", "TN", "T", "D", "total"]
    assert lines[-2].split()[1] == "3" and lines[-1] == "skipped: 0"
    saved = json.loads(out.read_text())
    assert saved["overall"]["n"] == 3 and saved["by_family"]["D"]["n"] == 2
    assert [r["qid"] for r in saved["results"]] == ["narrated_0", "narrated_1", "narrated_2"]
    assert all(r["choice"] in range(5) for r in saved["results"])

    printed = _invoke(
        "--questions", str(questions), "--videos", str(videos), "--device", "cpu", "--limit", "1", "--json"
    )
    assert printed.exit_code == 0, printed.stderr
    assert [r["qid"] for r in json.loads(printed.stdout)["results"]] == ["narrated_0"]


def test_mcq_bad_input_is_one_line(nextqa: Path, tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    videos = str(tmp_path / "videos")
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    empty_task = _write_json(
        tmp_path / "7_topic_reasoning.json",
        [_mlvu_record("movie101_89.mp4", "", ["", "", "", ""], "", "topic_reasoning", 677)],
    )
    cases = [
        (["--questions", str(tmp_path / "gone.csv"), "--videos", videos], "gone.csv: no such file"),
        (["--questions", str(nextqa), "--videos", str(tmp_path / "nowhere")], "nowhere: no such folder"),
        (["--questions", str(broken), "--videos", videos], "broken.json: not valid JSON"),
        (["--questions", str(nextqa), "--videos", videos, "--limit", "0"], "--limit must be 1 or more"),
        (["--questions", str(_sub_scene(tmp_path)), "--videos", videos], "MLVU's open-ended task (subPlot)"),
        (["--questions", str(empty_task), "--videos", videos], "no usable question: all 1 records skipped"),
    ]
    for args, fragment in cases:
        assert_one_line_error(_as_cli_result(_invoke(*args)), fragment)
