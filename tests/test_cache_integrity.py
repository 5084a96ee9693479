"""The index cache under faults: files that change while indexed or in place, concurrent askers, lock
files, and cache folders that cannot be used."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

import videoqa.store.cache
from videoqa.channels.ocr import TextLine
from videoqa.channels.speech import SpeechSegment
from videoqa.knowledge.build import Readers, VideoKnowledge, build_knowledge
from videoqa.library.folder import Library, LibraryError
from videoqa.store.cache import CacheEntry, ContentChangedError, IndexCache, entry_key, fingerprint
from videoqa.testmedia.synth import SynthVideo
from videoqa.visual.index import IndexOptions, index_video

from helpers import ThumbnailEmbedder, ffmpeg

LARGE_BYTES = 80 * 2**20  # over the 64 MiB the old fingerprint hashed whole


class LoudnessTranscriber:
    """A fake transcriber whose text tells which audio it heard (its loudness), counting its calls."""

    id = "fake-loudness-1"

    def __init__(self) -> None:
        self.calls = 0

    def transcribe(
        self, audio: npt.NDArray[np.float32], on_progress: Callable[[float], None] | None = None
    ) -> list[SpeechSegment]:
        self.calls += 1
        return [SpeechSegment(0.0, 1.0, f"loudness {float(np.sqrt(np.mean(audio**2))):.4f}")]


class BlankReader:
    """A fake screen reader that finds no text."""

    id = "fake-blank-1"

    def read(self, images: npt.NDArray[np.uint8]) -> list[list[TextLine]]:
        return [[] for _ in images]


class ConstantTextEmbedder:
    id = "fake-text-1"

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.full((len(texts), 4), 0.5, dtype=np.float32)


def readers(transcriber: LoudnessTranscriber) -> Readers:
    return Readers(
        transcriber=lambda: transcriber, screen_reader=BlankReader, text_embedder=ConstantTextEmbedder
    )


def knowledge(
    video: Path,
    cache: IndexCache,
    transcriber: LoudnessTranscriber | None = None,
    progress: Callable[[str], None] | None = None,
) -> VideoKnowledge:
    return build_knowledge(
        video,
        ThumbnailEmbedder(),
        readers(transcriber or LoudnessTranscriber()),
        IndexOptions(),
        cache,
        progress,
    )


@pytest.fixture(scope="module")
def other_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s like ``narrated``, but another picture and another sound: a different video."""
    path = tmp_path_factory.mktemp("other") / "other.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:size=320x180:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440",
        "-t",
        "12",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        str(path),
    )
    return path


@pytest.fixture(scope="module")
def reference(narrated: SynthVideo, tmp_path_factory: pytest.TempPathFactory) -> VideoKnowledge:
    """What the narrated video's knowledge is, built in a cache of its own."""
    return knowledge(narrated.path, IndexCache(tmp_path_factory.mktemp("reference-cache")))


def videoqa_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "videoqa" and r.levelno == logging.WARNING]


def settle(path: Path, hours_ago: float = 1.0) -> None:
    """Date the file's last change back, as a file that is not being written any more."""
    then = time.time() - hours_ago * 3600
    os.utime(path, (then, then))


# --- a video replaced while it is indexed -------------------------------------------------------------


@pytest.mark.parametrize("stage", ["frames", "speech", "screen text"])
def test_a_video_replaced_while_indexed_leaves_nothing_of_the_other_under_its_key(
    stage: str, narrated: SynthVideo, other_video: Path, reference: VideoKnowledge, tmp_path: Path
) -> None:
    video, cache = tmp_path / "download.mp4", IndexCache(tmp_path / "cache")
    shutil.copyfile(narrated.path, video)
    settle(video)
    other = tmp_path / "other.mp4"
    shutil.copyfile(other_video, other)

    def progress(label: str) -> None:
        if label == stage:  # a sync finishing the download renames the new file over the old one
            os.replace(other, video)

    with pytest.raises(ContentChangedError, match="changed while it was being indexed"):
        knowledge(video, cache, progress=progress)
    # The original video, asked about elsewhere, is answered from its own content.
    elsewhere = tmp_path / "original.mp4"
    shutil.copyfile(narrated.path, elsewhere)
    again = knowledge(elsewhere, cache)
    assert again.transcript.text == reference.transcript.text
    assert np.array_equal(again.visual.frame_embeddings, reference.visual.frame_embeddings)
    assert again.transcript.text != knowledge(other_video, IndexCache(tmp_path / "c2")).transcript.text


def test_index_video_refuses_to_keep_frames_of_a_replaced_file(
    narrated: SynthVideo, other_video: Path, tmp_path: Path
) -> None:
    video, cache = tmp_path / "clip.mp4", IndexCache(tmp_path / "cache")
    shutil.copyfile(narrated.path, video)
    other = tmp_path / "other.mp4"
    shutil.copyfile(other_video, other)
    replaced: list[bool] = []

    def on_progress(done_s: float, total_s: float) -> None:
        if not replaced:  # a second into indexing
            os.replace(other, video)
            replaced.append(True)

    with pytest.raises(ContentChangedError, match=r"clip\.mp4: the file changed"):
        index_video(video, ThumbnailEmbedder(), cache=cache, on_progress=on_progress)
    assert not list(cache.root.glob("*.npz"))


# --- the fingerprint: the whole file, remembered per version -------------------------------------------


def test_a_same_size_edit_inside_a_large_file_changes_its_fingerprint(tmp_path: Path) -> None:
    large = tmp_path / "large.mkv"
    with large.open("wb") as out:
        out.truncate(LARGE_BYTES)  # sparse: quick to make and to read
    settle(large)
    before = fingerprint(large, tmp_path / "memo")
    stat = large.stat()
    with large.open("r+b") as out:  # between two of the 64 blocks the old fingerprint sampled
        out.seek(200 * 1024)
        out.write(b"edited audio")
    os.utime(large, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as tools that keep the date do
    assert large.stat().st_size == stat.st_size
    after = fingerprint(large, tmp_path / "memo")
    assert after != before and after.startswith("xxh3-128:")
    with large.open("r+b") as out:
        out.seek(200 * 1024)
        out.write(bytes(12))
    assert fingerprint(large, tmp_path / "memo") == before  # content, not dates, decides


def count_hashing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = videoqa.store.cache._hash_file

    def counted(handle: Any) -> str:
        calls.append(1)
        return real(handle)

    monkeypatch.setattr(videoqa.store.cache, "_hash_file", counted)
    return calls


FINGERPRINT_WITHOUT_HASHING = """
import sys
import videoqa.store.cache
def refuse(handle):
    raise AssertionError("the file was hashed again")
videoqa.store.cache._hash_file = refuse
print(videoqa.store.cache.fingerprint(sys.argv[1], videoqa.store.cache.Path(sys.argv[2])))
"""


def test_a_fingerprint_is_computed_once_per_version_of_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, memo = count_hashing(monkeypatch), tmp_path / "memo"
    video = tmp_path / "video.mp4"
    video.write_bytes(b"frames" * 1000)
    settle(video)
    first = fingerprint(video, memo)
    assert fingerprint(video, memo) == first and len(calls) == 1
    # A new process finds it in the memo file beside the cache, without reading the video.
    other = subprocess.run(
        [sys.executable, "-c", FINGERPRINT_WITHOUT_HASHING, str(video), str(memo)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert other.returncode == 0, other.stderr
    assert other.stdout.strip() == first
    settle(video, hours_ago=2)  # another modification time
    assert fingerprint(video, memo) == first and len(calls) == 2
    with video.open("ab") as out:  # another size
        out.write(b"!")
    settle(video)
    assert fingerprint(video, memo) != first and len(calls) == 3
    copy = tmp_path / "copy.mp4"  # another inode, same dates and content
    shutil.copy2(video, copy)
    os.replace(copy, video)
    fingerprint(video, memo)
    assert len(calls) == 4


def test_a_file_still_being_written_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_hashing(monkeypatch)
    video = tmp_path / "downloading.mp4"
    video.write_bytes(b"part")  # modified just now: it may change again within its clock tick
    fingerprint(video, tmp_path / "memo")
    fingerprint(video, tmp_path / "memo")
    assert len(calls) == 2 and not (tmp_path / "memo" / "fingerprints.json").exists()


# --- concurrency and lock files -------------------------------------------------------------------------


class MissSignallingCache(IndexCache):
    """Tells when one key was looked for and not found."""

    def __init__(self, root: Path, watched: str) -> None:
        super().__init__(root)
        self.watched, self.missed = watched, threading.Event()

    def load(self, key: str) -> CacheEntry | None:
        entry = super().load(key)
        if key == self.watched and entry is None:
            self.missed.set()
        return entry


def test_speech_made_by_another_asker_while_we_waited_is_not_made_again(
    narrated: SynthVideo, tmp_path: Path
) -> None:
    transcriber = LoudnessTranscriber()
    key = entry_key(
        fingerprint(narrated.path, tmp_path / "cache"), {"channel": "speech", "transcriber": transcriber.id}
    )
    cache = MissSignallingCache(tmp_path / "cache", key)
    results: list[VideoKnowledge | BaseException] = []

    def ask() -> None:
        try:
            results.append(knowledge(narrated.path, cache, transcriber))
        except BaseException as exc:
            results.append(exc)

    with cache.locked(key):  # another asker is transcribing the video
        asker = threading.Thread(target=ask)
        asker.start()
        assert cache.missed.wait(120), results
        cache.save(
            key,
            CacheEntry(
                header={
                    "segments": [asdict(SpeechSegment(1.0, 2.0, "made there"))],
                    "transcriber": transcriber.id,
                },
                arrays={},
            ),
        )
    asker.join(120)
    assert len(results) == 1 and isinstance(results[0], VideoKnowledge), results
    assert results[0].transcript.text == "made there" and transcriber.calls == 0


def test_no_lock_files_are_left_behind(narrated: SynthVideo, tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    for key in ("k1", "k2", "k3"):
        cache.get_or_build(key, lambda: CacheEntry(header={}, arrays={"a": np.ones(2)}))
    knowledge(narrated.path, cache)
    assert len(list(tmp_path.glob("*.npz"))) == 7  # 3 + frames, speech, screen text, passages
    assert not list(tmp_path.glob("*.lock"))


def test_a_lock_left_by_a_killed_builder_does_not_block(tmp_path: Path) -> None:
    (tmp_path / "k.lock").touch()  # nobody holds it: the kernel let go when its process died
    _, cached = IndexCache(tmp_path).get_or_build("k", lambda: CacheEntry(header={}, arrays={}))
    assert not cached and [p.name for p in tmp_path.iterdir()] == ["k.npz"]


def test_the_lock_admits_one_holder_while_its_files_come_and_go(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    inside: list[int] = []
    overlaps: list[int] = []

    def work() -> None:
        for _ in range(30):
            with cache.locked("k"):
                inside.append(1)
                overlaps.append(len(inside))
                time.sleep(0.001)  # let the other threads run while this one holds the lock
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(overlaps) == 120 and max(overlaps) == 1
    assert not list(tmp_path.glob("*.lock"))


# --- a cache folder that cannot be used -----------------------------------------------------------------


def fail_with(number: int) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(number, os.strerror(number))

    return fail


def unusable_cache(problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder with ``problem``; returns its path."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    if problem == "is a file":
        return blocker
    if problem == "under a file":
        return blocker / "cache"
    if problem == "read-only":  # what mkstemp meets there; chmod cannot show it to root
        monkeypatch.setattr(tempfile, "mkstemp", fail_with(errno.EROFS))
    elif problem == "full while writing":
        monkeypatch.setattr(np, "savez", fail_with(errno.ENOSPC))
    else:
        monkeypatch.setattr(os, "replace", fail_with(errno.ENOSPC))
    return tmp_path / "cache"


PROBLEMS = {
    "is a file": "blocker is a file, not a folder",
    "under a file": "blocker is a file, not a folder",
    "read-only": "(Read-only file system)",
    "full while writing": "(No space left on device)",
    "full while renaming": "(No space left on device)",
}


@pytest.mark.parametrize("problem", PROBLEMS)
def test_an_unusable_cache_folder_is_reported_once_and_the_work_goes_on(
    problem: str,
    narrated: SynthVideo,
    reference: VideoKnowledge,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = unusable_cache(problem, tmp_path, monkeypatch)
    known = knowledge(narrated.path, IndexCache(root))
    assert known.transcript.text == reference.transcript.text
    assert np.array_equal(known.visual.frame_embeddings, reference.visual.frame_embeddings)
    [warning] = videoqa_warnings(caplog)
    assert warning.startswith(f"cannot use the index cache in {root} ")
    assert PROBLEMS[problem] in warning and "going on without caching" in warning
    fix = "free some space there, or set VIDEOQA_CACHE" if "full" in problem else "set VIDEOQA_CACHE"
    assert fix in warning
    leftovers = [p for p in tmp_path.rglob("*") if p.suffix in (".partial", ".npz", ".lock")]
    assert leftovers == []


def test_a_library_in_an_unusable_cache_folder_says_what_to_do(narrated: SynthVideo, tmp_path: Path) -> None:
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copyfile(narrated.path, folder / "a.mp4")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    with pytest.raises(LibraryError, match=r"cannot write the library's index in .*VIDEOQA_CACHE"):
        Library(folder, ThumbnailEmbedder(), cache=IndexCache(blocker)).sync()
