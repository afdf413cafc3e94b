"""Generations through the queue, and the event stream of their progress."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from sfumato.api.deps import MakeUser, ReadUser, SessionDep, StudioDep, client_address
from sfumato.api.requests import GenerationInput, queue_generation
from sfumato.api.schemas import JobList, JobPublic
from sfumato.errors import Conflict
from sfumato.jobs.eta import QueueNow, queue_now
from sfumato.jobs.queue import ACTIVE, cancel_queued, job_images
from sfumato.jobs.views import job_view
from sfumato.store.tables import Job, owned
from sfumato.studio import Studio

router = APIRouter(prefix="/v1", tags=["generations"])


def view(studio: Studio, session, job: Job, queue: QueueNow | None = None) -> dict:
    """``queue``: the queue's order and ETAs, when the caller shows several jobs."""
    position = eta = None
    if job.status == "queued":
        queue = queue if queue is not None else queue_now(studio, session)
        position, eta = queue.positions.get(job.id), queue.etas.get(job.id)
    images = job_images(session, job.id)
    return job_view(job, images, position, studio.dispatch.live(job.id), eta)


def public(job: dict) -> dict:
    """A job event as the stream sends it: typed and linked like the routes' answers."""
    return JobPublic.model_validate(job).model_dump(mode="json")


@router.post(
    "/generations", status_code=202, response_model=JobPublic, summary="Queue a generation"
)
def create(
    body: GenerationInput,
    request: Request,
    user: MakeUser,
    studio: StudioDep,
    response: Response,
):
    """Answers at once with the queued job; follow it with `GET /v1/generations/{id}` or the
    event stream `GET /v1/events`."""
    studio.throttle.action("submit", user.id, client_address(request))
    job = queue_generation(studio, user, body, "api")
    response.headers["Location"] = router.url_path_for("read", job_id=job.id)
    with studio.db.session() as session:
        return view(studio, session, session.get_one(Job, job.id))


def cancel_jobs(studio: Studio, session, jobs: list[Job]) -> None:
    """Cancel each of ``jobs``: a queued one at once, a running one after its current step;
    then tell their owners' streams (and wake the requests that wait for them)."""
    for job in jobs:
        try:
            if not cancel_queued(session, job):
                studio.dispatch.cancel(job.id)
        except Conflict:
            pass  # it finished meanwhile
    session.commit()
    for job in jobs:
        announce(studio, job.id)


def announce(studio: Studio, job_id: str) -> dict:
    """The job as it stands, also sent to its owner's event streams."""
    with studio.db.session() as session:
        job = session.get_one(Job, job_id)
        current = view(studio, session, job)
    studio.events.publish(job.user_id, {"type": "job", "job": current})
    return current


@router.get("/generations", response_model=JobList, summary="Your recent generations")
def list_jobs(
    user: ReadUser,
    studio: StudioDep,
    session: SessionDep,
    active: Annotated[bool, Query(description="Only those queued or running.")] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
):
    query = select(Job).where(Job.user_id == user.id)
    if active:
        query = query.where(Job.status.in_(ACTIVE))
    jobs = list(session.scalars(query.order_by(Job.created_at.desc()).limit(limit)))
    queue = queue_now(studio, session)  # once, not once per job
    return {"generations": [view(studio, session, job, queue) for job in jobs]}


@router.get(
    "/generations/{job_id}",
    response_model=JobPublic,
    summary="A generation: its status, progress and images",
)
def read(job_id: str, user: ReadUser, studio: StudioDep, session: SessionDep):
    return view(studio, session, owned(session, Job, user.id, job_id, "generation"))


@router.post(
    "/generations/{job_id}/cancel",
    response_model=JobPublic,
    summary="Cancel a queued or running generation",
)
def cancel(job_id: str, user: MakeUser, studio: StudioDep, session: SessionDep):
    """A queued job is cancelled at once; a running one after its current step."""
    job = owned(session, Job, user.id, job_id, "generation")
    if not cancel_queued(session, job):
        studio.dispatch.cancel(job.id)
    session.commit()
    return announce(studio, job.id)


@router.get("/events", response_class=EventSourceResponse, summary="Live events of your jobs")
async def events(user: ReadUser, studio: StudioDep) -> AsyncIterable[ServerSentEvent]:
    """Server-Sent Events: `job` (a job's status changed; the whole job) and `progress`
    (step, total, ETA and a preview picture as a data URL). The stream starts with a `job`
    event for each of your queued or running jobs."""

    def active() -> list[dict]:
        with studio.db.session() as session:
            query = select(Job).where(Job.user_id == user.id, Job.status.in_(ACTIVE))
            queue = queue_now(studio, session)
            return [view(studio, session, job, queue) for job in session.scalars(query)]

    # FastAPI sends keep-alive comments while the stream is quiet, and ends this generator
    # when the client goes away (which unsubscribes it)
    async with studio.events.subscribe(user.id) as queue:
        for job in await run_in_threadpool(active):
            yield ServerSentEvent(data=public(job), event="job")
        while True:
            event = await queue.get()
            if event["type"] == "comfyui":  # ComfyUI's own protocol: its WebSocket's
                continue
            data = public(event["job"]) if event["type"] == "job" else event
            yield ServerSentEvent(data=data, event=event["type"])
