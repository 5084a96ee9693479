"""What ``videoqa serve`` was told: where to listen, which folders it may read, who may call it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from videoqa.errors import OptionsError
from videoqa.store.paths import user_dir

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_UPLOAD_MB = 2048
_LOOPBACK_NAMES = frozenset(("localhost", "localhost.localdomain", "ip6-localhost"))


def uploads_dir() -> Path:
    """Where uploaded videos are kept: ``$VIDEOQA_UPLOADS`` or videoqa's cache folder ``uploads/``."""
    return user_dir("VIDEOQA_UPLOADS", "cache", "uploads")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


@dataclass(frozen=True)
class ServeSettings:
    """The server's settings, checked when made: a bad value is an ``OptionsError`` before anything runs."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    media_roots: tuple[Path, ...] = ()  # resolved folders whose videos may be read
    api_key: str | None = None  # when set, every /v1 request needs "Authorization: Bearer KEY"
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 2**20
    cors_origins: tuple[str, ...] = ()  # none: no CORS headers, browsers keep other sites out
    uploads: Path = field(default_factory=uploads_dir)

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise OptionsError(f"--port must be within 0..65535, got {self.port}")
        if self.max_upload_bytes < 1:
            raise OptionsError("--max-upload-mb must be at least 1")
        if self.api_key is not None and not self.api_key.strip():
            raise OptionsError("--api-key must not be empty")
        if not is_loopback(self.host) and self.api_key is None:
            raise OptionsError(
                f"--host {self.host} lets other machines connect; give --api-key KEY as well "
                "(or serve on 127.0.0.1)"
            )
        for root in self.media_roots:
            if not root.is_dir():
                raise OptionsError(f"--media-root {root}: no such folder")
        for origin in self.cors_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise OptionsError(f"--cors-origin {origin}: give an origin like https://example.com")
