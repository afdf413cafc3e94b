"""ComfyUI's WebSocket, ``/ws?clientId=ID``: what a client waits on while its prompt runs.

On connecting, a ``status`` with the caller's ``queue_remaining`` and the socket's ``sid``;
then, from the user's own events only (``studio.events`` is per user): a ``status`` whenever
one of their jobs changes state, and the worker's ComfyUI messages (``execution_start``,
``executing``, ``progress``, ``executed``, ``execution_success``, ...) for the prompts queued
with this ``client_id`` (and those queued without one). A prompt's last message is
``executing`` with ``node: null``, sent after its history is written.

Binary preview frames go only to a client that asked for them with
``{"type": "feature_flags", "data": {"supports_preview_metadata": true}}``, in ComfyUI's
event-4 layout; ComfyUI itself sends none by default, and comfy-api-simplified takes every
binary frame for a result picture.

Signing in is as for every route (``api.deps``): an API key (``Authorization: Bearer``,
``X-API-Key``, or ``?token=KEY``, which a browser's WebSocket can send), HTTP Basic
(comfy-api-simplified puts ``user:password@`` in the URL), the login cookie, or nothing in
personal mode. A browser sends cookies and cached Basic credentials to a socket that another
site's page opens, so without a key an ``Origin`` other than the server's own is refused.
Refusals close the socket with 4401 (not signed in) or 1008 (not allowed), and a sentence.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import re
import struct
import uuid
from urllib.parse import urlsplit

from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from sfumato.api import deps
from sfumato.errors import Forbidden, NotAuthenticated, SfumatoError
from sfumato.jobs.queue import ACTIVE
from sfumato.store.tables import Job, User
from sfumato.studio import Studio

log = logging.getLogger(__name__)
NOT_SIGNED_IN, NOT_ALLOWED, GOING_AWAY = 4401, 1008, 1001
PREVIEW_WITH_METADATA = 4  # ComfyUI's BinaryEventTypes.PREVIEW_IMAGE_WITH_METADATA
STOPPING_CHECK_S = 2.0
MAX_CLIENT_ID = 200


_TOKEN = re.compile(r"([?&]token=)[^&\s\"']+")


class HideTokens(logging.Filter):
    """``?token=KEY`` out of the server's log: uvicorn writes each socket's path with its
    query string ("WebSocket /ws?token=..." [accepted])."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _TOKEN.sub(r"\1...", record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN.sub(r"\1...", arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


for _logger in ("uvicorn.error", "uvicorn.access"):
    logging.getLogger(_logger).addFilter(HideTokens())


def _request_of(socket: WebSocket) -> tuple[Request, bool]:
    """The socket's handshake as a GET request for ``deps.current_user``, with ``?token=``
    as a Bearer key; and whether it carries an API key."""
    headers = [(k, v) for k, v in socket.scope["headers"]]
    token = socket.query_params.get("token")
    if token and not any(k == b"authorization" for k, _ in headers):
        headers.append((b"authorization", f"Bearer {token}".encode("latin-1", "replace")))
    scope = dict(socket.scope, type="http", method="GET", headers=headers)
    request = Request(scope)
    return request, deps.api_key(request) is not None


def authenticate(socket: WebSocket, studio: Studio) -> User:
    request, keyed = _request_of(socket)
    user = deps.current_user(request, studio)
    origin = socket.headers.get("origin")
    host = socket.headers.get("host", "")
    if origin and not keyed and urlsplit(origin).netloc != host:
        raise Forbidden(
            "Another site's page may not open this socket with your login; send an API key "
            "(?token=KEY)."
        )
    deps.Needs("read")(request, user)
    return user


def _reason(sentence: str) -> str:
    """A close reason fits in 123 bytes of UTF-8."""
    encoded = sentence.encode()
    return sentence if len(encoded) <= 123 else encoded[:120].decode(errors="ignore") + "..."


def queue_remaining_in(session, user_id: int) -> int:
    """The user's own jobs queued or running (all of them: ComfyUI counts its running
    prompt, so that a client waiting for "0" waits until everything is done)."""
    return session.scalar(
        select(func.count()).select_from(Job).where(Job.user_id == user_id, Job.status.in_(ACTIVE))
    )


def queue_remaining(studio: Studio, user_id: int) -> int:
    with studio.db.session() as session:
        return queue_remaining_in(session, user_id)


def status(remaining: int, sid: str | None = None) -> dict:
    data: dict = {"status": {"exec_info": {"queue_remaining": remaining}}}
    if sid is not None:
        data["sid"] = sid
    return {"type": "status", "data": data}


def preview_frame(prompt_id: str, node: str | None, data_url: str) -> bytes | None:
    """ComfyUI's event-4 frame: [4][length of the metadata][metadata JSON][JPEG]."""
    head, _, encoded = data_url.partition(",")
    try:
        picture = base64.b64decode(encoded, validate=True)
    except ValueError:
        return None
    kind = head.removeprefix("data:").partition(";")[0] or "image/jpeg"
    metadata = json.dumps(
        {
            "node_id": node,
            "prompt_id": prompt_id,
            "display_node_id": node,
            "parent_node_id": None,
            "real_node_id": node,
            "image_type": kind,
        }
    ).encode()
    return struct.pack(">II", PREVIEW_WITH_METADATA, len(metadata)) + metadata + picture


class Connection:
    """One open socket: its id, what it asked for, and the user's graph jobs it follows."""

    def __init__(self, socket: WebSocket, studio: Studio, user: User, sid: str):
        self.socket, self.studio, self.user, self.sid = socket, studio, user, sid
        self.previews = False
        # this socket's running prompts: job id -> (its prompt_id, the node running)
        self.nodes: dict[str, tuple[str, str | None]] = {}

    async def run(self) -> None:
        async with self.studio.events.subscribe(self.user.id) as events:
            remaining = await run_in_threadpool(queue_remaining, self.studio, self.user.id)
            await self.socket.send_json(status(remaining, self.sid))
            reading = asyncio.create_task(self._read())
            forwarding = asyncio.create_task(self._forward(events))
            try:
                await asyncio.wait({reading, forwarding}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reading, forwarding):
                    task.cancel()
                for task in (reading, forwarding):
                    # a send to a socket that closed meanwhile: nothing is left to tell it
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

    async def _read(self) -> None:
        """The client's messages: only ``feature_flags`` means anything."""
        while True:
            message = await self.socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if not text:
                continue
            try:
                sent = json.loads(text)
            except ValueError:
                continue
            if isinstance(sent, dict) and sent.get("type") == "feature_flags":
                flags = sent.get("data")
                self.previews = isinstance(flags, dict) and flags.get("supports_preview_metadata")
                self.previews = bool(self.previews)
                await self.socket.send_json(
                    {
                        "type": "feature_flags",
                        "data": {
                            "supports_preview_metadata": True,
                            "max_upload_size": self.studio.config.max_upload_bytes,
                        },
                    }
                )

    async def _forward(self, events) -> None:
        while True:
            try:
                event = await asyncio.wait_for(events.get(), STOPPING_CHECK_S)
            except TimeoutError:
                if self.studio.dispatch.stopping:
                    await self.socket.close(GOING_AWAY, "The server is stopping.")
                    return
                continue
            kind = event.get("type")
            if kind == "job":
                remaining = await run_in_threadpool(queue_remaining, self.studio, self.user.id)
                await self.socket.send_json(status(remaining))
            elif kind == "comfyui":
                await self._comfyui(event)
            elif kind == "progress" and self.previews and event.get("preview"):
                job_id = event.get("job_id")
                if job_id in self.nodes:
                    frame = preview_frame(*self.nodes[job_id], event["preview"])
                    if frame is not None:
                        await self.socket.send_bytes(frame)

    async def _comfyui(self, event: dict) -> None:
        client_id = event.get("client_id")
        if client_id is not None and client_id != self.sid:
            return
        name, data = event.get("event"), event.get("data") or {}
        job_id = event.get("job_id")
        if name == "executing":
            if data.get("node") is None:
                self.nodes.pop(job_id, None)
            else:
                self.nodes[job_id] = (data.get("prompt_id") or job_id, data.get("node"))
        elif name in ("execution_success", "execution_error", "execution_interrupted"):
            self.nodes.pop(job_id, None)
        await self.socket.send_json({"type": name, "data": data})


async def serve(socket: WebSocket) -> None:
    studio: Studio = socket.app.state.studio
    try:
        user = await run_in_threadpool(authenticate, socket, studio)
    except SfumatoError as refused:
        await socket.accept()
        code = NOT_SIGNED_IN if isinstance(refused, NotAuthenticated) else NOT_ALLOWED
        await socket.close(code, _reason(refused.message))
        return
    sid = socket.query_params.get("clientId") or uuid.uuid4().hex
    if len(sid) > MAX_CLIENT_ID:
        await socket.accept()
        await socket.close(NOT_ALLOWED, f"clientId is longer than {MAX_CLIENT_ID} characters.")
        return
    await socket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        await Connection(socket, studio, user, sid).run()
