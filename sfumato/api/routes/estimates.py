"""``POST /v1/estimates``: how long a generation would take on this server, before it is
queued (``jobs/estimates.py``): the same body as ``POST /v1/generations``, checked the same
way, nothing queued."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sfumato.api.deps import MakeUser, StudioDep
from sfumato.api.requests import GenerationInput
from sfumato.jobs.estimates import Estimate, estimate
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
    ahead_s: float | None = Field(description="The jobs queued or running before it.")
    jobs_ahead: int
    based_on: int = Field(description="The finished jobs the rates come from.")
    basis: str = Field(description='"this model", "every model on this server", "nothing yet".')
    said: str = Field(description='In words: "about 24 s (18-30 s)".')


def _estimate(studio, user, body: GenerationInput) -> Estimate:
    # init_image is not read for an estimate: it is counted as text-to-image (image-to-image
    # runs only its strength's share of the steps: less)
    job = plan_job(studio, user, body.to_request(), body.model, body.format)
    return estimate(studio, job)


@router.post("/estimates", response_model=EstimatePublic, summary="How long a generation takes")
async def post_estimate(body: GenerationInput, user: MakeUser, studio: StudioDep):
    """The same body as `POST /v1/generations`; nothing is queued."""
    found = await run_in_threadpool(_estimate, studio, user, body)
    return found.to_dict()
