"""Errors as OpenAI's API gives them: ``{"error": {"message", "type", "param", "code"}}`` with the HTTP
status that says what went wrong. Nothing else (no stack trace, no exception name) leaves the server."""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from videoqa.errors import QuestionError, VideoError, VideoqaError

log = logging.getLogger("videoqa")

RETRY_AFTER_S = 5  # what a 503 (models loading) tells a client to wait before it asks again
# OpenAI's error types, by status
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """A request the server refuses: its status, and a message a person can act on."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": _TYPES.get(status, "server_error"),
            "param": param,
            "code": code,
        }
    }


def error_response(error: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    if error.status == 503:
        headers = {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse(
        error_body(error.status, error.message, error.param, error.code), error.status, headers=headers
    )


def from_videoqa(exc: VideoqaError, param: str | None = None) -> ApiError:
    """The status of a videoqa error raised while serving a request about a video."""
    if isinstance(exc, VideoError):
        return ApiError(415, str(exc), param, "unsupported_video")
    if isinstance(exc, QuestionError):
        return ApiError(400, str(exc), "messages", "bad_question")
    return ApiError(400, str(exc), param)  # InputError and the rest: the request asked for what cannot be


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def videoqa_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VideoqaError)
    return error_response(from_videoqa(exc))


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own refusals (an unknown route, a wrong method) in OpenAI's shape."""
    assert isinstance(exc, StarletteHTTPException)
    message = {404: f"no such endpoint: {request.method} {request.url.path}"}.get(exc.status_code, exc.detail)
    return error_response(ApiError(exc.status_code, str(message)))


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A body that is not the JSON the endpoint takes: 422, naming the first field that is wrong."""
    errors: list[dict[str, Any]] = list(getattr(exc, "errors", list)())
    if not errors:
        return error_response(ApiError(422, "the request body is not valid"))
    first = errors[0]
    if first.get("type") == "json_invalid":
        return error_response(ApiError(422, "the request body is not valid JSON"))
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid body"))
    return error_response(ApiError(422, message, where or None))


async def internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged on the server with its traceback, answered with one line and no details."""
    log.error("internal error serving %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body(500, "internal error; the server log has the details"), 500)
