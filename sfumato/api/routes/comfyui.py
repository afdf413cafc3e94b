"""ComfyUI's HTTP and WebSocket protocol: programs built for ComfyUI (Open WebUI's and
SillyTavern's ComfyUI engines, ``comfy-api-simplified``, ComfyUI's own script examples) queue
their API-format graphs with sfumato by changing the base URL and signing in.

Every route is served at ``/x`` and at ``/api/x``, as ComfyUI serves it. Unlike ComfyUI,
each user has their own: ``/queue``, ``/history``, ``/view``, uploads and the socket's
messages are the caller's alone (another user's prompt ids and file names are "not found" or
absent, as ids that never existed), ``/interrupt`` stops only the caller's running prompt,
and every route needs a sign-in (an API key as Bearer, HTTP Basic, the login cookie; none in
personal mode).

A graph is validated and queued by ``sfumato.workflows`` (``submit_graph``): the job it
becomes runs in the same fair queue and lands in the same history as every other, and its
id is the ``prompt_id``. Errors have ComfyUI's body (``{"error": {"type", "message",
"details", "extra_info"}, "node_errors": {...}}``, with sfumato's ``code`` beside ``type``);
the shape is registered for these paths in ``api/errors.ERROR_SHAPES``, so errors made
before a route runs (sign-in, a body that is not JSON) have it too.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, WebSocket
from fastapi.responses import JSONResponse
from sqlalchemy import false, or_, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from sfumato import __version__
from sfumato.api import errors
from sfumato.api.bodies import read_file
from sfumato.api.comfyui import files, shapes, socket
from sfumato.api.deps import MakeUser, ReadUser, SessionDep, StudioDep, client_address
from sfumato.api.routes.generations import cancel_jobs
from sfumato.engine.images import read_picture
from sfumato.errors import InvalidRequest, NotFound
from sfumato.jobs.queue import CANCELLED, FINISHED, QUEUED, RUNNING, queue_positions
from sfumato.store.tables import Job, User
from sfumato.studio import Studio
from sfumato.workflows.info import history_entry, job_id, queue_item
from sfumato.workflows.info import object_info as node_info
from sfumato.workflows.info import prompt_id as prompt_id_of
from sfumato.workflows.submit import submit_graph
from sfumato.workflows.validate import GraphInvalid

for _root in shapes.ROOTS:
    errors.ERROR_SHAPES[_root] = shapes.error

COMFYUI_VERSION = "0.3.64"  # the ComfyUI whose protocol this follows (its server.py)
GRAPH_SOURCES = ("comfyui", "workflow")  # jobs that are graphs: ComfyUI's and saved workflows'
# SillyTavern polls the whole /history ten times a second until its prompt is there (the
# newest): each entry carries its graph, so a poll answers only the newest unless told
HISTORY_DEFAULT, HISTORY_MAX = 20, 1000
HIDDEN = "history_hidden"  # set in a job's workflow by POST /history: gone from /history
MODEL_FOLDERS = {  # /models/{folder} -> the node input that lists them in /object_info
    "checkpoints": ("CheckpointLoaderSimple", "ckpt_name"),
    "loras": ("LoraLoader", "lora_name"),
    "vae": ("VAELoader", "vae_name"),
    "upscale_models": ("UpscaleModelLoader", "model_name"),
    "embeddings": None,  # sfumato has no textual-inversion embeddings
}
OK = 200

_routes = APIRouter()


def _empty() -> Response:
    """ComfyUI's answer to a change: 200 and no body."""
    return Response(status_code=OK)


# --- queuing a graph ------------------------------------------------------------------------


@_routes.post("/prompt", summary="ComfyUI: queue a graph (API format)")
async def post_prompt(request: Request, user: MakeUser, studio: StudioDep):
    """`{"prompt": graph, "client_id": ..., "extra_data": ...}` (JSON, whatever the
    Content-Type). Answers `{"prompt_id", "number", "node_errors": {}}`: the job's id, or
    the client's own `prompt_id` (a UUID) when it sent one. A graph that cannot run is a 400
    with ComfyUI's `node_errors`."""
    body = await shapes.optional_json(request)
    if body is None or (isinstance(body, dict) and "prompt" not in body):
        return JSONResponse(shapes.NO_PROMPT, status_code=400)
    if not isinstance(body, dict):
        raise InvalidRequest('Send {"prompt": graph} as one JSON object.')
    graph = body["prompt"]
    if not isinstance(graph, dict):
        raise InvalidRequest(
            'prompt is a graph in ComfyUI\'s API format: {"3": {"class_type": "KSampler", '
            '"inputs": {...}}, ...} (in ComfyUI: Workflow > Export (API)).'
        )
    extra_data = body.get("extra_data")
    if extra_data is not None and not isinstance(extra_data, dict):
        raise InvalidRequest("extra_data is a JSON object.")
    client_id = body.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        raise InvalidRequest("client_id is text: the clientId of your /ws socket.")
    if client_id and len(client_id) > socket.MAX_CLIENT_ID:
        raise InvalidRequest(f"client_id is longer than {socket.MAX_CLIENT_ID} characters.")
    if body.get("partial_execution_targets") is not None:
        raise InvalidRequest(
            "partial_execution_targets is not supported: every output node of the graph runs."
        )
    studio.throttle.action("submit", user.id, client_address(request))
    try:
        job = await run_in_threadpool(
            submit_graph,
            studio,
            user,
            graph,
            extra_data,
            client_id or None,
            "comfyui",
            bool(body.get("front")),
            body.get("prompt_id"),
        )
    except GraphInvalid as invalid:
        return JSONResponse(invalid.body, status_code=400)
    number = (job.workflow or {}).get("number", 0)
    return {"prompt_id": prompt_id_of(job), "number": number, "node_errors": {}}


def _queue_remaining(session, user: User) -> int:
    return socket.queue_remaining_in(session, user.id)


@_routes.get("/prompt", summary="ComfyUI: how many of your prompts are queued or running")
def get_prompt(user: ReadUser, session: SessionDep):
    return {"exec_info": {"queue_remaining": _queue_remaining(session, user)}}


# --- the queue ------------------------------------------------------------------------------


def _graph_jobs(session, user: User, statuses) -> list[Job]:
    query = select(Job).where(
        Job.user_id == user.id, Job.source.in_(GRAPH_SOURCES), Job.status.in_(statuses)
    )
    return list(session.scalars(query.order_by(Job.created_at, Job.id)))


@_routes.get("/queue", summary="ComfyUI: your running and queued prompts")
def get_queue(user: ReadUser, session: SessionDep):
    """Items are ComfyUI's `[number, prompt_id, prompt, extra_data, outputs]`; pending ones
    in the order they will run."""
    jobs = _graph_jobs(session, user, (QUEUED, RUNNING))
    positions = queue_positions(session)
    pending = sorted(
        (j for j in jobs if j.status == QUEUED), key=lambda j: positions.get(j.id, 1 << 30)
    )
    return {
        "queue_running": [queue_item(j) for j in jobs if j.status == RUNNING],
        "queue_pending": [queue_item(j) for j in pending],
    }


@_routes.post("/queue", summary="ComfyUI: cancel your queued prompts")
async def post_queue(request: Request, user: MakeUser, studio: StudioDep):
    """`{"clear": true}` cancels all your queued prompts, `{"delete": [prompt_id, ...]}`
    those named (a running prompt is stopped with /interrupt, as in ComfyUI)."""
    body = await shapes.json_object(request, "the queue change")
    delete = shapes.id_list(body["delete"], "delete") if "delete" in body else None

    def change() -> None:
        with studio.db.session() as session:
            queued = _graph_jobs(session, user, (QUEUED,))
            if body.get("clear") is True:
                cancel_jobs(studio, session, queued)
            elif delete:
                named = {job_id(prompt) for prompt in delete}
                cancel_jobs(studio, session, [j for j in queued if j.id in named])

    await run_in_threadpool(change)
    return _empty()


@_routes.post("/interrupt", summary="ComfyUI: stop your running prompt")
async def interrupt(request: Request, user: MakeUser, studio: StudioDep):
    """Your own running prompt (with `{"prompt_id": ...}`, only if that one is running);
    nobody else's."""
    try:
        body = await shapes.json_object(request, "the interrupt")
    except InvalidRequest:
        body = {}  # as ComfyUI: a body it cannot read is no body
    wanted = body.get("prompt_id")

    def stop() -> None:
        with studio.db.session() as session:
            running = _graph_jobs(session, user, (RUNNING,))
            if isinstance(wanted, str):
                running = [j for j in running if j.id == job_id(wanted)]
            cancel_jobs(studio, session, running)

    await run_in_threadpool(stop)
    return _empty()


@_routes.post("/free", summary="ComfyUI: free memory (accepted; sfumato manages its own)")
def free(user: MakeUser):
    """sfumato's model cache frees memory itself; the request is accepted and does nothing."""
    return _empty()


# --- history --------------------------------------------------------------------------------


def _shown():
    """Not hidden by POST /history."""
    flag = Job.workflow[HIDDEN].as_boolean()
    return or_(flag.is_(None), flag == false())


def _history_query(user: User):
    """The user's finished graph jobs, as ComfyUI's history has them: a prompt cancelled
    before it started was never run, and is not there (as one deleted from ComfyUI's queue)."""
    return select(Job).where(
        Job.user_id == user.id,
        Job.source.in_(GRAPH_SOURCES),
        Job.status.in_(FINISHED),
        or_(Job.status != CANCELLED, Job.started_at.is_not(None)),
        _shown(),
    )


@_routes.get("/history", summary="ComfyUI: your finished prompts, newest first")
def get_history(
    user: ReadUser,
    session: SessionDep,
    max_items: Annotated[int | None, Query(ge=1, le=HISTORY_MAX)] = None,
    offset: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
):
    """`{prompt_id: entry}` of your own finished prompts, newest first: the `max_items`
    newest (20 unless told), after skipping `offset` of them."""
    query = _history_query(user).order_by(Job.finished_at.desc(), Job.id.desc())
    jobs = session.scalars(query.offset(offset or 0).limit(max_items or HISTORY_DEFAULT))
    return {prompt_id_of(job): history_entry(job) for job in jobs}


@_routes.get("/history/{prompt_id}", summary="ComfyUI: one finished prompt")
def get_history_of(prompt_id: str, user: ReadUser, session: SessionDep):
    """`{prompt_id: entry}` once it has finished; `{}` before, and for an id that is not
    yours."""
    job = session.scalars(_history_query(user).where(Job.id == job_id(prompt_id[:64]))).first()
    return {prompt_id_of(job): history_entry(job)} if job is not None else {}


@_routes.post("/history", summary="ComfyUI: remove prompts from your ComfyUI history")
async def post_history(request: Request, user: MakeUser, studio: StudioDep):
    """`{"clear": true}` or `{"delete": [prompt_id, ...]}`: the prompts leave /history; their
    pictures stay in your sfumato history (delete those with /v1/images)."""
    body = await shapes.json_object(request, "the history change")
    delete = shapes.id_list(body["delete"], "delete") if "delete" in body else None

    def hide() -> None:
        with studio.db.session() as session:
            query = _history_query(user)
            if body.get("clear") is not True:
                if not delete:
                    return
                query = query.where(Job.id.in_([job_id(prompt) for prompt in delete]))
            for job in session.scalars(query):
                job.workflow = dict(job.workflow or {}) | {HIDDEN: True}

    await run_in_threadpool(hide)
    return _empty()


# --- files ----------------------------------------------------------------------------------


@_routes.get(
    "/view",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="ComfyUI: one of your pictures by its file name",
)
def view(
    user: ReadUser,
    studio: StudioDep,
    session: SessionDep,
    filename: Annotated[str | None, Query(max_length=400)] = None,
    subfolder: Annotated[str | None, Query(max_length=400)] = None,
    type: Annotated[str | None, Query(max_length=40)] = None,
):
    """`type` output (default: a SaveImage picture, in your history), temp (a PreviewImage
    picture) or input (your upload). Another user's file is "not found"."""
    name, kind = files.annotated(files.filename(filename))
    name = files.filename(name)
    folder = files.subfolder(subfolder)
    kind = kind or files.file_type(type, "output")
    content, media_type = files.read_file(session, studio, user.id, name, folder, kind)
    headers = {"Cache-Control": "private, max-age=86400"}
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        headers["Content-Disposition"] = f'filename="{name}"'
    return Response(content, media_type=media_type, headers=headers)


async def _form(request: Request, studio: Studio) -> tuple[dict[str, str], str, bytes]:
    """The upload's text fields, and the picture's file name and bytes."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise InvalidRequest("Send the picture as multipart/form-data, in the field image.")
    form = await request.form(max_files=4, max_fields=20, max_part_size=64 * 1024)
    picture = form.get("image")
    if not isinstance(picture, UploadFile) or not picture.filename:
        raise InvalidRequest("Send the picture as a file (with its file name) in the field image.")
    content = await read_file(picture, studio.config.max_upload_bytes)
    fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
    return fields, picture.filename, content


def _upload_answer(kept: files.Kept) -> dict:
    return {"name": kept.name, "subfolder": kept.subfolder, "type": "input"}


def _overwrite(fields: dict[str, str]) -> bool:
    return fields.get("overwrite", "").lower() in ("true", "1")


@_routes.post("/upload/image", summary="ComfyUI: upload a picture for LoadImage")
async def upload_image(request: Request, user: MakeUser, studio: StudioDep):
    """Multipart: `image` (the file), `overwrite`, `subfolder`, `type`. Answers `{"name",
    "subfolder", "type": "input"}`; a graph's LoadImage names it `"subfolder/name"`. A name
    you already use for another picture becomes "name (1).png" unless `overwrite` is true."""
    studio.throttle.action("upload", user.id, client_address(request))
    fields, name, content = await _form(request, studio)
    name = files.filename(name)
    folder = files.subfolder(fields.get("subfolder"))
    files.file_type(fields.get("type"), "input")  # checked; kept as an input either way

    def keep() -> files.Kept:
        with studio.db.session() as session:
            return files.keep_upload(
                session, studio, user.id, content, name, folder, _overwrite(fields)
            )

    return _upload_answer(await run_in_threadpool(keep))


@_routes.post("/upload/mask", summary="ComfyUI: upload a mask into a picture's alpha channel")
async def upload_mask(request: Request, user: MakeUser, studio: StudioDep):
    """As /upload/image, with `original_ref` (`{"filename", "subfolder", "type"}`, JSON): the
    picture kept is the original with the mask as its alpha channel (transparent = redraw),
    which LoadImage gives as its MASK."""
    studio.throttle.action("upload", user.id, client_address(request))
    fields, name, mask = await _form(request, studio)
    name = files.filename(name)
    folder = files.subfolder(fields.get("subfolder"))
    files.file_type(fields.get("type"), "input")
    original_name, original_folder, original_type = files.original_ref(fields.get("original_ref"))

    def keep() -> files.Kept:
        with studio.db.session() as session:
            original, _ = files.read_file(
                session, studio, user.id, original_name, original_folder, original_type
            )
            read_picture(mask, "The mask")  # checked (size, that it decodes) before compositing
            content = files.mask_composite(original, mask)
            return files.keep_upload(
                session, studio, user.id, content, name, folder, _overwrite(fields)
            )

    return _upload_answer(await run_in_threadpool(keep))


# --- what there is --------------------------------------------------------------------------


@_routes.get("/object_info", summary="ComfyUI: every node sfumato runs, with its inputs")
async def object_info(user: ReadUser, studio: StudioDep):
    """ComfyUI's node definitions; the model inputs list the installed files, `image` your
    uploads."""
    return await run_in_threadpool(node_info, studio, user.id, None)


@_routes.get("/object_info/{node_class}", summary="ComfyUI: one node's definition")
async def object_info_of(node_class: str, user: ReadUser, studio: StudioDep):
    """`{class: definition}`, or `{}` for a node sfumato does not run."""
    return await run_in_threadpool(node_info, studio, user.id, node_class[:200])


def _memory() -> tuple[int, int]:
    try:
        page = os.sysconf("SC_PAGE_SIZE")
        return page * os.sysconf("SC_PHYS_PAGES"), page * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0, 0


def _devices(ram_total: int, ram_free: int) -> list[dict]:
    torch = sys.modules.get("torch")  # loaded by the engine; not imported for this
    if torch is not None and torch.cuda.is_available():
        devices = []
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            devices.append(
                {
                    "name": f"cuda:{index} {torch.cuda.get_device_name(index)}",
                    "type": "cuda",
                    "index": index,
                    "vram_total": total,
                    "vram_free": free,
                    "torch_vram_total": total,
                    "torch_vram_free": free,
                }
            )
        return devices
    memory = {"vram_total": ram_total, "vram_free": ram_free}
    return [
        {"name": "cpu", "type": "cpu", "index": None}
        | memory
        | {"torch_vram_total": ram_total, "torch_vram_free": ram_free}
    ]


@_routes.get("/system_stats", summary="ComfyUI: the server's memory and devices")
def system_stats(user: ReadUser):
    ram_total, ram_free = _memory()
    torch = sys.modules.get("torch")
    return {
        "system": {
            "os": os.name,
            "ram_total": ram_total,
            "ram_free": ram_free,
            "comfyui_version": COMFYUI_VERSION,
            "sfumato_version": __version__,
            "python_version": sys.version,
            "pytorch_version": getattr(torch, "__version__", ""),
            "embedded_python": False,
            "argv": ["sfumato", "serve"],
        },
        "devices": _devices(ram_total, ram_free),
    }


@_routes.get("/features", summary="ComfyUI: what the server supports")
def features(user: ReadUser, studio: StudioDep):
    return {
        "supports_preview_metadata": True,
        "max_upload_size": studio.config.max_upload_bytes,
    }


@_routes.get("/embeddings", summary="ComfyUI: textual-inversion embeddings (none)")
def embeddings(user: ReadUser) -> list[str]:
    return []


@_routes.get("/models", summary="ComfyUI: the model folders")
def model_folders(user: ReadUser) -> list[str]:
    return list(MODEL_FOLDERS)


@_routes.get("/models/{folder}", summary="ComfyUI: the files of one model folder")
async def models_in(folder: str, user: ReadUser, studio: StudioDep) -> Any:
    """The names a graph gives them, as /object_info lists them."""
    if folder not in MODEL_FOLDERS:
        raise NotFound(f"There is no model folder {folder[:80]!r}; see /models.")
    where = MODEL_FOLDERS[folder]
    if where is None:
        return []
    node, field = where
    found = await run_in_threadpool(node_info, studio, user.id, node)
    return list(found.get(node, {}).get("input", {}).get("required", {}).get(field, [[]])[0])


# --- the socket -----------------------------------------------------------------------------


@_routes.websocket("/ws")
async def ws(websocket: WebSocket):
    await socket.serve(websocket)


router = APIRouter(tags=["comfyui"])
router.include_router(_routes)
router.include_router(_routes, prefix="/api", include_in_schema=False)
