"""Start the real ``videoqa serve`` process for a test, and stop it again.

The server is what a user runs (``python -m videoqa serve``), on a free port of 127.0.0.1, with the
environment the tests use (conftest.py sets the small models), so the tests speak HTTP to it exactly as
the ``openai`` client or a browser would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

# Loading the small models and starting uvicorn took about 20 s on a loaded 2-core machine.
START_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 20.0


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerProcess:
    """A ``videoqa serve`` process on a free port; its output goes to a file read back on failure.

    Uploads go to a folder of its own (``uploads``, removed by ``stop``) unless ``env`` names one with
    VIDEOQA_UPLOADS, so tests never write into the user's cache folder.
    """

    def __init__(self, media_roots: list[Path], *extra_args: str, env: Mapping[str, str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        roots = [arg for root in media_roots for arg in ("--media-root", str(root))]
        command = [sys.executable, "-m", "videoqa", "serve", "--port", str(self.port), *roots, *extra_args]
        self._uploads = tempfile.TemporaryDirectory(prefix="videoqa-uploads-")
        self.uploads = Path(self._uploads.name)
        environment = {**os.environ, "VIDEOQA_UPLOADS": str(self.uploads), **(env or {})}
        self._log = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=environment)

    @property
    def pid(self) -> int:
        return self.process.pid

    def status(self, path: str, headers: Mapping[str, str] | None = None) -> int | None:
        """The HTTP status of GET ``path``; None when nothing answers yet."""
        request = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def wait_until(self, answers: set[int], path: str = "/v1/models", api_key: str | None = None) -> int:
        """Poll ``path`` until its status is one of ``answers``; fail with the server's output if the
        process ends or the time runs out."""
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"videoqa serve ended ({self.process.returncode}):\n{self.output()}")
            status = self.status(path, headers)
            if status in answers:
                return status
            time.sleep(0.1 if status is None else 0.5)
        raise AssertionError(f"videoqa serve did not answer {sorted(answers)} in time:\n{self.output()}")

    def output(self) -> str:
        """What the server wrote to stdout and stderr so far."""
        self._log.flush()
        self._log.seek(0)
        return self._log.read()

    def stop(self) -> None:
        """Ctrl-C, as a user stops it; killed if it does not end in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        self._uploads.cleanup()


@contextlib.contextmanager
def running_server(media_roots: list[Path], *extra_args: str, wait_for_models: bool = True) -> Iterator[str]:
    """``python -m videoqa serve --media-root ROOT ... EXTRA_ARGS`` on a free 127.0.0.1 port: yields its
    base URL ("http://127.0.0.1:PORT") once it answers, and stops it after.

    With ``wait_for_models`` (the default) it is yielded once the models are loaded (``GET /v1/models``
    answers 200 rather than 503), so a question gets an answer rather than "still loading". An
    ``--api-key`` among ``extra_args`` is sent while waiting.
    """
    server = ServerProcess(media_roots, *extra_args)
    api_key = _option_value(extra_args, "--api-key")
    try:
        server.wait_until({200} if wait_for_models else {200, 401, 503}, api_key=api_key)
        yield server.url
    finally:
        server.stop()


def _option_value(args: tuple[str, ...], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None
