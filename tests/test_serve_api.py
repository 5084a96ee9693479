"""``videoqa serve`` through the official ``openai`` client and plain HTTP, against the real server
process on 127.0.0.1 with the real (small) models, on the generated narrated video: 12 s, "The meeting
starts at noon." spoken at 8.5 s, a "GATE 42" card at 5-7 s.

The server is started once for the module, with an API key and a 1 MiB upload limit, and a media root
that holds the video, a text file named like a video, and a symlink to a video outside the root. A few
tests at the end run the app in-process with a stand-in assistant, for what a live server cannot show
on demand: the models still loading, and many requests for one unindexed video.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import openai
import pytest
import srt
import webvtt
from fastapi.testclient import TestClient

from videoqa.assistant import Assistant
from videoqa.media.video import probe
from videoqa.respond.answer import Answer
from videoqa.serve.app import create_app
from videoqa.serve.security import body_limit
from videoqa.serve.settings import ServeSettings
from videoqa.serve.videos import StageRouter
from videoqa.store import models
from videoqa.testmedia.synth import SynthVideo

from helpers import assert_one_line_error, run_cli
from serve_helpers import ServerProcess, free_port

KEY = "test-key-1234"
QUESTION = "When is the meeting?"
SPOKEN_AT_S = 8.5


@dataclass
class Library:
    root: Path
    video: Path  # narrated.mp4 under the root
    outside: Path  # a video outside every root
    escape: Path  # a symlink under the root to the outside video
    not_video: Path  # text named like a video, under the root
    cache: Path  # the server's index cache


@dataclass
class Live:
    """The running server, and what it answered before its models were loaded."""

    server: ServerProcess
    library: Library
    first_error: openai.APIStatusError | None
    client: openai.OpenAI = field(init=False)

    def __post_init__(self) -> None:
        self.client = openai.OpenAI(base_url=self.server.url + "/v1", api_key=KEY, max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def library(narrated: SynthVideo, tmp_path_factory: pytest.TempPathFactory) -> Library:
    root = tmp_path_factory.mktemp("media-root")
    video = Path(shutil.copy(narrated.path, root / "narrated.mp4"))
    outside = Path(shutil.copy(narrated.path, tmp_path_factory.mktemp("elsewhere") / "private.mp4"))
    escape = root / "escape.mp4"
    escape.symlink_to(outside)
    not_video = root / "notes.mp4"
    not_video.write_text("meeting notes, not a video\n")
    return Library(root, video, outside, escape, not_video, tmp_path_factory.mktemp("serve-cache"))


def _first_answer(client: openai.OpenAI, server: ServerProcess, video: Path) -> openai.APIStatusError | None:
    """Ask as soon as the server listens: what it answers while the models load (None: it answered)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.output()
        try:
            _ask(client, video, QUESTION)
            return None
        except openai.APIConnectionError:
            time.sleep(0.05)
        except openai.APIStatusError as error:
            return error
    raise AssertionError(f"the server did not answer:\n{server.output()}")


@pytest.fixture(scope="module")
def live(installed_models: None, library: Library) -> Iterator[Live]:
    server = ServerProcess(
        [library.root], "--api-key", KEY, "--max-upload-mb", "1", env={"VIDEOQA_CACHE": str(library.cache)}
    )
    try:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, timeout=300)
        first = _first_answer(client, server, library.video)
        server.wait_until({200}, api_key=KEY)
        yield Live(server, library, first)
    finally:
        server.stop()


def _video_part(url: str) -> dict[str, Any]:
    return {"type": "video_url", "video_url": {"url": url}}


def _ask(
    client: openai.OpenAI, video: Path | str, question: str, history: list[Any] | None = None
) -> openai.types.chat.ChatCompletion:
    url = video if isinstance(video, str) else video.as_uri()
    content = [_video_part(url), {"type": "text", "text": question}]
    messages: list[Any] = [*(history or []), {"role": "user", "content": content}]
    return client.chat.completions.create(model="videoqa", messages=messages)


def _extension(reply: Any) -> dict[str, Any]:
    extra = reply.model_extra or {}
    assert "videoqa" in extra, extra
    found: dict[str, Any] = extra["videoqa"]
    return found


def _http(
    live: Live, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, Any, dict[str, str]]:
    """One plain HTTP request (with the key unless ``Authorization`` is given); status, body, headers."""
    sent = {"Authorization": f"Bearer {KEY}", **headers}
    request = urllib.request.Request(live.server.url + path, data=body, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return int(response.status), response.read(), _lower(response.headers.items())
    except urllib.error.HTTPError as error:
        return int(error.code), error.read(), _lower(error.headers.items())


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def _error_of(status: int, body: bytes, expected: int) -> dict[str, Any]:
    """The OpenAI error object of a refusal, checked for its shape and that it leaks no traceback."""
    assert status == expected, (status, body)
    data = json.loads(body)
    assert set(data) == {"error"} and set(data["error"]) == {"message", "type", "param", "code"}
    assert data["error"]["message"] and "Traceback" not in data["error"]["message"]
    found: dict[str, Any] = data["error"]
    return found


def _post_json(live: Live, path: str, data: Any, **headers: str) -> tuple[int, Any, dict[str, str]]:
    return _http(
        live, "POST", path, json.dumps(data).encode(), **{"Content-Type": "application/json", **headers}
    )


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "videoqa-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _wait_ready(live: Live, video_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        status, body, _ = _http(live, "GET", f"/v1/videos/{video_id}")
        record: dict[str, Any] = json.loads(body)
        assert status == 200 and record["status"] != "failed", record
        if record["status"] == "ready":
            return record
        time.sleep(0.2)
    raise AssertionError(f"video {video_id} was not indexed in time")


# --- answers --------------------------------------------------------------------------------------


def test_while_the_models_load_requests_get_503_then_answers(live: Live) -> None:
    assert live.first_error is not None, "the first request was answered before the models had loaded"
    assert live.first_error.status_code == 503
    body = live.first_error.response.json()
    assert body["error"]["type"] == "service_unavailable" and "loading" in body["error"]["message"]
    assert live.first_error.response.headers["retry-after"].isdigit()
    listed = live.client.models.list()
    assert [model.id for model in listed.data] == [models.FAST_LLM]
    assert listed.data[0].owned_by == "videoqa"


def test_a_question_is_answered_with_the_fact_and_its_time_as_ask_answers_it(live: Live) -> None:
    reply = _ask(live.client, live.library.video, QUESTION)
    text = reply.choices[0].message.content or ""
    assert "noon" in text and "0:08" in text, text
    assert reply.choices[0].finish_reason == "stop" and reply.object == "chat.completion"
    assert reply.model == models.FAST_LLM and reply.usage is not None and reply.usage.completion_tokens > 0
    extension = _extension(reply)
    assert extension["abstained"] is False and len(extension["video_id"]) == 16
    spoken = [item for item in extension["evidence"] if item["channel"] == "speech"]
    assert spoken and "noon" in spoken[0]["text"] and spoken[0]["video"] == "narrated.mp4"
    assert spoken[0]["start_s"] - 1.0 <= SPOKEN_AT_S <= spoken[0]["end_s"] + 1.0
    # the terminal's answer to the same question, from the index the server built
    env = {**os.environ, "VIDEOQA_CACHE": str(live.library.cache)}
    cli = run_cli("ask", str(live.library.video), QUESTION, env=env)
    assert cli.code == 0, cli.stderr
    assert cli.stdout.split("\n")[0] == text


def test_streaming_gives_the_same_text_in_chunks_and_the_evidence_last(live: Live) -> None:
    plain = _ask(live.client, live.library.video, QUESTION)
    content = [_video_part(live.library.video.as_uri()), {"type": "text", "text": QUESTION}]
    messages: list[Any] = [{"role": "user", "content": content}]
    stream = live.client.chat.completions.create(model="videoqa", messages=messages, stream=True)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1 and "".join(pieces) == plain.choices[0].message.content
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop" and not last.choices[0].delta.content
    assert _extension(last) == _extension(plain)


def test_a_follow_up_is_searched_with_the_turn_before_as_chat_does(live: Live) -> None:
    first = _ask(live.client, live.library.video, QUESTION)
    history: list[Any] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [_video_part(live.library.video.as_uri()), {"type": "text", "text": QUESTION}],
        },
        {"role": "assistant", "content": first.choices[0].message.content},
    ]
    # the video is given in the first turn only: later turns reuse it
    follow_up = live.client.chat.completions.create(
        model="videoqa", messages=[*history, {"role": "user", "content": "what happens before that?"}]
    )
    text = follow_up.choices[0].message.content or ""
    # The card is on screen 5-7 s; frames read once a second each stand for half a second either side.
    assert "GATE 42" in text and any(f"0:0{second}" in text for second in (4, 5, 6)), text
    shown = [item for item in _extension(follow_up)["evidence"] if item["channel"] == "screen"]
    assert shown and 4.0 <= shown[0]["start_s"] <= 6.0 and shown[0]["end_s"] >= 7.0
    alone = _ask(live.client, live.library.video, "what happens before that?")
    assert "GATE 42" not in (alone.choices[0].message.content or "")


def test_a_video_is_taken_by_id_as_a_data_url_and_as_input_video(live: Live) -> None:
    by_path = _ask(live.client, live.library.video, QUESTION)
    video_id = _extension(by_path)["video_id"]
    by_id = _ask(live.client, f"videoqa://{video_id}", QUESTION)
    assert by_id.choices[0].message.content == by_path.choices[0].message.content
    encoded = base64.b64encode(live.library.video.read_bytes()).decode()
    inline = _ask(live.client, f"data:video/mp4;base64,{encoded}", QUESTION)
    assert inline.choices[0].message.content == by_path.choices[0].message.content
    assert _extension(inline)["video_id"] != video_id  # kept as an upload, a file of its own
    parts = [
        {"type": "input_video", "input_video": {"data": encoded, "format": "mp4"}},
        {"type": "text", "text": QUESTION},
    ]
    messages: list[Any] = [{"role": "user", "content": parts}]
    llama_style = live.client.chat.completions.create(model="videoqa", messages=messages)
    assert llama_style.choices[0].message.content == by_path.choices[0].message.content
    assert _extension(llama_style)["video_id"] == _extension(inline)["video_id"]  # the same bytes


# --- refusals -------------------------------------------------------------------------------------


def test_every_refusal_is_openai_error_json_with_its_status(live: Live) -> None:
    video = live.library.video.as_uri()
    no_video = {"messages": [{"role": "user", "content": "when does the meeting start?"}]}
    _error_of(*_post_json(live, "/v1/chat/completions", no_video)[:2], 400)
    odd_part = {"messages": [{"role": "user", "content": [{"type": "audio", "audio": {}}]}]}
    _error_of(*_post_json(live, "/v1/chat/completions", odd_part)[:2], 400)
    web = {"messages": [{"role": "user", "content": [_video_part("https://example.com/a.mp4"), "q"]}]}
    assert _post_json(live, "/v1/chat/completions", web)[0] == 422  # "q" is not a part
    web["messages"][0]["content"][1] = {"type": "text", "text": "q"}  # type: ignore[index]
    assert "network" in _error_of(*_post_json(live, "/v1/chat/completions", web)[:2], 400)["message"]
    with pytest.raises(openai.AuthenticationError) as refused:
        openai.OpenAI(base_url=live.server.url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert refused.value.status_code == 401
    _error_of(*_http(live, "GET", "/v1/videos", Authorization="")[:2], 401)
    with pytest.raises(openai.NotFoundError):
        _ask(live.client, "videoqa://0123456789abcdef", QUESTION)
    _error_of(*_post_json(live, "/v1/chat/completions", {"messages": "not a list"})[:2], 422)
    _error_of(
        *_http(live, "POST", "/v1/chat/completions", b"{not json", **{"Content-Type": "application/json"})[
            :2
        ],
        422,
    )
    _error_of(*_post_json(live, "/v1/chat/completions", {"model": "x"})[:2], 422)
    with pytest.raises(openai.BadRequestError):  # a question over the length a question can be
        _ask(live.client, video, "why? " * 1000)


def test_paths_outside_the_media_roots_are_refused(live: Live) -> None:
    library = live.library
    escapes = [
        library.outside.as_uri(),  # a file URL outside the roots
        library.escape.as_uri(),  # a symlink in the root that points out of it
        f"file://{library.root}/../{library.outside.parent.name}/{library.outside.name}",  # ..
        "file:///etc/passwd",
    ]
    for url in escapes:
        with pytest.raises(openai.NotFoundError) as refused:
            _ask(live.client, url, QUESTION)
        if url == library.escape.as_uri():  # says nothing of where the link leads
            assert str(library.outside.parent) not in refused.value.message
    for given in [
        str(library.outside),
        "escape.mp4",
        f"../{library.outside.parent.name}/private.mp4",
        "/etc/passwd",
    ]:
        error = _error_of(*_post_json(live, "/v1/videos", {"path": given})[:2], 404)
        assert error["type"] == "not_found_error"
    names = [video["name"] for video in json.loads(_http(live, "GET", "/v1/videos")[1])["data"]]
    assert "narrated.mp4" in names and "escape.mp4" not in names


def test_uploads_over_the_limit_get_413_and_non_videos_415(live: Live) -> None:
    big = os.urandom(3 * 2**20 // 2)  # 1.5 MiB: over the 1 MiB limit
    body, kind = _multipart("big.mp4", big)
    error = _error_of(*_http(live, "POST", "/v1/videos", body, **{"Content-Type": kind})[:2], 413)
    assert "limit" in error["message"]
    body, kind = _multipart(
        "small-but-big.mp4", os.urandom(2**20 + 10)
    )  # under the body limit, over the file's
    _error_of(*_http(live, "POST", "/v1/videos", body, **{"Content-Type": kind})[:2], 413)
    with pytest.raises(openai.APIStatusError) as refused:
        _ask(live.client, "data:video/mp4;base64," + base64.b64encode(big).decode(), QUESTION)
    assert refused.value.status_code == 413
    body, kind = _multipart("notes.mp4", b"meeting notes, not a video\n" * 10)
    _error_of(*_http(live, "POST", "/v1/videos", body, **{"Content-Type": kind})[:2], 415)
    _error_of(*_post_json(live, "/v1/videos", {"path": "notes.mp4"})[:2], 415)
    with pytest.raises(openai.APIStatusError) as not_a_video:
        _ask(live.client, live.library.not_video, QUESTION)
    assert not_a_video.value.status_code == 415
    assert list(live.server.uploads.rglob("*notes*")) == []  # a refused upload is not kept


# --- videos ---------------------------------------------------------------------------------------


def test_videos_are_listed_added_by_path_or_upload_and_indexed_with_progress(live: Live) -> None:
    status, body, _ = _post_json(live, "/v1/videos", {"path": "narrated.mp4"})
    added = json.loads(body)
    assert status == 200 and added["object"] == "video" and added["name"] == "narrated.mp4"
    assert added["status"] in ("indexing", "ready") and added["duration_s"] == pytest.approx(12.0, abs=0.1)
    assert added["media_url"] == f"/v1/videos/{added['id']}/media"
    ready = _wait_ready(live, added["id"])
    assert ready["progress"] == 1.0 and ready["error"] is None
    listed = json.loads(_http(live, "GET", "/v1/videos")[1])
    assert listed["object"] == "list" and added["id"] in [video["id"] for video in listed["data"]]
    body, kind = _multipart("my talk.mp4", live.library.video.read_bytes())
    status, body, _ = _http(live, "POST", "/v1/videos", body, **{"Content-Type": kind})
    uploaded = json.loads(body)
    assert status == 200 and uploaded["name"] == "my talk.mp4" and uploaded["id"] != added["id"]
    assert _wait_ready(live, uploaded["id"])["duration_s"] == pytest.approx(12.0, abs=0.1)
    assert uploaded["id"] in [
        video["id"] for video in json.loads(_http(live, "GET", "/v1/videos")[1])["data"]
    ]


def test_the_media_is_sent_with_range_requests(live: Live) -> None:
    video_id = json.loads(_post_json(live, "/v1/videos", {"path": "narrated.mp4"})[1])["id"]
    status, body, headers = _http(live, "GET", f"/v1/videos/{video_id}/media", Range="bytes=100-1099")
    size = live.library.video.stat().st_size
    assert status == 206 and headers["content-range"] == f"bytes 100-1099/{size}"
    assert body == live.library.video.read_bytes()[100:1100]
    status, body, headers = _http(live, "GET", f"/v1/videos/{video_id}/media")
    assert status == 200 and headers["content-type"] == "video/mp4" and len(body) == size


def test_the_media_alone_may_be_read_with_the_key_in_the_page_cookie(live: Live) -> None:
    """A <video> element cannot send a header: the page puts the key in a cookie, good for the media
    only; nothing else is answered for the cookie, and a wrong cookie is refused."""
    video_id = json.loads(_post_json(live, "/v1/videos", {"path": "narrated.mp4"})[1])["id"]
    media = f"/v1/videos/{video_id}/media"
    status, body, _ = _http(live, "GET", media, Authorization="", Cookie=f"videoqa_key={KEY}")
    assert status == 200 and body == live.library.video.read_bytes()
    _error_of(*_http(live, "GET", media, Authorization="", Cookie="videoqa_key=wrong")[:2], 401)
    _error_of(*_http(live, "GET", "/v1/videos", Authorization="", Cookie=f"videoqa_key={KEY}")[:2], 401)
    clip = f"/v1/videos/{video_id}/clip?start_s=8&end_s=9"
    _error_of(*_http(live, "GET", clip, Authorization="", Cookie=f"videoqa_key={KEY}")[:2], 401)


def test_captions_come_as_srt_vtt_json_and_events_as_caption_makes_them(live: Live) -> None:
    video_id = json.loads(_post_json(live, "/v1/videos", {"path": "narrated.mp4"})[1])["id"]
    status, body, _ = _http(live, "GET", f"/v1/videos/{video_id}/captions?format=json")
    captions = json.loads(body)
    assert status == 200 and captions["video"] == "narrated.mp4" and len(captions["captions"]) >= 2
    env = {**os.environ, "VIDEOQA_CACHE": str(live.library.cache)}
    cli = run_cli("caption", str(live.library.video), "--json", env=env)
    assert cli.code == 0, cli.stderr
    assert json.loads(cli.stdout)["captions"] == captions["captions"]
    texts = [c["caption"] for c in captions["captions"]]
    status, body, headers = _http(live, "GET", f"/v1/videos/{video_id}/captions?format=srt")
    assert status == 200 and [cue.content for cue in srt.parse(body.decode())] == texts
    status, body, headers = _http(live, "GET", f"/v1/videos/{video_id}/captions?format=vtt")
    assert status == 200 and headers["content-type"].startswith("text/vtt")
    assert [cue.text for cue in webvtt.from_string(body.decode()).captions] == texts
    status, body, headers = _http(live, "GET", f"/v1/videos/{video_id}/captions?format=sse")
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("data: ") for line in body.decode().splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and [json.loads(e) for e in events[:-1]] == captions["captions"]
    _error_of(*_http(live, "GET", f"/v1/videos/{video_id}/captions?format=doc")[:2], 400)
    _error_of(*_http(live, "GET", "/v1/videos/0123456789abcdef/captions")[:2], 404)


def test_search_finds_the_passage_in_the_indexed_videos(live: Live) -> None:
    video_id = _extension(_ask(live.client, live.library.video, QUESTION))["video_id"]
    status, body, _ = _http(live, "GET", "/v1/search?q=meeting%20at%20noon")
    hits = json.loads(body)["data"]
    assert status == 200 and hits and all(hit["text"] for hit in hits)
    assert [hit["score"] for hit in hits] == sorted((hit["score"] for hit in hits), reverse=True)
    best = next(hit for hit in hits if hit["video_id"] == video_id)
    assert "noon" in best["text"] and best["channel"] == "speech" and best["start_s"] <= SPOKEN_AT_S
    only = json.loads(_http(live, "GET", f"/v1/search?q=gate&video={video_id}")[1])["data"]
    assert only and {hit["video_id"] for hit in only} == {video_id}
    _error_of(*_http(live, "GET", "/v1/search?q=%20")[:2], 400)
    _error_of(*_http(live, "GET", "/v1/search")[:2], 422)


def test_a_cited_moment_is_cut_as_a_clip(live: Live) -> None:
    video_id = json.loads(_post_json(live, "/v1/videos", {"path": "narrated.mp4"})[1])["id"]
    status, body, headers = _http(live, "GET", f"/v1/videos/{video_id}/clip?start_s=8.1&end_s=9.9")
    assert status == 200 and headers["content-type"] == "video/mp4", body[:300]
    assert headers["content-disposition"].startswith("attachment")
    clip = live.library.cache.parent / "clip.mp4"
    clip.write_bytes(body)
    assert 4.0 <= probe(clip).duration_s <= 8.0  # 1.8 s and 3 s of context each side, clamped at 12 s
    _error_of(*_http(live, "GET", f"/v1/videos/{video_id}/clip?start_s=9&end_s=2")[:2], 400)
    _error_of(*_http(live, "GET", f"/v1/videos/{video_id}/clip?start_s=soon&end_s=2")[:2], 422)


# --- the command line -----------------------------------------------------------------------------


def test_serve_refuses_unsafe_or_impossible_settings_in_one_line(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("serve", "--host", "0.0.0.0"), "--api-key")
    assert_one_line_error(run_cli("serve", "--media-root", str(tmp_path / "nope")), "no such folder")
    assert_one_line_error(run_cli("serve", "--max-upload-mb", "0"), "--max-upload-mb")
    assert_one_line_error(run_cli("serve", "--cors-origin", "example.com"), "--cors-origin")
    import socket

    unknown = run_cli("serve", "--port", "0", "--model", str(tmp_path / "nope.gguf"))
    assert unknown.code == 2 and "Traceback" not in unknown.stderr
    assert unknown.stderr_lines[-1].startswith("error: the models could not be loaded: ")
    with socket.socket() as taken:
        port = free_port()
        taken.bind(("127.0.0.1", port))
        taken.listen(1)
        assert_one_line_error(run_cli("serve", "--port", str(port)), "cannot listen")


# --- in process, with a stand-in assistant -------------------------------------------------------


class StandIn:
    """What the app asks of an ``Assistant``: models that load when ``release`` is set, a slow index
    build that reports its stages, and an answer that quotes the question."""

    def __init__(self, router: StageRouter) -> None:
        self.options = SimpleNamespace(llm="stand-in.gguf", captioning=SimpleNamespace(quiet_merge_s=30.0))
        self.release = threading.Event()
        self.router = router
        self.builds = 0
        self.llm = SimpleNamespace(id="stand-in", count_tokens=lambda text: len(text.split()))

    def load_models(self) -> None:
        assert self.release.wait(30)

    def knowledge(self, video: Path) -> Any:
        self.builds += 1
        for stage in ("frames", "speech", "screen text"):
            report = self.router(stage)
            assert report is not None
            for done in range(4):
                report(float(done * 4), 12.0)
                time.sleep(0.02)
        return SimpleNamespace(visual=SimpleNamespace(info=SimpleNamespace(duration_s=12.0)))

    def ask(self, video: Path, question: str, feed: Any = None, history: Any = (), **more: Any) -> Answer:
        if question == "crash":
            raise RuntimeError("a bug with a secret /home/path in it")
        return Answer(question, f"You asked: {question}", (), False, False, "none", 0.5, None, {})


@pytest.fixture
def stand_in(tmp_path: Path, narrated: SynthVideo) -> Iterator[tuple[TestClient, StandIn, Path]]:
    root = tmp_path / "root"
    root.mkdir()
    video = Path(shutil.copy(narrated.path, root / "a.mp4"))
    router = StageRouter()
    assistant = StandIn(router)
    settings = ServeSettings(media_roots=(root,), uploads=tmp_path / "uploads")
    app = create_app(settings, cast(Assistant, assistant), router)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, assistant, video


def test_503_until_the_models_are_loaded_then_answers(stand_in: tuple[TestClient, StandIn, Path]) -> None:
    client, assistant, video = stand_in
    through_openai = openai.OpenAI(
        base_url="http://testserver/v1", api_key="x", http_client=client, max_retries=0
    )
    with pytest.raises(openai.InternalServerError) as loading:
        through_openai.models.list()
    assert loading.value.status_code == 503 and "loading" in loading.value.message
    with pytest.raises(openai.InternalServerError):
        _ask(through_openai, video, "who?")
    assert client.get("/v1/videos").status_code == 200  # listing needs no model
    assistant.release.set()
    deadline = time.monotonic() + 10
    while client.get("/v1/models").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert _ask(through_openai, video, "who?").choices[0].message.content == "You asked: who?"


def test_concurrent_requests_for_one_video_wait_for_one_index_build(
    stand_in: tuple[TestClient, StandIn, Path],
) -> None:
    client, assistant, video = stand_in
    assistant.release.set()
    results: list[tuple[int, str]] = []

    def ask_once() -> None:
        reply = client.post(
            "/v1/chat/completions",
            json={
                "messages": [
                    {"role": "user", "content": [_video_part(video.as_uri()), {"type": "text", "text": "hi"}]}
                ]
            },
        )
        results.append((reply.status_code, reply.json()["choices"][0]["message"]["content"]))

    threads = [threading.Thread(target=ask_once) for _ in range(10)]
    for thread in threads:
        thread.start()
    seen: list[tuple[str, float, str | None]] = []
    while any(thread.is_alive() for thread in threads):
        record = client.get("/v1/videos").json()["data"][0]
        seen.append((record["status"], record["progress"], record["stage"]))
        time.sleep(0.01)
    for thread in threads:
        thread.join()
    assert results == [(200, "You asked: hi")] * 10
    assert assistant.builds == 1
    indexing = [(progress, stage) for status, progress, stage in seen if status == "indexing"]
    assert {stage for _, stage in indexing} >= {"frames", "speech", "screen text"}
    assert [p for p, _ in indexing] == sorted(p for p, _ in indexing) and indexing[-1][0] > 0
    assert client.get("/v1/videos").json()["data"][0]["status"] == "ready"


def test_a_bug_is_answered_500_without_its_details(stand_in: tuple[TestClient, StandIn, Path]) -> None:
    client, assistant, video = stand_in
    assistant.release.set()
    reply = client.post(
        "/v1/chat/completions",
        json={
            "messages": [
                {"role": "user", "content": [_video_part(video.as_uri()), {"type": "text", "text": "crash"}]}
            ]
        },
    )
    assert reply.status_code == 500
    message = reply.json()["error"]["message"]
    assert "internal error" in message and "secret" not in message and "RuntimeError" not in message


def _app_with(tmp_path: Path, **settings: Any) -> TestClient:
    router = StageRouter()
    assistant = StandIn(router)
    assistant.release.set()
    chosen = ServeSettings(media_roots=(tmp_path,), uploads=tmp_path / "uploads", **settings)
    return TestClient(create_app(chosen, cast(Assistant, assistant), router), raise_server_exceptions=False)


def test_a_body_over_the_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    with _app_with(tmp_path, max_upload_bytes=1024) as client:
        limit = body_limit(1024)
        declared = client.post(
            "/v1/videos", content=b"x" * (limit + 1), headers={"Content-Type": "application/json"}
        )
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(limit // 65536 + 2):
                yield b"x" * 65536

        streamed = client.post("/v1/videos", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413


def test_cors_is_off_unless_origins_are_given(tmp_path: Path) -> None:
    asked = {"Origin": "https://elsewhere.example"}
    with _app_with(tmp_path) as client:
        assert "access-control-allow-origin" not in client.get("/v1/videos", headers=asked).headers
    with _app_with(tmp_path, cors_origins=("https://elsewhere.example",)) as client:
        allowed = client.get("/v1/videos", headers=asked).headers
        assert allowed["access-control-allow-origin"] == "https://elsewhere.example"
        other = client.get("/v1/videos", headers={"Origin": "https://evil.example"}).headers
        assert "access-control-allow-origin" not in other
