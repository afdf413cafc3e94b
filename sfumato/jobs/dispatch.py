"""How queued jobs reach what runs them: one interface, two implementations.

- ``jobs.worker.LocalWorker``: the server's own worker thread (the default: one process, no
  broker).
- ``cluster.dispatch.ClusterDispatch``: generation workers on other processes and machines,
  fed through a Celery broker (``sfumato serve --broker``, ``sfumato worker``).

The queue in the database is the record either way; the routes only queue jobs, wake the
dispatch, cancel through it and read running jobs' live progress from it.
"""

from __future__ import annotations

from typing import Protocol

from sfumato.jobs.views import Live


class Dispatch(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...

    @property
    def stopping(self) -> bool:
        """The server is shutting down (a waiting request is told so)."""
        ...

    def wake(self) -> None:
        """A job was queued or a worker freed: hand out jobs now, not at the next poll."""

    def cancel(self, job_id: str) -> bool | None:
        """Stop the running job ``job_id`` after its current step, wherever it runs (True: it
        runs here and was told; None: the workers were told)."""

    def live(self, job_id: str) -> Live | None:
        """A running job's latest progress and preview."""

    def workers(self) -> list[dict]:
        """What runs jobs: name, host, device, warm models, current job, jobs done, last
        heartbeat, alive."""
        ...
