"""Where videoqa keeps things: a folder named by an environment variable, else the platform's own."""

from __future__ import annotations

import os
from pathlib import Path


def user_dir(env_var: str, kind: str, name: str) -> Path:
    """``$env_var`` when set; else ``name`` inside videoqa's platform ``kind`` folder ("cache" or "data")."""
    configured = os.environ.get(env_var)
    if configured:
        return Path(configured)
    from platformdirs import user_cache_path, user_data_path

    base = {"cache": user_cache_path, "data": user_data_path}[kind]
    return base("videoqa") / name
