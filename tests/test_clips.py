"""Cited moments as clips: stream-copied from a keyframe when one is close, else re-encoded from the exact
start; clamped to the video; playable mp4s written atomically; every bad input refused; ``ask
--save-clips`` end to end."""

from __future__ import annotations

import functools
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from videoqa.errors import InputError, VideoError
from videoqa.media.clips import ClipError, clip_name, cut_clip, make_clip, merge_moments
from videoqa.media.video import SamplingOptions, frame_at, probe, sample_frames
from videoqa.respond.answer import Answer
from videoqa.respond.writers import AskResult, Timing, answer_record
from videoqa.testmedia.synth import SynthScene, SynthSpec, SynthVideo, render

from helpers import assert_one_line_error, ffmpeg, run_cli

FPS = 30.0
FRAME_S = 1 / FPS
DURATION_S = 12.0
# A stream copy ends on a packet boundary, a frame or two past the end asked for.
DURATION_TOLERANCE_S = 0.15


def _moving(keyframe_interval: int) -> SynthSpec:
    # testsrc2 changes every frame, so a clip's first frame tells exactly where in the video it starts
    return SynthSpec(
        scenes=(SynthScene(DURATION_S, "lavfi:testsrc2"),),
        width=320,
        height=180,
        fps=FPS,
        keyframe_interval=keyframe_interval,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clip-sources")


@pytest.fixture(scope="module")
def every_2s(folder: Path) -> Path:
    """12 s of moving picture with a keyframe every 2 s, and a (silent) AAC track."""
    return render(_moving(keyframe_interval=int(2 * FPS)), folder / "every2s.mp4").path


@pytest.fixture(scope="module")
def one_keyframe(folder: Path) -> Path:
    """The same picture with a single keyframe, on the first frame."""
    return render(_moving(keyframe_interval=100_000), folder / "onekey.mp4").path


@pytest.fixture(scope="module")
def late_start(every_2s: Path, folder: Path) -> Path:
    """``every_2s`` in mkv with its video starting 1 s into the file (the audio starts at 0)."""
    path = folder / "late.mkv"
    ffmpeg(
        *("-itsoffset", "1", "-i", str(every_2s), "-i", str(every_2s)),
        *("-map", "0:v", "-map", "1:a", "-c", "copy", str(path)),
    )
    return path


@pytest.fixture(scope="module", params=["mpeg4", "h264 4:4:4"])
def unplayable(request: pytest.FixtureRequest, every_2s: Path, folder: Path) -> Path:
    """``every_2s`` in a form few players take in an mp4, keyframes still every 2 s: MPEG-4 Part 2 (what
    old AVIs hold), or H.264 in 4:4:4 (High 4:4:4, which browsers do not decode)."""
    path = folder / f"{request.param.replace(' ', '_').replace(':', '')}.mkv"
    codec = ["-c:v", "mpeg4"] if request.param == "mpeg4" else ["-c:v", "libx264", "-pix_fmt", "yuv444p"]
    ffmpeg("-i", str(every_2s), *codec, "-g", "60", "-c:a", "copy", str(path))
    return path


def _video_packets(path: Path) -> list[tuple[float, bool, bytes]]:
    """Every video packet in decode order: its presentation time (from the first frame), whether a
    keyframe, its bytes."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        first = stream.start_time or 0
        return [
            (float((packet.pts - first) * packet.time_base), packet.is_keyframe, bytes(packet))
            for packet in container.demux(stream)
            if packet.size
        ]


def _keyframes_s(path: Path) -> list[float]:
    return [round(time_s, 3) for time_s, keyframe, _ in _video_packets(path) if keyframe]


def _copied_from(clip: Path, source: Path) -> float | None:
    """Where in ``source`` the clip's packets were copied from (its keyframe's time); None when the clip
    holds none of the source's packets (it was encoded anew)."""
    clip_data = [data for _, _, data in _video_packets(clip)]
    packets = _video_packets(source)
    found = [index for index, (_, keyframe, data) in enumerate(packets) if keyframe and data == clip_data[0]]
    if not found:
        assert not {data for _, _, data in packets} & set(clip_data[:8])
        return None
    start = found[0]
    assert [data for _, _, data in packets[start : start + 8]] == clip_data[:8]
    return packets[start][0]


def _shown_at(clip: Path, source: Path) -> float:
    """The time of ``source`` whose frame the clip opens with (the closest match of all its frames)."""
    first = frame_at(clip, 0.0).pixels[0].astype(np.float32)
    times, frames = _all_frames(source)
    differences = np.abs(frames.astype(np.float32) - first).mean(axis=(1, 2, 3))
    return float(times[int(np.argmin(differences))])


@functools.cache
def _all_frames(source: Path) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
    batches = list(sample_frames(source, SamplingOptions(fps=FPS * 2)))  # faster than the frames: each once
    return (
        np.concatenate([batch.timestamps_s for batch in batches]),
        np.concatenate([batch.pixels for batch in batches]),
    )


def _check_playable(path: Path, start_s: float, end_s: float) -> None:
    info = probe(path)
    assert info.container.startswith("mov,mp4")
    assert info.video_codec == "h264" and info.pixel_format == "yuv420p"
    assert info.audio is not None and info.audio.decodable and info.audio.codec == "aac"
    assert info.start_s == pytest.approx(0.0, abs=0.01)
    assert info.duration_s == pytest.approx(end_s - start_s, abs=DURATION_TOLERANCE_S)
    with path.open("rb") as handle:  # faststart: the index (moov) comes before the media data (mdat)
        head = handle.read(64 * 1024)
    assert 0 <= head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head


def test_the_test_videos_have_the_keyframes_the_tests_rely_on(every_2s: Path, one_keyframe: Path) -> None:
    assert _keyframes_s(every_2s) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    assert _keyframes_s(one_keyframe) == [0.0]


@pytest.mark.parametrize(
    ("moment", "method", "span"),
    [
        ((7.5, 8.0), "copy", (4.0, 11.0)),  # wanted from 4.5: the keyframe at 4 s is 0.5 s before
        ((5.0, 6.0), "copy", (2.0, 9.0)),  # a keyframe right at the wanted start
        ((6.2, 7.0), "encode", (3.2, 10.0)),  # the keyframe at 2 s is 1.2 s before 3.2: too far
        ((1.0, 2.0), "copy", (0.0, 5.0)),  # context clamped at the start
        ((11.0, 11.9), "copy", (8.0, 12.0)),  # ... and at the end
        ((10.5, 11.9), "encode", (7.5, 12.0)),  # re-encoded up to the end
    ],
)
def test_a_clip_is_copied_from_a_close_keyframe_else_reencoded_from_the_exact_start(
    every_2s: Path,
    tmp_path: Path,
    moment: tuple[float, float],
    method: str,
    span: tuple[float, float],
) -> None:
    clip = make_clip(every_2s, *moment, tmp_path / "clip.mp4")
    assert (clip.method, clip.path) == (method, tmp_path / "clip.mp4")
    assert (clip.start_s, clip.end_s) == pytest.approx(span, abs=1e-6)
    _check_playable(clip.path, *span)
    assert _shown_at(clip.path, every_2s) == pytest.approx(span[0], abs=FRAME_S / 2)
    # a copy holds the source's own packets from the keyframe on; an encoding new ones
    assert _copied_from(clip.path, every_2s) == (span[0] if method == "copy" else None)


def test_without_a_keyframe_near_the_start_the_clip_is_reencoded(one_keyframe: Path, tmp_path: Path) -> None:
    clip = make_clip(one_keyframe, 7.5, 8.0, tmp_path / "clip.mp4")
    assert (clip.method, clip.start_s, clip.end_s) == ("encode", 4.5, 11.0)
    _check_playable(clip.path, 4.5, 11.0)
    assert _shown_at(clip.path, one_keyframe) == pytest.approx(4.5, abs=FRAME_S / 2)
    exact = make_clip(one_keyframe, 3.0, 5.0, tmp_path / "exact.mp4", context_s=0.0)
    assert (exact.method, exact.start_s, exact.end_s) == ("encode", 3.0, 5.0)
    _check_playable(exact.path, 3.0, 5.0)
    assert _shown_at(exact.path, one_keyframe) == pytest.approx(3.0, abs=FRAME_S / 2)


def test_times_count_from_the_first_frame_when_the_file_starts_earlier(
    late_start: Path, every_2s: Path, tmp_path: Path
) -> None:
    info = probe(late_start)
    assert info.start_s > 0.9  # the video starts a second into the file
    copied = make_clip(late_start, 7.5, 8.0, tmp_path / "copied.mp4")
    assert copied.method == "copy" and copied.start_s == pytest.approx(4.0, abs=1e-6)
    assert _shown_at(copied.path, every_2s) == pytest.approx(4.0, abs=FRAME_S / 2)
    assert _copied_from(copied.path, every_2s) == 4.0
    encoded = make_clip(late_start, 6.2, 7.0, tmp_path / "encoded.mp4")
    assert encoded.method == "encode" and encoded.start_s == pytest.approx(3.2, abs=1e-6)
    assert _shown_at(encoded.path, every_2s) == pytest.approx(3.2, abs=FRAME_S / 2)


def test_a_video_mp4_players_do_not_take_is_reencoded_even_on_a_keyframe(
    unplayable: Path, tmp_path: Path
) -> None:
    assert _keyframes_s(unplayable) == [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    clip = make_clip(unplayable, 7.0, 8.0, tmp_path / "clip.mp4")  # wanted from 4.0, a keyframe
    assert (clip.method, clip.start_s) == ("encode", 4.0)
    _check_playable(clip.path, 4.0, 11.0)


def test_cut_clip_returns_the_path_and_replaces_the_file_whole(every_2s: Path, tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"an older clip")
    assert cut_clip(every_2s, 7.5, 8.0, out) == out
    _check_playable(out, 4.0, 11.0)
    assert os.listdir(tmp_path) == ["clip.mp4"]  # no partial file left behind


def test_a_moment_ending_just_past_the_end_is_clamped(every_2s: Path, tmp_path: Path) -> None:
    # speech segments are rounded outward: one may end a little after the last frame
    clip = make_clip(every_2s, 11.0, 12.3, tmp_path / "clip.mp4")
    assert (clip.start_s, clip.end_s) == (8.0, 12.0)
    _check_playable(clip.path, 8.0, 12.0)


@pytest.mark.parametrize(
    ("start_s", "end_s", "context_s", "fragment"),
    [
        (-1.0, 2.0, 3.0, "0 <= start < end"),
        (3.0, 3.0, 3.0, "0 <= start < end"),
        (4.0, 2.0, 3.0, "0 <= start < end"),
        (math.nan, 2.0, 3.0, "0 <= start < end"),
        (1.0, math.inf, 3.0, "0 <= start < end"),
        (12.5, 13.0, 3.0, "lies outside the video (0:00-0:12)"),
        (5.0, 20.0, 3.0, "lies outside the video"),
        (5.0, 6.0, -1.0, "context must be 0 seconds or more"),
        (5.0, 6.0, math.nan, "context must be 0 seconds or more"),
    ],
)
def test_a_bad_range_is_an_input_error(
    every_2s: Path, tmp_path: Path, start_s: float, end_s: float, context_s: float, fragment: str
) -> None:
    with pytest.raises(InputError, match=re.escape(fragment)):
        cut_clip(every_2s, start_s, end_s, tmp_path / "clip.mp4", context_s)
    assert os.listdir(tmp_path) == []


def test_a_bad_output_path_is_an_input_error(every_2s: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist; create it first"):
        cut_clip(every_2s, 5.0, 6.0, tmp_path / "no-such-folder" / "clip.mp4")
    with pytest.raises(InputError, match="is a folder"):
        cut_clip(every_2s, 5.0, 6.0, tmp_path)


def test_an_unreadable_video_is_a_video_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.touch()
    for video, fragment in [
        (tmp_path / "missing.mp4", "no such file"),
        (text, "not a video file"),
        (empty, "the file is empty"),
    ]:
        with pytest.raises(VideoError, match=fragment):
            cut_clip(video, 1.0, 2.0, tmp_path / "clip.mp4")
    assert sorted(os.listdir(tmp_path)) == ["empty.mp4", "notes.mp4"]


def _fake_ffmpeg(folder: Path, stderr_lines: list[str]) -> Path:
    """An ``ffmpeg`` that fails as the real one does on bad data: its reasons on stderr, exit status 1."""
    folder.mkdir()
    program = folder / "ffmpeg"
    printed = "".join(f"echo {json.dumps(line)} >&2\n" for line in stderr_lines)
    program.write_text(f"#!/bin/sh\n{printed}exit 1\n")
    program.chmod(0o755)
    return folder


def test_a_failing_ffmpeg_is_a_clip_error_with_its_last_line_and_leaves_the_old_clip(
    every_2s: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "clips" / "clip.mp4"
    out.parent.mkdir()
    out.write_bytes(b"an older clip")
    failing = _fake_ffmpeg(tmp_path / "bin", ["[mp4 @ 0x1] something", "Conversion failed!"])
    monkeypatch.setenv("PATH", str(failing))
    with pytest.raises(ClipError) as caught:
        cut_clip(every_2s, 5.0, 6.0, out)
    message = str(caught.value)
    assert "\n" not in message and message.endswith(": Conversion failed!")
    assert str(every_2s) in message and "0:02-0:09" in message
    assert out.read_bytes() == b"an older clip" and os.listdir(out.parent) == ["clip.mp4"]
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ClipError, match="ffmpeg is not installed"):
        cut_clip(every_2s, 5.0, 6.0, out)


def test_clip_names_give_the_moment_in_whole_seconds_rounded_outward() -> None:
    assert clip_name(Path("media/story.mp4"), 49.2, 51.7) == "story_0m49s-0m52s.mp4"
    assert clip_name(Path("talk.mkv"), 3725.0, 3790.5) == "talk_1h02m05s-1h03m11s.mp4"
    assert clip_name(Path("my talk (final).mov"), 0.0, 0.4) == "my_talk__final_0m00s-0m01s.mp4"
    assert clip_name(Path("..."), 1.0, 2.0) == "clip_0m01s-0m02s.mp4"


def test_moments_are_deduplicated_and_merged_when_their_clips_would_overlap() -> None:
    moments = [(30.0, 32.0), (8.0, 10.0), (8.0, 10.0), (14.0, 15.0), (60.0, 61.0), (9.0, 9.5)]
    # 8-10 and 14-15 lie 4 s apart: with 3 s of context their clips share 2 s, so they become one
    assert merge_moments(moments, 3.0) == [(8.0, 15.0), (30.0, 32.0), (60.0, 61.0)]
    assert merge_moments(moments, 0.0) == [(8.0, 10.0), (14.0, 15.0), (30.0, 32.0), (60.0, 61.0)]
    assert merge_moments([], 3.0) == []


def test_the_answer_record_lists_clips_only_when_they_were_asked_for() -> None:
    answer = Answer("q?", "a.", (), True, False, "none", -1.0, None, {})
    timing = Timing(1.0, 2.0, 3.0)
    assert "clips" not in answer_record(AskResult("v.mp4", answer, timing))
    record = answer_record(AskResult("v.mp4", answer, timing, clips=("out/v_0m01s-0m02s.mp4",)))
    assert record["clips"] == ["out/v_0m01s-0m02s.mp4"]
    assert list(record)[list(record).index("evidence") + 1] == "clips"


# --- ask --save-clips, through the real CLI -------------------------------------------------------------

CLIP_LINE = re.compile(r"clip: (?P<path>.+) \((?P<start>\d+:\d\d)-(?P<end>\d+:\d\d)\)")


def test_ask_saves_a_clip_of_each_cited_moment(
    narrated: SynthVideo, installed_models: None, tmp_path: Path
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    env = {**os.environ, "VIDEOQA_CACHE": str(tmp_path / "cache")}
    question = "What is said about the meeting?"
    result = run_cli(
        "ask", str(narrated.path), question, "--json", "--save-clips", str(clips), "--device", "cpu", env=env
    )
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert not data["abstained"] and data["evidence"], data
    moments = merge_moments([(item["start_s"], item["end_s"]) for item in data["evidence"]], 3.0)
    assert data["clips"] == [str(clips / clip_name(narrated.path, *moment)) for moment in moments]
    lines = [CLIP_LINE.fullmatch(line) for line in result.stderr_lines]
    assert all(lines) and [line["path"] for line in lines if line] == data["clips"], result.stderr
    assert sorted(os.listdir(clips)) == sorted(Path(path).name for path in data["clips"])
    for line, (start_s, end_s) in zip(lines, moments, strict=True):
        assert line is not None
        shown_start, shown_end = (_seconds(line["start"]), _seconds(line["end"]))
        # the clip holds the moment with up to 3 s of context, starting at most 1 s early to copy
        assert max(0.0, start_s - 4.0) - 0.5 <= shown_start <= start_s
        assert min(end_s, DURATION_S) <= shown_end + 0.5
        assert probe(line["path"]).duration_s == pytest.approx(shown_end - shown_start, abs=1.1)

    absent_question = "What is the weather forecast for the weekend?"
    absent = run_cli(
        "ask", str(narrated.path), absent_question, "--save-clips", str(clips), "--device", "cpu", env=env
    )
    assert absent.code == 0, absent.stderr
    assert absent.stdout == "The video does not seem to show or say this.\n"
    assert absent.stderr_lines == ["clips: none written; the answer abstained"]


def _seconds(clock: str) -> float:
    minutes, seconds = clock.split(":")
    return 60 * int(minutes) + int(seconds)


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("missing", "--save-clips {target}: no such folder; create it first (mkdir {target})"),
        ("file", "--save-clips {target}: not a folder; give a folder to save the clips in"),
        ("", "--save-clips: give the folder to save the clips in"),
    ],
)
def test_ask_refuses_a_clips_folder_it_cannot_use_before_loading_models(
    narrated: SynthVideo, tmp_path: Path, target: str, fragment: str
) -> None:
    (tmp_path / "file").write_text("a file, not a folder\n")
    folder = str(tmp_path / target) if target else ""
    # an unknown model would be the error if the models were loaded before the folder was checked
    result = run_cli("ask", str(narrated.path), "why?", "--save-clips", folder, "--model", "no-such-model")
    assert_one_line_error(result, fragment.format(target=folder))
