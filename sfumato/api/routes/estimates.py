"""``POST /v1/estimates``: how long a generation would take on this server, before it is
queued (``jobs/estimates.py``): the same body as ``POST /v1/generations``, checked the same
way, nothing queued."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sfumato.api.deps import MakeUser, StudioDep
from sfumato.api.requests import GenerationInput, forget_uploads, picture_upload
from sfumato.jobs.estimates import Estimate
from sfumato.jobs.eta import estimate_in_queue
from sfumato.jobs.submit import plan_job

router = APIRouter(prefix="/v1", tags=["generations"])


class EstimatePublic(BaseModel):
    """Seconds on this server, from its finished jobs; null before it has finished any."""

    seconds: float | None = Field(
        description="This job alone: its model's load when not loaded, the engine, saving."
    )
    low: float | None = Field(description="The fit's errors on past jobs: 10th percentile.")
    high: float | None = Field(description="90th percentile.")
    load_s: float | None = Field(description="The model's load, included in seconds.")
    ahead_s: float | None = Field(
        description="Seconds until it would start: the jobs queued or running before it."
    )
    jobs_ahead: int
    based_on: int = Field(description="The finished jobs the rates come from.")
    basis: str = Field(description='"this model", "every model on this server", "nothing yet".')
    said: str = Field(description='In words: "about 24 s (18-30 s)".')


def _estimate(studio, user, body: GenerationInput) -> Estimate:
    # the pictures are read and checked as a generation's are (a bad one is the same 400),
    # and image-to-image counts only its strength's share of the steps; an estimate keeps
    # no upload it made from base64
    made: list[str] = []
    try:
        init = picture_upload(studio, user, body.init_image, "init_image", made)
        mask = picture_upload(studio, user, body.mask_image, "mask_image", made)
        request = body.to_request()
        job = plan_job(studio, user, request, body.model, body.format, "api", init, mask)
        return estimate_in_queue(studio, job)
    finally:
        forget_uploads(studio, made)


@router.post("/estimates", response_model=EstimatePublic, summary="How long a generation takes")
async def post_estimate(body: GenerationInput, user: MakeUser, studio: StudioDep):
    """The same body as `POST /v1/generations`; nothing is queued."""
    found = await run_in_threadpool(_estimate, studio, user, body)
    return found.to_dict()
