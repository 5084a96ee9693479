"""Helpers shared by the tests: run ffmpeg and the real CLI, check one-line errors."""

from __future__ import annotations

import subprocess
import sys
from typing import Any


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly with an argument list; fail the test with its message if it fails."""
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


class CliResult:
    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.stderr_lines = [line for line in completed.stderr.splitlines() if line.strip()]


def run_cli(*args: str, prefix: tuple[str, ...] = (), **kwargs: Any) -> CliResult:
    """Run the real ``python -m videoqa`` in a subprocess (what a user's shell does)."""
    completed = subprocess.run(
        [*prefix, sys.executable, "-m", "videoqa", *args],
        capture_output=True,
        text=True,
        # a guard against a hang, not a time limit: some commands load real models and index a video,
        # which took over 120 s on a loaded 2-core machine
        timeout=300,
        **kwargs,
    )
    return CliResult(completed)


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    """Exit code 2, nothing on stdout, exactly one ``error:`` line on stderr naming the problem."""
    assert result.code == 2, (result.code, result.stderr)
    assert result.stdout == ""
    assert len(result.stderr_lines) == 1, result.stderr
    line = result.stderr_lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in line, (fragment, line)


class ThumbnailEmbedder:
    """A fake image embedder behind the real protocol: 8x8 colour thumbnails, mean-centred, unit norm.

    ``delay_s`` slows each batch down so a test can interrupt indexing halfway.
    """

    dim = 8 * 8 * 3

    def __init__(self, delay_s: float = 0.0) -> None:
        self.id = "test-thumbnail-8-v1"
        self._delay_s = delay_s

    def embed_images(self, pixels: Any) -> Any:
        import time

        import numpy as np

        time.sleep(self._delay_s)
        n, height, width, _ = pixels.shape
        rows = np.linspace(0, height - 1, 8).astype(int)
        cols = np.linspace(0, width - 1, 8).astype(int)
        small = pixels[:, rows][:, :, cols].reshape(n, -1).astype(np.float32)
        small -= small.mean(axis=1, keepdims=True)
        return small / np.maximum(np.linalg.norm(small, axis=1, keepdims=True), 1e-6)

    def embed_texts(self, texts: list[str]) -> Any:
        raise NotImplementedError("the thumbnail test embedder has no text side")


class ScriptedLlm:
    """A fake language model behind the real protocol: replies from a queue, prompts recorded."""

    id = "scripted-llm"
    context_tokens = 4096

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[Any] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, messages: Any, options: Any) -> Any:
        self.prompts.append(list(messages))
        reply = self.replies.pop(0)
        yield from (reply[i : i + 5] for i in range(0, len(reply), 5))
