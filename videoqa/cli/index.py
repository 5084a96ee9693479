"""``videoqa index``: prepare everything ``ask`` needs for a video or a folder of videos, ahead of time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from videoqa.cli.util import UserError, VideoProgress, reports_user_errors
from videoqa.cli.visual import embedder_option, sampling_options
from videoqa.media.timefmt import format_clock
from videoqa.store.registry import DEFAULT_SPEECH_MODEL, default_speech_model

if TYPE_CHECKING:
    from videoqa.assistant import Assistant, AssistantOptions
    from videoqa.knowledge.build import VideoKnowledge
    from videoqa.library.distributed import LibraryProgress, RayReport
    from videoqa.store.cache import IndexCache

log = logging.getLogger("videoqa")

INDEX_EPILOG = """\b
Examples:
  videoqa index talk.mp4                      # frames, scenes, speech, screen text, passage vectors
  videoqa index ~/Videos                      # every video below the folder; later runs add new ones
  videoqa index talk.mp4 --visual-only        # frames and scenes only (for scenes/search)
  videoqa index talk.mp4 --embedder checkpoints/clip-vit-b32
  videoqa index ~/Videos --ray                # one Ray task per video, on a local Ray cluster
  videoqa index /shared/videos --ray auto     # on the Ray cluster this machine belongs to
\b
--ray needs Ray (pip install "videoqa[ray]"); every node must see the videos, and should see the
cache folder ($VIDEOQA_CACHE), at the same paths: workers that cannot see the cache send their
entries back. --ray takes the next word as the address unless it starts with "-".
\b
After `videoqa index VIDEO`, the first `videoqa ask VIDEO ...` with the same channel options reads
everything from the cache. `ask` samples 1 frame per second: a different --fps indexes for `scenes`
and `search`, not for `ask`.
"""


@dataclass(frozen=True)
class IndexChoices:
    """What ``videoqa index`` was asked to make. The same choices build the assistant on this machine
    and, with ``--ray``, on every worker (called with a cache, they are the worker's indexer recipe), so
    its options, thread counts included, are those of the machine that indexes."""

    embedder: str
    device: str
    fps: float
    speech_model: str | None  # None: no speech channel
    screen_text: bool
    visual_only: bool

    def options(self) -> AssistantOptions:
        from videoqa.assistant import AssistantOptions
        from videoqa.channels.ocr import OcrOptions
        from videoqa.channels.speech import SpeechOptions
        from videoqa.media.video import SamplingOptions
        from videoqa.visual.index import IndexOptions

        text = not self.visual_only
        return AssistantOptions(
            embedder=self.embedder,
            device=self.device,
            index=IndexOptions(sampling=SamplingOptions(fps=self.fps, max_side=448)),
            speech=SpeechOptions(model=self.speech_model) if text and self.speech_model else None,
            ocr=OcrOptions() if text and self.screen_text else None,
        )

    def __call__(self, cache: IndexCache) -> ChoicesIndexer:
        return ChoicesIndexer(self, cache)


class ChoicesIndexer:
    """Indexes videos as ``videoqa index`` does (``library.distributed.Indexer``), models loaded once."""

    def __init__(self, choices: IndexChoices, cache: IndexCache) -> None:
        from videoqa.assistant import Assistant

        self.choices = choices
        self.cache = cache
        self._on_stage: Callable[[str], None] = lambda _label: None
        self.assistant = Assistant(choices.options(), cache=cache, progress=self._stage)

    def _stage(self, label: str) -> None:
        self._on_stage(label)

    def index_models(self) -> dict[str, str]:
        if self.choices.visual_only:
            return {"frames": self.assistant.embedder.id}
        return self.assistant.index_models()

    def index(self, video: Path, on_stage: Callable[[str], None]) -> None:
        from videoqa.visual.index import index_video

        self._on_stage = on_stage
        if self.choices.visual_only:
            on_stage("frames")
            index_video(video, self.assistant.embedder, self.assistant.options.index, self.cache)
        else:
            self.assistant.pipeline().knowledge(video)  # not Assistant.knowledge: nothing kept in memory


@click.command(epilog=INDEX_EPILOG)
@click.argument("target", type=click.Path(path_type=Path, readable=False))
@click.option(
    "--visual-only",
    is_flag=True,
    help="Only sample frames and cut scenes (what scenes and search need); no speech or OCR.",
)
@click.option(
    "--speech-model",
    default=default_speech_model,
    show_default=f"{DEFAULT_SPEECH_MODEL}, or $VIDEOQA_SPEECH_MODEL",
    help="Speech model: a model-store name, a faster-whisper size or a folder.",
)
@click.option("--no-speech", is_flag=True, help="Leave the speech channel out.")
@click.option("--no-screen-text", is_flag=True, help="Leave the on-screen text (OCR) channel out.")
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="local",
    default=None,
    metavar="[ADDRESS]",
    help="Index a folder on a Ray cluster, one task per video: HOST:PORT, auto (the cluster this machine "
    "is in), or nothing for a local cluster started for the run.",
)
@click.option(
    "--ray-cpus",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="CPUs Ray reserves for each video's task (a GPU too when the models run on CUDA).",
)
@embedder_option
@sampling_options
@reports_user_errors
def index(
    target: Path,
    visual_only: bool,
    speech_model: str,
    no_speech: bool,
    no_screen_text: bool,
    ray_address: str | None,
    ray_cpus: float,
    embedder: str,
    fps: float,
    device: str,
) -> None:
    """Index a video, or every video in a folder, so later questions and searches are fast."""
    from videoqa.assistant import Assistant

    choices = IndexChoices(
        embedder=embedder,
        device=device,
        fps=fps,
        speech_model=None if no_speech else speech_model,
        screen_text=not no_screen_text,
        visual_only=visual_only,
    )
    if ray_address is not None:
        if not target.is_dir():
            raise UserError(f"{target}: --ray indexes a folder of videos; give the folder")
        _index_on_ray(target, choices, None if ray_address == "local" else ray_address, ray_cpus)
        return
    with VideoProgress() as stages:
        options = choices.options()
        assistant = Assistant(options, progress=lambda label: stages.track(f"{label}: {target.name}"))
        if target.is_dir():
            _index_folder(target, assistant, visual_only, stages)
        else:
            _index_video(target, assistant, visual_only, stages)


def _index_video(video: Path, assistant: Assistant, visual_only: bool, stages: VideoProgress) -> None:
    from videoqa.visual.index import index_video

    started = time.perf_counter()
    if visual_only:
        visual = index_video(
            video,
            assistant.embedder,
            assistant.options.index,
            on_progress=stages.track(f"frames: {video.name}"),
        )
        how = "from the cache" if visual.cached else f"indexed in {time.perf_counter() - started:.1f} s"
        click.echo(f"{video}: {len(visual.scenes)} scenes from {len(visual.timestamps_s)} frames ({how})")
        return
    assistant.load_index_models()  # their ids are part of the cache keys, so even a cached video needs them
    loaded = time.perf_counter()
    known = assistant.knowledge(video)
    click.echo(
        f"{video}: {_summary(known)} (ready in {time.perf_counter() - loaded:.1f} s; "
        f"models loaded in {loaded - started:.1f} s)"
    )


def _summary(known: VideoKnowledge) -> str:
    speech = sum(p.channel == "speech" for p in known.passages)
    screen = sum(p.channel == "screen" for p in known.passages)
    frames = len(known.visual.timestamps_s)
    return (
        f"{_count(len(known.visual.scenes), 'scene')} from {_count(frames, 'frame')}, "
        f"{_count(speech, 'spoken sentence')}, {_count(screen, 'screen text')}"
    )


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"


def _index_folder(
    folder: Path,
    assistant: Assistant,
    visual_only: bool,
    stages: VideoProgress,
    refused: dict[str, str] | None = None,
) -> None:
    """Index the folder's videos and build its libraries; ``refused`` (video: reason) are reported as
    skipped rather than indexed here (their Ray tasks failed)."""
    from videoqa.errors import VideoqaError
    from videoqa.library.folder import Library

    library = Library(folder, assistant.embedder, assistant.options.index)
    report = library.sync(lambda path: stages.track(f"frames: {path.name}"))
    failed = dict(report.failed)
    if not visual_only:
        try:
            failed.update(_index_passages(folder, assistant, refused or {}))
        except VideoqaError as exc:  # the pictures are indexed; the text channels' index is reported
            failed.update(dict.fromkeys((*report.indexed, *report.unchanged), str(exc)))
    for name, reason in failed.items():
        log.warning("skipped %s: %s", name, reason)
    click.echo(
        f"{folder}: {len(report.indexed)} indexed, {len(report.unchanged)} unchanged, "
        f"{len(report.removed)} removed, {len(failed)} skipped"
    )
    if failed and len(failed) == len(report.indexed) + len(report.unchanged) + len(report.failed):
        raise UserError(f"{folder}: no video could be indexed")


def _index_passages(folder: Path, assistant: Assistant, refused: dict[str, str]) -> dict[str, str]:
    """Every video's channels and the library's passage index (what ``ask --library`` searches), saved
    video by video so a run that stops resumes; says what it skipped and why. The videos that failed."""
    from videoqa.errors import VideoError

    library = assistant.library(folder)

    def know(path: Path) -> VideoKnowledge:
        reason = refused.get(path.relative_to(library.folder).as_posix())
        if reason is not None:
            raise VideoError(reason)
        return assistant.knowledge(path)

    report = library.sync(know)
    if report.interrupted is not None:
        log.warning("the last run stopped while indexing %s; resuming", report.interrupted)
    if report.unchanged:
        done = _count(len(report.unchanged), "video")
        click.echo(f"skipped {done} indexed before with the same content and models", err=True)
    return dict(report.failed)


def _index_on_ray(folder: Path, choices: IndexChoices, address: str | None, cpus: float) -> None:
    """Each video that needs it indexed as a Ray task, then the libraries built here from the cache,
    as a local run builds them."""
    from videoqa.library import distributed
    from videoqa.store.cache import IndexCache

    distributed.require_ray()  # before anything loads: without Ray this is the one line to see
    options = distributed.RayOptions(
        address=address, cpus_per_task=cpus, gpus_per_task=1.0 if _on_cuda(choices.device) else 0.0
    )
    cache = IndexCache()
    bar = LibraryBar()
    with bar:
        with distributed.connect(options):
            started = time.perf_counter()
            indexer = choices(cache)
            models = indexer.index_models()  # the keys' model ids: every worker must have the same
            videos = _videos_to_index(folder, indexer)
            jobs, _unreadable = distributed.plan_jobs(videos)  # bad files are reported by the sync below
            progress = bar.library(len(jobs))
            report = distributed.index_on_ray(jobs, choices, models, cache, options, progress)
        _say_ray_report(report, time.perf_counter() - started)
        _index_folder(folder, indexer.assistant, choices.visual_only, bar, dict(report.failed))


def _videos_to_index(folder: Path, indexer: ChoicesIndexer) -> list[tuple[str, Path, str]]:
    """(name, path, fingerprint) of the videos to send: those the library does not hold as they are now
    (with --visual-only, every video: their entries make a cached one quick)."""
    from videoqa.library.folder import find_videos

    if not indexer.choices.visual_only:
        return indexer.assistant.library(folder).pending()
    found = []
    for path in find_videos(folder.resolve()):
        try:
            found.append(
                (path.relative_to(folder.resolve()).as_posix(), path, indexer.cache.fingerprint(path))
            )
        except OSError:
            continue  # reported by the library's sync
    return found


def _on_cuda(device: str) -> bool:
    """Whether the models run on CUDA, so each task needs a GPU reserved."""
    if device != "auto":
        return device == "cuda"
    import torch

    return bool(torch.cuda.is_available())


def _say_ray_report(report: RayReport, elapsed_s: float) -> None:
    hosts = len(report.nodes)
    sent = f"; {report.sent_entries} cache entries sent back" if report.sent_entries else ""
    click.echo(
        f"ray: {_count(len(report.indexed), 'video')} indexed on {_count(hosts, 'host')} in "
        f"{elapsed_s:.1f} s, {len(report.failed)} failed{sent}",
        err=True,
    )


class LibraryBar(VideoProgress):
    """The progress of a library on Ray: one bar, videos done and seconds of video done."""

    def library(self, total: int) -> Callable[[LibraryProgress], None]:
        task = self._progress.add_task(f"0/{total} videos", total=None, done_text="0:00", total_text="?")

        def show(progress: LibraryProgress) -> None:
            self._progress.update(
                task,
                description=f"{progress.videos_done}/{progress.videos_total} videos",
                completed=progress.seconds_done,
                total=max(progress.seconds_total, 1e-9),
                done_text=format_clock(progress.seconds_done, 0),
                total_text=format_clock(progress.seconds_total, 0),
            )

        return show
