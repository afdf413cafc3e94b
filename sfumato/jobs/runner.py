"""Run one job from its claimed row: the engine makes the pictures, progress and previews go
to the owner's streams, the job ends succeeded, failed or cancelled.

The same code runs a job in the server's own worker thread (``jobs/worker.py``) and in a
generation worker on another process or machine (``sfumato worker``, ``cluster/``): only
who hands the job over differs.
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from typing import TYPE_CHECKING

from sfumato.engine.generate import Step
from sfumato.errors import Cancelled, SfumatoError, TimeLimitExceeded
from sfumato.jobs.execute import execute
from sfumato.jobs.graphs import execute_graph
from sfumato.jobs.grids import execute_grid
from sfumato.jobs.queue import (
    CANCELLED,
    FAILED,
    Superseded,
    finish,
    job_images,
    set_progress,
)
from sfumato.jobs.upscales import execute_upscale
from sfumato.jobs.views import Live, job_view
from sfumato.store.tables import Job
from sfumato.workflows.info import prompt_id

if TYPE_CHECKING:
    from sfumato.studio import Studio

log = logging.getLogger(__name__)
DB_PROGRESS_S = 0.5  # progress written to the database at most this often
EVENT_PROGRESS_S = 0.2  # and sent to clients at most this often


class Runner:
    """Runs the jobs it is given, one at a time, and can stop the one it runs."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._current: tuple[str, threading.Event] | None = None
        self._live: dict[str, Live] = {}

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def current(self) -> str | None:
        """The id of the job running now."""
        with self._lock:
            return self._current[0] if self._current else None

    def stop(self) -> None:
        """Stop the running job after its current step; it stays ``running`` in the database,
        to run again when the server starts (or, on a worker, on another worker)."""
        self._stop.set()
        with self._lock:
            if self._current:
                self._current[1].set()

    def cancel(self, job_id: str) -> bool:
        """Stop the job if it is the one running (after the current step)."""
        with self._lock:
            if self._current and self._current[0] == job_id:
                self._current[1].set()
                return True
        return False

    def live(self, job_id: str) -> Live | None:
        return self._live.get(job_id)

    def run(self, job: Job) -> None:
        """Run ``job``, claimed for this runner (its ``attempts`` and ``worker`` name this run)."""
        cancel = threading.Event()
        with self._lock:
            self._current = (job.id, cancel)
        live = self._live[job.id] = Live(0, job.total)
        self._publish(job, live)
        limit = (job.timings or {}).get("limit_s")  # set at admission (sfumato.quotas)
        timed_out = threading.Event()
        on_step = self._on_step(job, live, limit, timed_out, cancel)
        try:
            run = (
                execute_graph
                if job.workflow is not None
                else execute_grid
                if job.grid is not None
                else execute_upscale
                if job.upscale is not None
                else execute
            )
            run(self.studio, job, on_step, cancel)
            status, code, message = None, None, None
        except Superseded:
            log.warning("job %s was taken over by another run: this run's pictures dropped", job.id)
            return
        except Cancelled:
            status, code, message = CANCELLED, None, None
            if timed_out.is_set():
                past = TimeLimitExceeded(
                    f"The job ran past this server's limit of {limit} s per job; ask for fewer "
                    "steps or a smaller size."
                )
                status, code, message = FAILED, past.code, past.message
        except SfumatoError as e:
            status, code, message = FAILED, e.code, e.message
        except Exception as e:
            log.exception("generation %s failed", job.id)
            status, code = FAILED, "internal_error"
            message = f"The generation failed: {type(e).__name__}: {str(e)[:300]}"
        finally:
            with self._lock:
                self._current = None
            self._live.pop(job.id, None)
        if self._stop.is_set() and status == CANCELLED:
            return  # the server is stopping: the job stays "running" and runs again
        if status is not None:
            try:
                job = finish(self.studio.db, job, status, code, message)
            except Superseded:
                return
        self._publish(job)
        if job.workflow is not None:  # ComfyUI's "done": after the history entry is written
            done = {"node": None, "prompt_id": prompt_id(job)}
            self.studio.events.publish(
                job.user_id,
                {
                    "type": "comfyui",
                    "job_id": job.id,
                    "client_id": job.workflow.get("client_id"),
                    "event": "executing",
                    "data": done,
                },
            )

    def _on_step(
        self,
        job: Job,
        live: Live,
        limit_s: int | None,
        timed_out: threading.Event,
        cancel: threading.Event,
    ):
        # the clock starts when the worker takes the job: loading the model counts
        started = time.monotonic()
        last_db = last_event = 0.0

        def on_step(step: Step) -> None:
            nonlocal last_db, last_event
            now = time.monotonic()
            if limit_s is not None and now - started >= limit_s:
                # stopped as a cancel stops it: the engine raises right after this callback
                # and the pipeline unwinds, rather than a thread being killed
                timed_out.set()
                cancel.set()
            live.step, live.total = step.done, step.total
            live.eta_s = round((now - started) / step.done * (step.total - step.done), 2)
            final = step.done == step.total
            if final or now - last_db >= DB_PROGRESS_S:
                set_progress(self.studio.db, job, step.done, step.total)
                last_db = now
            if final or now - last_event >= EVENT_PROGRESS_S:
                live.preview = _data_url(step)
                self.studio.events.publish(
                    job.user_id,
                    {
                        "type": "progress",
                        "job_id": job.id,
                        "step": live.step,
                        "total": live.total,
                        "eta_s": live.eta_s,
                        "preview": live.preview,
                    },
                )
                last_event = now

        return on_step

    def _publish(self, job: Job, live: Live | None = None) -> None:
        with self.studio.db.session() as session:
            fresh = session.get(Job, job.id) or job
            view = job_view(fresh, job_images(session, job.id), live=live)
        self.studio.events.publish(job.user_id, {"type": "job", "job": view})


def _data_url(step: Step) -> str:
    buffer = io.BytesIO()
    step.preview(0).save(buffer, format="JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
