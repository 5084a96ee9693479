"""The ``/v1`` routes: models, videos (list, add, status, media, captions, clips), search and chat.

Nothing blocks the event loop: plain routes run in FastAPI's thread pool, and those that wait for an
index build or the model lock in threads of their own (``ModelWork``).
"""

from __future__ import annotations

import functools
import json
import mimetypes
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from videoqa.errors import InputError, VideoError, VideoqaError
from videoqa.respond.captions import CaptionEvent
from videoqa.respond.writers import Captions, caption_record, captions_record, cue_of, render_srt, render_vtt
from videoqa.retrieval.temporal import check_question
from videoqa.serve.captions import CaptionJobs
from videoqa.serve.chat import AnswerMemo, ChatRunner
from videoqa.serve.engine import Engine
from videoqa.serve.errors import ApiError, error_body, from_videoqa
from videoqa.serve.openai_api import (
    ChatRequest,
    ChatTurns,
    VideoRef,
    chunk,
    completion,
    completion_id,
    now,
    read_chat,
    reply_chunks,
    sse,
)
from videoqa.serve.security import MediaRoots
from videoqa.serve.settings import ServeSettings
from videoqa.serve.uploads import Uploads, probe_video
from videoqa.serve.videos import Catalog, StageRouter, VideoEntry

CAPTION_FORMATS = ("srt", "vtt", "json", "sse")
MODEL_WORK_THREADS = 64  # requests waiting for a model or an index at once; more wait for a thread
T = TypeVar("T")
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class ModelWork:
    """Threads for requests that wait for the model lock or an index build. They are kept apart from
    the pool the other routes run in, so listing videos, their progress and their media stay quick
    however many questions wait."""

    def __init__(self, threads: int = MODEL_WORK_THREADS) -> None:
        self._threads = threads
        self._limiter: anyio.CapacityLimiter | None = None

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        if self._limiter is None:  # made in the event loop it serves
            self._limiter = anyio.CapacityLimiter(self._threads)
        return await anyio.to_thread.run_sync(functools.partial(call, *args), limiter=self._limiter)


@dataclass(frozen=True)
class Server:
    """Everything the routes share."""

    settings: ServeSettings
    engine: Engine
    roots: MediaRoots
    catalog: Catalog
    uploads: Uploads
    captions: CaptionJobs
    chat: ChatRunner
    work: ModelWork

    @classmethod
    def make(cls, settings: ServeSettings, engine: Engine, roots: MediaRoots, router: StageRouter) -> Server:
        return cls(
            settings,
            engine,
            roots,
            Catalog(roots, engine, router),
            Uploads(roots.uploads, settings.max_upload_bytes),
            CaptionJobs(engine),
            ChatRunner(engine, AnswerMemo()),
            ModelWork(),
        )

    def name_of(self, path: Path) -> str:
        """How the API names a file: relative to its media root, or an upload's own file name."""
        root = self.roots.root_of(path)
        return path.name if root is None or root == self.roots.uploads else path.relative_to(root).as_posix()

    def video_for(self, ref: VideoRef) -> VideoEntry:
        """The catalog entry of the video a chat message names (an inline video is saved as an upload)."""
        if ref.kind == "id":
            return self.catalog.get(ref.value)
        if ref.kind == "file":
            path = self.roots.from_file_url(ref.value, ref.param)
            return self.catalog.add(path, self.name_of(path))
        path, info = self.uploads.save_bytes(ref.data, ref.value)
        return self.catalog.add(path, path.name, info.duration_s)


def api_routes(server: Server) -> APIRouter:
    routes = APIRouter(prefix="/v1")
    _model_routes(routes, server)
    _video_routes(routes, server)
    _caption_routes(routes, server)
    _chat_routes(routes, server)
    return routes


def _model_routes(routes: APIRouter, server: Server) -> None:
    @routes.get("/models")
    def list_models() -> dict[str, Any]:
        server.engine.require_ready()
        model = {"id": server.engine.model_name, "object": "model", "created": 0, "owned_by": "videoqa"}
        return {"object": "list", "data": [model]}

    @routes.get("/search")
    async def search(q: str = Query(), video: str | None = None) -> dict[str, Any]:
        server.engine.require_ready()
        if not q.strip():
            raise ApiError(400, "give the text to search for: /v1/search?q=TEXT", "q")
        try:
            check_question(q)
        except VideoqaError as exc:
            raise ApiError(400, str(exc), "q") from None
        hits = await server.work.run(_search, server, q, video)
        return {"object": "list", "data": hits}


def _search(server: Server, query: str, video: str | None) -> list[dict[str, Any]]:
    """The passages matching ``query`` in one video (indexed first if need be) or every indexed one."""
    entries = [server.catalog.ready(server.catalog.get(video))] if video else server.catalog.ready_entries()
    hits = [hit for entry in entries for hit in _hits(server, entry, query)]
    return sorted(hits, key=lambda hit: -hit["score"])


def _hits(server: Server, entry: VideoEntry, query: str) -> list[dict[str, Any]]:
    with server.engine.lock:
        found = server.engine.assistant.evidence(entry.path, query)
    return [
        {
            "video_id": entry.id,
            "video": entry.name,
            "start_s": round(item.start_s, 3),
            "end_s": round(item.end_s, 3),
            "channel": item.channel,
            "text": item.text,
            "scene": item.scene,
            "score": round(item.similarity, 4),
        }
        for item in found.items
        if item.text is not None
    ]


def _video_routes(routes: APIRouter, server: Server) -> None:
    @routes.get("/videos")
    def list_videos() -> dict[str, Any]:
        return {"object": "list", "data": [entry.record() for entry in server.catalog.scan()]}

    @routes.post("/videos")
    async def add_video(request: Request) -> dict[str, Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            entry = await _uploaded(server, request)
        elif kind == "application/json":
            entry = await run_in_threadpool(_by_path, server, await _json_path(request))
        else:
            raise ApiError(400, 'send a multipart/form-data upload (field "file") or JSON {"path": "..."}')
        server.catalog.index(entry)
        return entry.record()

    @routes.get("/videos/{id}")
    def get_video(id: str) -> dict[str, Any]:
        return server.catalog.get(id).record()

    @routes.get("/videos/{id}/media")
    def media(id: str) -> FileResponse:
        entry = server.catalog.get(id)
        kind = mimetypes.guess_type(entry.path.name)[0] or "application/octet-stream"
        return FileResponse(
            entry.path, media_type=kind, content_disposition_type="inline", filename=entry.path.name
        )

    @routes.get("/videos/{id}/clip")
    def clip(id: str, start_s: float, end_s: float) -> FileResponse:
        return _clip(server.catalog.get(id), start_s, end_s)


async def _uploaded(server: Server, request: Request) -> VideoEntry:
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, 'the upload needs a file in the field "file"', "file")
    name = upload.filename or "upload.mp4"
    path, info = await run_in_threadpool(server.uploads.save, upload.file.read, name)
    return server.catalog.add(path, path.name, info.duration_s)


async def _json_path(request: Request) -> str:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(422, "the body is not valid JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("path"), str):
        raise ApiError(422, 'give {"path": "/abs/path.mp4" or "path/under/a/media/root.mp4"}', "path")
    path: str = body["path"]
    return path


def _by_path(server: Server, given: str) -> VideoEntry:
    path = server.roots.resolve(given)
    info = probe_video(path, given)
    return server.catalog.add(path, server.name_of(path), info.duration_s)


def _clip(entry: VideoEntry, start_s: float, end_s: float) -> FileResponse:
    from videoqa.media.clips import clip_name, cut_clip

    folder = Path(tempfile.mkdtemp(prefix="videoqa-clip-"))
    try:
        name = clip_name(entry.path, start_s, end_s)
        path = cut_clip(entry.path, start_s, end_s, folder / name)
    except InputError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ApiError(400, str(exc), "start_s") from None
    except VideoError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise ApiError(415, str(exc), "id") from None
    except VideoqaError as exc:  # ffmpeg failed: nothing the client can change
        shutil.rmtree(folder, ignore_errors=True)
        raise ApiError(500, f"the clip could not be cut: {exc}") from None
    cleanup = BackgroundTask(shutil.rmtree, folder, ignore_errors=True)
    return FileResponse(path, media_type="video/mp4", filename=name, background=cleanup)


def _caption_routes(routes: APIRouter, server: Server) -> None:
    @routes.get("/videos/{id}/captions")
    async def captions(id: str, format: str = "json") -> Response:
        if format not in CAPTION_FORMATS:
            raise ApiError(400, f"format must be one of {', '.join(CAPTION_FORMATS)}", "format")
        server.engine.require_ready()
        entry = await server.work.run(lambda: server.catalog.ready(server.catalog.get(id)))
        job = server.captions.of(entry)
        if format == "sse":
            events = _caption_events(server.work, job.follow())
            return StreamingResponse(events, media_type="text/event-stream", headers=_SSE_HEADERS)
        made = await server.work.run(job.all)
        if format == "json":
            record = captions_record(Captions(entry.name, server.engine.assistant.llm.id, tuple(made)))
            return Response(json.dumps(record), media_type="application/json")
        cues = [cue for cue in map(cue_of, made) if cue is not None]
        if format == "srt":
            return PlainTextResponse(render_srt(cues), media_type="application/x-subrip")
        return PlainTextResponse(render_vtt(cues), media_type="text/vtt")


async def _caption_events(work: ModelWork, events: Iterator[CaptionEvent]) -> AsyncIterator[str]:
    try:
        while (event := await work.run(next, events, None)) is not None:
            yield sse(caption_record(event))
    except ApiError as exc:  # the stream has begun: the error is its last event
        yield sse(error_body(exc.status, exc.message, exc.param, exc.code))
    yield sse("[DONE]")


def _chat_routes(routes: APIRouter, server: Server) -> None:
    @routes.post("/chat/completions", response_model=None)
    async def chat_completions(body: ChatRequest) -> dict[str, Any] | StreamingResponse:
        server.engine.require_ready()
        turns = read_chat(body, server.settings.max_upload_bytes)
        try:
            check_question(turns.question)  # before the video is indexed
        except VideoqaError as exc:
            raise from_videoqa(exc, "messages") from None
        entry = await server.work.run(lambda: server.catalog.ready(server.video_for(turns.video)))
        if not turns.stream:
            reply = await server.work.run(server.chat.answer, entry, turns)
            return completion(reply, completion_id(), now())
        chunks = _streamed(server, entry, turns)
        return StreamingResponse(chunks, media_type="text/event-stream", headers=_SSE_HEADERS)


async def _streamed(server: Server, entry: VideoEntry, turns: ChatTurns) -> AsyncIterator[str]:
    """The reply as ``chat.completion.chunk`` events. The answer is checked against the evidence (and may
    be replaced by a quote) once the model has finished, so its text is sent then: what a client puts
    together from the chunks is the same text a request without ``stream`` gets."""
    id, created = completion_id(), now()
    yield sse(chunk(id, created, server.engine.model_name, {"role": "assistant", "content": ""}))
    try:
        reply = await server.work.run(server.chat.answer, entry, turns)
    except (ApiError, VideoqaError) as exc:
        error = exc if isinstance(exc, ApiError) else from_videoqa(exc, "messages")
        yield sse(error_body(error.status, error.message, error.param, error.code))
        yield sse("[DONE]")
        return
    for piece in reply_chunks(reply, id, created):
        yield sse(piece)
    yield sse("[DONE]")
