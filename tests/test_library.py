"""Library mode: a folder of videos in one vector index; syncing indexes only what changed; a bad file is
remembered and not probed again until it changes."""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from videoqa.library import badfiles
from videoqa.library import folder as folder_module
from videoqa.library.folder import Library, LibraryError, find_videos
from videoqa.media.source import VideoSource
from videoqa.media.video import frame_at
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SynthVideo
from videoqa.visual.index import index_video

from helpers import ThumbnailEmbedder


@pytest.fixture
def folder(narrated: SynthVideo, sample: Callable[[str], Path], tmp_path: Path) -> Path:
    videos = tmp_path / "videos"
    (videos / "trips").mkdir(parents=True)
    shutil.copyfile(narrated.path, videos / "narrated.mp4")
    shutil.copyfile(sample("bikes.mp4"), videos / "trips" / "bikes.mp4")
    (videos / "notes.txt").write_text("not a video")
    return videos


def query_from(path: Path, time_s: float) -> npt.NDArray[np.float32]:
    embedded = ThumbnailEmbedder().embed_images(frame_at(path, time_s, max_side=448).pixels)
    return np.asarray(embedded[0], dtype=np.float32)


def test_find_videos_walks_the_folder(folder: Path) -> None:
    assert [p.relative_to(folder).as_posix() for p in find_videos(folder)] == [
        "narrated.mp4",
        "trips/bikes.mp4",
    ]
    with pytest.raises(LibraryError, match="not a folder"):
        find_videos(folder / "narrated.mp4")


def test_search_across_videos_and_incremental_sync(
    folder: Path, sample: Callable[[str], Path], tmp_path: Path
) -> None:
    cache = IndexCache(tmp_path / "cache")
    index_video(sample("bikes.mp4"), ThumbnailEmbedder(), cache=cache)  # the same content, elsewhere
    library = Library(folder, ThumbnailEmbedder(), cache=cache)
    first = library.sync()
    assert first.indexed == ("narrated.mp4", "trips/bikes.mp4") and not first.failed
    hits = library.search(query_from(folder / "trips" / "bikes.mp4", 3.5), top_k=3)  # a sampled frame
    assert hits[0].video == str(folder.resolve() / "trips" / "bikes.mp4") and hits[0].max_score > 0.9
    assert len({(hit.video, hit.scene.index) for hit in hits}) == len(hits)  # one hit per scene

    shutil.copyfile(sample("carphone_pristine.mp4"), folder / "car.mp4")
    second = Library(folder, ThumbnailEmbedder(), cache=cache).sync()
    assert second.indexed == ("car.mp4",)
    assert second.unchanged == ("narrated.mp4", "trips/bikes.mp4")

    (folder / "trips" / "bikes.mp4").unlink()
    shutil.copyfile(sample("tree.avi"), folder / "narrated.mp4")  # same name, other content
    third = Library(folder, ThumbnailEmbedder(), cache=cache).sync()
    assert set(third.removed) == {"trips/bikes.mp4", "narrated.mp4"}
    assert third.indexed == ("narrated.mp4",)
    hits = Library(folder, ThumbnailEmbedder(), cache=cache).search(
        query_from(sample("bikes.mp4"), 3.0), top_k=5
    )
    assert all(Path(hit.video).name != "bikes.mp4" for hit in hits)


def test_a_bad_file_is_reported_and_the_rest_indexed(folder: Path, tmp_path: Path) -> None:
    (folder / "broken.mp4").write_text("this is not a video\n" * 20)
    report = Library(folder, ThumbnailEmbedder(), cache=IndexCache(tmp_path / "c")).sync()
    assert [name for name, _ in report.failed] == ["broken.mp4"]
    assert "not a video file" in report.failed[0][1]
    assert len(report.indexed) == 2


def test_a_bad_file_is_remembered_until_it_changes(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = folder / "broken.mp4"
    bad.write_text("this is not a video\n" * 20)
    cache = IndexCache(tmp_path / "c")
    reason = dict(Library(folder, ThumbnailEmbedder(), cache=cache).sync().failed)["broken.mp4"]
    indexed: list[str] = []

    def index_nothing(source: VideoSource, *args: object) -> None:
        indexed.append(source.path.name)
        raise AssertionError(f"{source.path} indexed again")

    with monkeypatch.context() as patched:  # neither indexed nor probed again: said since when
        patched.setattr(folder_module, "index_video", index_nothing)
        patched.setattr(badfiles, "probe", index_nothing)
        again = Library(folder, ThumbnailEmbedder(), cache=cache).sync()
    since = datetime.date.today().isoformat()
    assert again.failed == (("broken.mp4", f"known bad since {since}: {reason}"),) and indexed == []
    assert again.unchanged == ("narrated.mp4", "trips/bikes.mp4")

    bad.write_text("other bytes, still no video\n")  # changed: tried again, and its reason said in full
    changed = Library(folder, ThumbnailEmbedder(), cache=cache).sync()
    assert [name for name, _ in changed.failed] == ["broken.mp4"]
    assert "not a video file" in changed.failed[0][1] and "known bad" not in changed.failed[0][1]
    bad.unlink()
    assert Library(folder, ThumbnailEmbedder(), cache=cache).sync().failed == ()


def test_search_needs_a_positive_top_k(folder: Path, tmp_path: Path) -> None:
    library = Library(folder, ThumbnailEmbedder(), cache=IndexCache(tmp_path / "c"))
    assert library.search(query_from(folder / "narrated.mp4", 1.0), top_k=3) == []  # nothing synced
    with pytest.raises(ValueError, match="top_k"):
        library.search(query_from(folder / "narrated.mp4", 1.0), top_k=0)
