"""The job queue, in the database: it survives restarts, and every process sees the same one.

Order is fair between users: the queue is served round-robin, the user served least recently
first, each user's own jobs oldest first. One user's fifty queued jobs therefore delay
another's single job by at most one generation.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from sfumato.errors import Conflict, QueueFull
from sfumato.store.db import Database
from sfumato.store.tables import Image, Job, utcnow

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "queued",
    "running",
    "succeeded",
    "failed",
    "cancelled",
)
ACTIVE = (QUEUED, RUNNING)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
_EPOCH = datetime.min.replace(tzinfo=None)


def enqueue(session: Session, job: Job, limit: int) -> Job:
    """Add ``job``; refused when its user already has ``limit`` jobs waiting or running."""
    active = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.user_id == job.user_id, Job.status.in_(ACTIVE))
    )
    if active >= limit:
        raise QueueFull(
            f"You already have {active} generations queued or running (at most {limit}). "
            "Wait for some to finish, or cancel some."
        )
    job.status = QUEUED
    session.add(job)
    session.flush()
    return job


def fair_order(session: Session) -> list[Job]:
    """The queued jobs in the order they will run, if no new job arrives."""
    queued = list(
        session.scalars(select(Job).where(Job.status == QUEUED).order_by(Job.created_at, Job.id))
    )
    if not queued:
        return []
    per_user: dict[int, list[Job]] = defaultdict(list)
    for job in queued:
        per_user[job.user_id].append(job)
    served = dict(
        session.execute(
            select(Job.user_id, func.max(Job.started_at))
            .where(Job.user_id.in_(per_user), Job.started_at.is_not(None))
            .group_by(Job.user_id)
        ).all()
    )

    def turn(user_id: int):
        last = served.get(user_id)
        # never served first; then the least recently served; ties: who has waited longest
        return (last is not None, _naive(last), per_user[user_id][0].created_at)

    users = sorted(per_user, key=turn)
    order = []
    for round_ in range(max(len(jobs) for jobs in per_user.values())):
        order += [per_user[u][round_] for u in users if round_ < len(per_user[u])]
    return order


def _naive(moment: datetime | None) -> datetime:
    return moment.replace(tzinfo=None) if moment else _EPOCH


def queue_positions(session: Session) -> dict[str, int]:
    """job id -> 1 for the next to run, 2 for the one after, ..."""
    return {job.id: i + 1 for i, job in enumerate(fair_order(session))}


def claim_next(db: Database) -> Job | None:
    """Mark the next job running and return it; None when nothing waits.

    The claim is a conditional update: if another process took the job first, the next one
    is tried, so two workers never run the same job.
    """
    while True:
        with db.session() as session:
            order = fair_order(session)
            if not order:
                return None
            job = order[0]
            claimed = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == QUEUED)
                .values(status=RUNNING, started_at=utcnow(), attempts=Job.attempts + 1, step=0)
            ).rowcount
            if claimed:
                session.refresh(job)
                return job


def requeue_interrupted(db: Database) -> int:
    """At start: jobs left running by a process that died run again (their settings hold the
    seed, so they give the same pictures). Returns how many."""
    with db.session() as session:
        return session.execute(
            update(Job).where(Job.status == RUNNING).values(status=QUEUED, step=0)
        ).rowcount


def finish(
    db: Database,
    job_id: str,
    status: str,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Job:
    with db.session() as session:
        job = session.get_one(Job, job_id)
        job.status = status
        job.finished_at = utcnow()
        job.error_code, job.error_message = error_code, error_message
        return job


def set_progress(db: Database, job_id: str, step: int, total: int) -> None:
    with db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == RUNNING)
            .values(step=step, total=total)
        )


def cancel_queued(session: Session, job: Job) -> bool:
    """Cancel a job that has not started; False if it is running (the worker stops it)."""
    if job.status in FINISHED:
        raise Conflict(f"The generation has already finished ({job.status}).")
    if job.status == RUNNING:
        return False
    changed = session.execute(
        update(Job)
        .where(Job.id == job.id, Job.status == QUEUED)
        .values(status=CANCELLED, finished_at=utcnow())
    ).rowcount
    session.refresh(job)
    return bool(changed) or job.status == CANCELLED


def job_images(session: Session, job_id: str) -> list[Image]:
    return list(
        session.scalars(select(Image).where(Image.job_id == job_id).order_by(Image.batch_index))
    )
