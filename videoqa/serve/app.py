"""The FastAPI application: the OpenAI-compatible API under ``/v1`` and the page at ``/``.

``create_app`` wires the parts together; the routes are in ``api.py``. Every refusal is OpenAI's error
JSON (``errors.py``); an unexpected exception is logged and answered 500 without its details.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from videoqa import __version__
from videoqa.errors import VideoqaError
from videoqa.serve import errors
from videoqa.serve.api import Server, api_routes
from videoqa.serve.engine import Engine
from videoqa.serve.errors import ApiError
from videoqa.serve.security import BodyLimit, MediaRoots, bearer_ok, body_limit, cookie_ok
from videoqa.serve.settings import ServeSettings
from videoqa.serve.videos import StageRouter

if TYPE_CHECKING:
    from videoqa.assistant import Assistant

STATIC = Path(__file__).resolve().parent / "static"


def create_app(
    settings: ServeSettings,
    assistant: Assistant,
    router: StageRouter,
    on_failed: Callable[[str], None] | None = None,
) -> FastAPI:
    """The app serving ``assistant`` (made with ``progress=router``); its models start loading in the
    background when the app starts, and ``on_failed`` hears it if they cannot be loaded."""
    engine = Engine(assistant, on_failed)
    server = Server.make(settings, engine, MediaRoots(settings.media_roots, settings.uploads), router)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine.start_loading()
        yield

    # no /docs or /openapi.json: the API is OpenAI's, documented in docs/cli.md, and the docs page would
    # load its scripts from a CDN
    app = FastAPI(
        title="videoqa",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    _handle_errors(app)
    app.include_router(api_routes(server), dependencies=[Depends(_key_check(settings.api_key))])
    _page(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        BodyLimit, limit=body_limit(settings.max_upload_bytes), upload_limit=settings.max_upload_bytes
    )
    app.state.server = server
    return app


def _handle_errors(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, errors.api_error_handler)
    app.add_exception_handler(VideoqaError, errors.videoqa_error_handler)
    app.add_exception_handler(StarletteHTTPException, errors.http_error_handler)
    app.add_exception_handler(RequestValidationError, errors.validation_error_handler)
    app.add_exception_handler(Exception, errors.internal_error_handler)


# The page's <video> element cannot send a header, so the video file itself may also be fetched with the
# key in this cookie, which the page sets (SameSite=Strict: another site's page cannot make the browser
# send it). Only reading a video's media is allowed that way; everything else needs the header.
MEDIA_KEY_COOKIE = "videoqa_key"


def _key_check(api_key: str | None) -> Callable[[Request], None]:
    def check(request: Request) -> None:
        if api_key is None or bearer_ok(request.headers.get("authorization"), api_key):
            return
        if _media_read(request) and cookie_ok(request.cookies.get(MEDIA_KEY_COOKIE), api_key):
            return
        raise ApiError(401, "missing or wrong API key: send the header 'Authorization: Bearer KEY'")

    return check


def _media_read(request: Request) -> bool:
    return request.method in ("GET", "HEAD") and request.url.path.endswith("/media")


def _page(app: FastAPI) -> None:
    """The page and its files: public, as they hold no data (the API they call needs the key)."""
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        index = STATIC / "index.html"
        if not index.is_file():
            raise ApiError(404, "the page is not installed (videoqa/serve/static/index.html)")
        return FileResponse(index, media_type="text/html")
