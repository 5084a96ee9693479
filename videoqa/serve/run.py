"""Run the server: listen first (a port in use is a one-line error), then serve until Ctrl-C; the
models load in the background meanwhile, and the server stops if they cannot be loaded."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from videoqa.errors import InputError, VideoqaError
from videoqa.serve.settings import ServeSettings

if TYPE_CHECKING:
    from videoqa.assistant import AssistantOptions

log = logging.getLogger("videoqa.serve")

SHUTDOWN_GRACE_S = 5  # open streams get this long to finish on Ctrl-C


class ModelsFailed(VideoqaError):
    """The models could not be loaded, so the server stopped."""


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` and listening; an ``InputError`` saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def serve(settings: ServeSettings, options: AssistantOptions) -> None:
    """Serve the API and the page until interrupted; ``ModelsFailed`` when the models cannot load."""
    import uvicorn

    from videoqa.assistant import Assistant
    from videoqa.serve.app import create_app
    from videoqa.serve.videos import StageRouter

    sock = listening_socket(settings.host, settings.port)
    router = StageRouter()
    failures: list[str] = []
    holder: list[uvicorn.Server] = []

    def stop(message: str) -> None:
        failures.append(message)
        if holder:
            holder[0].should_exit = True

    app = create_app(settings, Assistant(options, progress=router), router, on_failed=stop)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        server_header=False,
    )
    server = uvicorn.Server(config)
    holder.append(server)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    log.info(
        "listening on http://%s:%d (the models are loading; /v1 answers 503 until they are)", shown, port
    )
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn hands Ctrl-C on once it has shut down: the way to stop a server
        log.info("stopped")
    finally:
        sock.close()
    if failures:
        raise ModelsFailed(f"the models could not be loaded: {failures[0]}")
