"""``videoqa bench``: the needle-in-a-video-haystack test and multiple-choice evaluation, on your models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from videoqa.cli.mcq import mcq
from videoqa.cli.options import ModelChoice, assistant_options, model_options
from videoqa.cli.util import FetchProgress, VideoProgress, reports_user_errors

if TYPE_CHECKING:
    from videoqa.bench.needle import LengthRun, NeedleOptions, NeedleResult

NEEDLE_EPILOG = """\b
Examples:
  videoqa bench needle --lengths 1,5,15 --out needle/
  videoqa bench needle --lengths 60 --depths 0,50,100 --kind speech --model checkpoints/qwen2.5-3b.gguf
  videoqa bench needle --footage ~/Videos/holiday --lengths 10
  videoqa bench needle --lengths 1,5 --voice both
\b
Haystacks are rendered once (espeak-ng or Piper, and ffmpeg; about a minute per 10 minutes of video) and
cached, so a rerun with another model only indexes and asks. --voice both renders each length twice, the
same facts at the same times, and reports the voices side by side. Writes needle.json and needle.png to
--out.
"""


@click.group()
def bench() -> None:
    """Measure videoqa on your machine and models: needle in a haystack, multiple choice."""


bench.add_command(mcq)


def _numbers(text: str, kind: type[float] | type[int], what: str) -> tuple[Any, ...]:
    try:
        return tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{what} must be comma-separated numbers, got {text!r}") from None


@bench.command(epilog=NEEDLE_EPILOG)
@click.option(
    "--lengths",
    default="1,5,15,30,60,120",
    show_default=True,
    help="Haystack lengths in minutes, comma-separated.",
)
@click.option(
    "--depths",
    default="0,25,50,75,100",
    show_default=True,
    help="Needle depths in percent of the video, comma-separated.",
)
@click.option(
    "--kind",
    "kinds",
    default="speech,text",
    show_default=True,
    help="Needle kinds: speech (a sentence said), text (a sign on screen).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("needle-results"),
    show_default=True,
    help="Folder for needle.json and needle.png.",
)
@click.option(
    "--footage",
    type=click.Path(path_type=Path),
    default=None,
    help="A folder of your videos to build haystacks from (default: the sample clips).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the needle facts.")
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Seconds a cited passage may lie from the needle.",
)
@click.option(
    "--voice",
    type=click.Choice(["espeak", "piper", "both"]),
    default=None,
    help="Who speaks the narration: espeak-ng (robotic), piper (a neural voice, with quiet noise "
    "under it) or both, side by side. Default: both when piper-tts is installed, else espeak.",
)
@model_options
@reports_user_errors
def needle(
    lengths: str,
    depths: str,
    kinds: str,
    out: Path,
    footage: Path | None,
    seed: int,
    tolerance: float,
    voice: str | None,
    **model_choice: Any,
) -> None:
    """Hide facts at several depths of videos of several lengths and ask for them."""
    from videoqa.assistant import Assistant
    from videoqa.bench.needle import NeedleOptions, footage_files, report_json, run_needles, save_heatmap
    from videoqa.testmedia.voices import resolve_voices

    options = NeedleOptions(
        lengths_min=_numbers(lengths, float, "--lengths"),
        depths=_numbers(depths, int, "--depths"),
        kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
        seed=seed,
        tolerance_s=tolerance,
        voices=resolve_voices(voice),
    )
    files = footage_files(footage.expanduser() if footage is not None else None)
    out.mkdir(parents=True, exist_ok=True)
    runs: list[LengthRun] = []
    with VideoProgress() as stages, FetchProgress() as fetches:
        assistant = Assistant(
            assistant_options(ModelChoice(**model_choice)),
            progress=lambda label: stages.track(f"{label}: haystack"),
            fetch_progress=fetches.update,
        )
        assistant.load_models()
        for run in run_needles(assistant, options, files):
            runs.append(run)
            found = sum(r.found for r in run.results)
            click.echo(
                f"{run.length_min:g} min, {run.voice}: built in {run.build_s:.0f} s, indexed in "
                f"{run.index_s:.0f} s, {found}/{len(run.results)} found",
                err=True,
            )
    report = report_json(runs, options, files, assistant.model_names())
    (out / "needle.json").write_text(json.dumps(report, indent=2))
    save_heatmap(runs, options, out / "needle.png", _title(report["models"]))
    click.echo(_table(runs, options))
    click.echo(f"wrote {out / 'needle.json'} and {out / 'needle.png'}", err=True)


def _title(models: dict[str, str]) -> str:
    return "needle in a video haystack - " + ", ".join(
        f"{k}: {v.split(':')[0]}:{v.split(':')[1]}" if v.count(":") else f"{k}: {v}"
        for k, v in models.items()
        if k in ("llm", "speech")
    )


def _table(runs: list[LengthRun], options: NeedleOptions) -> str:
    from videoqa.bench.needle import table_rows

    """One row a length, depth and voice; a length's voices on adjacent rows; a total for each voice."""
    kinds = list(options.kinds)
    head = (
        f"{'minutes':>7} {'depth':>5} {'voice':>6} {'found':>7} {'accuracy':>8} "
        + " ".join(f"{k:>6}" for k in kinds)
        + f" {'s/question':>10} {'index s':>8} {'peak MiB':>8}"
    )
    lines = [head]
    rows = table_rows(runs, options.depths)
    voice_order = {voice: index for index, voice in enumerate(options.voices)}
    for row in sorted(rows, key=lambda r: (r["length_min"], r["depth"], voice_order[r["voice"]])):
        by_kind = " ".join(f"{row['by_kind'].get(k, 0.0):>6.0%}" for k in kinds)
        lines.append(
            f"{row['length_min']:>7g} {row['depth']:>4}% {row['voice']:>6} "
            f"{row['found']:>3}/{row['asked']:<3} {row['accuracy']:>8.0%} {by_kind} "
            f"{row['median_question_s']:>10.2f} {row['index_s']:>8.1f} {row['peak_mib']:>8.0f}"
        )
    for voice in options.voices:
        results = [r for run in runs if run.voice == voice for r in run.results]
        found = sum(r.found for r in results)
        by_kind = " ".join(f"{_share([r for r in results if r.needle.kind == k]):>6.0%}" for k in kinds)
        lines.append(
            f"{'all':>7} {'':>5} {voice:>6} {found:>3}/{len(results):<3} "
            f"{found / max(len(results), 1):>8.0%} {by_kind}"
        )
    return "\n".join(lines)


def _share(results: list[NeedleResult]) -> float:
    return sum(r.found for r in results) / max(len(results), 1)
