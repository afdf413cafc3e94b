"""The server's own worker: a thread in its process that takes jobs from the queue one at a
time and runs them. The default dispatch, when no broker is configured (``cluster/`` is the
other: workers on other processes and machines).

One at a time because one model pass already fills the CPU or GPU; the queue, not the
worker, is what makes waiting fair.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import TYPE_CHECKING

from sfumato.jobs.queue import claim_next
from sfumato.jobs.runner import Runner
from sfumato.jobs.views import Live

if TYPE_CHECKING:
    from sfumato.studio import Studio

log = logging.getLogger(__name__)
POLL_S = 1.0  # how often an idle worker looks for jobs queued by another process


class LocalWorker:
    """The ``Dispatch`` of a single-process server (see ``jobs/dispatch.py``)."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self.runner = Runner(studio)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sfumato-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.studio.warm_up.stop()
        self.studio.int8.stop()
        self.runner.stop()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self.runner.stopping

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    def cancel(self, job_id: str) -> bool:
        return self.runner.cancel(job_id)

    def live(self, job_id: str) -> Live | None:
        return self.runner.live(job_id)

    def workers(self) -> list[dict]:
        running = self._thread is not None and self._thread.is_alive()
        return [
            {
                "name": "local",
                "host": socket.gethostname(),
                "device": self.studio.config.load.device or "auto",
                "models": self.studio.model_cache.loaded_names(),
                "job_id": self.runner.current,
                "jobs_done": self._done,
                "heartbeat_at": None,
                "alive": running,
            }
        ]

    def _loop(self) -> None:
        # first the default model, in this thread: a job queued meanwhile waits for it rather
        # than loading it a second time beside it
        self.studio.warm_up.run()
        # then, if asked, its int8 trial in a process of its own, while jobs run here
        self.studio.int8.start(self.studio.warm_up.source, self.studio.config.load)
        while not self.runner.stopping:
            try:
                job = claim_next(self.studio.db)
            except Exception:  # the database is away: try again, do not die
                log.exception("could not read the queue")
                job = None
            if job is None:
                self._wake.wait(POLL_S)
                self._wake.clear()
                continue
            self.runner.run(job)
            self._done += 1
