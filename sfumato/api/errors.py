"""Every error is JSON, ``{"error": {"code": ..., "message": ...}}``, with a 4xx status that
says whose fault it is; a message is a sentence a user can act on, never a traceback."""

from __future__ import annotations

import logging

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
    async def _user_error(_request: Request, error: SfumatoError):
        return error_response(error.status, error.code, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, error: RequestValidationError):
        return error_response(422, "invalid_request", _validation_message(error))

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, error: HTTPException):
        code = HTTP_CODES.get(error.status_code, "error")
        message = error.detail if isinstance(error.detail, str) else "The request failed."
        return error_response(error.status_code, code, message, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, error: Exception):
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(
            500, "internal_error", "Something went wrong on the server; it has been logged."
        )
