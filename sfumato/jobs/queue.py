"""The job queue, in the database: it survives restarts, and every process sees the same one.

Order is fair between users: the queue is served round-robin, the user served least recently
first, each user's own jobs oldest first. One user's fifty queued jobs therefore delay
another's single job by at most one generation.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
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


class Superseded(Exception):
    """This run of a job no longer owns it: its worker was presumed gone and the job handed to
    another, or it was cancelled. What the run made is dropped: the job's pictures are the
    other run's."""


def fair_order(session: Session, handed: bool = True) -> list[Job]:
    """The queued jobs in the order they will run, if no new job arrives: those already handed
    to a worker first (``handed=False`` leaves them out), then the rest in turn."""
    queued = list(
        session.scalars(select(Job).where(Job.status == QUEUED).order_by(Job.created_at, Job.id))
    )
    first = sorted((j for j in queued if j.worker), key=lambda j: _naive(j.dispatched_at))
    queued = [job for job in queued if not job.worker]
    if not queued:
        return first if handed else []
    per_user: dict[int, list[Job]] = defaultdict(list)
    for job in queued:
        per_user[job.user_id].append(job)
    # a job handed to a worker counts as served from then, though it starts a moment later
    served_at = func.coalesce(Job.started_at, Job.dispatched_at)
    served = dict(
        session.execute(
            select(Job.user_id, func.max(served_at))
            .where(Job.user_id.in_(per_user), served_at.is_not(None))
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
    return (first if handed else []) + order


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
            order = fair_order(session, handed=False)
            if not order:
                return None
            job = order[0]
            claimed = session.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == QUEUED, Job.worker.is_(None))
                .values(status=RUNNING, started_at=utcnow(), attempts=Job.attempts + 1, step=0)
            ).rowcount
            if claimed:
                session.refresh(job)
                return job


def requeue_lost(session: Session, alive: Collection[str], at_start: bool = False) -> int:
    """Jobs whose worker is gone run again (their settings hold the seed, so they give the
    same pictures): those handed to or running on a worker not in ``alive``; ``at_start``,
    also those the server's own worker thread was running when its process died. Returns how
    many."""
    lost = Job.worker.is_not(None) & Job.worker.not_in(list(alive))
    if at_start:
        lost = lost | (Job.worker.is_(None) & (Job.status == RUNNING))
    return session.execute(
        update(Job)
        .where(Job.status.in_(ACTIVE), lost)
        .values(status=QUEUED, step=0, worker=None, dispatched_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount


def own(session: Session, job: Job) -> Job:
    """The job's row, locked until the session ends, if this run of it (``job`` as claimed)
    still owns it; else ``Superseded``. Every write that ends a job goes through here, so a
    run that was presumed lost and handed to another worker, or a message delivered twice,
    never writes a second set of pictures."""
    row = session.scalar(select(Job).where(Job.id == job.id).with_for_update())
    if (
        row is None
        or row.status != RUNNING
        or row.attempts != job.attempts
        or row.worker != job.worker
    ):
        raise Superseded(f"job {job.id} attempt {job.attempts} no longer owns it")
    return row


def succeed(session: Session, job: Job) -> Job:
    """Mark this run of ``job`` succeeded, in the transaction that adds its pictures."""
    row = own(session, job)
    row.status, row.finished_at = SUCCEEDED, utcnow()
    row.step = row.total
    return row


def finish(
    db: Database,
    job: Job,
    status: str,
    error_code: str | None = None,
    error_message: str | None = None,
) -> Job:
    """End this run of ``job`` as failed or cancelled (``Superseded`` if it no longer owns it)."""
    with db.session() as session:
        row = own(session, job)
        row.status = status
        row.finished_at = utcnow()
        row.error_code, row.error_message = error_code, error_message
        return row


def set_progress(db: Database, job: Job, step: int, total: int) -> None:
    with db.session() as session:
        session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == RUNNING, Job.attempts == job.attempts)
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
