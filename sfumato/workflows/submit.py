"""A graph becomes a queued job, checked first (as ``jobs.submit`` does for a request): the
same queue, limits, quotas, events and history as every other door's jobs."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from sfumato.errors import Conflict, InvalidRequest, TooLarge
from sfumato.jobs.submit import admit
from sfumato.store.tables import Job, User
from sfumato.workflows.info import choices_for, installed, upload_names
from sfumato.workflows.validate import Plan, validate

if TYPE_CHECKING:
    from sfumato.studio import Studio

SOURCE = "comfyui"
MAX_EXTRA_BYTES = 2_000_000  # the UI's workflow rides along in extra_data; a large one is ~200 kB


def plan_graph(studio: Studio, user_id: int, graph) -> tuple[Plan, dict]:
    """The graph checked against what this user may name; (plan, the job's settings)."""
    with studio.db.session() as session:
        choices = choices_for(studio, user_id, session)
        sizes = {name: (w, h) for name, (_, w, h) in upload_names(session, user_id).items()}
    plan = validate(graph, choices)
    return plan, plan.summary(sizes)


def submit_graph(
    studio: Studio,
    user: User,
    graph,
    extra_data: dict | None = None,
    client_id: str | None = None,
    source: str = SOURCE,
    front: bool = False,
    prompt_id: str | None = None,
) -> Job:
    """Validate ``graph`` (``GraphInvalid``, ComfyUI's 400, for what is wrong with it) and
    queue it. ``extra_data`` (ComfyUI's: the UI's ``workflow`` in ``extra_pnginfo``) is kept
    and embedded in the pictures as ComfyUI embeds it. ``prompt_id``: a UUID the client
    chose (ComfyUI's own examples send one and wait for it), kept as written."""
    plan, settings = plan_graph(studio, user.id, graph)
    chosen = _chosen_id(studio, prompt_id) if prompt_id is not None else None
    extra = _extra(extra_data)
    first = plan.checkpoints[0] if plan.checkpoints else None
    path = installed(studio.models(), "checkpoint").get(first) if first else None
    with studio.db.session() as session:
        number = session.scalar(select(func.count()).select_from(Job).where(Job.user_id == user.id))
    job = Job(
        **({"id": chosen} if chosen else {}),
        user_id=user.id,
        source=source,
        model_name=first or "",
        model_path=str(path or ""),
        settings=settings,
        loras=[],
        format="png",
        total=plan.steps,
        warnings=[],
        workflow={
            "prompt": plan.graph,
            "extra_data": extra,
            "client_id": client_id,
            **({"prompt_id": prompt_id} if chosen else {}),
            "number": -number if front else number,
            "output_nodes": plan.outputs,
            "outputs": {},
            "messages": [],
        },
    )
    return admit(studio, job)


def _chosen_id(studio: Studio, prompt_id) -> str:
    """The job id for a client's prompt_id: a UUID, not used before (by anyone)."""
    try:
        chosen = uuid.UUID(str(prompt_id)[:64]).hex
    except ValueError:
        raise InvalidRequest(
            f"prompt_id {str(prompt_id)[:64]!r} is not a UUID; send a UUID, or leave it out."
        ) from None
    with studio.db.session() as session:
        if session.get(Job, chosen) is not None:
            raise Conflict(f"The prompt_id {prompt_id} is taken: choose a new UUID.")
    return chosen


def _extra(extra_data) -> dict:
    """ComfyUI's ``extra_data``, bounded: what is kept is what the pictures embed."""
    if extra_data is None:
        return {}
    if not isinstance(extra_data, dict):
        raise InvalidRequest("extra_data must be a JSON object.")
    if len(json.dumps(extra_data, default=str)) > MAX_EXTRA_BYTES:
        raise TooLarge(f"extra_data is larger than {MAX_EXTRA_BYTES // 1_000_000} MB.")
    pnginfo = extra_data.get("extra_pnginfo")
    kept = {"extra_pnginfo": pnginfo} if isinstance(pnginfo, dict) else {}
    return kept
