"""``POST /v1/upscales``: a picture of the user's history (or one sent with the request)
enlarged by a factor, queued as a job like a generation (``jobs/upscales.py``); followed with
``GET /v1/generations/{id}`` and the event stream, its result a new history entry. And
``GET /v1/upscalers``: what can upscale here."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from sfumato.api.deps import MakeUser, ReadUser, StudioDep, client_address
from sfumato.api.requests import forget_uploads, picture_upload
from sfumato.api.routes.generations import router as generations
from sfumato.api.routes.generations import view
from sfumato.api.schemas import JobPublic
from sfumato.catalog.upscalers import listing
from sfumato.errors import JobFailed
from sfumato.jobs.queue import SUCCEEDED
from sfumato.jobs.submit import admit
from sfumato.jobs.upscales import plan_upscale
from sfumato.jobs.wait import finished
from sfumato.store.tables import Image, Job, User
from sfumato.studio import Studio
from sfumato.uploads import decode_base64
from sfumato.upscale.run import MAX_FACTOR

router = APIRouter(prefix="/v1", tags=["upscales"])


class UpscaleInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image_id: str | None = Field(None, description="A picture of your history.", max_length=64)
    image: str | None = Field(
        None,
        description="Or a picture: an upload id, or the file in base64 (a data: URL too).",
        max_length=80_000_000,
    )
    scale: float = Field(
        2.0, description=f"How many times larger each side: more than 1, at most {MAX_FACTOR:g}."
    )
    upscaler: str | None = Field(
        None,
        description="Lanczos (left out), Nearest, or an upscaler model by name "
        "(GET /v1/upscalers).",
        max_length=255,
    )
    format: str | None = Field(None, description="png, jpg or webp; left out: the picture's.")


class UpscalerPublic(BaseModel):
    name: str
    kind: str = Field(description='"resize" or "model".')
    architecture: str | None = Field(description="A model's: ESRGAN, SwinIR, ...")
    scale: int | None = Field(description="A model's own factor; a resize takes any.")
    broken: str | None = Field(description="Why a model file cannot be used.")


class UpscalerList(BaseModel):
    upscalers: list[UpscalerPublic]


def queue_upscale(
    studio: Studio, user: User, body: UpscaleInput, source: str, picture: bytes | None = None
) -> Job:
    """Queue the upscale ``body`` asks for; ``picture``: the file's bytes, sent as a form."""
    made: list[str] = []
    sent = picture or body.image
    try:
        upload = picture_upload(studio, user, sent, "image", made)
        if made and isinstance(sent, str):  # the picture itself, in base64
            sent = decode_base64(sent, "image")
        job = plan_upscale(
            studio,
            user,
            body.scale,
            body.upscaler,
            body.image_id,
            upload,
            body.format,
            source,
            sent if made else None,
        )
        return admit(studio, job)
    except BaseException:
        forget_uploads(studio, made)  # a refused request keeps no upload
        raise


async def upscaled(
    studio: Studio, user: User, body: UpscaleInput, source: str, picture: bytes | None = None
) -> tuple[Job, Image, bytes]:
    """Queue an upscale and wait for it, for the doors that answer with the picture (Dezgo's
    and A1111's): the finished job, the new history picture and its file."""
    job = await run_in_threadpool(queue_upscale, studio, user, body, source, picture)
    job, images = await finished(studio, job)
    if job.status != SUCCEEDED:
        code = job.error_code or "cancelled"
        raise JobFailed(code, job.error_message or "The upscale was cancelled.")
    return job, images[0], await run_in_threadpool(studio.files.get, images[0].file_key)


@router.post("/upscales", status_code=202, response_model=JobPublic, summary="Queue an upscale")
def create(
    body: UpscaleInput, request: Request, user: MakeUser, studio: StudioDep, response: Response
):
    """Answers at once with the queued job; follow it as a generation, with
    `GET /v1/generations/{id}` or the event stream `GET /v1/events`."""
    studio.throttle.action("submit", user.id, client_address(request))
    job = queue_upscale(studio, user, body, "api")
    response.headers["Location"] = generations.url_path_for("read", job_id=job.id)
    with studio.db.session() as session:
        return view(studio, session, session.get_one(Job, job.id))


@router.get("/upscalers", response_model=UpscalerList, summary="What can upscale here")
def upscalers(user: ReadUser, studio: StudioDep):
    """The resizes, then the upscaler models in the models folders with their scale."""
    return {"upscalers": [asdict(x) for x in listing(studio.catalog())]}
