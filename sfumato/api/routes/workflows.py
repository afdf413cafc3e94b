"""Saved workflows: ComfyUI API graphs kept under a name, with the inputs their owner exposes,
run from a few values as jobs like any other (``sfumato.workflows.saved``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from sfumato.api.bodies import read_file
from sfumato.api.deps import AdminUser, MakeUser, ReadUser, SessionDep, StudioDep, client_address
from sfumato.api.routes.generations import view as job_view
from sfumato.api.schemas import Deleted, JobPublic, Public
from sfumato.store.tables import Job
from sfumato.uploads import decode_base64
from sfumato.workflows import saved
from sfumato.workflows.validate import GraphInvalid

router = APIRouter(prefix="/v1", tags=["workflows"])

Owner = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Whose workflow, when another user's published one (or, for an admin, "
        "any) shares its name with yours.",
    ),
]


class WorkflowCreate(Public):
    name: str = Field(max_length=200, description="Short: letters, digits, '.', '_', '-'.")
    graph: dict[str, Any] | None = Field(
        None, description="A ComfyUI API-format graph (as ComfyUI's 'Export (API)' writes it)."
    )
    picture: str | None = Field(
        None,
        description="Instead of graph: a PNG carrying one (ComfyUI's 'prompt' text), in base64.",
    )
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description='The inputs a run may set: {"prompt": ["6", "text"], "seed": ["3", "seed"]}.',
    )
    description: str = Field("", max_length=saved.MAX_DESCRIPTION)


class WorkflowPublic(Public):
    id: str
    name: str
    description: str
    owner: str = Field(description="The user who saved it.")
    mine: bool = Field(description="Whether it is the caller's own.")
    published: bool = Field(description="Runnable by every user (an admin publishes).")
    inputs: dict[str, list[str]] = Field(description="Exposed input -> [node id, input name].")
    defaults: dict[str, Any] = Field(description="Each exposed input's value in the graph.")
    nodes: int = Field(description="How many nodes its graph has.")
    graph: dict[str, Any] | None = Field(description="The graph (not in lists: read one for it).")
    created_at: str
    updated_at: str


class WorkflowList(Public):
    workflows: list[WorkflowPublic]


class GraphRead(Public):
    graph: dict[str, Any]
    value_inputs: dict[str, list[str]] = Field(
        description="Each node's inputs that hold a value (not a link): what may be exposed."
    )


class WorkflowRun(Public):
    inputs: dict[str, Any] = Field(
        default_factory=dict, description='Values of the exposed inputs: {"prompt": "a fox"}.'
    )


def graph_refused(error: GraphInvalid) -> JSONResponse:
    """A broken graph: sfumato's error shape, with ComfyUI's node errors beside it."""
    body = {"error": {"code": error.code, "message": error.message}}
    body["node_errors"] = error.body.get("node_errors", {})
    body["graph_error"] = error.body.get("error", {})
    return JSONResponse(body, status_code=400)


@router.post(
    "/workflows", status_code=201, response_model=WorkflowPublic, summary="Save a workflow"
)
def create(body: WorkflowCreate, request: Request, user: MakeUser, studio: StudioDep):
    """The graph is checked as a run checks it: a broken one is a 400 whose `node_errors`
    name each node and input (ComfyUI's shape)."""
    studio.throttle.action("submit", user.id, client_address(request))
    graph = body.graph
    if graph is None and body.picture is not None:
        content = decode_base64(body.picture, "picture")
        graph = saved.graph_from_png(content)
    try:
        workflow = saved.create(studio, user, body.name, graph, body.inputs, body.description)
    except GraphInvalid as e:
        return graph_refused(e)
    return saved.view(workflow, user.username, user)


@router.post(
    "/workflows/graph",
    response_model=GraphRead,
    summary="The ComfyUI graph a picture or a JSON file carries",
)
async def read_graph(
    file: Annotated[UploadFile, File(description="A PNG made by ComfyUI, or an API JSON.")],
    request: Request,
    user: MakeUser,
    studio: StudioDep,
):
    """What the page reads a dropped file with: the graph, and the inputs it may expose."""
    studio.throttle.action("image_info", user.id, client_address(request))
    content = await read_file(file, studio.config.max_upload_bytes)

    def read() -> dict:
        if content.lstrip()[:1] == b"{":
            graph = saved.parse_graph(content, "The file")
        else:
            graph = saved.graph_from_png(content, "The file")
        return {"graph": graph, "value_inputs": saved.value_inputs(graph)}

    return await run_in_threadpool(read)


@router.get("/workflows", response_model=WorkflowList, summary="Your and the published workflows")
def list_workflows(user: ReadUser, session: SessionDep):
    rows = saved.visible(session, user)
    return {"workflows": [saved.view(w, owner, user, full=False) for w, owner in rows]}


@router.get("/workflows/{name}", response_model=WorkflowPublic, summary="A workflow")
def read(name: str, user: ReadUser, session: SessionDep, owner: Owner = None):
    workflow, owned_by = saved.find(session, user, name, owner)
    return saved.view(workflow, owned_by, user)


@router.delete("/workflows/{name}", response_model=Deleted, summary="Delete a workflow")
def delete(name: str, user: MakeUser, session: SessionDep, owner: Owner = None):
    """Your own; an admin may delete a published one."""
    saved.delete(session, user, name, owner)
    return {"deleted": 1}


def _publish(session, admin, name: str, owner: str | None, published: bool) -> dict:
    workflow, owned_by = saved.publish(session, admin, name, owner, published)
    session.flush()
    return saved.view(workflow, owned_by, admin)


@router.post(
    "/workflows/{name}/publish",
    response_model=WorkflowPublic,
    summary="Publish a workflow to every user (admin)",
)
def publish(name: str, admin: AdminUser, session: SessionDep, owner: Owner = None):
    return _publish(session, admin, name, owner, True)


@router.post(
    "/workflows/{name}/unpublish",
    response_model=WorkflowPublic,
    summary="Withdraw a published workflow (admin)",
)
def unpublish(name: str, admin: AdminUser, session: SessionDep, owner: Owner = None):
    return _publish(session, admin, name, owner, False)


@router.post(
    "/workflows/{name}/runs",
    status_code=202,
    response_model=JobPublic,
    summary="Run a workflow with values for its inputs",
)
def run(
    name: str,
    body: WorkflowRun,
    request: Request,
    user: MakeUser,
    studio: StudioDep,
    response: Response,
    owner: Owner = None,
):
    """Answers at once with the queued job, as `POST /v1/generations` does; follow it with
    `GET /v1/generations/{id}` or `GET /v1/events`. Values are checked as the graph's own."""
    studio.throttle.action("submit", user.id, client_address(request))
    with studio.db.session() as session:
        workflow, _ = saved.find(session, user, name, owner)
        session.expunge(workflow)
    try:
        job = saved.run(studio, user, workflow, body.inputs)
    except GraphInvalid as e:
        return graph_refused(e)
    response.headers["Location"] = f"/v1/generations/{job.id}"
    with studio.db.session() as session:
        return job_view(studio, session, session.get_one(Job, job.id))
