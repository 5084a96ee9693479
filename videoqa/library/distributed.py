"""Indexing a library on a Ray cluster: each video's whole indexing is one Ray task.

The driver (the machine that runs ``videoqa index DIR --ray``) decides which videos need indexing, sends
one task per video, and afterwards builds the library's manifest and vector indexes from the cache exactly
as a local run does. A task runs the same stages a local run does (frames, scenes, speech, screen text,
passage vectors) with the same code and models, so it writes the same cache entries: same keys, same
bytes.

Where the entries go:

- **Shared storage** (the usual case): every worker sees the driver's cache folder at the same path (a
  network or cluster file system). Tasks write into it directly; entries are written atomically
  (``store/cache.py``: a temporary file renamed into place, under a lock), so two workers, or a worker
  killed half-way, never leave half an entry. The driver checks this per run: it leaves a token file in
  its cache folder, and a worker that reads the same token there uses the folder.
- **No shared cache**: a worker that cannot see the token indexes into a private temporary folder and
  sends the entries back with its result; the driver writes them (atomically) into its cache.

The videos themselves must be readable on every worker at the same path as on the driver (shared storage,
or the same files copied to every node): a worker that cannot read a video, or reads other content
there, reports that video as failed and the run goes on.

Why Ray Core tasks and not Ray Data: the unit of work is a whole video (seconds to many minutes), its
output is a handful of files, not rows, and each video must fail or be retried on its own. Tasks give
exactly that (``max_retries`` for a dead worker, ``retry_exceptions`` for an unexpected error, a failure
of one video that leaves the others alone), with nothing to build or stream; Ray Data's batching, its
operator pipeline and its block bookkeeping would add start-up cost and a dataset-wide failure mode for
no gain. Workers are reused across tasks, so each worker process loads the models once (kept in
``_LOADED``), as an actor pool would, without the actors' fixed placement.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from videoqa.errors import OptionsError, VideoqaError
from videoqa.media.video import probe
from videoqa.store.cache import IndexCache
from videoqa.store.paths import replace_atomically

log = logging.getLogger("videoqa")

RAY_MISSING = 'Ray is not installed; install it with: pip install "videoqa[ray]"'
# How the entries a task makes reach the driver's cache: "auto" finds out per worker, "shared" requires
# the worker to see the cache folder, "send" always sends them back (as when nothing is shared).
CACHE_TRANSFERS = ("auto", "shared", "send")
# Test-only hook: a path. The first task (across the whole cluster) that starts a stage other than its
# frames (speech or screen text: models loaded, the video being read) creates this file and kills its own
# worker process, so the tests can check a killed worker's video is retried and finishes. Never set it
# otherwise.
TEST_KILL_ENV = "VIDEOQA_TEST_RAY_KILL"
# Ray sets this to a task's CPU count (1 by default) in a worker where it is unset, before the task's
# code is even loaded. It changes numerics: numpy's BLAS and the speech model's OpenMP use it, and with 1
# thread whisper heard "leads" where a local run heard "leaves". So the job's workers get the driver's
# value, or an empty one where the driver has none: Ray then leaves it alone, and the runtimes take an
# empty value as unset (libgomp says so once, in the worker's log), as a local run does.
_THREADS_ENV = "OMP_NUM_THREADS"
# Entries are files named by a 32-digit hex key; a result naming anything else is not written.
_ENTRY_NAME_CHARS = frozenset("0123456789abcdef")
_ENTRY_KEY_LENGTH = 32
# Ray's setting for how many seconds a driver tries to reach the cluster's GCS (ray/_private/node.py)
_GCS_TRIES_ENV = "RAY_gcs_server_port_wait_time_s"
# A TCP connection to the cluster's address: refused or unanswered within this many seconds is reported
# at once, rather than after Ray's own retries (a minute and more).
_PROBE_TIMEOUT_S = 5.0


class RayError(VideoqaError):
    """Ray is missing, or the cluster cannot be reached or used."""


@dataclass(frozen=True)
class RayOptions:
    """Where and how the tasks run."""

    address: str | None = None  # None: a local cluster for the run; "auto"; "HOST:PORT"; "ray://HOST:PORT"
    local_cpus: int | None = None  # CPUs of the local cluster (None: all of this machine's)
    cpus_per_task: float = 1.0  # CPUs Ray reserves for one video's indexing
    gpus_per_task: float = 0.0  # GPUs reserved for one video: set it when the models run on CUDA
    max_retries: int = 3  # further tries of a video whose worker died or raised an unexpected error
    # longest wait for the cluster to accept this driver (Ray alone retries for 20 s and more; a
    # cluster that answers takes a second or two)
    connect_timeout_s: float = 10.0
    cache_transfer: str = "auto"  # one of CACHE_TRANSFERS

    def __post_init__(self) -> None:
        if self.cache_transfer not in CACHE_TRANSFERS:
            raise OptionsError(
                f"cache_transfer must be one of {', '.join(CACHE_TRANSFERS)}, got {self.cache_transfer!r}"
            )
        if self.local_cpus is not None and self.local_cpus < 1:
            raise OptionsError(f"local_cpus must be at least 1, got {self.local_cpus}")
        if self.cpus_per_task <= 0 or self.gpus_per_task < 0:
            raise OptionsError("cpus_per_task must be above 0 and gpus_per_task at least 0")
        if self.max_retries < 0 or self.connect_timeout_s <= 0:
            raise OptionsError("max_retries must be at least 0 and connect_timeout_s above 0")


class Indexer(Protocol):
    """What a worker indexes a video with: the same models and code as a local ``videoqa index``."""

    def index_models(self) -> dict[str, str]:
        """The model of each channel (as ``PassageLibrary`` records them); loads them."""

    def index(self, video: Path, on_stage: Callable[[str], None]) -> None:
        """Index ``video`` into the cache; ``on_stage`` is told the name of each stage as it starts."""


# Builds a worker's indexer over a cache. It travels to every worker, so it must pickle, and it names the
# indexer each worker keeps loaded between tasks, so it must hash (a frozen dataclass does both).
IndexerRecipe = Callable[[IndexCache], Indexer]


@dataclass(frozen=True)
class VideoJob:
    """One video to index."""

    name: str  # its path relative to the library folder
    path: str  # its absolute path on the driver; workers must see it at the same path
    content: str  # its fingerprint on the driver: a worker reading other content refuses it
    duration_s: float  # for the progress in video-hours


@dataclass(frozen=True)
class LibraryProgress:
    """How far a run is: videos and seconds of video done."""

    videos_done: int
    videos_total: int
    seconds_done: float
    seconds_total: float


@dataclass(frozen=True)
class RayReport:
    """What the tasks did."""

    indexed: tuple[str, ...]  # videos whose entries are now in the driver's cache
    failed: tuple[tuple[str, str], ...]  # (video, one-line reason)
    sent_entries: int  # entries workers sent back because they could not see the cache folder
    nodes: tuple[str, ...]  # the hosts that indexed videos


@dataclass(frozen=True)
class _Plan:
    """What every task of a run is given besides its video."""

    recipe: IndexerRecipe
    models: dict[str, str]  # the driver's models: a worker with others would write other keys
    version: str  # videoqa's version on the driver
    cache_root: str
    token_name: str  # a file in the cache folder holding ``token``: seen by workers that share it
    token: str
    transfer: str


@dataclass(frozen=True)
class _Result:
    """A task's answer."""

    name: str
    error: str | None
    entries: dict[str, bytes] = field(default_factory=dict)  # sent back: the worker had no shared cache
    warnings: tuple[str, ...] = ()
    node: str = ""


def require_ray() -> ModuleType:
    """The ``ray`` module, or RayError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayError(RAY_MISSING) from None
    return ray


@contextmanager
def connect(options: RayOptions) -> Iterator[None]:
    """Join the cluster at ``options.address`` (or start a local one) for the block, then leave it.

    An address nothing answers at (within 5 s), or one that does not accept the driver within
    ``connect_timeout_s``, is a RayError: Ray alone would retry for 20 s and more, logging each try.
    """
    ray = require_ray()
    quiet = {
        "logging_level": logging.ERROR,
        "log_to_driver": False,  # workers' warnings come back with their results, one line each
        "runtime_env": {"env_vars": {_THREADS_ENV: os.environ.get(_THREADS_ENV, "")}},
    }
    if options.address is None:
        # Ray starts its processes from the main thread only; a local start needs no time-out.
        try:
            ray.init(num_cpus=options.local_cpus, include_dashboard=False, **quiet)
        except (RuntimeError, ConnectionError, OSError, ValueError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise RayError(f"cannot start a local Ray cluster ({reason})") from None
    else:
        _check_reachable(options.address)
        _join_within(ray, options.address, options.connect_timeout_s, quiet)
    try:
        # Ray prints a worker's death and the retry it makes to stdout ("(raylet) A worker died ...");
        # stdout is for the command's result, so while connected they go to stderr.
        with redirect_stdout(sys.stderr):
            yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """A TCP connection to HOST:PORT (not for "auto", which Ray resolves itself)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise RayError(f"--ray {address}: give the cluster's HOST:PORT (e.g. 10.0.0.5:6379) or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=_PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise RayError(
            f"--ray {address}: no Ray cluster answers there ({exc.strerror or exc}); "
            "check the address (ray status on the head node prints it)"
        ) from None


def _join_within(ray: ModuleType, address: str, timeout_s: float, quiet: dict[str, Any]) -> None:
    """``ray.init(address)`` under a time-out: joining runs in a daemon thread that is left behind
    when it hangs (a port that answers but is no Ray cluster), so the command can still exit."""
    failure: list[BaseException] = []

    def join() -> None:
        try:
            ray.init(address=address, **quiet)
        except BaseException as exc:  # handed to the waiting thread, which raises it
            failure.append(exc)

    thread = threading.Thread(target=join, name="videoqa-ray-connect", daemon=True)
    # Ray's own tries to reach the cluster's GCS, one a second (20 by default): fewer than our time-out,
    # so a join that cannot succeed ends by itself and the command exits at once, not when Ray gives up.
    tries = {_GCS_TRIES_ENV: str(max(1, int(timeout_s) - 2))} if _GCS_TRIES_ENV not in os.environ else {}
    with _native_stderr_muted() as keep_muted, _environment(tries):
        thread.start()
        thread.join(timeout_s)
        if thread.is_alive():
            keep_muted()
            # Ray's exit hook would wait for the abandoned join (it holds Ray's lock), for as long as
            # Ray goes on trying; there is nothing to shut down, as nothing was joined.
            atexit.unregister(ray.shutdown)
            raise RayError(
                f"--ray {address}: no Ray cluster accepted this driver within {timeout_s:.0f} s "
                "(something answers there: is it the cluster's address?)"
            )
    if failure:
        reason = str(failure[0]).splitlines()[0] if str(failure[0]) else type(failure[0]).__name__
        raise RayError(f"--ray {address}: cannot join the Ray cluster ({reason})")


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` set in the environment for the block only."""
    os.environ.update(values)
    try:
        yield
    finally:
        for name in values:
            os.environ.pop(name, None)


@contextmanager
def _native_stderr_muted() -> Iterator[Callable[[], None]]:
    """Send file descriptor 2 to /dev/null for the block: while it joins, Ray's C++ client logs a line a
    second to it ("Failed to get cluster ID from GCS server") when the address answers but is no Ray
    cluster. Calling what it yields keeps descriptor 2 muted afterwards (a join left hanging goes on
    logging) and gives Python's ``sys.stderr`` a copy of the real one, for the error line."""
    sys.stderr.flush()
    saved, muted = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(muted, 2)
    os.close(muted)
    keep = []
    try:
        yield lambda: keep.append(True)
    finally:
        if keep:
            sys.stderr = os.fdopen(saved, "w", buffering=1)
        else:
            os.dup2(saved, 2)
            os.close(saved)


def plan_jobs(videos: Sequence[tuple[str, Path, str]]) -> tuple[list[VideoJob], list[str]]:
    """(name, path, fingerprint) of each video to index, as jobs with their durations; and the names of
    those that cannot be probed (left to the library's sync to report, never sent to the cluster)."""
    jobs, unreadable = [], []
    for name, path, content in videos:
        try:
            duration_s = probe(path).duration_s
        except VideoqaError:
            unreadable.append(name)
            continue
        jobs.append(VideoJob(name, str(path.resolve()), content, duration_s))
    return jobs, unreadable


def index_on_ray(
    jobs: Sequence[VideoJob],
    recipe: IndexerRecipe,
    models: Mapping[str, str],
    cache: IndexCache,
    options: RayOptions,
    on_progress: Callable[[LibraryProgress], None] | None = None,
) -> RayReport:
    """Index every job's video as one Ray task on the connected cluster (see ``connect``).

    Each video's entries end in ``cache``: written there by the worker, or sent back and written here.
    A video that fails (bad file, other models on the worker, retries used up) is reported, not fatal.
    """
    ray = require_ray()
    report = on_progress or (lambda _progress: None)
    token_name, token = f".videoqa-ray-{secrets.token_hex(8)}", secrets.token_hex(16)
    plan = _Plan(
        recipe,
        dict(models),
        _version(),
        str(cache.root),
        token_name,
        token,
        options.cache_transfer,
    )
    token_file = cache.root / token_name
    try:
        if options.cache_transfer != "send":
            cache.root.mkdir(parents=True, exist_ok=True)
            token_file.write_text(token)
        task = ray.remote(_index_video).options(
            num_cpus=options.cpus_per_task,
            num_gpus=options.gpus_per_task,
            max_retries=options.max_retries,
            retry_exceptions=True,
        )
        pending = {task.remote(plan, job): job for job in jobs}
        return _collect(ray, pending, cache, options.max_retries, report)
    except OSError as exc:
        raise RayError(f"cannot write to the cache folder {cache.root} ({exc.strerror or exc})") from None
    finally:
        token_file.unlink(missing_ok=True)


def _collect(
    ray: ModuleType,
    pending: dict[Any, VideoJob],
    cache: IndexCache,
    retries: int,
    report: Callable[[LibraryProgress], None],
) -> RayReport:
    """Wait for the tasks as they finish, in any order, writing back what workers sent."""
    total = LibraryProgress(0, len(pending), 0.0, sum(job.duration_s for job in pending.values()))
    done, indexed, failed, nodes, sent = 0, [], [], set(), 0
    seconds = 0.0
    report(total)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        job = pending.pop(ready[0])
        result = _outcome(ray, ready[0], job, retries)
        for warning in result.warnings:
            log.warning("%s", warning)
        sent += _receive(cache, result.entries)
        if result.error is None:
            indexed.append(job.name)
            nodes.add(result.node)
        else:
            failed.append((job.name, result.error))
        done, seconds = done + 1, seconds + job.duration_s
        report(LibraryProgress(done, total.videos_total, seconds, total.seconds_total))
    return RayReport(tuple(sorted(indexed)), tuple(sorted(failed)), sent, tuple(sorted(nodes)))


def _outcome(ray: ModuleType, ref: Any, job: VideoJob, retries: int) -> _Result:
    """The task's result, or a failed one when Ray gave up on it (its worker died every time)."""
    try:
        result: _Result = ray.get(ref)
    except ray.exceptions.RayError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[-1] if isinstance(exc, ray.exceptions.RayTaskError) and lines else lines[0]
        return _Result(job.name, f"indexing failed on the cluster after {retries + 1} tries ({reason})")
    return result


def _receive(cache: IndexCache, entries: Mapping[str, bytes]) -> int:
    """Write entries a worker sent into the driver's cache (atomically); how many were new."""
    written = 0
    for name, data in entries.items():
        key = name.removesuffix(".npz")
        if len(key) != _ENTRY_KEY_LENGTH or not set(key) <= _ENTRY_NAME_CHARS or not name.endswith(".npz"):
            continue
        target = cache.path_for(key)
        if target.exists():  # the same key holds the same content
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(target, _writer(data))
        except OSError as exc:
            raise RayError(f"cannot write to the cache folder {cache.root} ({exc.strerror or exc})") from None
        written += 1
    return written


def _writer(data: bytes) -> Callable[[Path], int]:
    return lambda path: path.write_bytes(data)


def _version() -> str:
    try:
        return metadata.version("videoqa")
    except metadata.PackageNotFoundError:
        return "unknown"


# --- on the worker ---------------------------------------------------------------------------------

# This worker process's indexers, by (recipe, cache folder): Ray reuses a worker process for many tasks,
# so the models are loaded once per process, not once per video.
_LOADED: dict[tuple[Hashable, str], Indexer] = {}
_PRIVATE: list[Path] = []  # this process's private cache folder, made when first needed


def _index_video(plan: _Plan, job: VideoJob) -> _Result:
    """One video's whole indexing, on a worker. Bad input is a failed result; anything else (a bug,
    running out of memory) raises, and Ray retries the task."""
    shared = _sees_shared_cache(plan)
    if plan.transfer == "shared" and not shared:
        return _Result(job.name, f"this worker ({_host()}) cannot see the cache folder {plan.cache_root}")
    cache = IndexCache(Path(plan.cache_root) if shared else _private_root())
    with _captured_warnings() as warnings:
        try:
            indexer = _indexer(plan.recipe, cache)
            _check_like_driver(plan, indexer)
            video = _readable_video(job, cache)
            indexer.index(video, _stage_hook())
            error = None
        except VideoqaError as exc:
            error = str(exc)
    entries = {} if shared else _take_entries(cache.root)
    return _Result(job.name, error, entries, tuple(warnings), _host())


def _sees_shared_cache(plan: _Plan) -> bool:
    if plan.transfer == "send":
        return False
    try:
        return (Path(plan.cache_root) / plan.token_name).read_text() == plan.token
    except OSError:
        return False


def _private_root() -> Path:
    if not _PRIVATE:
        _PRIVATE.append(Path(tempfile.mkdtemp(prefix="videoqa-ray-cache-")))
    return _PRIVATE[0]


def _indexer(recipe: IndexerRecipe, cache: IndexCache) -> Indexer:
    key = (recipe, str(cache.root))
    if key not in _LOADED:
        _LOADED[key] = recipe(cache)
    return _LOADED[key]


def _check_like_driver(plan: _Plan, indexer: Indexer) -> None:
    """Refuse to index with other code or models than the driver's: the entries would have other keys,
    and the driver's library would not find them."""
    if _version() != plan.version:
        raise RayError(f"this worker ({_host()}) runs videoqa {_version()}, the driver {plan.version}")
    here = indexer.index_models()
    differ = sorted(channel for channel in plan.models if here.get(channel) != plan.models[channel])
    if differ:
        channel = differ[0]
        raise RayError(
            f"this worker ({_host()}) indexes {channel} with {here.get(channel)}, the driver with "
            f"{plan.models[channel]}; install the same models on every node (and give the same --device)"
        )


def _readable_video(job: VideoJob, cache: IndexCache) -> Path:
    path = Path(job.path)
    try:
        same = cache.fingerprint(path) == job.content
    except OSError:
        raise RayError(
            f"{job.path}: not readable on this worker ({_host()}); every node must see the videos at "
            "the same path (shared storage, or the same files copied to each)"
        ) from None
    if not same:
        raise RayError(f"{job.path}: holds other content on this worker ({_host()}) than on the driver")
    return path


def _take_entries(root: Path) -> dict[str, bytes]:
    """The entries in the private cache folder, removed from it: they now travel to the driver."""
    entries = {}
    for path in sorted(root.glob("*.npz")):
        entries[path.name] = path.read_bytes()
        path.unlink()
    return entries


def _stage_hook() -> Callable[[str], None]:
    """What the indexer tells each stage to; only the test-only kill hook listens (TEST_KILL_ENV)."""
    marker = os.environ.get(TEST_KILL_ENV)

    def on_stage(label: str) -> None:
        if marker is None or label == "frames":
            return
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:  # killed once already: this try runs to the end
            return
        sys.stderr.flush()
        os._exit(1)  # as a worker that runs out of memory or loses its machine: no clean-up at all

    return on_stage


@contextmanager
def _captured_warnings() -> Iterator[list[str]]:
    """videoqa's warnings during a task, sent to the driver, which shows them as a local run does."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            said.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    log.addHandler(handler)
    try:
        yield said
    finally:
        log.removeHandler(handler)


def _host() -> str:
    return socket.gethostname()
