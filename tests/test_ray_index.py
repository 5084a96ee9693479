"""``videoqa index DIR --ray``: each video indexed as a Ray task, on a local Ray cluster started inside
the test, with the real offline models on small generated narrated videos.

The cache a Ray run leaves must be the cache a plain run leaves, file for file and byte for byte (the
libraries' usearch graphs included), but for the memo of file hashes, which differs between two plain runs
as well (see ``MEMO_FILES``). A worker killed in the
middle of a task is retried; a bad address and a missing Ray are one line and exit 2.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from videoqa.library import distributed
from videoqa.library.distributed import RayOptions
from videoqa.store.cache import IndexCache
from videoqa.testmedia.synth import SpokenLine, SynthScene, SynthSpec, TextCard, render
from videoqa.types import Passage

from helpers import assert_one_line_error, run_cli

# Files every cache holds that are no index data and legitimately differ between runs:
# - fingerprints.json: the memo of file hashes (store/cache.py), a speed-up; its records are in the order
#   the processes hashed the videos, which on a cluster depends on which task ran first.
MEMO_FILES = frozenset({"fingerprints.json"})
# Both libraries' usearch graphs (library/folder.py, library/passages.py) are compared byte for byte too:
# their vectors are added with one thread, so the graphs are reproducible.
GRAPH = "vectors.usearch"


def _spec(first: str, second: str, line: str, card: str | None = None) -> SynthSpec:
    return SynthSpec(
        scenes=(SynthScene(5.0, f"lavfi:{first}"), SynthScene(5.0, f"lavfi:{second}")),
        cards=(TextCard(6.0, 3.0, card),) if card else (),
        speech=(SpokenLine(1.0, line),),
        width=320,
        height=180,
        fps=15.0,
        keyframe_interval=30,
    )


VIDEOS = {
    "station.mp4": _spec(
        "testsrc2", "color=c=0x1f4e79", "The last train to London leaves from platform seven.", "STATION MAP"
    ),
    "meetings/budget.mp4": _spec(
        "smptebars", "color=c=0x6b8e23", "The committee approved a budget of four million euros."
    ),
    "garden.mp4": _spec("color=c=0x8b4513", "testsrc2", "My grandmother planted tomatoes in the garden."),
}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ray-library")
    for name, spec in VIDEOS.items():
        render(spec, folder / name)
        (folder / name).with_suffix(".json").unlink()  # the synth manifest: not part of the library
    (folder / "broken.mp4").write_text("this is not a video\n" * 20)
    return folder


def _env(cache: Path, **more: str) -> dict[str, str]:
    return {**os.environ, "VIDEOQA_CACHE": str(cache), **more}


@pytest.fixture(scope="module")
def plain_cache(library: Path, tmp_path_factory: pytest.TempPathFactory, installed_models: None) -> Path:
    """The cache after a plain ``videoqa index DIR``."""
    cache = tmp_path_factory.mktemp("plain-cache")
    result = run_cli("index", str(library), "--device", "cpu", env=_env(cache))
    assert result.code == 0, result.stderr
    assert result.stdout.strip().endswith("3 indexed, 0 unchanged, 0 removed, 1 skipped"), result.stdout
    return cache


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray cluster of 2 CPUs for the module; its address."""
    pytest.importorskip("ray")
    import ray

    with distributed.connect(RayOptions(local_cpus=2)):
        yield ray.get_runtime_context().gcs_address


def _cache_files(root: Path) -> dict[str, bytes]:
    """Every file under a cache folder by relative path, but the memo (MEMO_FILES)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name not in MEMO_FILES
    }


def assert_same_cache(plain: Path, other: Path) -> None:
    """Same files, same bytes: the frames library's and the passage library's graphs too."""
    mine, theirs = _cache_files(plain), _cache_files(other)
    assert sorted(mine) == sorted(theirs)
    graphs = [name for name in mine if name.endswith(GRAPH)]
    assert len(graphs) == 2 and sum("/passages-" in name for name in graphs) == 1, sorted(mine)
    differing = [name for name in mine if mine[name] != theirs[name]]
    assert differing == []
    assert sum(name.endswith(".npz") for name in mine) >= 4 * len(VIDEOS)  # every stage of every video


@pytest.mark.slow
def test_ray_cache_is_the_plain_cache_and_a_rerun_skips(
    library: Path, plain_cache: Path, cluster: str, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    result = run_cli("index", str(library), "--device", "cpu", "--ray", cluster, env=_env(cache))
    assert result.code == 0, result.stderr
    assert result.stdout.splitlines() == [f"{library}: 3 indexed, 0 unchanged, 0 removed, 1 skipped"]
    assert "ray: 3 videos indexed on 1 host" in result.stderr, result.stderr
    assert any(line.startswith("warning: skipped broken.mp4") for line in result.stderr_lines)
    assert_same_cache(plain_cache, cache)

    again = run_cli("index", str(library), "--device", "cpu", "--ray", cluster, env=_env(cache))
    assert again.code == 0, again.stderr
    assert "ray: 0 videos indexed" in again.stderr, again.stderr  # nothing sent: all indexed before
    assert "skipped 3 videos indexed before with the same content and models" in again.stderr
    assert again.stdout.strip().endswith("0 indexed, 3 unchanged, 0 removed, 1 skipped"), again.stdout


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_index_completes(
    library: Path, plain_cache: Path, tmp_path: Path
) -> None:
    """The CLI starts its own local cluster (``--ray`` alone); the first task to reach the speech stage
    kills its worker process (the test-only hook), and Ray runs that video again."""
    cache, killed = tmp_path / "cache", tmp_path / "killed"
    env = _env(cache, **{distributed.TEST_KILL_ENV: str(killed)})
    result = run_cli("index", str(library), "--device", "cpu", "--ray", env=env)
    assert killed.exists()  # a worker did die
    assert result.code == 0, result.stderr
    # Ray's note of the death and the retry goes to stderr: stdout holds the summary alone
    assert result.stdout.splitlines() == [f"{library}: 3 indexed, 0 unchanged, 0 removed, 1 skipped"]
    assert "A worker died" in result.stderr
    assert "ray: 3 videos indexed on 1 host" in result.stderr and "0 failed" in result.stderr
    assert_same_cache(plain_cache, cache)


@pytest.mark.slow
def test_entries_sent_back_when_the_worker_cannot_see_the_cache(
    library: Path, plain_cache: Path, cluster: str, tmp_path: Path
) -> None:
    """cache_transfer="send": what a worker without the shared folder does. The driver gets the entries
    with the results and writes them: the same entries as a plain run's."""
    from videoqa.cli.index import IndexChoices
    from videoqa.library.passages import PassageLibrary

    cache = IndexCache(tmp_path / "cache")
    choices = IndexChoices("pixel", "cpu", 1.0, "whisper-tiny.en", screen_text=True, visual_only=False)
    models = choices(cache).index_models()
    jobs, unreadable = distributed.plan_jobs(PassageLibrary(library, models, cache).pending())
    assert unreadable == ["broken.mp4"] and len(jobs) == len(VIDEOS)
    report = distributed.index_on_ray(
        jobs, choices, models, cache, RayOptions(address=cluster, cache_transfer="send")
    )
    assert report.indexed == tuple(sorted(VIDEOS)) and report.failed == ()
    assert report.sent_entries >= 4 * len(VIDEOS)
    entries = {name: data for name, data in _cache_files(cache.root).items() if name.endswith(".npz")}
    plain = {name: data for name, data in _cache_files(plain_cache).items() if name.endswith(".npz")}
    assert entries == plain


@pytest.fixture
def not_ray() -> Iterator[str]:
    """An address where something accepts connections and says nothing: no Ray cluster."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in accepted:
        connection.close()


@pytest.mark.slow
def test_a_worker_without_the_video_or_with_other_models_refuses_it(
    library: Path, cluster: str, tmp_path: Path
) -> None:
    """Both are the video's failure, with its reason, before any work: not retried, never fatal."""
    from videoqa.cli.index import IndexChoices

    cache = IndexCache(tmp_path / "cache")
    choices = IndexChoices("pixel", "cpu", 1.0, "whisper-tiny.en", screen_text=True, visual_only=False)
    models = choices(cache).index_models()
    station = library / "station.mp4"
    real = distributed.VideoJob("station.mp4", str(station), cache.fingerprint(station), 10.0)
    ghost = distributed.VideoJob("ghost.mp4", str(tmp_path / "elsewhere" / "ghost.mp4"), real.content, 10.0)
    options = RayOptions(address=cluster)

    missing = distributed.index_on_ray([ghost], choices, models, cache, options)
    assert missing.indexed == () and [name for name, _ in missing.failed] == ["ghost.mp4"]
    assert "not readable on this worker" in missing.failed[0][1]
    assert "every node must see the videos at the same path" in missing.failed[0][1]

    other = {**models, "speech": "faster-whisper:some-other-model"}
    refused = distributed.index_on_ray([real], choices, other, cache, options)
    assert refused.indexed == () and [name for name, _ in refused.failed] == ["station.mp4"]
    reason = refused.failed[0][1]
    assert "indexes speech with faster-whisper:" in reason
    assert "the driver with faster-whisper:some-other-model" in reason
    assert "install the same models on every node" in reason
    assert not list(cache.root.glob("*.npz"))  # refused before any work


@pytest.mark.slow
def test_a_local_cluster_that_cannot_start_is_a_user_error(cluster: str) -> None:
    """Here Ray refuses a second cluster in a process that is already in one (the module's)."""
    refused = pytest.raises(distributed.RayError, match=r"^cannot start a local Ray cluster \(")
    with refused, distributed.connect(RayOptions(local_cpus=1)):
        pytest.fail("joined a second cluster")
    import ray

    assert ray.is_initialized()  # the module's cluster is untouched


def test_an_unreachable_address_is_one_line_and_quick(tmp_path: Path, not_ray: str) -> None:
    pytest.importorskip("ray")
    (tmp_path / "lib").mkdir()
    for address, fragment in (
        ("127.0.0.1:1", "no Ray cluster answers there"),  # nothing listens: refused at once
        ("192.0.2.1:6379", "no Ray cluster"),  # TEST-NET-1: never answers (or a proxy does)
        (not_ray, "no Ray cluster accepted this driver within 10 s"),  # answers, but is no Ray
        ("nonsense", "HOST:PORT"),
    ):
        started = time.monotonic()
        result = run_cli("index", str(tmp_path / "lib"), "--ray", address, env=_env(tmp_path / "cache"))
        assert_one_line_error(result, f"--ray {address}", fragment)
        assert time.monotonic() - started < 30


def test_without_ray_the_one_line_says_how_to_get_it(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    hide_ray = "import sys; sys.modules['ray'] = None; from videoqa.cli.main import main; main()"
    completed = subprocess.run(
        [sys.executable, "-c", hide_ray, "index", str(tmp_path / "lib"), "--ray"],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path / "cache"),
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    assert completed.stderr.strip().splitlines() == [f"error: {distributed.RAY_MISSING}"]
    assert 'pip install "videoqa[ray]"' in distributed.RAY_MISSING


def test_ray_needs_a_folder(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * 100)
    result = run_cli("index", str(video), "--ray", env=_env(tmp_path / "cache"))
    assert_one_line_error(result, "--ray indexes a folder")


def test_a_large_library_is_not_saved_after_every_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's sync after the tasks adds every video at once: saving the whole index after each
    one made that quadratic. Saves are spaced by what they cost; the last one holds every video, and a
    run stopped part way resumes with each video either kept or indexed again."""
    from videoqa.library.passages import PassageLibrary

    folder, cache = tmp_path / "library", IndexCache(tmp_path / "cache")
    folder.mkdir()
    rng = np.random.default_rng(0)
    known: dict[str, Any] = {}
    for number in range(150):
        (folder / f"v{number:03d}.mp4").write_bytes(f"stand-in {number}".encode())
        vectors = rng.standard_normal((20, 32)).astype(np.float32)
        known[f"v{number:03d}.mp4"] = SimpleNamespace(
            visual=SimpleNamespace(info=SimpleNamespace(duration_s=60.0), timestamps_s=range(60), scenes=()),
            passages=tuple(Passage("speech", i, i + 1.0, f"sentence {number} {i}") for i in range(20)),
            passage_vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
        )
    models = {"text": "stand-in", "speech": "off", "screen": "off"}
    saves: list[float] = []
    save = PassageLibrary._save

    def counted(self: PassageLibrary) -> None:
        time.sleep(0.02)  # as a large index takes to write
        save(self)
        saves.append(time.perf_counter())

    monkeypatch.setattr(PassageLibrary, "_save", counted)

    def stop_at_100(path: Path) -> Any:
        if path.name == "v100.mp4":
            raise KeyboardInterrupt
        return known[path.name]

    with pytest.raises(KeyboardInterrupt):
        PassageLibrary(folder, models, cache).sync(stop_at_100)
    assert 1 <= len(saves) < 50
    report = PassageLibrary(folder, models, cache).sync(lambda path: known[path.name])
    assert report.interrupted == "v100.mp4"
    assert sorted((*report.indexed, *report.unchanged)) == sorted(known) and report.failed == ()
    assert "v000.mp4" in report.unchanged  # the first video is always saved
    assert set(PassageLibrary(folder, models, cache).videos) == set(known)
