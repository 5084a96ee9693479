"""The ``videoqa`` command: a thin layer over the library. Answers go to stdout, everything else to stderr.

Heavy modules (numpy, PyAV, torch) are imported inside the commands that need them, so ``--help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from videoqa import __version__
from videoqa.cli.ask import ask
from videoqa.cli.bench import bench
from videoqa.cli.caption import caption
from videoqa.cli.chat import chat
from videoqa.cli.demo import demo
from videoqa.cli.doctor import doctor
from videoqa.cli.index import index
from videoqa.cli.models import models
from videoqa.cli.serve import serve
from videoqa.cli.util import debugging, report_warnings, reports_user_errors
from videoqa.cli.visual import scenes, search
from videoqa.host import crashguard
from videoqa.media.timefmt import format_clock

if TYPE_CHECKING:
    from videoqa.types import VideoInfo

EPILOG = """\b
Examples:
  videoqa ask talk.mp4 "what does the speaker say about the budget?"
  videoqa caption talk.mp4 --stream --srt talk.srt
  videoqa chat talk.mp4
  videoqa info talk.mp4
  videoqa scenes talk.mp4 --save-keyframes frames/
  videoqa index ~/Videos
  videoqa doctor
  videoqa search "a red car" --library ~/Videos --embedder checkpoints/clip-vit-b32
"""


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, "-V", "--version", prog_name="videoqa")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Answer questions about long videos, caption them, and chat about them - locally."""
    report_warnings(ctx)  # one line per kind of warning, repeats counted when the command ends
    # A native crash (llama.cpp, CTranslate2, ...) ends a run with a bare "Segmentation fault": the run
    # after it says what crashed and points at `videoqa doctor`.
    crash = crashguard.start(ctx.invoked_subcommand or "videoqa")
    if crash is not None:
        logging.getLogger("videoqa").warning(crashguard.describe(crash))


for command in (ask, caption, chat, demo, index, scenes, search, models, bench, doctor, serve):
    cli.add_command(command)


INFO_EPILOG = """\b
Examples:
  videoqa info holiday.mp4
  videoqa info --json holiday.mp4
"""


@cli.command(epilog=INFO_EPILOG)
# A str, not a Path: messages name the file exactly as typed ("./clip.mp4"), and probe() checks it.
@click.argument("video", type=click.Path(readable=False))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@reports_user_errors
def info(video: str, as_json: bool) -> None:
    """Show what a video holds: length, frame rate, size, rotation, codecs, audio."""
    from videoqa.media.video import probe

    details = probe(video)
    if as_json:
        click.echo(json.dumps(_info_json(details), indent=2))
    else:
        click.echo(_info_text(details))
    if details.readable_until_s is not None:
        logging.getLogger("videoqa").warning(
            "the file is cut short: frames can be read up to %s of %s; the rest is missing",
            format_clock(details.readable_until_s),
            format_clock(details.duration_s),
        )
    if details.audio is not None and not details.audio.decodable:
        logging.getLogger("videoqa").warning(
            "the %s audio track cannot be decoded (%s); only the pictures can be used",
            details.audio.codec,
            details.audio.problem,
        )


def _info_json(details: VideoInfo) -> dict[str, Any]:
    data = asdict(details)
    data["width"], data["height"] = details.width, details.height
    return data


def _info_text(details: VideoInfo) -> str:
    # probe() says 0 for a frame rate or count it could not trust (a damaged time scale).
    pace = "variable" if details.variable_fps else "constant"
    rate = f"{details.fps:.3f}".rstrip("0").rstrip(".") + f" fps ({pace})" if details.fps > 0 else "unknown"
    frames = (
        f"{details.frame_count}" + ("" if details.frame_count_exact else " (estimated)")
        if details.frame_count > 0
        else "unknown"
    )
    rotation = f"{details.rotation_deg}° (shown upright)" if details.rotation_deg else "none"
    duration = f"{format_clock(details.duration_s)} ({details.duration_s:.2f} s)"
    if details.readable_until_s is not None:
        duration += f", truncated: readable up to {format_clock(details.readable_until_s)}"
    rows = [
        ("duration", duration),
        ("frame rate", rate),
        ("frames", frames),
        ("resolution", f"{details.width}x{details.height}"),
        ("rotation", rotation),
        ("video codec", f"{details.video_codec} ({details.pixel_format})"),
        ("audio", _audio_text(details)),
        ("container", details.container),
        ("file size", _size_text(details.size_bytes)),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join([details.path, *(f"  {name:<{width}}  {value}" for name, value in rows)])


def _audio_text(details: VideoInfo) -> str:
    audio = details.audio
    if audio is None:
        return "none"
    text = f"{audio.codec}, {audio.sample_rate_hz} Hz, {audio.channels} ch"
    return text if audio.decodable else f"{text} (cannot be decoded)"


def _size_text(size_bytes: int) -> str:
    value, unit = float(size_bytes), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.1f} {unit} ({size_bytes:,} bytes)" if unit != "B" else f"{size_bytes} bytes"


def main() -> None:
    """Console entry point: no traceback reaches the user unless VIDEOQA_DEBUG is set."""
    try:
        cli.main(prog_name="videoqa", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debugging():
            raise
        click.echo(
            f"internal error: {type(exc).__name__}: {exc} "
            "(set VIDEOQA_DEBUG=1 to see the traceback, and please report it)",
            err=True,
        )
        sys.exit(1)
