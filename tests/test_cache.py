"""The index cache: content keys, atomic writes, damaged entries, killed and concurrent indexers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from videoqa.media.video import SamplingOptions
from videoqa.store.cache import CacheEntry, IndexCache, entry_key, fingerprint
from videoqa.testmedia.synth import SynthVideo
from videoqa.visual.index import IndexOptions, index_video
from videoqa.visual.scenes import SceneOptions

from helpers import ThumbnailEmbedder

TESTS = Path(__file__).parent


def test_fingerprint_follows_content_not_path(narrated: SynthVideo, tmp_path: Path) -> None:
    renamed = tmp_path / "renamed clip.mp4"
    shutil.copyfile(narrated.path, renamed)
    assert fingerprint(renamed) == fingerprint(narrated.path)
    data = bytearray(renamed.read_bytes())
    data[len(data) // 3] ^= 0x01  # one bit, in the middle of the file
    renamed.write_bytes(bytes(data))
    assert fingerprint(renamed) != fingerprint(narrated.path)


def test_key_changes_with_what_changes_the_entry() -> None:
    base = entry_key("abc", {"embedder": "e1", "sampling": {"fps": 1.0}})
    assert base == entry_key("abc", {"sampling": {"fps": 1.0}, "embedder": "e1"})
    assert base != entry_key("abd", {"embedder": "e1", "sampling": {"fps": 1.0}})
    assert base != entry_key("abc", {"embedder": "e2", "sampling": {"fps": 1.0}})
    assert base != entry_key("abc", {"embedder": "e1", "sampling": {"fps": 2.0}})


def entry() -> CacheEntry:
    return CacheEntry(
        header={"note": "x"}, arrays={"a": np.arange(6, dtype=np.float16).reshape(2, 3), "b": np.ones(4)}
    )


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    cache.save("k1", entry())
    loaded = cache.load("k1")
    assert loaded is not None and loaded.header["note"] == "x"
    assert loaded.arrays["a"].dtype == np.float16 and np.array_equal(loaded.arrays["b"], np.ones(4))
    assert [p.name for p in tmp_path.iterdir()] == ["k1.npz"]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "foreign-version"])
def test_damaged_entry_is_a_miss_with_a_warning(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = IndexCache(tmp_path)
    path = cache.save("k1", entry())
    assert path is not None
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    elif damage == "flip":
        position = bytes(data).find(np.ones(4).tobytes())  # inside array b's data
        data[position] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "garbage":
        path.write_bytes(b"not an archive")
    else:
        header = {"format": 999, "key": "k1"}
        np.savez(path, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8))
    assert cache.load("k1") is None
    assert "rebuilding" in caplog.text


def test_get_or_build_builds_once(tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    calls: list[int] = []

    def build() -> CacheEntry:
        calls.append(1)
        return entry()

    built, cached = cache.get_or_build("k", build)
    again, cached_again = cache.get_or_build("k", build)
    assert (cached, cached_again, len(calls)) == (False, True, 1)
    assert np.array_equal(built.arrays["a"], again.arrays["a"])


def test_index_is_cached_and_renamed_file_hits(narrated: SynthVideo, tmp_path: Path) -> None:
    cache = IndexCache(tmp_path / "cache")
    first = index_video(narrated.path, ThumbnailEmbedder(), cache=cache)
    assert not first.cached
    assert [round(s.start_s) for s in first.scenes] == [0, 4, 8]
    renamed = tmp_path / "moved.mp4"
    shutil.copyfile(narrated.path, renamed)
    second = index_video(renamed, ThumbnailEmbedder(), cache=cache)
    assert second.cached and second.scenes == first.scenes
    assert second.info.path == str(renamed)  # results name the file that was asked about
    assert np.array_equal(second.frame_embeddings, first.frame_embeddings)
    assert second.frame_embeddings.dtype == np.float16


def test_other_scene_options_recut_without_decoding(narrated: SynthVideo, tmp_path: Path) -> None:
    cache = IndexCache(tmp_path)
    index_video(narrated.path, ThumbnailEmbedder(), cache=cache)
    one_scene = IndexOptions(scenes=SceneOptions(top_k=0))
    recut = index_video(narrated.path, ThumbnailEmbedder(), one_scene, cache=cache)
    assert recut.cached and len(recut.scenes) == 1


def test_progress_is_reported_in_seconds_of_video(narrated: SynthVideo, tmp_path: Path) -> None:
    seen: list[tuple[float, float]] = []
    index_video(
        narrated.path,
        ThumbnailEmbedder(),
        cache=IndexCache(tmp_path),
        on_progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1] == (12.0, 12.0) and all(total == 12.0 for _, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


INDEXER = """
import sys, pathlib
sys.path.insert(0, {tests!r})
from helpers import ThumbnailEmbedder
from videoqa.store.cache import IndexCache
from videoqa.visual.index import IndexOptions, index_video
from videoqa.media.video import SamplingOptions
marker = pathlib.Path({marker!r})
# small batches at 4 fps: a dozen embedder calls, so the test can kill the indexer between them
options = IndexOptions(sampling=SamplingOptions(fps=4, batch_size=4, max_side=448))
def progress(done, total):
    marker.write_text(str(done))
result = index_video({video!r}, ThumbnailEmbedder(delay_s={delay}), options,
                     cache=IndexCache(pathlib.Path({cache!r})), on_progress=progress)
print("cached" if result.cached else "built", len(result.scenes))
"""


def start_indexer(video: Path, cache: Path, marker: Path, delay_s: float) -> subprocess.Popen[str]:
    code = INDEXER.format(
        tests=str(TESTS), marker=str(marker), video=str(video), cache=str(cache), delay=delay_s
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_killed_indexer_leaves_nothing_trusted(narrated: SynthVideo, tmp_path: Path) -> None:
    cache, marker = tmp_path / "cache", tmp_path / "progress"
    process = start_indexer(narrated.path, cache, marker, delay_s=0.5)
    deadline = time.monotonic() + 60
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), process.stderr.read() if process.stderr else ""
    os.kill(process.pid, signal.SIGKILL)  # halfway through: some batches embedded, nothing saved
    process.wait()
    assert not list(cache.glob("*.npz"))
    options = IndexOptions(sampling=SamplingOptions(fps=4, batch_size=4, max_side=448))
    result = index_video(narrated.path, ThumbnailEmbedder(), options, cache=IndexCache(cache))
    assert not result.cached and len(result.scenes) == 3
    assert not list(cache.glob("*.partial"))


def test_two_indexers_at_once_make_one_entry(narrated: SynthVideo, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    processes = [start_indexer(narrated.path, cache, tmp_path / f"m{i}", delay_s=0.05) for i in range(2)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert all(process.returncode == 0 for process in processes), outputs
    assert sorted(out.split()[0] for out, _ in outputs) == ["built", "cached"]
    assert len(list(cache.glob("*.npz"))) == 1
