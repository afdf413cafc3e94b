"""The Celery application: one task, ``sfumato.run_job``, sent to one worker's own queue.

Late acknowledgement and rejection on a lost worker are set so that a job whose worker dies
is never acknowledged as done; but what runs a job again is the database (a worker whose
heartbeat stops has its job handed to another), so a message left in a dead worker's queue
is harmless: its run no longer owns the job when it is delivered (``jobs.queue.own``).
"""

from __future__ import annotations

from celery import Celery

TASK = "sfumato.run_job"
CANCEL = "sfumato_cancel"  # the remote-control command that stops a running job


def celery_app(broker_url: str) -> Celery:
    app = Celery("sfumato", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a worker takes the next job only when it is free
        task_ignore_result=True,  # the database holds the outcome
        task_serializer="json",
        accept_content=["json"],
        task_default_queue="sfumato",
        broker_connection_retry_on_startup=True,
        worker_send_task_events=True,  # Flower and `celery events` see the jobs
        worker_hijack_root_logger=False,
    )
    return app


def queue_of(worker_name: str) -> str:
    """The broker queue of one worker: jobs are sent to the worker chosen for them."""
    return f"sfumato.worker.{worker_name}"
