"""Errors in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, for every
answer under ``/openai/``: the ``openai`` SDK picks its exception by the status (400
``BadRequestError``, 401 ``AuthenticationError``, 403 ``PermissionDeniedError``, 404
``NotFoundError``, 429 ``RateLimitError``) and reads the rest from that body."""

from __future__ import annotations

from http import HTTPStatus

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from sfumato.errors import STATUS, InvalidRequest

PREFIX = "/openai/"  # every path that speaks OpenAI's shape

# what each status is to OpenAI's clients; every other 4xx is an invalid request
TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
# sfumato's codes that OpenAI names otherwise (the rest pass as they are: quota_exceeded, ...)
CODES = {"not_authenticated": "invalid_api_key", "rate_limited": "rate_limit_exceeded"}
# what Starlette says of a path or method it has no route for: not a sentence
ROUTING = {
    "Not Found": "sfumato answers only OpenAI's Images API here: POST images/generations, "
    "images/edits and images/variations, GET models.",
    "Method Not Allowed": "This route does not take that method: images/* take POST, "
    "models takes GET.",
}


class OpenAIInvalid(InvalidRequest):
    """An invalid request that names the field at fault (OpenAI's ``param``)."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


def openai_error(
    status: int, code: str, message: str, headers=None, param: str | None = None
) -> JSONResponse:
    if status == 422:
        status = 400  # OpenAI answers every invalid request 400, and the SDK expects it
    kind = TYPES.get(status) or ("server_error" if status >= 500 else "invalid_request_error")
    body = {
        "message": ROUTING.get(message, message),
        "type": kind,
        "param": param,
        "code": CODES.get(code, code),
    }
    return JSONResponse({"error": body}, status_code=status, headers=headers)


class OpenAIErrorDetail(BaseModel):
    message: str = Field(description="A sentence for the person at the keyboard.")
    type: str = Field(description="invalid_request_error, authentication_error, ...")
    param: str | None = Field(description="The field at fault, where there is one.")
    code: str = Field(description="Stable, for programs: invalid_request, invalid_api_key, ...")


class OpenAIErrorBody(BaseModel):
    """Every error under /openai/v1, in OpenAI's shape."""

    error: OpenAIErrorDetail


# the error answers every route documents (sfumato's own routes document ErrorBody)
RESPONSES = {
    status: {"model": OpenAIErrorBody, "description": HTTPStatus(status).phrase}
    for status in sorted((set(STATUS.values()) | {422}) - {500})
}
