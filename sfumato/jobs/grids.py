"""A comparison grid as one job (``sfumato.grid``): its cells planned and checked when it is
queued, run one after the other by the worker, each cell's picture kept in the history as
soon as it is made (a grid cancelled half-way keeps its finished cells), and at the end the
grid picture with its labels, all under the one job, so they are listed together."""

from __future__ import annotations

import io
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from sfumato.engine.generate import Step, StepCallback
from sfumato.engine.loras import LoraSpec
from sfumato.engine.request import GenerationRequest, GenerationSettings, random_seed
from sfumato.errors import InvalidRequest
from sfumato.generation import GenerationJob
from sfumato.grid import cells, compose, grid_axes
from sfumato.jobs.execute import checkpoint_here, store_picture
from sfumato.jobs.queue import SUCCEEDED, own, succeed
from sfumato.jobs.submit import admit, checkpoint_path
from sfumato.metadata.files import FORMATS, encode_image
from sfumato.preferences import Preferences, apply_preferences
from sfumato.quotas import megapixel_steps
from sfumato.store.site import read_site
from sfumato.store.tables import Image, Job, User

if TYPE_CHECKING:
    import threading

    from sfumato.studio import Studio

SOURCE = "grid"


def submit_grid(
    studio: Studio,
    user: User,
    request: GenerationRequest,
    axes: list[str | None],
    model: str | None = None,
    matrix: bool = False,
) -> Job:
    """Plan every cell now (a mistake in any is answered at once) and queue the grid."""
    return admit(studio, plan_grid(studio, user, request, axes, model, matrix))


def plan_grid(
    studio: Studio,
    user: User,
    request: GenerationRequest,
    axes: list[str | None],
    model: str | None = None,
    matrix: bool = False,
) -> Job:
    """The grid's job, every cell planned and checked, not queued. ``matrix``: A1111's prompt
    matrix (``a castle|at night|in fog``) makes x and y."""
    original = request.prompt
    base, parsed = grid_axes(axes, original, matrix)
    request = replace(request, prompt=base)
    if request.seed is None or request.seed == -1:  # one seed for every cell
        request = replace(request, seed=random_seed())
    with studio.db.session() as session:
        limit = read_site(session).max_grid_cells
    made = cells(request, model, parsed)
    if len(made) > limit:
        raise InvalidRequest(
            f"This grid has {len(made)} cells; this server makes at most {limit} per grid "
            "(its admin's setting max_grid_cells). Use fewer values."
        )
    preferences = Preferences.model_validate(user.preferences or {})
    models = studio.models()
    planned = []
    for cell in made:
        path = checkpoint_path(studio, user, cell.model)
        source = studio.source_of(path)
        wanted = apply_preferences(cell.request, preferences, source.family.id)
        job = GenerationJob.plan(wanted, source, studio.data, studio.config.load, models)
        if job.settings.batch_size != 1:
            raise InvalidRequest(
                "Each cell of a grid is one picture: leave batch_size out, and use random "
                "variations (not all)."
            )
        planned.append(
            {
                "position": list(cell.position),
                "model_name": source.name,
                "model_path": str(path),
                "settings": job.settings.to_dict(),
                "loras": [[str(x.path), x.name, x.weight, x.hash] for x in job.loras],
            }
        )
    first = planned[0]
    steps = sum(c["settings"]["steps"] for c in planned)
    summary = dict(first["settings"]) | {
        "prompt": request.prompt,
        "steps": steps,
        "batch_size": len(planned) + 1,  # the cells, and the grid
        "megapixel_steps": round(sum(megapixel_steps(c["settings"]) for c in planned), 3),
        "grid": list(axes) if not matrix else ["matrix", original],
    }
    job = Job(
        user_id=user.id,
        source=SOURCE,
        model_name=first["model_name"],
        model_path=first["model_path"],
        settings=summary,
        loras=first["loras"],
        format="png",
        total=steps,
        warnings=[],
        grid={"axes": list(axes), "matrix": original if matrix else None, "cells": planned},
    )
    return job


def estimate_seconds(studio: Studio, cost: float) -> float | None:
    """How long ``cost`` megapixel-steps take on this server, from its recent pictures (the
    median of their engine time per megapixel-step); None before it has made any."""
    with studio.db.session() as session:
        recent = session.scalars(
            select(Job)
            .where(Job.status == SUCCEEDED, Job.workflow.is_(None))
            .order_by(Job.finished_at.desc())
            .limit(50)
        )
        rates = [
            job.timings["engine_s"] / megapixel_steps(job.settings)
            for job in recent
            if (job.timings or {}).get("engine_s") and megapixel_steps(job.settings) > 0
        ]
    return round(statistics.median(rates) * cost, 1) if rates else None


def execute_grid(
    studio: Studio, job: Job, on_step: StepCallback, cancel: threading.Event
) -> list[Image]:
    """Each cell not made yet (a grid run again after a restart keeps what it had), then the
    grid picture; the job marked done with it."""
    started = time.perf_counter()
    cells_ = job.grid["cells"]
    grid = job.grid
    matrix = grid.get("matrix")
    axes = grid_axes(grid["axes"], matrix or "", bool(matrix))[1]
    with studio.db.session() as session:
        made = {row.batch_index: row for row in session.query(Image).filter_by(job_id=job.id)}
    pictures, rows, done = {}, [], 0
    for index, cell in enumerate(cells_):
        position = tuple(cell["position"])
        steps = cell["settings"]["steps"]
        if index in made:
            pictures[position] = _picture(studio, made[index])
            rows.append(made[index])
        else:
            row, picture = _make_cell(studio, job, index, cell, _offset(on_step, done, job.total),
                                      cancel)  # fmt: skip
            pictures[position] = picture
            rows.append(row)
        done += steps
    sheet = compose(pictures, axes)
    settings = dict(job.settings) | {"width": sheet.width, "height": sheet.height}
    data = {"settings": settings, "model": {"name": job.model_name, "grid": True}}
    encoded = encode_image(sheet, FORMATS[".png"], _grid_parameters(job), data)
    row, written = store_picture(studio, job, len(cells_), sheet, settings, encoded, data["model"])
    try:
        with studio.db.session() as session:
            session.add(row)
            stored = succeed(session, job)
            stored.timings = (stored.timings or {}) | {
                "engine_s": round(time.perf_counter() - started, 4)
            }
    except BaseException:
        for key in written:
            studio.files.delete(key)
        raise
    return [*rows, row]


def _make_cell(studio: Studio, job: Job, index: int, cell: dict, on_step, cancel):
    """One cell made and kept at once, with its row."""
    path = checkpoint_here(studio, cell["model_path"], cell["model_name"])
    loras = [LoraSpec(Path(p), name, weight, digest) for p, name, weight, digest in cell["loras"]]
    settings = GenerationSettings.from_dict(cell["settings"])
    generation = GenerationJob(studio.data, studio.source_of(path), settings, studio.config.load,
                               loras=loras)  # fmt: skip
    generation.model = studio.model_cache.get(generation.source, generation.load_options)
    picture = generation.render(on_step, cancel)[0]
    alone, parameters, data = generation.metadata(0)
    encoded = encode_image(picture, FORMATS[".png"], parameters, data)
    row, written = store_picture(studio, job, index, picture, alone.to_dict(), encoded,
                                 data["model"], model_name=cell["model_name"])  # fmt: skip
    try:
        with studio.db.session() as session:
            own(session, job)  # a run that lost the job keeps none of its cells
            session.add(row)
        return row, picture
    except BaseException:
        for key in written:
            studio.files.delete(key)
        raise


def _offset(on_step: StepCallback, before: int, total: int) -> StepCallback:
    def counted(step: Step) -> None:
        on_step(Step(min(before + step.done, total), total, step.latents, step.previewer))

    return counted


def _picture(studio: Studio, row: Image):
    from PIL import Image as PILImage

    return PILImage.open(io.BytesIO(studio.files.get(row.file_key))).convert("RGB")


def _grid_parameters(job: Job) -> str:
    axes = ", ".join(
        f"{name}: {text}" for name, text in zip("XYZ", job.grid["axes"], strict=False) if text
    )
    return f"{job.settings.get('prompt', '')}\nGrid: {axes}, Seed: {job.settings.get('seed')}"
