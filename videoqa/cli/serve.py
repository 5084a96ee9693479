"""``videoqa serve``: an OpenAI-compatible API and a web page for the videos under the media roots."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from videoqa.cli.options import ModelChoice, assistant_options, model_options
from videoqa.cli.util import UserError, reports_user_errors

SERVE_EPILOG = """\b
Examples:
  videoqa serve --media-root ~/Videos
  VIDEOQA_API_KEY=$(openssl rand -hex 16) videoqa serve --media-root ~/Videos --host 0.0.0.0
\b
Open http://127.0.0.1:8000/ for the page, or point an OpenAI client at http://127.0.0.1:8000/v1.
The models load in the background after start-up; until they are loaded the API answers 503.
Only files under a --media-root (and uploads) are read; a --host other than the loopback needs
an API key. CORS is off unless --cors-origin names the origins that may call the API.
"""


@click.command(epilog=SERVE_EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port", type=int, default=8000, show_default=True, help="The port to listen on (0: any free one)."
)
@click.option(
    "--media-root",
    "media_roots",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A folder whose videos may be listed, read and asked about (repeatable).",
)
@click.option(
    "--api-key",
    default=None,
    envvar="VIDEOQA_API_KEY",
    help="Require 'Authorization: Bearer KEY' on every /v1 request (needed off 127.0.0.1); "
    "$VIDEOQA_API_KEY keeps it out of the process list.",
)
@click.option(
    "--max-upload-mb",
    type=int,
    default=2048,
    show_default=True,
    help="The largest video accepted as an upload.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="An origin (https://host:port) whose pages may call the API (repeatable); none by default.",
)
@model_options
@reports_user_errors
def serve(
    host: str,
    port: int,
    media_roots: tuple[Path, ...],
    api_key: str | None,
    max_upload_mb: int,
    cors_origins: tuple[str, ...],
    **model_choice: Any,
) -> None:
    """Serve an OpenAI-compatible API and a web page to watch videos, ask about them and jump to the
    cited moments."""
    _check_installed()
    from videoqa.serve.run import serve as run_server
    from videoqa.serve.settings import ServeSettings

    settings = ServeSettings(
        host=host,
        port=port,
        media_roots=tuple(root.expanduser().resolve() for root in media_roots),
        api_key=api_key,
        max_upload_bytes=max(max_upload_mb, 0) * 2**20,
        cors_origins=cors_origins,
    )
    options = assistant_options(ModelChoice(**model_choice))
    _log_to_stderr()
    run_server(settings, options)


def _check_installed() -> None:
    """The server's own dependencies are an extra: say how to install them rather than fail on import."""
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"videoqa serve needs {', '.join(missing)}: pip install 'videoqa[serve]'")


def _log_to_stderr() -> None:
    """The server's own lines (listening, loading, indexing, errors with their traceback) on stderr."""
    logger = logging.getLogger("videoqa.serve")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("videoqa serve: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
