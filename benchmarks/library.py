"""A library of many videos: indexing on Ray against a plain run, and retrieval across 10 to 1000 videos.

Usage:
    python benchmarks/library.py                   # both parts, N=4 videos of ~20 s
    python benchmarks/library.py index --videos 8  # only the indexing part
    python benchmarks/library.py retrieval         # only the retrieval part

index: N generated narrated videos (4 scenes of 5 s, two spoken sentences and a text card each, made as
  the tests make them), indexed by `videoqa index DIR` three ways, each into an empty cache: plainly, and
  with `--ray ADDRESS` on a local Ray cluster of 1 and of 2 CPUs started beforehand (each task takes 1
  CPU, so 1 and 2 workers). Times are the whole command's wall clock (models loaded, libraries built);
  the cluster's own start is printed apart. The overhead ratio is the Ray run's time over the plain one.
retrieval: synthetic libraries of 10, 100 and 1000 indexed videos, built through PassageLibrary (the
  manifest and the passage vector index `ask --library` reads): each video has 80 passages (about 10
  minutes of speech) drawn from a vocabulary of names, verbs, things and places, embedded by a stand-in
  text embedder (the mean of fixed random 384-d word vectors, plus noise, unit length: the width of
  all-MiniLM-L6-v2). One planted sentence sits in one video. Timed per question (median of 20):
  opening the library (manifest and vectors), `candidates` (vector search and the question's words), and
  the evidence choice over the 3 candidates as `ask --library` makes it (`find_evidence`). The real
  MiniLM's embedding of one question is timed apart. "sync" is the time PassageLibrary.sync took to
  build the library video by video, as the driver does after the Ray tasks (every video's knowledge at
  hand, so this is the library's own cost: vector insertion and saving).

To run it on a real multi-machine cluster: start Ray on every node (`ray start --head` on one, `ray start
--address HEAD:6379` on the others) with videoqa installed in the same version and the same models in
each node's model store; put the videos and $VIDEOQA_CACHE on storage every node mounts at the same path;
then `python benchmarks/library.py index --address HEAD:6379 --videos 64` from a node of the cluster.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from videoqa.library import distributed  # noqa: E402
from videoqa.library.distributed import RayOptions  # noqa: E402
from videoqa.library.passages import PassageLibrary  # noqa: E402
from videoqa.retrieval.retrieve import RetrievalOptions, find_evidence  # noqa: E402
from videoqa.store.cache import IndexCache  # noqa: E402
from videoqa.testmedia.synth import SpokenLine, SynthScene, SynthSpec, TextCard, render  # noqa: E402
from videoqa.types import Passage  # noqa: E402

PATTERNS = ("testsrc2", "smptebars", "color=c=0x1f4e79", "color=c=0x8b4513", "color=c=0x6b8e23", "rgbtestsrc")
PEOPLE = ("Maria", "Jonas", "Amira", "Kenji", "Lucia", "Tomas", "Ingrid", "Pablo", "Nadia", "Oskar")
PLACES = ("Lisbon", "Sydney", "Vienna", "Nairobi", "Oslo", "Lima", "Seoul", "Dublin", "Cairo", "Quito")
THINGS = ("piano", "garden", "budget", "bridge", "museum", "train", "report", "market", "harbour", "school")
SIZES = (10, 100, 1000)
PASSAGES_PER_VIDEO = 80
DIM = 384  # all-MiniLM-L6-v2's width
RUNS = 20
CANDIDATES = 3  # assistant.LIBRARY_CANDIDATES


# --- index: plain against Ray ---------------------------------------------------------------------------


def make_videos(folder: Path, count: int) -> None:
    """``count`` narrated videos of 20 s, each with its own sentences and sign."""
    for number in range(count):
        person, place, thing = PEOPLE[number % 10], PLACES[(number * 3) % 10], THINGS[(number * 7) % 10]
        spec = SynthSpec(
            scenes=tuple(
                SynthScene(5.0, f"lavfi:{PATTERNS[(number + k) % len(PATTERNS)]}") for k in range(4)
            ),
            cards=(TextCard(11.0, 3.0, f"GATE {number + 10}"),),
            speech=(
                SpokenLine(1.0, f"{person} repaired the {thing} in {place} this morning."),
                SpokenLine(15.0, f"After that, {person} walked to the station number {number + 3}."),
            ),
            width=320,
            height=180,
            fps=15.0,
            keyframe_interval=30,
        )
        render(spec, folder / f"video{number:02d}.mp4")
        (folder / f"video{number:02d}.json").unlink()


def time_index(folder: Path, cache: Path, *extra: str) -> float:
    shutil.rmtree(cache, ignore_errors=True)
    env = {**os.environ, "VIDEOQA_CACHE": str(cache)}
    started = time.perf_counter()
    command = [sys.executable, "-m", "videoqa", "index", str(folder), "--device", "cpu", *extra]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return time.perf_counter() - started


def bench_index(count: int, address: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="videoqa-bench-library-") as work:
        folder, cache = Path(work) / "library", Path(work) / "cache"
        folder.mkdir()
        make_videos(folder, count)
        print(f"{count} videos of 20 s; videoqa index DIR --device cpu (default models), wall clock:")
        plain = time_index(folder, cache)
        rows: list[tuple[str, float, float | None]] = [("plain (one process)", plain, None)]
        if address is not None:
            rows.append((f"--ray {address}", time_index(folder, cache, "--ray", address), None))
        else:
            import ray

            for cpus in (1, 2):
                started = time.perf_counter()
                with distributed.connect(RayOptions(local_cpus=cpus)):
                    up = time.perf_counter() - started
                    gcs = ray.get_runtime_context().gcs_address
                    rows.append(
                        (
                            f"--ray, {cpus} worker{'s' if cpus > 1 else ''}",
                            time_index(folder, cache, "--ray", gcs),
                            up,
                        )
                    )
        print(f"{'how':<24} {'time':>8} {'per video':>10} {'vs plain':>9}   cluster start")
        for how, seconds, cluster_s in rows:
            start = f"{cluster_s:.1f} s" if cluster_s is not None else "-"
            print(f"{how:<24} {seconds:7.1f}s {seconds / count:9.1f}s {seconds / plain:8.2f}x   {start}")


# --- retrieval across 10 to 1000 videos -----------------------------------------------------------------


class WordSpace:
    """A stand-in text embedder: a sentence's vector is the mean of its words' fixed random vectors plus
    a little noise, unit length. Similar sentences get similar vectors, as with a real model."""

    id = "benchmark-word-space"

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self._words: dict[str, np.ndarray] = {}

    def _word(self, word: str) -> np.ndarray:
        if word not in self._words:
            self._words[word] = self._rng.standard_normal(DIM).astype(np.float32)
        return self._words[word]

    def embed(self, texts: Any) -> np.ndarray:
        rows = []
        for text in texts:
            words = [w.strip(".,?").lower() for w in text.split()]
            vector = np.mean([self._word(w) for w in words], axis=0) + 0.1 * self._rng.standard_normal(DIM)
            rows.append(vector / np.linalg.norm(vector))
        return np.asarray(rows, dtype=np.float32)


def sentence(rng: random.Random) -> str:
    verbs = ("visited", "painted", "sold", "described", "opened", "photographed", "cleaned", "measured")
    return (
        f"{rng.choice(PEOPLE)} {rng.choice(verbs)} the {rng.choice(THINGS)} in {rng.choice(PLACES)} "
        f"at {rng.randrange(1, 24)} o'clock with {rng.randrange(2, 400)} people."
    )


NEEDLE = "The submarine captain counted 7341 seagulls near the lighthouse."
QUESTION = "How many seagulls did the submarine captain count near the lighthouse?"


def build_library(
    folder: Path, cache: IndexCache, count: int, space: WordSpace
) -> tuple[dict[str, Any], float]:
    """``count`` stand-in videos in ``folder`` and their passage library: their knowledge by name, and
    the seconds ``PassageLibrary.sync`` took to build it."""
    rng = random.Random(count)
    knowledge: dict[str, Any] = {}
    needle_at = count // 2
    for number in range(count):
        path = folder / f"v{number:04d}.mp4"
        path.write_bytes(f"stand-in video {number}\n".encode())  # fingerprinted, never decoded
        texts = [sentence(rng) for _ in range(PASSAGES_PER_VIDEO)]
        if number == needle_at:
            texts[40] = NEEDLE
        passages = tuple(Passage("speech", 7.5 * i, 7.5 * i + 5.0, text) for i, text in enumerate(texts))
        knowledge[path.name] = SimpleNamespace(
            visual=SimpleNamespace(
                info=SimpleNamespace(duration_s=600.0), timestamps_s=range(600), scenes=()
            ),
            passages=passages,
            passage_vectors=space.embed(texts),
        )
    library = PassageLibrary(folder, {"text": space.id, "speech": "stand-in", "screen": "off"}, cache)
    started = time.perf_counter()
    library.sync(lambda path: knowledge[path.name])  # video by video, as the driver does after Ray's tasks
    return knowledge, time.perf_counter() - started


def time_question(
    folder: Path, cache: IndexCache, space: WordSpace, knowledge: dict[str, Any]
) -> dict[str, float]:
    """One question, as ask --library runs it after the query is embedded: seconds per step."""
    started = time.perf_counter()
    library = PassageLibrary(folder, {"text": space.id, "speech": "stand-in", "screen": "off"}, cache)
    opened = time.perf_counter()
    vectors = space.embed([QUESTION])
    chosen = library.candidates(vectors, QUESTION, CANDIDATES)
    found = time.perf_counter()
    best = None
    for candidate in chosen:
        known = knowledge[candidate.name]
        evidence = find_evidence(
            QUESTION,
            known.passages,
            known.passage_vectors,
            space,
            (),
            RetrievalOptions(),
        )
        likely = evidence.relevance.probability if evidence.relevance else 0.0
        if best is None or likely > best[0]:
            best = (likely, candidate.name, evidence)
    chose = time.perf_counter()
    assert best is not None
    right = best[1] == f"v{len(knowledge) // 2:04d}.mp4" and any(
        item.text == NEEDLE for item in best[2].items
    )
    return {
        "open": opened - started,
        "candidates": found - opened,
        "evidence": chose - found,
        "right": float(right),
    }


def minilm_query_s() -> float:
    from videoqa.channels.text_embedder import load_text_embedder
    from videoqa.store import models

    embedder = load_text_embedder("all-minilm-l6-v2", "cpu", fetch=models.pull)
    embedder.embed([QUESTION])
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        embedder.embed([QUESTION])
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_retrieval() -> None:
    space = WordSpace(seed=3)
    print(f"retrieval, one question, median of {RUNS} (ms); {PASSAGES_PER_VIDEO} passages per video:")
    header = f"{'videos':>7} {'passages':>9} {'open':>7} {'candidates':>11} {'evidence':>9} {'retrieval':>10}"
    print(f"{header}  right video   sync (s)")
    for count in SIZES:
        with tempfile.TemporaryDirectory(prefix="videoqa-bench-retrieval-") as work:
            folder, cache = Path(work) / "library", IndexCache(Path(work) / "cache")
            folder.mkdir()
            knowledge, sync_s = build_library(folder, cache, count, space)
            runs = [time_question(folder, cache, space, knowledge) for _ in range(RUNS)]
            median = {
                step: statistics.median(run[step] for run in runs) * 1000
                for step in ("open", "candidates", "evidence")
            }
            retrieval = median["candidates"] + median["evidence"]
            right = "yes" if all(run["right"] for run in runs) else "no"
            steps = f"{median['open']:7.1f} {median['candidates']:11.1f} {median['evidence']:9.1f}"
            size = f"{count:7d} {count * PASSAGES_PER_VIDEO:9d}"
            print(f"{size} {steps} {retrieval:10.1f}  {right:<11} {sync_s:10.1f}")
    print(f"the question embedded by all-MiniLM-L6-v2 on the CPU: {minilm_query_s() * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("part", nargs="?", choices=("index", "retrieval", "all"), default="all")
    parser.add_argument("--videos", type=int, default=4, help="videos to index (default 4)")
    parser.add_argument("--address", help="an existing Ray cluster (HOST:PORT or auto) instead of local ones")
    args = parser.parse_args()
    if args.part in ("index", "all"):
        bench_index(args.videos, args.address)
    if args.part in ("retrieval", "all"):
        bench_retrieval()


if __name__ == "__main__":
    main()
