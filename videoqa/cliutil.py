"""Pieces the command modules share: one-line user errors, one-line warnings, progress bars."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

from videoqa.errors import VideoqaError
from videoqa.timefmt import format_clock

F = TypeVar("F", bound=Callable[..., Any])
ProgressCallback = Callable[[float, float], None]

class UserError(click.ClickException):
    """A problem with the user's input: one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def reports_user_errors(command: F) -> F:
    """Turn VideoqaError (and invalid option combinations) into a one-line UserError."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (VideoqaError, ValueError) as exc:
            raise UserError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


class OneLineWarnings(logging.Handler):
    """Print videoqa's warnings as ``warning: ...`` lines on stderr, each message once."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self._seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self._seen:
            self._seen.add(message)
            click.echo(f"{record.levelname.lower()}: {message}", err=True)

class VideoProgress:
    """Progress bars on stderr in seconds of video, one per video; ``track`` gives each its callback.

    Drawn only when stderr is a terminal, so pipes, logs and tests see only the answer and the one-line
    warnings.
    """

    def __enter__(self) -> VideoProgress:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(),
            TextColumn("{task.fields[done_text]} / {task.fields[total_text]}"), TimeRemainingColumn(),
            console=console, transient=True, disable=not console.is_terminal)
        self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.__exit__(None, None, None)

    def track(self, label: str) -> ProgressCallback:
        task = self._progress.add_task(label, total=None, done_text="0:00", total_text="?")

        def advance(done_s: float, total_s: float) -> None:
            self._progress.update(task, completed=done_s, total=max(total_s, 1e-9),
                                  done_text=format_clock(done_s, 0), total_text=format_clock(total_s, 0))

        return advance


class FetchProgress:
    """Download bars on stderr (bytes) for models fetched into the store; drawn only on a terminal."""

    def __enter__(self) -> FetchProgress:
        from rich.console import Console
        from rich.progress import DownloadColumn, Progress, TextColumn

        console = Console(stderr=True)
        self._progress = Progress(TextColumn("{task.description}"), DownloadColumn(), console=console,
                                  transient=True, disable=not console.is_terminal)
        self._progress.__enter__()
        self._tasks: dict[str, Any] = {}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.__exit__(None, None, None)

    def update(self, name: str, done: int, total: int) -> None:
        """Show ``done`` of ``total`` bytes of model ``name``."""
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(f"{name}: fetching and checking", total=total)
        self._progress.update(self._tasks[name], completed=done, total=total)
