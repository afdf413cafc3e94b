"""The workers as the database knows them: each writes a heartbeat; one that stops is gone,
and the jobs handed to it or running on it go back to the queue (``sweep``)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from sfumato.jobs.queue import ACTIVE, QUEUED, requeue_lost
from sfumato.store.tables import Job, Worker, utcnow

log = logging.getLogger(__name__)


def register(session: Session, name: str, host: str, pid: int, device: str, queue: str) -> None:
    """A worker starting under ``name``: whatever a previous worker of that name held was
    lost with it, and queues again."""
    taken = session.get(Worker, name)
    if taken is not None:
        session.delete(taken)
        session.flush()
    session.execute(
        update(Job)
        .where(Job.worker == name, Job.status.in_(ACTIVE))
        .values(status=QUEUED, step=0, worker=None, dispatched_at=None)
    )
    session.add(Worker(name=name, host=host, pid=pid, device=device, queue=queue, models=[],
                       jobs_done=0, model_loads=0))  # fmt: skip


def beat(session: Session, name: str, models: list[str], loads: int) -> bool:
    """The worker's heartbeat, with the models it holds warm; False when its row is gone (it
    was taken for dead: it must register again)."""
    return bool(
        session.execute(
            update(Worker)
            .where(Worker.name == name)
            .values(heartbeat_at=utcnow(), models=models, model_loads=loads)
        ).rowcount
    )


def release(session: Session, name: str, job_id: str, ran: bool) -> None:
    """The worker is free again after ``job_id`` (``ran``: it ran the job, to its end)."""
    values = {"job_id": None}
    if ran:
        values["jobs_done"] = Worker.jobs_done + 1
    session.execute(
        update(Worker).where(Worker.name == name, Worker.job_id == job_id).values(**values)
    )


def leave(session: Session, name: str) -> None:
    """A worker shutting down in order: its row goes, and what it held queues again."""
    session.execute(delete(Worker).where(Worker.name == name))
    requeue_lost(session, alive=_names(session))


def alive(session: Session, expiry_s: float) -> list[Worker]:
    cutoff = utcnow() - timedelta(seconds=expiry_s)
    return list(
        session.scalars(select(Worker).where(Worker.heartbeat_at >= cutoff).order_by(Worker.name))
    )


def sweep(session: Session, expiry_s: float, handover_s: float) -> int:
    """Workers silent for ``expiry_s`` removed and their jobs queued again; jobs handed to a
    worker that has not started them in ``handover_s`` queued again too. Returns how many
    jobs went back to the queue."""
    cutoff = utcnow() - timedelta(seconds=expiry_s)
    for gone in session.scalars(select(Worker).where(Worker.heartbeat_at < cutoff)):
        log.warning("worker %s (%s) stopped answering; its job runs elsewhere", gone.name,
                    gone.host)  # fmt: skip
        session.delete(gone)
    session.flush()
    requeued = requeue_lost(session, alive=_names(session))
    stale = list(
        session.scalars(
            select(Job.id).where(
                Job.status == QUEUED,
                Job.worker.is_not(None),
                Job.dispatched_at < utcnow() - timedelta(seconds=handover_s),
            )
        )
    )
    if stale:
        session.execute(
            update(Job)
            .where(Job.id.in_(stale), Job.status == QUEUED)
            .values(worker=None, dispatched_at=None)
        )
        session.execute(update(Worker).where(Worker.job_id.in_(stale)).values(job_id=None))
    return requeued + len(stale)


def listing(session: Session, expiry_s: float) -> list[dict]:
    cutoff = utcnow() - timedelta(seconds=expiry_s)
    return [
        {
            "name": w.name,
            "host": w.host,
            "device": w.device,
            "models": list(w.models or []),
            "job_id": w.job_id,
            "jobs_done": w.jobs_done,
            "model_loads": w.model_loads,
            "started_at": w.started_at.isoformat(),
            "heartbeat_at": w.heartbeat_at.isoformat(),
            "alive": w.heartbeat_at >= cutoff,
        }
        for w in session.scalars(select(Worker).order_by(Worker.name))
    ]


def _names(session: Session) -> list[str]:
    return list(session.scalars(select(Worker.name)))
