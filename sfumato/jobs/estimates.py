"""How long a job will take on this server, said before it starts (issue 28, part 3).

On one's own machine, time is the price. The estimate comes from what this server measured
on its finished jobs (their ``timings``): per model, the engine's seconds fitted as a line in
the job's compute (megapixel-steps, both passes of a hires fix counted: ``quotas``), its steps
(a step's cost whatever its size: on a small model or a GPU, a batch of four costs far less
than four pictures) and its pictures (the VAE decode and the rest), each term kept only where
the jobs tell it apart; the model's load time when it is not loaded;
the saving per picture. Where a model has no finished job yet, the rates of every model here
are used; before any job, there is nothing to say. The uncertainty is the spread of the
fit's errors on the jobs it came from. The jobs ahead in the queue add their own estimates
(``jobs/eta.py``: the running ones, what is left of them).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import select

from sfumato.engine.request import GenerationSettings
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
    per_step: float  # engine seconds per step whatever its size
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


def _steps(settings: dict) -> int:
    """The denoising steps a job runs, both passes of a hires fix counted (image-to-image:
    its strength's share)."""
    steps = int(settings.get("steps") or 0)
    strength = settings.get("strength")
    if strength is not None and settings.get("mode", "txt2img") != "txt2img":
        steps = min(steps, max(1, int(steps * float(strength))))
    if settings.get("hr_upscaler") and "megapixel_steps" not in settings:
        steps += GenerationSettings.from_dict(settings).hires_steps
    return steps


def _features(settings: dict) -> list[float]:
    """What a job's engine time is fitted on: its compute (megapixel-steps), its steps (what
    a step costs whatever its size: the sampler, the calls, a small model's whole step on a
    GPU) and its pictures (the decode, ...)."""
    return [megapixel_steps(settings), _steps(settings), _pictures(settings)]


def fit(jobs: list[Job]) -> Rates | None:
    """The rates of ``jobs`` (finished, with timings): engine = a x work + c x steps + b x
    pictures, least squares, none below zero."""
    if not jobs:
        return None
    rows = [_features(j.settings) for j in jobs]
    engine = [j.timings["engine_s"] for j in jobs]
    a, c, b = _least_squares(rows, engine)
    fitted = [a * w + c * s + b * p for w, s, p in rows]
    ratios = sorted(e / f for e, f in zip(engine, fitted, strict=True) if f > 0)
    low, high = (_quantile(ratios, 0.1), _quantile(ratios, 0.9)) if ratios else (1.0, 1.0)
    saves = [j.timings.get("save_s", 0) / _pictures(j.settings) for j in jobs]
    loads = [j.timings.get("load_s", 0) for j in jobs]
    cold = [x for x in loads if x > COLD_LOAD_S]
    return Rates(
        per_work=a,
        per_step=c,
        per_picture=b,
        save_s=statistics.median(saves),
        load_s=statistics.median(cold) if cold else 0.0,
        spread=(min(low, 1.0), max(high, 1.0)),
        jobs=len(jobs),
    )


# the terms tried beside the compute, the fullest first: (steps, pictures) are used only where
# the jobs tell them apart and none comes out below zero
_TERMS = ((0, 1, 2), (0, 1), (0, 2))


def _least_squares(rows: list[list[float]], engine: list[float]) -> tuple[float, float, float]:
    """(a, c, b) of engine = a x work + c x steps + b x pictures, the best fit of the terms
    that the jobs can tell apart (one more job than terms at least), none below zero; with too
    few jobs, all of it per unit of work."""
    best, best_error = None, math.inf
    for terms in _TERMS:
        if len(rows) <= len(terms):
            continue
        x = np.array([[row[t] for t in terms] for row in rows], dtype=float)
        y = np.array(engine, dtype=float)
        scale = x.max(axis=0)
        solution, _, rank, _ = np.linalg.lstsq(x / scale, y, rcond=None)
        if rank < len(terms):
            continue  # the jobs do not tell these apart (all of one size, or one batch)
        solution = solution / scale
        if solution[0] <= 0 or (solution < 0).any():
            continue
        error = float(((x @ solution - y) ** 2).sum())
        if error < best_error:
            coefficients = [0.0, 0.0, 0.0]
            for term, value in zip(terms, solution, strict=True):
                coefficients[term] = float(value)
            best, best_error = tuple(coefficients), error
    if best is not None:
        return best
    work = [row[0] for row in rows]
    through_origin = sum(w * e for w, e in zip(work, engine, strict=True)) / sum(
        w * w for w in work
    )
    return through_origin, 0.0, 0.0  # seconds per megapixel-step


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
    work, steps, pictures = _features(settings)
    return rates.per_work * work + rates.per_step * steps + rates.per_picture * pictures


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
