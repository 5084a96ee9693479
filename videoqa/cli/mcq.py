"""``videoqa bench mcq``: multiple-choice accuracy on EgoSchema, NExT-QA or MLVU annotations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from videoqa.bench.mcq import FORMATS, NEXTQA_FAMILIES, NEXTQA_TYPE_NAMES
from videoqa.cli.options import ModelChoice, assistant_options, model_options
from videoqa.cli.util import FetchProgress, UserError, reports_user_errors

if TYPE_CHECKING:
    from videoqa.bench.mcq import McqReport, McqResult, Tally

MCQ_EPILOG = """\b
Examples:
  videoqa bench mcq --questions nextqa/val.csv --videos NExTVideo --limit 200
  videoqa bench mcq --questions egoschema/questions.json --answers egoschema/subset_answers.json
                    --videos egoschema/videos --json
  videoqa bench mcq --questions MLVU/json/1_plotQA.json --videos MLVU/video --out plotqa.json
\b
The format is told from the file: a .csv is NExT-QA, a JSON list with q_uid is EgoSchema, one with
candidates is MLVU; --format names it. Each video is looked for by name in --videos or one folder below,
with any of .mp4 .mkv .webm .avi .mov; an MLVU question in its own task's folder first
(MLVU/video/2_needle for 2_needle.json: names repeat across tasks). Records that cannot be asked (an
answer that is none of the candidates, an empty question) are skipped and counted in one warning; MLVU's
open-ended tasks (8_sub_scene, 9_summary) are refused. Scoring follows each set's own evaluation script:
by option index, NExT-QA's TP counted as TN. A question whose video is missing or unreadable is skipped
with a warning. Each video is indexed once (and cached) for all its questions.
"""


@click.command(epilog=MCQ_EPILOG)
@click.option(
    "--questions",
    "questions_file",
    required=True,
    type=click.Path(path_type=Path),
    help="The benchmark's annotation file (questions.json, val.csv, a task's .json).",
)
@click.option(
    "--videos",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The folder that holds the benchmark's videos.",
)
@click.option(
    "--answers",
    type=click.Path(path_type=Path),
    default=None,
    help="EgoSchema's answer key ({q_uid: index}, e.g. subset_answers.json).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="The annotation format; default: told from the file.",
)
@click.option("--limit", type=int, default=None, help="Ask only the first N questions.")
@click.option("--json", "as_json", is_flag=True, help="Print the report (tallies and every result) as JSON.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Also write the JSON report to this file.",
)
@model_options
@reports_user_errors
def mcq(
    questions_file: Path,
    videos: Path,
    answers: Path | None,
    fmt: str | None,
    limit: int | None,
    as_json: bool,
    out: Path | None,
    **model_choice: Any,
) -> None:
    """Multiple-choice accuracy on a benchmark's questions, overall and per question type."""
    from videoqa.assistant import Assistant
    from videoqa.bench.mcq import evaluate, load_questions

    if limit is not None and limit < 1:
        raise UserError(f"--limit must be 1 or more, got {limit}")
    if not videos.is_dir():
        raise UserError(f"{videos}: no such folder; give the folder that holds the benchmark's videos")
    if out is not None and not out.parent.is_dir():  # found now, not after hours of answering
        raise UserError(f"{out.parent}: no such folder for --out")
    questions = load_questions(questions_file, answers, fmt)[:limit]
    options = assistant_options(ModelChoice(**model_choice))
    bar = _QuestionBar(len(questions))
    with FetchProgress() as fetches:
        assistant = Assistant(options, progress=bar.stage, fetch_progress=fetches.update)
        assistant.load_models()  # a wrong model name fails now, not at the first question
    with bar:
        report = evaluate(assistant, questions, videos, on_result=bar.advance)
    document = {
        "questions": str(questions_file),
        "videos": str(videos),
        "model": assistant.llm.id,
        **report.to_json(),
    }
    if out is not None:
        out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    click.echo(json.dumps(document, indent=2) if as_json else report_table(report))


class _QuestionBar:
    """ "questions i/n" on stderr while the benchmark runs, the indexing stage in its label; drawn only
    when stderr is a terminal, so pipes and logs see the report and the one-line warnings alone."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("questions", total=total)

    def __enter__(self) -> _QuestionBar:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.__exit__(None, None, None)

    def stage(self, label: str) -> None:
        """The assistant's stage callback: names the stage a new video's indexing is in."""
        self._progress.update(self._task, description=f"questions ({label})")

    def advance(self, result: McqResult) -> None:
        self._progress.update(self._task, advance=1, description="questions")


def report_table(report: McqReport) -> str:
    """Accuracy per question type (NExT-QA's named as its eval_mc.py names them), NExT-QA's families when
    there are any, and the total, as a table."""
    rows = [(_type_label(qtype), tally) for qtype, tally in report.by_type.items()]
    rows += [(f"{family} ({NEXTQA_FAMILIES[family]})", tally) for family, tally in report.by_family.items()]
    rows.append(("total", report.overall))
    width = max(len("type"), *(len(name) for name, _ in rows))
    lines = [f"{'type':<{width}}  {'n':>5}  {'correct':>7}  {'accuracy':>8}"]
    lines += [
        f"{name:<{width}}  {tally.n:>5}  {tally.correct:>7}  {_percent(tally):>8}" for name, tally in rows
    ]
    lines.append(f"skipped: {report.skipped}")
    if report.unscored:
        lines.append(f"answered without an answer key (not scored): {report.unscored}")
    return "\n".join(lines)


def _type_label(qtype: str) -> str:
    name = NEXTQA_TYPE_NAMES.get(qtype)
    return f"{qtype} ({name})" if name else qtype


def _percent(tally: Tally) -> str:
    return f"{tally.accuracy:.1%}" if tally.accuracy is not None else "-"
