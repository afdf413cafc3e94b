"""How long ``sfumato generate`` will take, said before it runs (``--estimate``).

The CLI keeps no job history, so it keeps what it measured instead: each picture it makes
adds one line to ``cache/timings.jsonl`` in the data folder (the model, the settings, the
seconds spent loading, generating and saving; the last 200 kept). An estimate is fitted on
those lines by the server's own code (``jobs/estimates.py``). Before the CLI has run here,
it learns from the finished jobs of the server that keeps its database in the same data
folder (``sfumato serve``), if one did; else it says it does not know yet. The CLI loads
the model at every run, so the load is always counted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from sfumato.datadir import DataDir
from sfumato.jobs.estimates import RECENT, Estimate, estimate_from, finished_jobs
from sfumato.quotas import megapixel_steps
from sfumato.store.db import Database, database_url
from sfumato.store.tables import Job

FILE = "timings.jsonl"


def _path(data: DataDir) -> Path:
    return data.cache / FILE


def record(data: DataDir, model_name: str, settings: dict, timings: dict) -> None:
    """Keep one run's measured seconds (``load_s``, ``engine_s``, ``save_s``)."""
    path = _path(data)
    line = {"model": model_name, "settings": settings, "timings": timings}
    try:
        lines = path.read_text().splitlines()[-(RECENT - 1) :] if path.exists() else []
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([*lines, json.dumps(line)]) + "\n")
    except OSError:
        pass  # a data folder it may not write to: the picture is saved, its timing is not


def past_runs(data: DataDir) -> list[Job]:
    """The CLI's measured runs here, as jobs (not stored: what the fit reads), newest first."""
    path = _path(data)
    if not path.exists():
        return []
    runs = []
    for text in reversed(path.read_text().splitlines()):
        try:
            line = json.loads(text)
            runs.append(Job(model_name=line["model"], settings=line["settings"],
                            timings=line["timings"]))  # fmt: skip
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short (the disk full, the process killed): the others count
    return [j for j in runs if j.timings.get("engine_s") and megapixel_steps(j.settings)]


def _server_jobs(data: DataDir) -> list[Job]:
    """The finished jobs of the server whose database is this data folder's (or
    $SFUMATO_DATABASE_URL's); none when there is none, or it cannot be read."""
    url = database_url(data.root)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []  # never made: an estimate does not create one
    db = Database(url)
    try:
        return finished_jobs(db)
    except SQLAlchemyError:
        return []  # unreachable, or of an older sfumato: nothing to learn from there
    finally:
        db.close()


@dataclass
class CliEstimate:
    estimate: Estimate
    source: str  # where it was learned, in words

    @property
    def said(self) -> str:
        if self.estimate.seconds is None:
            return (
                "Time: not known yet. The CLI learns this machine's speed from its own runs "
                "(each picture it makes is timed) or from the jobs a server using this data "
                "folder has finished: there are none yet."
            )
        return f"Time: {self.estimate.said}, {self.source}."


def estimate_run(data: DataDir, model_name: str, settings: dict) -> CliEstimate:
    runs = past_runs(data)
    source = "learned from {} of this CLI's runs here ({}), the model's load included"
    if not runs:
        runs = _server_jobs(data)
        source = (
            f"learned from {{}} job(s) the server in {data.root} finished ({{}}; the CLI may "
            "run on another device or backend), the model's load included"
        )
    found = estimate_from(runs, model_name, settings, warm=False)
    return CliEstimate(found, source.format(found.based_on, found.basis))
