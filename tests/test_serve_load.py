"""A bounded load on the real ``videoqa serve`` process: 50 chat requests from 10 concurrent clients (the
official ``openai`` client) about one video, with oversized uploads and path escapes among them.

All are answered, and answered alike; the video is indexed once (one build in the server's log, and the
index cache holds the same files, untouched, after the other 40 requests); the server's resident and peak
memory after all 50 are within a bound of what they were after the first 10 (measured: 1191 -> 1204 MiB).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from videoqa.testmedia.synth import SynthVideo

from serve_helpers import ServerProcess

CLIENTS = 10
REQUESTS_PER_CLIENT = 5
QUESTIONS = ("When is the meeting?", "Which gate is shown?", "What does the speaker say about the meeting?")
# Growth of the server's resident and peak memory allowed between the 10th and the 50th request: the
# models and the index are in memory by the 10th; what is left is the allocator settling and garbage.
MEMORY_GROWTH_BOUND_MIB = 64
UPLOAD_LIMIT_MIB = 1


def _memory_mib(pid: int) -> tuple[float, float]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _cache_files(cache: Path) -> dict[str, int]:
    """The index cache's files with their modification times."""
    return {str(p.relative_to(cache)): p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}


def _status(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        assert "Traceback" not in error.read().decode(errors="replace")
        return int(error.code)


def _oversized_upload(server: ServerProcess) -> int:
    boundary = "load-test"
    payload = os.urandom((UPLOAD_LIMIT_MIB + 1) * 2**20)
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'.encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return _status(server.url + "/v1/videos", body, f"multipart/form-data; boundary={boundary}")


def _escape(server: ServerProcess, outside: Path) -> int:
    body = json.dumps({"path": f"../{outside.parent.name}/{outside.name}"}).encode()
    return _status(server.url + "/v1/videos", body, "application/json")


@pytest.mark.slow
def test_fifty_requests_from_ten_clients_build_one_index_in_flat_memory(
    installed_models: None, narrated: SynthVideo, tmp_path: Path
) -> None:
    root, cache = tmp_path / "root", tmp_path / "cache"
    root.mkdir()
    video = Path(shutil.copy(narrated.path, root / "narrated.mp4"))
    outside = Path(shutil.copy(narrated.path, tmp_path / "outside.mp4"))
    server = ServerProcess(
        [root], "--max-upload-mb", str(UPLOAD_LIMIT_MIB), env={"VIDEOQA_CACHE": str(cache)}
    )
    try:
        server.wait_until({200})
        clients = [
            openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0, timeout=300)
            for _ in range(CLIENTS)
        ]

        def ask(number: int) -> tuple[str, str]:
            question = QUESTIONS[number % len(QUESTIONS)]
            content = [
                {"type": "video_url", "video_url": {"url": video.as_uri()}},
                {"type": "text", "text": question},
            ]
            messages: list[Any] = [{"role": "user", "content": content}]
            reply = clients[number % CLIENTS].chat.completions.create(model="videoqa", messages=messages)
            return question, reply.choices[0].message.content or ""

        with ThreadPoolExecutor(CLIENTS) as pool:
            # the first request of each client, all at once, on the video no one has indexed yet
            first = list(pool.map(ask, range(CLIENTS)))
            assert server.output().count("indexing narrated.mp4") == 1, server.output()
            built = _cache_files(cache)
            after_ten = _memory_mib(server.pid)
            attacks: list[Callable[[], int]] = [lambda: _oversized_upload(server)] * 5
            attacks += [lambda: _escape(server, outside)] * 5
            refused = [pool.submit(attack) for attack in attacks]
            rest = list(pool.map(ask, range(CLIENTS, CLIENTS * REQUESTS_PER_CLIENT)))
            statuses = sorted(future.result() for future in refused)
        after_fifty = _memory_mib(server.pid)
        answers = first + rest
        assert len(answers) == CLIENTS * REQUESTS_PER_CLIENT and all(text for _, text in answers)
        for question in QUESTIONS:  # the same question, the same answer, however busy the server was
            assert len({text for asked, text in answers if asked == question}) == 1, answers
        assert any("noon" in text for _, text in answers)
        assert server.output().count("indexing narrated.mp4") == 1, server.output()
        assert built and _cache_files(cache) == built
        assert statuses == [404] * 5 + [413] * 5
        # resident and peak memory: both flat once the models and the index are in
        assert all(b - a < MEMORY_GROWTH_BOUND_MIB for a, b in zip(after_ten, after_fifty, strict=True)), (
            after_ten,
            after_fifty,
        )
    finally:
        server.stop()
