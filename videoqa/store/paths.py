"""Where videoqa keeps things: a folder named by an environment variable, else the platform's own."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def user_dir(env_var: str, kind: str, name: str) -> Path:
    """``$env_var`` when set; else ``name`` inside videoqa's platform ``kind`` folder ("cache" or "data")."""
    configured = os.environ.get(env_var)
    if configured:
        return Path(configured)
    from platformdirs import user_cache_path, user_data_path

    base = {"cache": user_cache_path, "data": user_data_path}[kind]
    return base("videoqa") / name


def replace_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """Have ``write`` fill a temporary file beside ``path``, then rename it into place: readers, and the
    file left after an interrupt (Ctrl-C included), only ever see the old file or the whole new one."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_durably(path: Path, text: str) -> None:
    """``text`` written to ``path`` and flushed to the disk (UTF-8, "\\n" line ends)."""
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
