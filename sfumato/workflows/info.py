"""What ComfyUI clients read about graphs: the nodes with what may be chosen in them
(``object_info``), and a graph job as ComfyUI's history and queue show it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from sfumato.catalog.scan import CHECKPOINT, LORA, UPSCALER, VAE
from sfumato.store.tables import Job, Upload
from sfumato.workflows import samplers
from sfumato.workflows.nodes import NODES
from sfumato.workflows.spec import Choices

if TYPE_CHECKING:
    from sfumato.catalog.scan import Models
    from sfumato.studio import Studio

SUCCEEDED, FAILED, CANCELLED = "succeeded", "failed", "cancelled"


def installed(models: Models, kind: str) -> dict[str, Path]:
    """The installed files of ``kind`` by the names ComfyUI lists them under: file names
    (``dreamshaper_8.safetensors``; a diffusers folder, the bundled demo model, by its
    catalog name)."""
    found: dict[str, Path] = {}
    for entry in models.scan().of_kind(kind):
        if not entry.broken:
            name = entry.path.name if entry.path.is_file() else entry.name
            found.setdefault(name, entry.path)
    return dict(sorted(found.items(), key=lambda item: item[0].lower()))


def upload_names(session, user_id: int) -> dict[str, tuple[str, int, int]]:
    """The user's named uploads: name -> (upload id, width, height), the newest of a name."""
    rows = session.execute(
        select(Upload.name, Upload.id, Upload.width, Upload.height)
        .where(Upload.user_id == user_id, Upload.name.is_not(None))
        .order_by(Upload.created_at)
    )
    return {name: (upload_id, w, h) for name, upload_id, w, h in rows}


def choices_for(studio: Studio, user_id: int, session=None) -> Choices:
    models = studio.models()
    if session is None:
        with studio.db.session() as session:
            images = upload_names(session, user_id)
    else:
        images = upload_names(session, user_id)
    return Choices(
        checkpoints=list(installed(models, CHECKPOINT)),
        loras=list(installed(models, LORA)),
        vaes=list(installed(models, VAE)),
        upscale_models=list(installed(models, UPSCALER)),
        images=sorted(images),
        samplers=list(samplers.SAMPLERS),
        schedulers=list(samplers.SCHEDULERS),
    )


def object_info(studio: Studio, user_id: int, node_class: str | None = None) -> dict:
    """ComfyUI's ``/object_info`` (every node) or ``/object_info/{class}`` ({} if unknown)."""
    choices = choices_for(studio, user_id)
    if node_class is not None:
        node = NODES.get(node_class)
        return {node_class: node.object_info(choices)} if node else {}
    return {name: node.object_info(choices) for name, node in NODES.items()}


def prompt_id(job: Job) -> str:
    """A graph job's id as its ComfyUI client knows it: the UUID the client chose, written as
    it wrote it, else the job's own id."""
    return (job.workflow or {}).get("prompt_id") or job.id


def job_id(prompt: str) -> str:
    """The job id a ComfyUI ``prompt_id`` stands for (a client's UUID, in any of its
    spellings, is the job id written without dashes)."""
    try:
        return uuid.UUID(prompt).hex
    except (ValueError, AttributeError, TypeError):
        return prompt


def queue_item(job: Job) -> list:
    """A graph job as ComfyUI's queue and history list it: ``[number, prompt_id, prompt,
    extra_data, outputs_to_execute]``."""
    workflow = job.workflow or {}
    extra = dict(workflow.get("extra_data") or {})
    if workflow.get("client_id") is not None:
        extra["client_id"] = workflow["client_id"]
    return [
        workflow.get("number", 0),
        prompt_id(job),
        workflow.get("prompt", {}),
        extra,
        workflow.get("output_nodes", []),
    ]


def history_entry(job: Job) -> dict:
    """The value of ``GET /history/{prompt_id}``'s entry."""
    workflow = job.workflow or {}
    messages = list(workflow.get("messages", []))
    if job.status == FAILED and not any(m[0] == "execution_error" for m in messages):
        messages.append(
            [
                "execution_error",
                {
                    "prompt_id": prompt_id(job),
                    "node_id": workflow.get("failed_node"),
                    "exception_message": job.error_message or "",
                    "exception_type": job.error_code or "",
                    "traceback": [],
                },
            ]
        )
    if job.status == CANCELLED and not any(m[0] == "execution_interrupted" for m in messages):
        messages.append(["execution_interrupted", {"prompt_id": prompt_id(job)}])
    outputs = workflow.get("outputs", {})
    return {
        "prompt": queue_item(job),
        "outputs": outputs,
        "status": {
            "status_str": "success" if job.status == SUCCEEDED else "error",
            "completed": job.status == SUCCEEDED,
            "messages": messages,
        },
        "meta": {
            node_id: {
                "node_id": node_id,
                "display_node": node_id,
                "parent_node": None,
                "real_node_id": node_id,
            }
            for node_id in outputs
        },
    }
