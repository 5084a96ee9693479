"""Small pieces: clock formatting and the sample clip registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from videoqa.media.timefmt import format_clock
from videoqa.store.fetch import sha256_of
from videoqa.testmedia import samples


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0:00.0"),
        (79.5, "1:19.5"),
        (59.96, "1:00.0"),
        (3725, "1:02:05.0"),
        (36000.04, "10:00:00.0"),
    ],
)
def test_format_clock(seconds: float, text: str) -> None:
    assert format_clock(seconds) == text


def test_format_clock_without_decimals() -> None:
    assert format_clock(125.4, decimals=0) == "2:05"


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_format_clock_rejects_nonsense(bad: float) -> None:
    with pytest.raises(ValueError):
        format_clock(bad)


def test_unknown_sample_clip() -> None:
    with pytest.raises(samples.SampleFetchError, match="unknown sample clip"):
        samples.sample_path("nope.mp4")


def test_clip_with_wrong_checksum_is_refused(tmp_path: Path) -> None:
    clip = samples.SAMPLE_CLIPS["bikes.mp4"]
    damaged = tmp_path / "bikes.mp4"
    damaged.write_bytes(b"not the clip")
    target = tmp_path / "cache"
    target.mkdir()
    with pytest.raises(samples.SampleFetchError, match="expected"):
        samples._install_clip(clip, damaged, target)
    assert not any(target.iterdir())  # nothing half-installed


def test_cached_clip_is_checked(sample: Callable[[str], Path]) -> None:
    path = sample("carphone_pristine.mp4")
    assert sha256_of(path) == samples.SAMPLE_CLIPS["carphone_pristine.mp4"].sha256
