"""What ComfyUI's answers look like where they are not pictures: its error body, and JSON
bodies read whatever their Content-Type (SillyTavern and comfy-api-simplified send none)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from sfumato.api import bodies
from sfumato.errors import InvalidRequest

# ComfyUI's routes, as they start; every one is also served under /api (as ComfyUI does)
ROOTS = (
    "/prompt",
    "/queue",
    "/history",
    "/view",
    "/upload/",
    "/object_info",
    "/system_stats",
    "/embeddings",
    "/models",
    "/interrupt",
    "/free",
    "/features",
    "/ws",
    "/api/",
)


def error_body(code: str, message: str, details: str | None = None) -> dict:
    """ComfyUI's error (``type``, ``message``, ``details``, ``extra_info``) with sfumato's
    ``code`` beside it; ``node_errors`` as /prompt has it."""
    error = {
        "type": code,
        "code": code,
        "message": message,
        "details": message if details is None else details,
        "extra_info": {},
    }
    return {"error": error, "node_errors": {}}


def error(status: int, code: str, message: str, headers=None, param=None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


NO_PROMPT = {
    "error": {
        "type": "no_prompt",
        "code": "no_prompt",
        "message": "No prompt provided",
        "details": "No prompt provided",
        "extra_info": {},
    },
    "node_errors": {},
}


async def optional_json(request: Request) -> Any:
    """The body's JSON value whatever the Content-Type; None when the body is empty. Bounded
    in size and depth as every JSON body is (``api.bodies``)."""
    if bodies._PARSED in request.scope:  # a JSON Content-Type: the middleware parsed it
        return request.scope[bodies._PARSED]
    raw = await bodies._read(request.stream(), bodies._limit(request.scope))
    if not raw.strip():
        return None
    return bodies.parse(raw)


async def json_object(request: Request, what: str) -> dict:
    """The body as one JSON object ({} when empty)."""
    value = await optional_json(request)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest(f"Send {what} as one JSON object.")
    return value


def id_list(value: Any, field: str) -> list[str]:
    """``delete``'s prompt ids: a list of strings."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"{field} is a list of prompt ids (strings).")
    if len(value) > 1000:
        raise InvalidRequest(f"{field} names at most 1000 prompt ids at a time.")
    return value
