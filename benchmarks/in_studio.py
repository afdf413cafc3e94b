"""What the in-process benchmarks share (``graphs.py``, ``grids.py``): a studio on a fresh data
folder with the demo model and its worker, jobs waited for, and ways of making the same
pictures timed in turns."""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from sfumato.jobs.queue import FINISHED
from sfumato.store.tables import Job, User
from sfumato.studio import Studio, StudioConfig

DEMO = "sfumato-demo"


@contextlib.contextmanager
def demo_studio(models: Path | None = None) -> Iterator[tuple[Studio, User]]:
    """A started studio in personal mode, and its one user; ``models``: a models folder
    (beside the bundled demo model)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        studio = Studio(
            StudioConfig(
                data_dir=root / "data", models_dirs=[models or root / "models"], personal=True
            )
        )
        studio.start()
        try:
            with studio.db.session() as session:
                user = session.get(User, studio.personal_user_id)
                session.expunge(user)
            yield studio, user
        finally:
            studio.stop()


def wait(studio: Studio, job_id: str) -> None:
    """Until the job is finished; a job that did not succeed ends the benchmark."""
    while True:
        with studio.db.session() as session:
            job = session.get(Job, job_id)
            if job.status in FINISHED:
                if job.status != "succeeded":
                    raise SystemExit(f"job {job_id} {job.status}: {job.error_message}")
                return
        time.sleep(0.002)


def in_turns(ways: dict[str, Callable[[], None]], rounds: int) -> dict:
    """Each way once to warm up (the model loaded, the backend compiled), then one run of
    each per round, so the machine's drift falls on all alike; the times and medians."""
    for run in ways.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(rounds):
        for name, run in ways.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    medians = {name: round(statistics.median(values), 4) for name, values in times.items()}
    return {"median_s": medians, "times_s": times}
