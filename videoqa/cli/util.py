"""Pieces the command modules share: one-line user errors, one-line warnings, the device check, progress
bars."""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from videoqa.errors import VideoqaError
from videoqa.media.timefmt import format_clock
from videoqa.store.devices import ALWAYS_AVAILABLE

F = TypeVar("F", bound=Callable[..., Any])
ProgressCallback = Callable[[float, float], None]
DEBUG_ENV = "VIDEOQA_DEBUG"  # set (to anything but "" or "0") to see tracebacks and library warnings


def debugging() -> bool:
    """Whether the user asked for tracebacks (VIDEOQA_DEBUG=1)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


class UserError(click.ClickException):
    """A problem with the user's input: one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def reports_user_errors(command: F) -> F:
    """Turn VideoqaError, the errors a user can act on, into a one-line UserError.

    Any other exception is a bug and goes on to the entry point, which calls it an internal error. With
    VIDEOQA_DEBUG set, a user error shows its traceback too.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except VideoqaError as exc:
            if debugging():
                traceback.print_exc()
            raise UserError(str(exc)) from exc

    return wrapper  # type: ignore[return-value]


def check_device(ctx: click.Context | None, param: click.Parameter | None, value: str) -> str:
    """Click callback for ``--device``: refuse a device torch cannot use before any work starts.

    "auto" and "cpu" always pass, without importing torch: it is imported only to check a GPU asked for.
    """
    if value in ALWAYS_AVAILABLE:
        return value
    from videoqa.visual.embed import device_problem

    problem = device_problem(value)
    if problem is not None:
        raise UserError(f"--device {value}: {problem}; use --device cpu or auto")
    return value


# Numbers and clock times in a warning's arguments: what differs between repeats of one kind of warning.
_NUMERIC = re.compile(r"[-+]?\d[\d:.,]*( s)?")


@dataclass
class _Kind:
    first: str  # the first message of this kind, as printed
    more: int = 0  # repeats since, not printed


class OneLineWarnings(logging.Handler):
    """Print videoqa's warnings as ``warning: ...`` lines on stderr, one per kind of warning.

    A kind is a message template with its non-numeric arguments: "%s: skipped damaged data near %s" about
    one file is one kind, whatever the time. The first of a kind is printed when it comes; ``summarize``
    (at the end of the command) prints one "N more like" line for each kind that came again.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self._kinds: dict[tuple[str, ...], _Kind] = {}

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        key = _kind_of(record, message)
        if key in self._kinds:
            self._kinds[key].more += 1
            return
        self._kinds[key] = _Kind(message)
        click.echo(f"{record.levelname.lower()}: {message}", err=True)

    def summarize(self) -> None:
        """Print how many repeats each kind had, and start afresh."""
        for kind in self._kinds.values():
            if kind.more:
                click.echo(f'warning: {kind.more} more like "{kind.first}"', err=True)
        self._kinds.clear()


def _kind_of(record: logging.LogRecord, message: str) -> tuple[str, ...]:
    args = record.args if isinstance(record.args, tuple) else ()
    if not args:  # a message formatted before logging: its numbers are all that can vary
        return (re.sub(r"\d+", "#", message),)
    kept = [
        "#" if isinstance(arg, (int, float)) or _NUMERIC.fullmatch(str(arg)) else str(arg) for arg in args
    ]
    return (str(record.msg), *kept)


def report_warnings(ctx: click.Context) -> None:
    """Set the command's stderr up: videoqa's warnings one line per kind (repeats counted at the end of
    the command), and Python warnings from libraries silenced.

    Call once in the top-level group's callback. Library warnings (a FutureWarning from torch or
    transformers) are about code the user cannot change; VIDEOQA_DEBUG or python -W shows them again.
    """
    logger = logging.getLogger("videoqa")
    handler = next((h for h in logger.handlers if isinstance(h, OneLineWarnings)), None)
    if handler is None:
        handler = OneLineWarnings()
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    ctx.call_on_close(handler.summarize)
    if not debugging() and not sys.warnoptions:
        warnings.filterwarnings("ignore")
        # videoqa's own warnings.warn calls (UserWarning) are still shown.
        warnings.filterwarnings("default", category=UserWarning, module=r"videoqa(\.|$)")


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
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[done_text]} / {task.fields[total_text]}"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._progress.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.__exit__(None, None, None)

    def track(self, label: str) -> ProgressCallback:
        task = self._progress.add_task(label, total=None, done_text="0:00", total_text="?")

        def advance(done_s: float, total_s: float) -> None:
            self._progress.update(
                task,
                completed=done_s,
                total=max(total_s, 1e-9),
                done_text=format_clock(done_s, 0),
                total_text=format_clock(total_s, 0),
            )

        return advance


class FetchProgress:
    """Download bars on stderr (bytes) for models fetched into the store; drawn only on a terminal."""

    def __enter__(self) -> FetchProgress:
        from rich.console import Console
        from rich.progress import DownloadColumn, Progress, TextColumn

        console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            DownloadColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
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
