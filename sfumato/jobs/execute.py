"""Run one job from its row: the engine makes the pictures, then each is stored with its
thumbnail and recorded, and the job marked done, in one transaction."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image as PILImage

from sfumato.catalog.scan import find_checkpoint
from sfumato.catalog.upscalers import hires_upscaler
from sfumato.engine.generate import StepCallback
from sfumato.engine.images import prepare as prepare_images
from sfumato.engine.loras import LoraSpec
from sfumato.engine.request import GenerationSettings
from sfumato.errors import ModelNotFound
from sfumato.generation import GenerationJob
from sfumato.jobs.queue import succeed
from sfumato.metadata.files import FORMATS, encode_image
from sfumato.store.tables import Image, Job, new_id
from sfumato.uploads import upload_picture

if TYPE_CHECKING:
    import threading

    from sfumato.studio import Studio

THUMBNAIL_SIDE = 256


def plan(studio: Studio, job: Job) -> GenerationJob:
    """The engine's job for a row, checked again: files may have gone since it was queued."""
    source = studio.source_of(checkpoint_here(studio, job.model_path, job.model_name))
    settings = GenerationSettings.from_dict(job.settings)
    loras = [LoraSpec(Path(p), name, weight, digest) for p, name, weight, digest in job.loras]
    for lora in loras:
        if not lora.path.exists():
            raise ModelNotFound(f"The LoRA {lora.name} is no longer installed.")
    inputs = None
    if job.init_upload_id:
        with studio.db.session() as session:
            picture = upload_picture(
                session, studio.files, job.user_id, job.init_upload_id, "picture"
            )
            mask = None
            if job.mask_upload_id:
                mask = upload_picture(
                    session, studio.files, job.user_id, job.mask_upload_id, "mask"
                )
        inputs = prepare_images(picture, mask, settings.width, settings.height)
    upscaler = hires_upscaler(settings, studio.catalog)  # looked up on this machine
    return GenerationJob(studio.data, source, settings, studio.config.load, loras=loras,
                         inputs=inputs, upscaler=upscaler)  # fmt: skip


def checkpoint_here(studio: Studio, path: str, name: str) -> Path:
    """The job's model file on this machine: where it was found when queued, else (a worker
    on another machine, its own models folder) the model of that name here."""
    if Path(path).exists():
        return Path(path)
    try:
        return find_checkpoint(name, studio.models())
    except ModelNotFound:
        raise ModelNotFound(f"The model {name} is no longer installed.") from None


def execute(
    studio: Studio, job: Job, on_step: StepCallback, cancel: threading.Event
) -> list[Image]:
    started = time.perf_counter()
    generation = plan(studio, job)
    generation.model = studio.model_cache.get(generation.source, generation.load_options)
    loaded = time.perf_counter()
    pictures = generation.render(on_step, cancel)
    rendered = time.perf_counter()
    rows, written = [], []
    try:
        for index, picture in enumerate(pictures):
            settings, parameters, data = generation.metadata(index)
            row, keys = store_picture(studio, job, index, picture, settings.to_dict(),
                                      encode_image(picture, FORMATS["." + job.format],
                                                   parameters, data), data["model"])  # fmt: skip
            rows.append(row)
            written += keys
        record(studio, job, rows, started, loaded, rendered)
    except BaseException:
        for key in written:  # no file without its row
            studio.files.delete(key)
        raise
    return rows


def record(
    studio: Studio, job: Job, rows: list[Image], started: float, loaded: float, rendered: float
) -> None:
    """The pictures' rows added and this run of ``job`` marked succeeded with its timings
    (perf_counter marks: started, model loaded, pictures made), in one transaction."""
    with studio.db.session() as session:
        session.add_all(rows)
        row = succeed(session, job)
        row.timings = (row.timings or {}) | {  # beside the job's time limit, if any
            "load_s": round(loaded - started, 4),
            "engine_s": round(rendered - loaded, 4),
            "save_s": round(time.perf_counter() - rendered, 4),
        }


def store_picture(
    studio: Studio,
    job: Job,
    index: int,
    picture: PILImage.Image,
    settings: dict,
    encoded: bytes,
    model: dict,
    fmt: str | None = None,
    image_id: str | None = None,
    model_name: str | None = None,
) -> tuple[Image, list[str]]:
    """Picture ``index`` of ``job`` written with its thumbnail, and its row (not yet added to
    a session); the storage keys written, for the caller to remove if the row never lands."""
    fmt = fmt or job.format
    image_id = image_id or new_id()
    file_key = f"images/{job.user_id}/{image_id}.{fmt}"
    thumb_key = f"thumbs/{job.user_id}/{image_id}.webp"
    thumb = thumbnail(picture)
    studio.files.put(file_key, encoded)
    try:
        studio.files.put(thumb_key, thumb)
    except BaseException:
        studio.files.delete(file_key)
        raise
    row = Image(
        id=image_id,
        user_id=job.user_id,
        job_id=job.id,
        batch_index=index,
        model_name=model_name or job.model_name,
        prompt=settings.get("prompt", ""),
        width=picture.width,
        height=picture.height,
        format=fmt,
        favourite=False,
        file_key=file_key,
        thumb_key=thumb_key,
        settings=settings,
        model=model,
        bytes=len(encoded) + len(thumb),  # counted against the storage quota
    )
    return row, [file_key, thumb_key]


def thumbnail(picture: PILImage.Image) -> bytes:
    small = picture.copy()
    small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.convert("RGB").save(buffer, format="WEBP", quality=80)
    return buffer.getvalue()
