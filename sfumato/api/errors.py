"""Every error is JSON, ``{"error": {"code": ..., "message": ...}}``, with a 4xx status that
says whose fault it is; a message is a sentence a user can act on, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from sfumato.errors import SfumatoError

log = logging.getLogger(__name__)
HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


# A front door that speaks another API (OpenAI's under /openai/v1) answers its errors in that
# API's shape, so that its clients raise the right exception: a path prefix and a function
# (status, code, message, headers, param) -> the answer, registered by the door's router.
ERROR_SHAPES: dict[str, Callable[..., JSONResponse]] = {}


def error_for(
    scope, status: int, code: str, message: str, headers=None, param: str | None = None
) -> JSONResponse:
    """The error answer to a request, in the shape its path speaks (sfumato's by default)."""
    path = scope["path"].removeprefix(scope.get("root_path", ""))
    for prefix, shape in ERROR_SHAPES.items():
        if path.startswith(prefix):
            return shape(status, code, message, headers, param)
    return error_response(status, code, message, headers)


def _field(location: tuple) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "the request body"


def _validation_message(error: RequestValidationError) -> str:
    sentences = []
    for item in error.errors()[:5]:
        message = item.get("msg", "is not valid").removeprefix("Value error, ")
        if item.get("type") == "json_invalid":
            sentences.append("The request body is not valid JSON.")
        elif tuple(item.get("loc", ())) == ("body",):
            sentences.append(
                "Send the request body as one JSON object (Content-Type: application/json)."
            )
        elif item.get("type") == "missing":
            sentences.append(f"{_field(item.get('loc', ()))} is required.")
        else:
            sentences.append(f"{_field(item.get('loc', ()))}: {message}.")
    return " ".join(sentences)


def install(app: FastAPI) -> None:
    @app.exception_handler(SfumatoError)
    async def _user_error(request: Request, error: SfumatoError):
        param = getattr(error, "param", None)  # the field at fault, where a door names it
        return error_for(
            request.scope, error.status, error.code, error.message, error.headers, param
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        return error_for(request.scope, 422, "invalid_request", _validation_message(error))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException):
        code = HTTP_CODES.get(error.status_code, "error")
        message = error.detail if isinstance(error.detail, str) else "The request failed."
        headers = getattr(error, "headers", None)
        return error_for(request.scope, error.status_code, code, message, headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return error_for(
            request.scope,
            500,
            "internal_error",
            "Something went wrong on the server; it has been logged.",
        )
