"""``sfumato worker``: a generation worker on any process or machine. It takes the jobs sent
to its own queue on the broker, runs them on its device with the same code as the server's
own worker (``jobs/runner.py``), stores the pictures in the shared picture folder and the
database, and reports progress to every API process through the broker.

Its heartbeat (a small process beside it, ``heartbeat.py``) tells the API processes it is
alive; after each job it writes which models it holds warm. When the heartbeat stops, its job
is handed to another worker. Celery runs the task in a thread
pool of one, so remote control (the cancel command, ``celery inspect``) is answered while a
job runs.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy import text, update

from sfumato.cluster import _seconds, heartbeat, registry, without_password
from sfumato.cluster.app import CANCEL, TASK, celery_app, queue_of
from sfumato.jobs.queue import QUEUED, RUNNING
from sfumato.jobs.runner import Runner
from sfumato.store.tables import Job, utcnow

if TYPE_CHECKING:
    from celery import Celery

    from sfumato.studio import Studio

log = logging.getLogger(__name__)
# how often a worker that cannot reach the database or the broker tries again
RETRY_S = _seconds("SFUMATO_RETRY_S", 5.0)


class GenerationWorker:
    def __init__(self, studio: Studio, name: str, broker_url: str, device: str):
        self.studio, self.name, self.device = studio, name, device
        self.broker_url = broker_url
        self.queue = queue_of(name)
        self.host = socket.gethostname()
        self.runner = Runner(studio)
        self.app = self._celery()
        self._stop = threading.Event()  # stops waiting for the database and the broker

    def _celery(self) -> Celery:
        app = celery_app(self.broker_url)
        app.task(name=TASK)(self.run_job)
        from celery.worker.control import control_command

        @control_command(name=CANCEL, args=[("job_id", str)], signature="<job_id>")
        def cancel(state, job_id: str) -> dict:  # noqa: ARG001 (Celery's signature)
            """Stop job_id after its current step, if this worker runs it."""
            worker = _current
            return {"ok": bool(worker and worker.runner.cancel(job_id))}

        return app

    # ---- start and stop
    def wait_for_services(self) -> None:
        """Until the database and the broker answer, say which does not, and why, and retry."""
        while not self._stop.is_set():
            problem = self._unreachable()
            if problem is None:
                return
            log.warning("%s Retrying in %g s.", problem, RETRY_S)
            self._stop.wait(RETRY_S)

    def _unreachable(self) -> str | None:
        try:
            with self.studio.db.session() as session:
                session.execute(text("SELECT 1"))
        except Exception as e:
            return (
                f"Cannot reach the database ({without_password(self.studio.db.url)}): {_reason(e)}."
            )
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=5)
        except Exception as e:
            return f"Cannot reach the broker ({without_password(self.broker_url)}): {_reason(e)}."
        return None

    def run(self) -> None:
        """Register, beat, and take jobs until stopped (Ctrl-C or SIGTERM: the running job
        finishes first, as Celery's warm shutdown does)."""
        global _current
        _current = self
        self.wait_for_services()
        self.studio.db.migrate()
        with self.studio.db.session() as session:
            registry.register(session, self.name, self.host, os.getpid(), self.device,
                              self.queue)  # fmt: skip
        beating = heartbeat.start(self.studio.db.url, self.name, self.device, self.queue)
        if parent := os.environ.get("SFUMATO_STOP_WITH"):  # started by `serve --devices`
            threading.Thread(target=_stop_with, args=(int(parent),), daemon=True).start()
        try:
            self.app.Worker(
                hostname=f"{self.name}@{self.host}",
                queues=[self.queue],
                pool="threads",
                concurrency=1,
                without_gossip=True,
                without_mingle=True,
                loglevel="INFO",
            ).start()
        finally:
            beating.terminate()
            beating.wait()
            with self.studio.db.session() as session:
                registry.leave(session, self.name)
            self.studio.events.stop()

    def report(self) -> None:
        """The models this worker holds warm now, for the choice of the next job's worker
        (the heartbeat process says it is alive; this says what it holds)."""
        models = self.studio.model_cache.loaded_names()
        try:
            with self.studio.db.session() as session:
                if registry.beat(session, self.name, models, self.studio.model_cache.loads):
                    return
                # taken for dead (its heartbeat stopped a while): its job ran elsewhere
                log.warning("worker %s was taken for gone; registering again", self.name)
                registry.register(session, self.name, self.host, os.getpid(), self.device,
                                  self.queue)  # fmt: skip
        except Exception as e:
            log.warning("the worker's state was not written (%s)", _reason(e))

    # ---- the task
    def run_job(self, job_id: str, attempt: int) -> None:
        """Run the job handed to this worker as ``attempt``; a message for a run that no
        longer owns the job (cancelled meanwhile, handed elsewhere, delivered twice) is
        dropped."""
        with self.studio.db.session() as session:
            claimed = session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.status == QUEUED,
                    Job.worker == self.name,
                    Job.attempts == attempt,
                )
                .values(status=RUNNING, started_at=utcnow(), step=0)
                .execution_options(synchronize_session=False)
            ).rowcount
            job = session.get(Job, job_id) if claimed else None
        ran = False
        try:
            if job is None:
                log.info("job %s attempt %s is no longer this worker's; dropped", job_id, attempt)
                return
            self.runner.run(job)
            ran = True
        finally:
            with self.studio.db.session() as session:
                registry.release(session, self.name, job_id, ran)
            self.report()  # the warm models as they are now, before the next job is chosen
            self.studio.events.publish(None, {"type": "worker_free", "worker": self.name})


def _stop_with(parent: int) -> None:
    """Stop as Ctrl-C stops a worker (its running job finishes first) once ``parent`` is gone."""
    while os.getppid() == parent:
        time.sleep(1)
    log.info("the server that started this worker has stopped; stopping")
    os.kill(os.getpid(), signal.SIGTERM)


_current: GenerationWorker | None = None  # the worker of this process, for remote control


def _reason(error: Exception) -> str:
    text_ = str(getattr(error, "orig", None) or error).strip().splitlines()
    return (text_[0] if text_ else type(error).__name__)[:200]
