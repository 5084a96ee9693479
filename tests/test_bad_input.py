"""Every bad input gets one line on stderr naming the problem, exit code 2, and no traceback."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from videoqa.testmedia.synth import SynthVideo

from helpers import assert_one_line_error, ffmpeg, run_cli


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("info", str(tmp_path / "nope.mp4")), "no such file")


def test_directory(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("info", str(tmp_path)), "is a directory")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert_one_line_error(run_cli("info", str(empty)), "empty (0 bytes)")


def test_text_file_named_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my meeting notes, not a video\n" * 50)
    assert_one_line_error(run_cli("info", str(fake)), "not a video file")


def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "stream.mp4"
    os.mkfifo(fifo)
    assert_one_line_error(run_cli("info", str(fifo)), "not a regular file")


def _half(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


def test_truncated_mp4_without_its_index_is_a_clear_error(narrated: SynthVideo, tmp_path: Path) -> None:
    # ffmpeg writes the index (moov) at the end unless asked for faststart: half a file has none.
    index_at_end = tmp_path / "index_at_end.mp4"
    ffmpeg("-i", str(narrated.path), "-c", "copy", str(index_at_end))
    truncated = _half(index_at_end, tmp_path / "truncated.mp4")
    assert_one_line_error(run_cli("info", str(truncated)), "incomplete", "moov atom")


def test_truncated_mp4_with_its_index_reports_the_readable_part(narrated: SynthVideo, tmp_path: Path) -> None:
    truncated = _half(narrated.path, tmp_path / "truncated.mp4")  # faststart: index up front
    result = run_cli("info", "--json", str(truncated))
    assert result.code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["duration_s"] == pytest.approx(12.0, abs=0.1)
    assert 2.0 < info["readable_until_s"] < 10.0
    assert len(result.stderr_lines) == 1
    assert result.stderr_lines[0].startswith("warning: the file is cut short")


def test_audio_only_file(tmp_path: Path) -> None:
    song = tmp_path / "song.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:a", "aac", str(song))
    assert_one_line_error(run_cli("info", str(song)), "only audio")


def test_undecodable_audio_track_is_a_warning_not_an_error(sample: Callable[[str], Path]) -> None:
    result = run_cli("info", "--json", str(sample("Megamind.avi")))
    assert result.code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["audio"]["codec"] == "ac3"
    assert info["audio"]["decodable"] is False
    assert info["width"] == 720 and info["height"] == 528
    assert len(result.stderr_lines) == 1
    assert result.stderr_lines[0].startswith("warning: the ac3 audio track cannot be decoded")


def test_path_with_spaces_and_non_ascii_characters(sample: Callable[[str], Path], tmp_path: Path) -> None:
    folder = tmp_path / "vidéos de l'été 日本"
    folder.mkdir()
    odd = folder / "my clip \u2013 ñ 🎬.mp4"  # an en dash, a tilde and an emoji
    shutil.copyfile(sample("bikes.mp4"), odd)
    result = run_cli("info", "--json", str(odd))
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    info = json.loads(result.stdout)
    assert info["path"] == str(odd)
    assert (info["width"], info["height"]) == (640, 272)


@pytest.fixture
def unreadable_file(sample: Callable[[str], Path]) -> Iterator[Path]:
    # A folder everyone may enter, holding a file nobody may read.
    folder = Path(tempfile.mkdtemp(prefix="videoqa-perm-"))
    folder.chmod(0o755)
    locked = folder / "locked.mp4"
    shutil.copyfile(sample("bikes.mp4"), locked)
    locked.chmod(0o000)
    yield locked
    locked.chmod(0o644)
    shutil.rmtree(folder)


def test_unreadable_file(unreadable_file: Path) -> None:
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        # root reads any file: drop the capabilities that let it, as an ordinary user would lack them.
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv (util-linux) to drop privileges")
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    result = run_cli("info", str(unreadable_file), prefix=prefix)
    assert_one_line_error(result, "permission denied")


def test_missing_argument_is_a_usage_error() -> None:
    result = run_cli("info")
    assert result.code == 2
    assert "Missing argument 'VIDEO'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_question_too_long_is_refused_before_any_work(narrated: SynthVideo, tmp_path: Path) -> None:
    # A model that does not exist: loading models first would fail on it, not on the question.
    result = run_cli(
        "ask",
        str(narrated.path),
        "what happens after the swim? " * 3500,
        "--model",
        str(tmp_path / "missing.gguf"),
    )
    assert_one_line_error(result, "the question is 101,500 characters long; ask in at most 2,000")


def test_an_option_value_an_options_class_refuses_is_a_one_line_error(narrated: SynthVideo) -> None:
    # SpeechOptions refuses an empty model name with OptionsError: a user error, not a bug.
    result = run_cli("ask", str(narrated.path), "who speaks?", "--speech-model", " ")
    assert_one_line_error(result, "model must name a model or a folder")
