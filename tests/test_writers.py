"""Output writers: the records (field names, order, rounding) pinned, each writer checked on its own, and
the registry that picks a writer by name or file suffix. SRT and WebVTT are read back with independent
parsers (srt, webvtt-py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import srt
import webvtt

from videoqa.respond.answer import Answer
from videoqa.respond.captions import CaptionEvent
from videoqa.respond.chat import Turn
from videoqa.respond.writers import (
    FORMATS,
    AskResult,
    Captions,
    Conversation,
    Cue,
    Subtitles,
    Timing,
    answer_record,
    caption_record,
    cited_record,
    clock,
    conversation_record,
    cue_of,
    evidence_record,
    format_for_file,
    formats_holding,
    seconds,
    writer,
)
from videoqa.retrieval.retrieve import Evidence

SPOKEN = Evidence(
    "speech", 8.123456, 11.98765, "The meeting starts at noon.", 1, 0.812345678, 0.0327868852, "match"
)
LOOKED = Evidence("visual", 3725.4999, 3730.0004, None, None, -0.1234567, 0.016393442, "anchor")
ANSWER = Answer(
    "When does the meeting start?",
    "The meeting starts at noon (at 0:08).",
    (SPOKEN, LOOKED),
    False,
    False,
    "none",
    0.81234567,
    None,
    {"llm": "gguf:x"},
    0.912345,
)
ABSTAINED = Answer("What's the weather?", "Not shown.", (), True, False, "after", -1.0, "It rains.", {}, None)
ASKED = AskResult("./clip.mp4", ANSWER, Timing(models_s=1.23456789, index_s=0.0004999, answer_s=12.3456))
EVENTS = (
    CaptionEvent(0, 0.0, 4.02049, "A man opens the door.", "model", "hello", "GATE 42"),
    CaptionEvent(1, 4.02049, 4.02049, "A moment.", "quote", "", ""),
    CaptionEvent(2, 4.02049, 39.5, "(no speech or on-screen text)", "empty", "", "", (2, 5)),
    CaptionEvent(6, 39.5, 3730.25, "Line one\n\nline two --> on", "quote", "s", "t", (6, 7)),
)
CAPTIONS = Captions("talk.mp4", "gguf:m", EVENTS)
CHAT = Conversation(Path("/videos/talk.mp4"), (Turn("When?", ANSWER), Turn("Weather?", ABSTAINED)))


def test_times_are_rounded_to_the_millisecond_and_read_as_clock_times() -> None:
    assert seconds(8.123456) == 8.123 and seconds(0.0004999) == 0.0 and seconds(59.9996) == 60.0
    assert clock(79.5) == "1:20" and clock(3725.4999) == "1:02:05" and clock(0.4) == "0:00"


def test_an_evidence_record_names_its_time_both_ways_and_rounds_its_scores() -> None:
    record = evidence_record(SPOKEN)
    assert list(record) == [
        "channel",
        "start_s",
        "end_s",
        "start",
        "end",
        "text",
        "scene",
        "similarity",
        "fused",
        "role",
    ]
    assert record["start_s"] == 8.123 and record["end_s"] == 11.988
    assert (record["start"], record["end"]) == ("0:08", "0:12")
    assert record["similarity"] == 0.8123 and record["fused"] == 0.03279
    assert evidence_record(LOOKED)["text"] is None and evidence_record(LOOKED)["scene"] is None
    assert cited_record(LOOKED) == {
        "channel": "visual",
        "start": "1:02:05",
        "end": "1:02:10",
        "start_s": 3725.5,
        "end_s": 3730.0,
        "text": None,
    }
    assert list(cited_record(LOOKED)) == ["channel", "start", "end", "start_s", "end_s", "text"]


def test_an_answer_record_keeps_its_fields_in_order_with_timing_rounded() -> None:
    record = answer_record(ASKED)
    assert list(record) == [
        "video",
        "question",
        "answer",
        "abstained",
        "quoted",
        "model_reply",
        "relation",
        "best_similarity",
        "relevance",
        "evidence",
        "models",
        "timing",
    ]
    assert record["best_similarity"] == 0.8123 and record["relevance"] == 0.9123
    assert record["timing"] == {"models_s": 1.235, "index_s": 0.0, "answer_s": 12.346}
    assert list(record["timing"]) == ["models_s", "index_s", "answer_s"]
    assert record["evidence"] == [evidence_record(SPOKEN), evidence_record(LOOKED)]
    bare = answer_record(AskResult("v.mp4", ABSTAINED, ASKED.timing))
    assert bare["relevance"] is None and bare["evidence"] == [] and bare["model_reply"] == "It rains."


def test_a_caption_record_gives_its_span_and_the_scenes_it_stands_for() -> None:
    record = caption_record(EVENTS[2])
    assert record == {
        "scene": 2,
        "start_s": 4.02,
        "end_s": 39.5,
        "span": "0:04\u20130:40",
        "scenes": [2, 5],
        "caption": "(no speech or on-screen text)",
        "source": "empty",
        "speech": "",
        "screen": "",
    }
    assert list(record) == [
        "scene",
        "start_s",
        "end_s",
        "span",
        "scenes",
        "caption",
        "source",
        "speech",
        "screen",
    ]
    assert caption_record(EVENTS[0])["scenes"] == [0, 0]


def test_a_conversation_record_keeps_each_turn_with_its_cited_evidence() -> None:
    record = conversation_record(CHAT)
    assert record["video"] == "/videos/talk.mp4"
    first, second = record["turns"]
    assert first == {
        "question": "When?",
        "answer": ANSWER.text,
        "abstained": False,
        "evidence": [cited_record(SPOKEN), cited_record(LOOKED)],
    }
    assert second["abstained"] is True and second["evidence"] == []


def test_json_is_one_indented_document_ending_in_a_newline() -> None:
    for result, record in ((ASKED, answer_record(ASKED)), (CHAT, conversation_record(CHAT))):
        text = writer("json").render(result)
        assert text == json.dumps(record, indent=2) + "\n" and json.loads(text) == record
    captions = json.loads(writer("json").render(CAPTIONS))
    assert captions == {
        "video": "talk.mp4",
        "captions": [caption_record(e) for e in EVENTS],
        "model": "gguf:m",
    }
    assert list(captions) == ["video", "captions", "model"]


def test_json_lines_give_one_compact_caption_a_line_however_they_are_split() -> None:
    text = writer("jsonl").render(CAPTIONS)
    assert text.splitlines()[0] == (
        '{"scene": 0, "start_s": 0.0, "end_s": 4.02, "span": "0:00\\u20130:04", "scenes": [0, 0], '
        '"caption": "A man opens the door.", "source": "model", "speech": "hello", "screen": "GATE 42"}'
    )
    assert [json.loads(line) for line in text.splitlines()] == [caption_record(e) for e in EVENTS]
    one_by_one = "".join(writer("jsonl").render(Captions("talk.mp4", "gguf:m", (e,))) for e in EVENTS)
    assert one_by_one == text


def test_text_shows_the_answer_with_its_evidence_and_captions_a_line_each() -> None:
    assert writer("text").render(ASKED) == (
        "The meeting starts at noon (at 0:08).\n"
        "\n"
        "evidence:\n"
        '  [0:08-0:12] speech: "The meeting starts at noon."  (scene 2)\n'
        "  [1:02:05-1:02:10] visual: (a scene that looks like the question)\n"
    )
    assert writer("text").render(AskResult("v.mp4", ABSTAINED, ASKED.timing)) == "Not shown.\n"
    lines = writer("text").render(CAPTIONS)
    assert lines.startswith("[0:00\u20130:04] A man opens the door.\n[0:04\u20130:04] A moment.\n")
    one_by_one = "".join(writer("text").render(Captions("talk.mp4", "gguf:m", (e,))) for e in EVENTS)
    assert one_by_one == lines


def test_markdown_lists_each_turn_with_the_evidence_under_it() -> None:
    assert writer("markdown").render(CHAT) == (
        "# Chat about talk.mp4\n"
        "\n"
        "**You:** When?\n"
        "\n"
        "**videoqa:** The meeting starts at noon (at 0:08).\n"
        "\n"
        '- [0:08-0:12] speech: "The meeting starts at noon."\n'
        "- [1:02:05-1:02:10] visual: (a scene that looks like the question)\n"
        "\n"
        "**You:** Weather?\n"
        "\n"
        "**videoqa:** Not shown.\n"
    )
    assert writer("markdown").render(Conversation(Path("a.mp4"), ())) == "# Chat about a.mp4\n"


def test_a_caption_becomes_a_cue_only_when_it_shows_something() -> None:
    assert [cue_of(e) for e in EVENTS] == [
        Cue(0.0, 4.02049, "A man opens the door."),
        None,  # no length
        None,  # says there is nothing
        Cue(39.5, 3730.25, "Line one\n\nline two --> on"),
    ]


def test_srt_and_vtt_writers_give_files_the_parsers_read_back(tmp_path: Path) -> None:
    subtitles = Subtitles(tuple(cue for e in EVENTS if (cue := cue_of(e)) is not None))
    parsed = list(srt.parse(writer("srt").render(subtitles)))
    assert [(p.index, p.start.total_seconds(), p.end.total_seconds()) for p in parsed] == [
        (1, 0.0, 4.02),
        (2, 39.5, 3730.25),
    ]
    assert [p.content for p in parsed] == ["A man opens the door.", "Line one\nline two --> on"]
    path = tmp_path / "c.vtt"
    path.write_text(writer("vtt").render(subtitles), encoding="utf-8")
    captions = webvtt.read(str(path)).captions
    assert [(c.start, c.end) for c in captions] == [
        ("00:00:00.000", "00:00:04.020"),
        ("00:00:39.500", "01:02:10.250"),
    ]
    assert captions[1].text == "Line one\nline two -> on"
    assert writer("vtt").render(Subtitles(())) == "WEBVTT\n" and writer("srt").render(Subtitles(())) == ""


def test_the_registry_picks_a_format_by_name_or_by_suffix() -> None:
    assert list(FORMATS) == ["text", "markdown", "json", "jsonl", "srt", "vtt"]
    assert [spec.name for spec in formats_holding(Conversation)] == ["markdown", "json"]
    assert [spec.name for spec in formats_holding(Subtitles)] == ["srt", "vtt"]
    assert [spec.name for spec in formats_holding(AskResult)] == ["text", "json"]
    picked = {name: format_for_file(Path(name), Conversation) for name in ("a.MD", "a.markdown", "b.json")}
    assert {name: spec and spec.name for name, spec in picked.items()} == {
        "a.MD": "markdown",
        "a.markdown": "markdown",
        "b.json": "json",
    }
    assert format_for_file(Path("a.txt"), Conversation) is None  # text does not hold a conversation
    assert format_for_file(Path("a.srt"), Subtitles) is FORMATS["srt"]
    assert format_for_file(Path("notes"), Conversation) is None


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_writer_refuses_what_it_does_not_hold(name: str) -> None:
    samples = (ASKED, CAPTIONS, CHAT, Subtitles((Cue(0.0, 1.0, "x"),)))
    held = FORMATS[name].writer.holds
    for result in samples:
        if isinstance(result, held):
            assert FORMATS[name].writer.render(result)
        else:
            with pytest.raises(TypeError, match="cannot write"):
                FORMATS[name].writer.render(result)
