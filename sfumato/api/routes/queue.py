"""The admin's view of the queue: every user's waiting and running jobs, and the power to
cancel any of them (a job that blocks the worker for everyone, say)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from sfumato.api.deps import AdminUser, SessionDep, StudioDep
from sfumato.api.routes.generations import announce, view
from sfumato.api.schemas import AdminJobList, JobPublic, WorkerList
from sfumato.errors import NotFound
from sfumato.jobs.eta import queue_now
from sfumato.jobs.queue import ACTIVE, RUNNING, cancel_queued
from sfumato.store.tables import Job, User

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.get("/jobs", response_model=AdminJobList, summary="Every user's queued and running jobs")
def list_jobs(user: AdminUser, studio: StudioDep, session: SessionDep):
    """Oldest first; each job with its owner's `username` and its `position` in the order
    the worker will take them (0: running now, 1: next, ...)."""
    queue = queue_now(studio, session)
    rows = session.execute(
        select(Job, User.username)
        .join(User, User.id == Job.user_id)
        .where(Job.status.in_(ACTIVE))
        .order_by(Job.created_at, Job.id)
    ).all()
    jobs = []
    for job, username in rows:
        position = 0 if job.status == RUNNING else queue.positions.get(job.id)
        jobs.append(
            view(studio, session, job, queue) | {"username": username, "position": position}
        )
    return {"jobs": jobs}


@router.post(
    "/jobs/{job_id}/cancel", response_model=JobPublic, summary="Cancel anyone's job (admins)"
)
def cancel(job_id: str, user: AdminUser, studio: StudioDep, session: SessionDep):
    """As its owner's cancel: a queued job at once, a running one after its current step;
    the owner's event streams are told."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no generation {job_id!r}.")
    if not cancel_queued(session, job):
        studio.dispatch.cancel(job.id)
    session.commit()
    return announce(studio, job.id)


@router.get("/workers", response_model=WorkerList, summary="What runs the jobs (admins)")
def workers(user: AdminUser, studio: StudioDep):
    """The generation workers (``sfumato worker``) with their device, warm models, current
    job, jobs done and last heartbeat; a server without a broker lists its own worker."""
    return {"workers": studio.dispatch.workers()}
