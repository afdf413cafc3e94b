"""``POST /v1/grids``: a comparison grid (``sfumato.grid``) queued as one job, followed like
any other at ``/v1/generations/{id}`` and on ``/v1/events``: its cells' pictures, then the
grid picture, land in the history together, under the job."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sfumato.api.deps import MakeUser, StudioDep, client_address
from sfumato.api.requests import GenerationInput
from sfumato.api.routes.generations import view
from sfumato.api.schemas import JobPublic
from sfumato.errors import InvalidRequest
from sfumato.jobs.grids import estimate_seconds, plan_grid, submit_grid
from sfumato.store.tables import Job

router = APIRouter(prefix="/v1", tags=["generations"])
AXIS = (
    "NAME=VALUES, as `sfumato grid` takes it: guidance=3,5,7, steps=10-30 (+10), prompt=red,green"
)


class GridPlan(BaseModel):
    """What a grid would make, and how long it would take here."""

    cells: int
    pictures: int = Field(description="The cells and the grid picture.")
    megapixel_steps: float = Field(description="Its compute, as the quotas count it.")
    estimate_s: float | None = Field(
        description="Seconds, from this server's recent pictures; null before it has made any."
    )
    seed: int = Field(description="The seed of every cell.")


class GridInput(GenerationInput):
    x: str | None = Field(None, max_length=2000, description=f"The columns: {AXIS}.")
    y: str | None = Field(None, max_length=2000, description="The rows, as x.")
    z: str | None = Field(None, max_length=2000, description="A grid per value, as x.")
    matrix: bool = Field(
        False,
        description="A1111's prompt matrix: the prompt is a base and optional parts, \"a "
        'castle|at night|in fog", and every combination of the parts makes x and y.',
    )


@router.post("/grids", status_code=202, response_model=JobPublic, summary="Queue a grid")
async def create_grid(
    body: GridInput, request: Request, user: MakeUser, studio: StudioDep, response: Response
):
    """Every cell the same request, seed included, but for its axes (up to the server's
    `max_grid_cells`). Answers at once with the job; its pictures are the cells (z changing
    fastest, then y, then x: their `batch_index`), then the grid picture."""
    if body.init_image or body.mask_image:
        raise InvalidRequest("A grid starts from text: init_image and mask_image are not taken.")
    studio.throttle.action("submit", user.id, client_address(request))
    job = await run_in_threadpool(
        submit_grid,
        studio,
        user,
        body.to_request(),
        [body.x, body.y, body.z],
        body.model,
        body.matrix,
    )
    response.headers["Location"] = f"/v1/generations/{job.id}"
    with studio.db.session() as session:
        return view(studio, session, session.get_one(Job, job.id))


@router.post(
    "/grids/plan",
    response_model=GridPlan,
    summary="What a grid would make, and how long it would take",
)
async def plan(body: GridInput, user: MakeUser, studio: StudioDep):
    """The same body as `POST /v1/grids`, checked the same way, nothing queued: the number of
    cells and pictures, each axis's labels, the compute, and an estimate of the time from this
    server's recent pictures (null before it has made any)."""
    job = await run_in_threadpool(
        plan_grid, studio, user, body.to_request(), [body.x, body.y, body.z], body.model,
        body.matrix,
    )  # fmt: skip
    cost = job.settings["megapixel_steps"]
    cells = job.grid["cells"]
    return {
        "cells": len(cells),
        "pictures": len(cells) + 1,
        "megapixel_steps": cost,
        "estimate_s": await run_in_threadpool(estimate_seconds, studio, cost),
        "seed": job.settings["seed"],
    }
