"""The one way a JSON request body is read: bounded in size and in depth, UTF-8, no NaN or
Infinity, and any fault answered 400 (413 for size) with a sentence.

Two callers share it: the routes that parse their own bodies (log-in, sign-up, the Dezgo
routes) through ``json_body``, and ``JsonBodies``, a middleware that checks every JSON body
before FastAPI parses it for a pydantic-bodied route (whose own parser takes NaN and cannot
be given a depth limit)."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sfumato.errors import InvalidRequest, SfumatoError, TooLarge
from sfumato.studio import MAX_UPLOAD_BYTES

MAX_DEPTH = 32  # the deepest real body (a settings object) is 3 levels
_PARSED = "sfumato.json"  # where the middleware leaves the parsed body in the scope


def max_bytes(max_upload_bytes: int) -> int:
    """Room for two pictures in base64 (an init image and a mask) and the fields."""
    return 3 * max_upload_bytes + 1_000_000


class _Constant(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _Constant(name)


def _depth(value: Any) -> int:
    """How deeply lists and objects nest (without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def parse(raw: bytes) -> Any:
    """The body's JSON value, or InvalidRequest with a sentence."""
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send the fields as one JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The request body is not UTF-8 text; send JSON in UTF-8.") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except _Constant as constant:
        raise InvalidRequest(
            f"{constant} is not a JSON number; send a number, or leave the field out."
        ) from None
    except RecursionError:
        value = None  # nested too deeply for the parser: the same answer as below
        depth = MAX_DEPTH + 1
    except ValueError as error:
        where = f" ({error.msg}, at character {error.pos})" if hasattr(error, "msg") else ""
        raise InvalidRequest(f"The request body is not valid JSON{where}.") from None
    else:
        depth = _depth(value)
    if depth > MAX_DEPTH:
        raise InvalidRequest(
            f"The request body nests lists or objects more than {MAX_DEPTH} deep; "
            "no field needs that."
        )
    return value


async def _read(chunks, limit: int) -> bytes:
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"The request body is larger than {limit / 1e6:.0f} MB.")
    return bytes(body)


def _limit(scope: Scope) -> int:
    app = scope.get("app")
    studio = getattr(getattr(app, "state", None), "studio", None)
    return max_bytes(studio.config.max_upload_bytes if studio else MAX_UPLOAD_BYTES)


async def read_file(file: UploadFile, limit: int) -> bytes:
    """An uploaded file's bytes, refused as soon as it passes ``limit`` (never read whole)."""
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise TooLarge(f"The file is larger than {limit / 1e6:.0f} MB; send a smaller one.")
    return content


async def json_body(request: Request) -> Any:
    """A hand-parsed route's JSON body (already checked by the middleware, or read here)."""
    if _PARSED in request.scope:
        return request.scope[_PARSED]
    return parse(await _read(request.stream(), _limit(request.scope)))


async def request_fields(request: Request, max_bytes: int) -> tuple[dict, dict[str, bytes]]:
    """A hand-parsed route's fields and files, whichever of the three encodings a client
    uses: JSON (pictures in base64), a urlencoded form, or multipart (pictures as files)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("application/json"):
        data = await json_body(request)
        if not isinstance(data, dict):
            raise InvalidRequest("Send the fields as one JSON object.")
        return data, {}
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form(max_part_size=max_bytes)
        fields, files = {}, {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name in files:
                    continue  # several files of one name (OpenAI's image[]): the first is used
                content = await value.read(max_bytes + 1)
                if len(content) > max_bytes:
                    raise TooLarge(f"{name} is larger than {max_bytes / 1e6:.0f} MB.")
                files[name] = content
            elif "\ufffd" in value:  # what a form's bytes that are not UTF-8 decode to
                raise InvalidRequest(f"{name} is not UTF-8 text; send the form in UTF-8.")
            else:
                fields[name] = value
        return fields, files
    raise InvalidRequest(
        "Send the fields as JSON, application/x-www-form-urlencoded or multipart/form-data."
    )


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            )
    return False


class JsonBodies:
    """Checks every JSON request body with ``parse`` before a route sees it; an empty body is
    left for the route to refuse (or not need)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_json(scope):
            await self.app(scope, receive, send)
            return

        async def chunks():
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        try:
            raw = await _read(chunks(), _limit(scope))
            if raw.strip():
                scope[_PARSED] = parse(raw)
        except SfumatoError as error:
            from sfumato.api.errors import error_for  # errors installs this class

            await error_for(scope, error.status, error.code, error.message)(scope, receive, send)
            return

        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
