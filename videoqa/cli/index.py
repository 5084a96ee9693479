"""``videoqa index``: prepare everything ``ask`` needs for a video or a folder of videos, ahead of time."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from videoqa.cli.util import UserError, VideoProgress, reports_user_errors
from videoqa.cli.visual import embedder_option, sampling_options
from videoqa.store.registry import DEFAULT_SPEECH_MODEL, default_speech_model

if TYPE_CHECKING:
    from videoqa.assistant import Assistant
    from videoqa.knowledge.build import VideoKnowledge

log = logging.getLogger("videoqa")

INDEX_EPILOG = """\b
Examples:
  videoqa index talk.mp4                      # frames, scenes, speech, screen text, passage vectors
  videoqa index ~/Videos                      # every video below the folder; later runs add new ones
  videoqa index talk.mp4 --visual-only        # frames and scenes only (for scenes/search)
  videoqa index talk.mp4 --embedder checkpoints/clip-vit-b32
\b
After `videoqa index VIDEO`, the first `videoqa ask VIDEO ...` with the same channel options reads
everything from the cache. `ask` samples 1 frame per second: a different --fps indexes for `scenes`
and `search`, not for `ask`.
"""


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
@embedder_option
@sampling_options
@reports_user_errors
def index(
    target: Path,
    visual_only: bool,
    speech_model: str,
    no_speech: bool,
    no_screen_text: bool,
    embedder: str,
    fps: float,
    device: str,
) -> None:
    """Index a video, or every video in a folder, so later questions and searches are fast."""
    from videoqa.assistant import Assistant, AssistantOptions
    from videoqa.channels.ocr import OcrOptions
    from videoqa.channels.speech import SpeechOptions
    from videoqa.media.video import SamplingOptions
    from videoqa.visual.index import IndexOptions

    options = AssistantOptions(
        embedder=embedder,
        device=device,
        index=IndexOptions(sampling=SamplingOptions(fps=fps, max_side=448)),
        speech=None if no_speech or visual_only else SpeechOptions(model=speech_model),
        ocr=None if no_screen_text or visual_only else OcrOptions(),
    )
    with VideoProgress() as stages:
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


def _index_folder(folder: Path, assistant: Assistant, visual_only: bool, stages: VideoProgress) -> None:
    from videoqa.errors import VideoqaError
    from videoqa.library.folder import Library

    library = Library(folder, assistant.embedder, assistant.options.index)
    report = library.sync(lambda path: stages.track(f"frames: {path.name}"))
    failed = dict(report.failed)
    if not visual_only:
        try:
            failed.update(_index_passages(folder, assistant))
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


def _index_passages(folder: Path, assistant: Assistant) -> dict[str, str]:
    """Every video's channels and the library's passage index (what ``ask --library`` searches), saved
    video by video so a run that stops resumes; says what it skipped and why. The videos that failed."""
    report = assistant.sync_library(folder)
    if report.interrupted is not None:
        log.warning("the last run stopped while indexing %s; resuming", report.interrupted)
    if report.unchanged:
        done = _count(len(report.unchanged), "video")
        click.echo(f"skipped {done} indexed before with the same content and models", err=True)
    return dict(report.failed)
