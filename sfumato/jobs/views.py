"""Jobs and images as the API shows them (and the event stream sends them); the API's
``schemas`` type them and add the links to their files."""

from __future__ import annotations

from dataclasses import dataclass

from sfumato.store.tables import Image, Job


@dataclass
class Live:
    """A running job's progress, held by the worker (the database gets it less often)."""

    step: int = 0
    total: int = 0
    eta_s: float | None = None
    preview: str | None = None  # a data: URL of the picture as it stands


def image_view(image: Image) -> dict:
    return {
        "id": image.id,
        "job_id": image.job_id,
        "created_at": image.created_at.isoformat(),
        "model": image.model_name,
        "prompt": image.prompt,
        "seed": image.settings.get("seed"),
        "width": image.width,
        "height": image.height,
        "format": image.format,
        "favourite": image.favourite,
        "settings": image.settings,
        "model_info": image.model,
        "source_image_id": image.source_image_id,
    }


def job_view(
    job: Job,
    images: list[Image],
    position: int | None = None,
    live: Live | None = None,
    eta: dict | None = None,
) -> dict:
    """``eta``: a queued job's start and end, seconds from now (``jobs/eta.py``)."""
    view = {
        "id": job.id,
        "status": job.status,
        "source": job.source,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "model": job.model_name,
        "settings": job.settings,
        "format": job.format,
        "warnings": job.warnings,
        "timings": job.timings or None,
        "queue_position": position,
        "estimate": job.estimate,
        "eta": eta if job.status == "queued" else None,
        "progress": None,
        "images": [image_view(image) for image in images],
        "error": None,
    }
    if job.status == "running":
        live = live or Live(job.step, job.total)
        view["progress"] = {
            "step": live.step,
            "total": live.total or job.total,
            "eta_s": live.eta_s,
            "preview": live.preview,
        }
    if job.error_code:
        view["error"] = {"code": job.error_code, "message": job.error_message}
    return view
