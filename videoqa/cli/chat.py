"""``videoqa chat``: a conversation about one video, in the terminal or driven by piped lines.

Line editing and a history of questions (kept across sessions, in the user's data folder) come from
``readline`` when the input is a terminal. Answers go to stdout; the prompt, command replies and
errors to stderr. Ctrl-C stops the answer being made and keeps the session; Ctrl-D (end of input) or
``/quit`` ends it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from videoqa.cli.options import ModelChoice, assistant_options, model_options
from videoqa.cli.util import FetchProgress, VideoProgress, reports_user_errors
from videoqa.errors import InputError, VideoqaError
from videoqa.media.timefmt import format_clock

if TYPE_CHECKING:
    from videoqa.respond.chat import ChatSession

CHAT_EPILOG = """\b
Examples:
  videoqa chat lecture.mp4
  printf 'who speaks first?\\nwhat does she say next?\\n' | videoqa chat lecture.mp4
\b
Commands: /help, /scenes, /clear (forget the conversation), /save FILE (.md or .json), /quit.
"""
HELP = """\
Ask anything about the video; earlier questions and answers are remembered.
  /scenes      list the scenes with their times
  /clear       forget the conversation so far (the video stays indexed)
  /save FILE   write the conversation to FILE (.md or .json)
  /quit        leave (Ctrl-D too); Ctrl-C stops an answer being made"""
HISTORY_LINES = 1000


@click.command(epilog=CHAT_EPILOG)
# A str, not a Path: messages name the file exactly as typed ("./clip.mp4"), and check_file() checks it.
@click.argument("video", type=click.Path(readable=False))
@model_options
@reports_user_errors
def chat(video: str, **model_choice: Any) -> None:
    """Chat about VIDEO: ask questions one after another; each answer sees the conversation so far."""
    import sys

    from videoqa.assistant import Assistant
    from videoqa.media.video import check_file

    check_file(video)
    options = assistant_options(ModelChoice(**model_choice))
    with VideoProgress() as stages, FetchProgress() as fetches:
        assistant = Assistant(
            options,
            progress=lambda label: stages.track(f"{label}: {Path(video).name}"),
            fetch_progress=fetches.update,
        )
        assistant.load_models()
        session = assistant.chat(video)
        session.prepare()
    interactive = sys.stdin.isatty()
    scenes = len(session.scenes())
    click.echo(f"chatting about {video} ({scenes} scenes); /help lists the commands", err=True)
    with _LineHistory(enabled=interactive):
        _repl(session, lambda: input("> " if interactive else ""))


def _repl(session: ChatSession, read_line: Callable[[], str]) -> None:
    while True:
        try:
            line = read_line().strip()
        except EOFError:
            return
        except KeyboardInterrupt:  # at the prompt: a fresh line, as shells do
            click.echo("", err=True)
            continue
        if not line:
            continue
        if line.startswith("/"):
            if not _command(session, line):
                return
            continue
        _answer(session, line)


def _answer(session: ChatSession, question: str) -> None:
    from videoqa.respond.answer import evidence_line

    try:
        answer = session.ask(question)
    except KeyboardInterrupt:
        click.echo("(answer stopped)", err=True)
        return
    except VideoqaError as exc:  # the session goes on; any other error is a bug and ends it
        click.echo(f"error: {exc}", err=True)
        return
    click.echo(answer.text)
    for item in answer.evidence:
        click.echo(f"  {evidence_line(item)}")


def _command(session: ChatSession, line: str) -> bool:
    """Run a /command; False when the session should end."""
    name, _, argument = line.partition(" ")
    argument = argument.strip()
    if name in ("/quit", "/exit"):
        return False
    if name == "/help":
        click.echo(HELP, err=True)
    elif name == "/scenes":
        for note in session.scenes():
            span = f"{format_clock(note.scene.start_s, 0)}-{format_clock(note.scene.end_s, 0)}"
            click.echo(f"  scene {note.scene.index + 1}  [{span}]  {note.text}", err=True)
    elif name == "/clear":
        session.clear()
        click.echo("the conversation is forgotten; the video stays indexed", err=True)
    elif name == "/save":
        _save(session, argument)
    else:
        click.echo(f"error: unknown command {name}; /help lists the commands", err=True)
    return True


def _save(session: ChatSession, argument: str) -> None:
    if not argument:
        click.echo("error: /save needs a file name ending in .md or .json", err=True)
        return
    path = Path(argument).expanduser()
    try:
        kind = session.save(path)
    except (InputError, OSError) as exc:
        click.echo(f"error: cannot save: {exc}", err=True)
        return
    click.echo(f"saved {len(session.turns)} turns to {path} ({kind})", err=True)


class _LineHistory:
    """readline's line editing, with the question history read at the start and written at the end."""

    def __init__(self, enabled: bool) -> None:
        from videoqa.store.paths import user_dir

        self.path = user_dir("VIDEOQA_CHAT_HISTORY", "data", "chat-history")
        self._readline: Any = None
        if enabled:
            try:
                import readline
            except ImportError:  # Windows without pyreadline: plain input() still works
                return
            self._readline = readline

    def __enter__(self) -> _LineHistory:
        if self._readline is not None and self.path.is_file():
            # an unreadable history loses the recall of old questions, nothing else
            with contextlib.suppress(OSError):
                self._readline.read_history_file(str(self.path))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._readline is None:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._readline.set_history_length(HISTORY_LINES)
            self._readline.write_history_file(str(self.path))
