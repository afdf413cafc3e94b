"""How long a job will take on this server, said before it starts (issue 28, part 3).

On one's own machine, time is the price. The estimate comes from what this server measured
on its finished jobs (their ``timings``): per model, the engine's seconds fitted as a line in
the job's compute (megapixel-steps, both passes of a hires fix counted: ``quotas``) plus a
cost per picture (the VAE decode and the rest); the model's load time when it is not loaded;
the saving per picture. Where a model has no finished job yet, the rates of every model here
are used; before any job, there is nothing to say. The uncertainty is the spread of the
fit's errors on the jobs it came from. The jobs ahead in the queue add their own estimates
(``jobs/eta.py``: the running ones, what is left of them).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from sfumato.jobs.queue import SUCCEEDED
from sfumato.quotas import megapixel_steps
from sfumato.store.tables import Job

if TYPE_CHECKING:
    from sfumato.store.db import Database
    from sfumato.studio import Studio

RECENT = 200  # finished jobs read: the machine's speed drifts, old jobs say less
COLD_LOAD_S = 0.5  # a load_s above this was a real load, not a model found in memory


@dataclass
class Rates:
    """One model's measured rates (or every model's, pooled)."""

    per_work: float  # engine seconds per megapixel-step
    per_picture: float  # engine seconds per picture beyond its steps (decode, ...)
    save_s: float  # seconds per picture to store it
    load_s: float  # a cold load of the model
    spread: tuple[float, float]  # measured / fitted, low and high
    jobs: int


@dataclass
class Estimate:
    seconds: float | None  # this job alone: its model's load when cold, the engine, saving
    low: float | None
    high: float | None
    load_s: float | None  # included in seconds
    ahead_s: float | None  # the jobs queued or running before it
    jobs_ahead: int
    based_on: int  # the finished jobs the rates come from
    basis: str  # "this model", "every model on this server" or "nothing yet"

    @property
    def said(self) -> str:
        """ "about 24 s (18-30 s)"."""
        if self.seconds is None:
            return "not known yet: this server has finished no job to learn its speed from"
        low, high = _seconds(self.low).removesuffix(" s"), _seconds(self.high)
        text = f"about {_seconds(self.seconds)} ({low}-{high})"
        if self.jobs_ahead:
            wait = "not known" if self.ahead_s is None else f"about {_seconds(self.ahead_s)}"
            text += f", after {self.jobs_ahead} job(s) ahead: {wait}"
        return text

    def to_dict(self) -> dict:
        return asdict(self) | {"said": self.said}

    def recorded(self) -> dict | None:
        """What a job keeps of it (``Job.estimate``): this job alone, without the queue
        (the queue ahead changes while it waits); None when nothing was known."""
        if self.seconds is None:
            return None
        return {"seconds": self.seconds, "low": self.low, "high": self.high,
                "load_s": self.load_s, "basis": self.basis, "based_on": self.based_on}  # fmt: skip


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def finished_jobs(db: Database) -> list[Job]:
    """The last finished generations with their timings (grids, graphs and upscales are
    timed otherwise)."""
    with db.session() as session:
        jobs = session.scalars(
            select(Job)
            .where(
                Job.status == SUCCEEDED,
                Job.workflow.is_(None),
                Job.grid.is_(None),
                Job.upscale.is_(None),  # an upscale is no generation: it has no steps
            )
            .order_by(Job.finished_at.desc())
            .limit(RECENT)
        ).all()
        session.expunge_all()
    return [j for j in jobs if (j.timings or {}).get("engine_s") and megapixel_steps(j.settings)]


def _pictures(settings: dict) -> int:
    return int(settings.get("batch_size") or 1)


def fit(jobs: list[Job]) -> Rates | None:
    """The rates of ``jobs`` (finished, with timings): engine = a x work + b x pictures,
    least squares, neither below zero."""
    if not jobs:
        return None
    work = [megapixel_steps(j.settings) for j in jobs]
    pictures = [_pictures(j.settings) for j in jobs]
    engine = [j.timings["engine_s"] for j in jobs]
    a, b = _least_squares(work, pictures, engine)
    fitted = [a * w + b * p for w, p in zip(work, pictures, strict=True)]
    ratios = sorted(e / f for e, f in zip(engine, fitted, strict=True) if f > 0)
    low, high = (_quantile(ratios, 0.1), _quantile(ratios, 0.9)) if ratios else (1.0, 1.0)
    saves = [j.timings.get("save_s", 0) / _pictures(j.settings) for j in jobs]
    loads = [j.timings.get("load_s", 0) for j in jobs]
    cold = [x for x in loads if x > COLD_LOAD_S]
    return Rates(
        per_work=a,
        per_picture=b,
        save_s=statistics.median(saves),
        load_s=statistics.median(cold) if cold else 0.0,
        spread=(min(low, 1.0), max(high, 1.0)),
        jobs=len(jobs),
    )


def _least_squares(work: list[float], pictures: list[int], engine: list[float]):
    """(a, b) of engine = a x work + b x pictures; with one kind of job (or too few to tell
    the two apart), all of it per unit of work."""
    sww = sum(w * w for w in work)
    spp = sum(p * p for p in pictures)
    swp = sum(w * p for w, p in zip(work, pictures, strict=True))
    swe = sum(w * e for w, e in zip(work, engine, strict=True))
    spe = sum(p * e for p, e in zip(pictures, engine, strict=True))
    determinant = sww * spp - swp * swp
    if len(work) >= 3 and determinant > 1e-9 * sww * spp:
        a = (swe * spp - spe * swp) / determinant
        b = (spe * sww - swe * swp) / determinant
        if a > 0 and b >= 0:
            return a, b
    return swe / sww, 0.0  # through the origin: seconds per megapixel-step


def _quantile(values: list[float], q: float) -> float:
    index = q * (len(values) - 1)
    below = int(index)
    above = min(below + 1, len(values) - 1)
    return values[below] + (values[above] - values[below]) * (index - below)


def rates_for(jobs: list[Job], model_name: str) -> tuple[Rates | None, str]:
    """The rates of ``model_name`` from ``jobs`` (the finished ones), or of them all."""
    own = [j for j in jobs if j.model_name == model_name]
    if own:
        return fit(own), "this model"
    if jobs:
        return fit(jobs), "every model on this server"
    return None, "nothing yet"


def _engine(rates: Rates, settings: dict) -> float:
    return rates.per_work * megapixel_steps(settings) + rates.per_picture * _pictures(settings)


def estimate(studio: Studio, job: Job, finished: list[Job] | None = None) -> Estimate:
    """How long ``job`` (planned, not yet queued) will take here, alone (``jobs/eta.py`` adds
    the queue before it). ``finished``: the finished jobs, when the caller read them."""
    if finished is None:
        finished = finished_jobs(studio.db)
    warm = job.model_name in _warm(studio)
    return estimate_from(finished, job.model_name, job.settings, warm)


def estimate_from(finished: list[Job], model_name: str, settings: dict, warm: bool) -> Estimate:
    """How long a job of ``model_name`` with ``settings`` takes, learned from ``finished``;
    ``warm``: the model is loaded already."""
    rates, basis = rates_for(finished, model_name)
    if rates is None:
        return Estimate(None, None, None, None, None, 0, 0, basis)
    load = 0.0 if warm else rates.load_s
    engine = _engine(rates, settings)
    save = rates.save_s * _pictures(settings)
    low, high = rates.spread
    return Estimate(
        seconds=round(load + engine + save, 2),
        low=round(load + engine * low + save, 2),
        high=round(load + engine * high + save, 2),
        load_s=round(load, 2),
        ahead_s=0.0,
        jobs_ahead=0,
        based_on=rates.jobs,
        basis=basis,
    )


def _warm(studio: Studio) -> set[str]:
    """The models loaded now: in this process, or held by a live generation worker (a
    scaled-out server's API process loads none itself)."""
    held = set(studio.model_cache.loaded_names())
    for worker in studio.dispatch.workers():
        if worker["alive"]:
            held.update(worker["models"] or [])
    return held
