"""The API side of a scaled-out server: jobs handed from the database's fair queue to the
generation workers, through Celery.

Only as many jobs leave the queue as there are idle workers, each to one worker's own queue
on the broker: the order stays the database's (round-robin over users), so one user's fifty
jobs never sit in the broker ahead of another's one, and a job can still be cancelled or
reordered until a worker is free for it. A job goes to an idle worker that holds its model
warm when there is one, else to the idle worker holding the fewest models (a load there
evicts least). Every API process runs this loop; on PostgreSQL one at a time hands out jobs
(an advisory lock), the others wait their turn.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from typing import TYPE_CHECKING

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from sfumato.cluster import AFFINITY, EXPIRY_S, HANDOVER_S, registry
from sfumato.cluster.app import CANCEL, TASK, celery_app
from sfumato.cluster.events import BrokerEvents
from sfumato.jobs.queue import QUEUED, fair_order
from sfumato.jobs.views import Live
from sfumato.store.tables import Job, Worker, utcnow

if TYPE_CHECKING:
    from sfumato.studio import Studio

log = logging.getLogger(__name__)
POLL_S = 0.5  # how often the queue and the workers are looked at without news
LOCK_KEY = 0x5F0A7  # the PostgreSQL advisory lock of the one process handing out jobs


class ClusterDispatch:
    def __init__(self, studio: Studio, broker_url: str, affinity: bool = AFFINITY):
        self.studio = studio
        self.app = celery_app(broker_url)
        self.affinity = affinity
        self.events: BrokerEvents = studio.events  # type: ignore[assignment]
        self.events.hooks.append(self._arrived)
        self._live: dict[str, Live] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- the Dispatch interface (jobs/dispatch.py)
    def start(self) -> None:
        self.events.start()
        self._thread = threading.Thread(target=self._loop, name="sfumato-dispatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
        self.events.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, job_id: str) -> None:  # the workers answer, not this process
        """Every worker is told; the one running ``job_id`` stops after its current step."""
        try:
            self.app.control.broadcast(CANCEL, arguments={"job_id": job_id})
        except Exception as e:
            log.warning("the cancel of %s could not reach the workers: %s", job_id, e)

    def live(self, job_id: str) -> Live | None:
        return self._live.get(job_id)

    def workers(self) -> list[dict]:
        with self.studio.db.session() as session:
            return registry.listing(session, EXPIRY_S)

    # ---- handing out jobs
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.hand_out()
            except Exception:  # the database or the broker is away: try again, do not die
                log.exception("could not hand out jobs")
            self._wake.wait(POLL_S)
            self._wake.clear()

    def hand_out(self) -> int:
        """Give each idle worker its next job (``pair_up``); returns how many were sent."""
        sends: list[tuple[str, int, str]] = []
        with self.studio.db.session() as session:
            if not _take_turn(session):
                return 0
            if requeued := registry.sweep(session, EXPIRY_S, HANDOVER_S):
                log.info("%d job(s) queued again: their worker is gone", requeued)
            alive = registry.alive(session, EXPIRY_S)
            running = [w.job_id for w in alive if w.job_id is not None]
            # the model each busy worker holds once its job is done: that job's
            busy = list(session.scalars(select(Job.model_name).where(Job.id.in_(running))))
            order = fair_order(session, handed=False) if len(running) < len(alive) else []
            for job, worker in pair_up(order, alive, busy, self.affinity):
                handed = session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == QUEUED, Job.worker.is_(None))
                    .values(worker=worker.name, dispatched_at=utcnow(), attempts=job.attempts + 1)
                    .execution_options(synchronize_session=False)
                ).rowcount
                if handed:
                    worker.job_id = job.id
                    sends.append((job.id, job.attempts + 1, worker.queue))
        for job_id, attempt, queue in sends:
            try:
                self.app.send_task(TASK, args=[job_id, attempt], queue=queue)
            except Exception as e:
                log.warning("job %s could not be sent to %s (%s); it stays queued", job_id,
                            queue, e)  # fmt: skip
                self._take_back(job_id, attempt)
        return len(sends)

    def _take_back(self, job_id: str, attempt: int) -> None:
        with self.studio.db.session() as session:
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == QUEUED, Job.attempts == attempt)
                .values(worker=None, dispatched_at=None)
            )
            session.execute(update(Worker).where(Worker.job_id == job_id).values(job_id=None))

    # ---- what the workers say
    def _arrived(self, user_id: int | None, event: dict) -> None:
        kind = event.get("type")
        if kind == "progress":
            self._live[event["job_id"]] = Live(
                event.get("step", 0), event.get("total", 0), event.get("eta_s"),
                event.get("preview"),
            )  # fmt: skip
        elif kind == "job" and event["job"].get("status") != "running":
            self._live.pop(event["job"]["id"], None)
        elif kind == "worker_free":
            self._wake.set()


def pair_up(
    order: list[Job], alive: list[Worker], busy_models: list[str], affinity: bool = True
) -> list[tuple[Job, Worker]]:
    """Which idle worker takes which job, the jobs taken in ``order`` (the fair one).

    With affinity, a job whose model no idle worker holds but a busy one will (``busy_models``:
    the models of the jobs the busy workers run) waits for that worker, which takes it as soon
    as it is free (the job is then first in order, and that worker holds its model): a wait of
    at most one job, for a model load saved. One job per such worker waits so; the next ones
    go to idle workers, so that a popular model spreads over idle workers instead of queueing
    behind one.
    """
    idle = [w for w in alive if w.job_id is None]
    waiting_for = Counter(busy_models) if affinity else Counter()
    pairs = []
    for job in order:
        if not idle:
            break
        held = any(job.model_name in (w.models or []) for w in idle)
        if not held and waiting_for[job.model_name] > 0:
            waiting_for[job.model_name] -= 1
            continue
        worker = choose_worker(idle, job, affinity)
        idle.remove(worker)
        pairs.append((job, worker))
    return pairs


def choose_worker(idle: list[Worker], job: Job, affinity: bool = True) -> Worker:
    """The idle worker for ``job``: one holding its model warm, else the one holding the
    fewest models (loading there evicts least); without affinity, any (as one shared queue
    would)."""
    if not affinity:
        return random.choice(idle)
    warm = [w for w in idle if job.model_name in (w.models or [])]
    if warm:
        return warm[0]
    return min(idle, key=lambda w: (len(w.models or []), w.name))


def _take_turn(session: Session) -> bool:
    """On PostgreSQL, one process hands out jobs at a time (until this transaction ends);
    SQLite's single writer serializes them already."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": LOCK_KEY}))
