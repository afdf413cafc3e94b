"""Scale-out: the API on one or more processes, generation workers on others, on Celery.

The database stays the record of jobs and their fair order; the broker (Redis or RabbitMQ)
carries each job to the worker chosen for it, the workers' progress events back to every API
process, and cancels to the workers. See docs/scaling.md.
"""

from __future__ import annotations

import os


def _seconds(name: str, default: float) -> float:
    """A number of seconds from the environment, else ``default``."""
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


# a worker writes its heartbeat this often; one silent for EXPIRY_S is gone and its job runs
# again elsewhere. Long enough that a worker busy converting a model is not taken for dead
HEARTBEAT_S = _seconds("SFUMATO_HEARTBEAT_S", 2.0)
EXPIRY_S = _seconds("SFUMATO_WORKER_EXPIRY_S", 30.0)
# a job handed to a worker that has not started it by then goes back to the queue (the
# message was lost between the database and the broker)
HANDOVER_S = _seconds("SFUMATO_HANDOVER_S", 60.0)
# jobs go to a worker holding their model warm; 0 hands them to any idle worker (measured in
# benchmarks/scale_out.py)
AFFINITY = os.environ.get("SFUMATO_MODEL_AFFINITY", "1").lower() not in ("0", "false", "no")


def without_password(url: str) -> str:
    """A database or broker URL as shown in messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.rsplit("@", 1)[-1]
