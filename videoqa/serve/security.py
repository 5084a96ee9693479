"""What keeps the server safe by default: paths only under the media roots, the API key, the upload size.

A path is taken only if it names a file inside a media root once every symlink is followed: ``..`` is
refused outright (even where it would stay inside), and a link that points out of the roots is refused
like any other path outside them. Refusals say "not under a media root" without telling what exists
elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from videoqa.serve.errors import ApiError, error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]

# Room for the JSON or multipart around an upload, and base64's 4 bytes for every 3.
_ENVELOPE_BYTES = 1 << 20


def video_id(path: Path) -> str:
    """A file's stable id: the first 16 hex digits of the sha256 of its resolved path."""
    return hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:16]


class MediaRoots:
    """The folders the server may read videos from (and its own uploads folder)."""

    def __init__(self, roots: tuple[Path, ...], uploads: Path) -> None:
        self.roots = tuple(root.resolve() for root in roots)
        self.uploads = uploads.resolve()

    def root_of(self, path: Path) -> Path | None:
        """The root ``path`` (resolved) lies in; None when it lies in none."""
        return next((root for root in (*self.roots, self.uploads) if path.is_relative_to(root)), None)

    def resolve(self, given: str, param: str = "path") -> Path:
        """The file ``given`` names: absolute, or relative to a media root (the first that holds it).

        404 when it does not resolve to a file inside a root, or has a ``..`` in it.
        """
        if not given or "\x00" in given:
            raise ApiError(400, "give the path of a video file", param)
        if ".." in PurePosixPath(given.replace("\\", "/")).parts:
            raise ApiError(404, f"{given}: '..' is not allowed in a path", param, "path_escape")
        candidates = [Path(given)] if os.path.isabs(given) else [root / given for root in self.roots]
        for candidate in candidates:
            found = self._inside(candidate)
            if found is not None:
                return found
        raise ApiError(404, f"{given}: no such video under a media root", param, "not_under_media_root")

    def _inside(self, candidate: Path) -> Path | None:
        try:
            resolved = candidate.resolve(strict=True)
        except (OSError, RuntimeError):  # missing, unreadable, or a symlink loop
            return None
        if not resolved.is_file() or self.root_of(resolved) is None:
            return None
        return resolved

    def from_file_url(self, url: str, param: str) -> Path:
        """The file a ``file://`` URL names (``file:///abs/path.mp4`` or ``file://localhost/...``)."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ApiError(400, f"{url}: a file URL must name a file on this machine", param)
        path = unquote(parts.path)
        if not os.path.isabs(path):
            raise ApiError(400, f"{url}: a file URL needs an absolute path", param)
        return self.resolve(path, param)


def bearer_ok(header: str | None, api_key: str) -> bool:
    """Whether an Authorization header carries the key (compared in constant time)."""
    if header is None:
        return False
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


def cookie_ok(value: str | None, api_key: str) -> bool:
    """Whether a cookie holds the key (percent-encoded by the page; compared in constant time)."""
    return value is not None and hmac.compare_digest(unquote(value).encode(), api_key.encode())


def body_limit(max_upload_bytes: int) -> int:
    """The largest request body taken: an upload of ``max_upload_bytes`` sent as base64 in JSON."""
    return max_upload_bytes * 4 // 3 + _ENVELOPE_BYTES


class TooLarge(Exception):
    """A request body grew past the limit while it was being read."""


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is answered 413 without being read in full,
    whether it announces its length or is sent in chunks."""

    def __init__(self, app: Asgi, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.message = f"the request is larger than the upload limit ({upload_limit / 2**20:.0f} MiB)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_413(send, self.message)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise TooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except TooLarge:
            if not started:
                await _send_413(send, self.message)


async def _send_413(send: Send, message: str) -> None:
    import json

    body = json.dumps(error_body(413, message, None, "too_large")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
