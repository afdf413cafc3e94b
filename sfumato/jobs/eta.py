"""When a queued job starts and ends: the jobs ahead of it in the queue's fair order, each
taken at the estimate recorded when it was queued (``Job.estimate``, ``jobs/estimates.py``),
laid one after the other on the workers that run them; a running job counts for what is
left of it. The record is read, not fitted again: a page that polls a queued job every
second costs the queue's rows, not the finished jobs'."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from sfumato.jobs.estimates import Estimate, estimate, finished_jobs
from sfumato.jobs.queue import RUNNING, fair_order
from sfumato.store.tables import Job

if TYPE_CHECKING:
    from sfumato.studio import Studio


@dataclass
class QueueNow:
    """The queue as it stands: each queued job's place and, where it can be told, when it
    starts and ends (seconds from now); when a job queued now would start (None: not known)."""

    positions: dict[str, int] = field(default_factory=dict)
    etas: dict[str, dict] = field(default_factory=dict)
    jobs: int = 0  # queued or running
    next_start_s: float | None = 0.0


def queue_now(studio: Studio, session: Session) -> QueueNow:
    order = fair_order(session)
    running = session.scalars(select(Job).where(Job.status == RUNNING)).all()
    now = QueueNow({job.id: i + 1 for i, job in enumerate(order)}, jobs=len(order) + len(running))
    if not now.jobs:
        return now
    now.next_start_s = None
    seconds = _Seconds(studio)
    # when each worker is free: the running jobs' ends, then the idle workers (free now);
    # more running jobs than workers listed (a registry a heartbeat behind) count as workers
    free = [seconds.left(job) for job in running]
    free += [0.0] * max(0, _workers(studio) - len(free))
    if any(x is None for x in free):
        return now  # a running job whose length nobody can tell: so is every start after it
    heapq.heapify(free)
    for job in order:
        own = seconds.of(job)
        if own is None:
            return now  # nothing known of it: the jobs behind it cannot be told either
        start = heapq.heappop(free)
        now.etas[job.id] = {"starts_in_s": round(start, 1), "done_in_s": round(start + own, 1)}
        heapq.heappush(free, start + own)
    now.next_start_s = round(free[0], 2)
    return now


def estimate_in_queue(studio: Studio, job: Job) -> Estimate:
    """``job``'s estimate (planned, not queued) with the wait before it if queued now: after
    every job waiting (at most: the fair order puts a user with fewer jobs waiting first)."""
    found = estimate(studio, job)
    with studio.db.session() as session:
        queue = queue_now(studio, session)
    found.jobs_ahead, found.ahead_s = queue.jobs, queue.next_start_s
    return found


def _workers(studio: Studio) -> int:
    """How many jobs run at once: the live workers (the server's own thread: one)."""
    return max(1, sum(1 for worker in studio.dispatch.workers() if worker["alive"]))


class _Seconds:
    """A job's seconds: its recorded estimate; for a job queued before anything was known
    (or a graph's, which records none), estimated now from the finished jobs, read once."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self.made: dict[str, float | None] = {}
        self.finished: list[Job] | None = None

    def of(self, job: Job) -> float | None:
        if job.upscale is not None:
            return 0.0  # an upscale: seconds, next to any generation
        if job.estimate:
            return job.estimate["seconds"]
        if job.id not in self.made:
            if self.finished is None:
                self.finished = finished_jobs(self.studio.db)
            found = estimate(self.studio, job, self.finished)
            self.made[job.id] = found.seconds
        return self.made[job.id]

    def left(self, job: Job) -> float | None:
        """What is left of a running job: its live ETA from its steps when this process
        follows it, else its share of its estimate by the steps done."""
        live = self.studio.dispatch.live(job.id)
        if live is not None and live.eta_s is not None:
            return live.eta_s
        own = self.of(job)
        if own is None:
            return None
        done = (job.step or 0) / job.total if job.total else 0.0
        return own * max(0.0, 1.0 - done)
