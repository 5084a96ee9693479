"""``videoqa caption``: a caption for each scene, printed as it is written and kept in SRT/WebVTT files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from videoqa.cli.options import ModelChoice, assistant_options, model_options
from videoqa.cli.util import FetchProgress, UserError, VideoProgress, reports_user_errors
from videoqa.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from videoqa.assistant import Assistant
    from videoqa.respond.captions import CaptionEvent
    from videoqa.respond.subtitles import SubtitleFile
    from videoqa.store.cache import IndexCache

CAPTION_EPILOG = """\b
Examples:
  videoqa caption talk.mp4 --stream --srt talk.srt
  videoqa caption lecture.mp4 --vtt lecture.vtt --json > captions.json
  videoqa caption trip.mp4 --stream --model checkpoints/llava-1.5-7b --quantize 4bit
\b
--stream reads the video in time order and prints each caption as soon as the scene after it ends;
without it the video is indexed first (cached, shared with `ask`, and the captions cached with it).
Scenes with nothing said or shown join the caption before them (a stretch over 30 s is one line).
Subtitle files hold every caption written so far at every moment, so stopping with Ctrl-C leaves a
valid file.
"""
INTERRUPTED_EXIT = 130  # what a shell reports for a program stopped by Ctrl-C


@click.command(epilog=CAPTION_EPILOG)
# A str, not a Path: messages name the file exactly as typed ("./clip.mp4"), and check_file() checks it.
@click.argument("video", type=click.Path(readable=False))
@click.option("--stream", is_flag=True, help="Caption scenes as the video is read, in time order.")
@click.option("--srt", type=click.Path(path_type=Path), default=None, help="Write the captions as SRT here.")
@click.option(
    "--vtt", type=click.Path(path_type=Path), default=None, help="Write the captions as WebVTT here."
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the captions as JSON (with --stream: one JSON object a line, as they come).",
)
@model_options
@reports_user_errors
def caption(
    video: str, stream: bool, srt: Path | None, vtt: Path | None, as_json: bool, **model_choice: Any
) -> None:
    """Caption each scene of VIDEO: `[m:ss-m:ss] caption` lines on stdout."""
    from videoqa.assistant import Assistant
    from videoqa.media.video import check_file
    from videoqa.respond.captions import QuietMerger
    from videoqa.respond.writers import Captions, writer

    check_file(video)
    options = assistant_options(ModelChoice(**model_choice))
    files = _subtitle_files(srt, vtt)
    with VideoProgress() as stages, FetchProgress() as fetches:
        assistant = Assistant(
            options,
            progress=lambda label: stages.track(f"{label}: {Path(video).name}"),
            fetch_progress=fetches.update,
        )
        if stream:  # the captioning model works while the video is read
            assistant.load_models()
        else:  # indexing shows its progress; captions then print plainly
            assistant.check_models()
            assistant.knowledge(video)
            assistant.load_models()
    written: list[CaptionEvent] = []
    merger = QuietMerger(options.captioning.quiet_merge_s)
    model = assistant.llm.id
    # JSON of the whole video is printed once every caption is in; text and JSON lines as each comes
    lines = None if as_json and not stream else writer("jsonl" if as_json else "text")

    def emit(events: list[CaptionEvent]) -> None:
        for event in events:
            _keep(event, files, written)
            if lines is not None:
                click.echo(lines.render(Captions(video, model, (event,))), nl=False)

    try:
        for event in scene_captions(assistant, video, stream):
            emit(merger.push(event))
        emit(merger.finish())
    except KeyboardInterrupt:
        emit(merger.finish())  # the caption held for its quiet neighbours is written too
        kept = ", ".join(str(f.path) for f in files)
        click.echo(
            f"interrupted after {len(written)} captions" + (f"; {kept} hold them" if kept else ""), err=True
        )
        sys.exit(INTERRUPTED_EXIT)
    if lines is None:
        click.echo(writer("json").render(Captions(video, model, tuple(written))), nl=False)


def scene_captions(
    assistant: Assistant, video: str, stream: bool, cache: IndexCache | None = None
) -> Iterator[CaptionEvent]:
    """One caption a scene: as the video is read, or for the indexed video — from ``cache`` (the index
    cache by default) when this video was captioned before with the same models, prompts and options.
    The model's captions are what makes captioning slow, and they were made anew on every run; a seeing
    model's captions also depend on its memory bridge, and are not cached."""
    from videoqa.llm import is_visual
    from videoqa.respond.captions import cached_captions, captions_key
    from videoqa.store.cache import IndexCache

    if stream or is_visual(assistant.llm):
        return assistant.caption(video, stream=stream)
    known = assistant.knowledge(video)
    key = captions_key(known.visual.cache_key, assistant.model_names(), assistant.options.captioning)
    return cached_captions(lambda: assistant.caption(video), cache or IndexCache(), key)


def _subtitle_files(srt: Path | None, vtt: Path | None) -> list[SubtitleFile]:
    from videoqa.respond.subtitles import SubtitleFile

    if srt is not None and vtt is not None and srt.resolve() == vtt.resolve():
        raise click.UsageError("--srt and --vtt name the same file")
    try:
        return [SubtitleFile(path, fmt) for path, fmt in ((srt, "srt"), (vtt, "vtt")) if path is not None]
    except InputError as exc:  # what SubtitleFile checks first: the paths given (a folder, no such folder)
        raise UserError(str(exc)) from None


def _keep(event: CaptionEvent, files: list[SubtitleFile], written: list[CaptionEvent]) -> None:
    """Add ``event`` to the subtitle files (unless it shows nothing) and to what was written."""
    from videoqa.respond.writers import cue_of

    cue = cue_of(event)
    if cue is not None:
        for file in files:
            file.add(cue)
    written.append(event)
