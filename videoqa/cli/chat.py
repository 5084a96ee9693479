"""``videoqa chat``: a conversation about one video, or about every indexed video of a folder
(``--library``), in the terminal or driven by piped lines.

Line editing and a history of questions (kept across sessions, in the user's data folder) come from
``readline`` when the input is a terminal. Answers go to stdout; the prompt, command replies and
errors to stderr. Ctrl-C stops the answer being made and keeps the session; Ctrl-D (end of input) or
``/quit`` ends it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from videoqa.cli.options import ModelChoice, assistant_options, model_options
from videoqa.cli.util import FetchProgress, UserError, VideoProgress, reports_user_errors
from videoqa.errors import InputError, VideoqaError
from videoqa.media.timefmt import format_clock

if TYPE_CHECKING:
    from videoqa.respond.chat import ChatSession, LibraryChatSession

    Session = ChatSession | LibraryChatSession

log = logging.getLogger("videoqa")

CHAT_EPILOG = """\b
Examples:
  videoqa chat lecture.mp4
  printf 'who speaks first?\\nwhat does she say next?\\n' | videoqa chat lecture.mp4
  videoqa chat --library ~/Videos       # every video indexed by: videoqa index ~/Videos
\b
Commands: /help, /scenes, /clear (forget the conversation), /save FILE (.md or .json), /quit;
with --library, /videos too.
"""
HELP = """\
Ask anything about the video; earlier questions and answers are remembered.
  /scenes      list the scenes with their times
  /clear       forget the conversation so far (the video stays indexed)
  /save FILE   write the conversation to FILE (.md or .json)
  /quit        leave (Ctrl-D too); Ctrl-C stops an answer being made"""
LIBRARY_HELP = """\
Ask anything about the library's videos: each answer names the video it rests on, and a follow-up
("and after that?") is asked of that video. Earlier questions and answers are remembered.
  /videos      list the indexed videos
  /scenes      list the scenes of the video the last answer came from
  /clear       forget the conversation so far (the videos stay indexed)
  /save FILE   write the conversation to FILE (.md or .json)
  /quit        leave (Ctrl-D too); Ctrl-C stops an answer being made"""
HISTORY_LINES = 1000


@click.command(epilog=CHAT_EPILOG)
# A str, not a Path: messages name the file exactly as typed ("./clip.mp4"), and check_file() checks it.
@click.argument("video", type=click.Path(readable=False), required=False)
@click.option(
    "--library",
    metavar="DIR",
    default=None,
    help="Chat about every indexed video in the folder DIR (videoqa index DIR) instead of one VIDEO; each "
    "answer names the video it rests on.",
)
@model_options
@reports_user_errors
def chat(video: str | None, library: str | None, **model_choice: Any) -> None:
    """Chat about VIDEO (or every indexed video of a --library): ask questions one after another; each
    answer sees the conversation so far."""
    import sys

    if video is not None and library is not None:
        raise UserError("give either VIDEO or --library DIR, not both")
    if video is None and library is None:
        raise UserError("give the VIDEO to chat about, or --library DIR")
    choice = ModelChoice(**model_choice)
    session = _video_session(video, choice) if video is not None else _library_session(library or "", choice)
    interactive = sys.stdin.isatty()
    with _LineHistory(enabled=interactive):
        _repl(session, lambda: input("> " if interactive else ""))


def _video_session(video: str, choice: ModelChoice) -> ChatSession:
    """The video checked, the models loaded and the video indexed (or read from the cache)."""
    from videoqa.assistant import Assistant
    from videoqa.media.video import check_file

    check_file(video)
    with VideoProgress() as stages, FetchProgress() as fetches:
        assistant = Assistant(
            assistant_options(choice),
            progress=lambda label: stages.track(f"{label}: {Path(video).name}"),
            fetch_progress=fetches.update,
        )
        assistant.check_models()  # the answering model loads once the video is indexed
        session = assistant.chat(video)
        session.prepare()
        assistant.load_models()
    scenes = len(session.scenes())
    click.echo(f"chatting about {video} ({scenes} scenes); /help lists the commands", err=True)
    return session


def _library_session(folder: str, choice: ModelChoice) -> LibraryChatSession:
    """The folder checked and the models loaded; the library is used as ``videoqa index`` left it (a
    chat does not index: videos not indexed yet are counted in one warning)."""
    from videoqa.assistant import Assistant
    from videoqa.library.folder import find_videos

    if not folder.strip():
        raise UserError("--library: give the folder that holds the videos")
    if not find_videos(Path(folder)):  # not a folder: LibraryError, one line
        raise UserError(f"--library {folder}: no videos in the folder")
    with VideoProgress() as stages, FetchProgress() as fetches:
        assistant = Assistant(assistant_options(choice), progress=stages.track, fetch_progress=fetches.update)
        assistant.load_models()
        session = assistant.chat_library(folder)
        session.prepare()  # no indexed video: OptionsError, saying to run videoqa index
    pending = len(assistant.library(folder).pending())
    if pending:
        log.warning(
            "%d video%s of %s not indexed yet, so not asked; videoqa index %s adds them",
            pending,
            " is" if pending == 1 else "s are",
            folder,
            folder,
        )
    count = len(session.videos())
    click.echo(
        f"chatting about the {count} indexed video{'' if count == 1 else 's'} in {folder}; "
        "/help lists the commands",
        err=True,
    )
    return session


def _repl(session: Session, read_line: Callable[[], str]) -> None:
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


def _answer(session: Session, question: str) -> None:
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
        video: str | None = getattr(item, "video", None)  # an item of a library names its video
        click.echo(f"  {video + ' ' if video else ''}{evidence_line(item)}")


def _command(session: Session, line: str) -> bool:
    """Run a /command; False when the session should end."""
    name, _, argument = line.partition(" ")
    argument = argument.strip()
    if name in ("/quit", "/exit"):
        return False
    from videoqa.respond.chat import LibraryChatSession

    in_library = isinstance(session, LibraryChatSession)
    if name == "/help":
        click.echo(LIBRARY_HELP if in_library else HELP, err=True)
    elif name == "/scenes":
        _scenes(session)
    elif name == "/videos" and isinstance(session, LibraryChatSession):
        for video, entry in sorted(session.videos().items()):
            click.echo(f"  {video}  ({format_clock(entry['duration_s'], 0)})", err=True)
    elif name == "/clear":
        session.clear()
        kept = "videos stay" if in_library else "video stays"
        click.echo(f"the conversation is forgotten; the {kept} indexed", err=True)
    elif name == "/save":
        _save(session, argument)
    else:
        click.echo(f"error: unknown command {name}; /help lists the commands", err=True)
    return True


def _scenes(session: Session) -> None:
    from videoqa.respond.chat import LibraryChatSession

    try:
        notes = session.scenes()
    except InputError as exc:  # a library chat before any answer named a video
        click.echo(f"error: {exc}", err=True)
        return
    if isinstance(session, LibraryChatSession):
        click.echo(f"scenes of {session.current}:", err=True)
    for note in notes:
        span = f"{format_clock(note.scene.start_s, 0)}-{format_clock(note.scene.end_s, 0)}"
        click.echo(f"  scene {note.scene.index + 1}  [{span}]  {note.text}", err=True)


def _save(session: Session, argument: str) -> None:
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
