"""An upscale as a job: a picture from the user's history (or an upload) enlarged by a
factor, queued, run and stored like a generation (the same queue, quotas, events and
workers), its result a new history entry linked to the picture it came from.

The new picture keeps its source's metadata (A1111's ``parameters`` and ours) with the
upscale added as A1111's extras tab writes it, "Postprocess upscale by: 4, Postprocess
upscaler: 4x-UltraSharp", so the picture still says how it was made.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image as PILImage

from sfumato import __version__
from sfumato.catalog.upscalers import find_upscaler
from sfumato.engine.device import pick_device
from sfumato.errors import InvalidRequest, NotFound
from sfumato.jobs.execute import record, store_picture
from sfumato.jobs.submit import FORMATS
from sfumato.metadata.files import FORMATS as FILE_FORMATS
from sfumato.metadata.files import JSON_KEY, encode_image
from sfumato.metadata.read import read_texts
from sfumato.store.tables import Image, Job, Upload, User, owned
from sfumato.upscale import models
from sfumato.upscale.run import steps, target_size, upscale

if TYPE_CHECKING:
    import threading

    from sfumato.engine.generate import StepCallback
    from sfumato.studio import Studio

# an upscale by a model counts, for the quotas, as one step at the output size: an
# ESRGAN-sized 4x network does about 2.3 TFLOP a megapixel out, a third of an SD 1.5 step
# with guidance (6 TFLOP a megapixel), larger networks more
MODEL_STEPS = 1.0


@dataclass
class Source:
    """The picture an upscale starts from."""

    width: int
    height: int
    image_id: str | None = None  # a history picture's
    upload_id: str | None = None
    format: str = "png"


def find_source(session, user: User, image_id: str | None, upload_id: str | None) -> Source:
    """The user's picture (another user's is "not found", as a missing one is)."""
    if bool(image_id) == bool(upload_id):
        raise InvalidRequest(
            "Name the picture to upscale: image_id (from your history) or an "
            "upload (upload_id, or image in base64)."
        )
    if image_id:
        image = owned(session, Image, user.id, image_id, "picture")
        return Source(image.width, image.height, image_id=image.id, format=image.format)
    upload = owned(session, Upload, user.id, upload_id, "upload")
    return Source(upload.width, upload.height, upload_id=upload.id)


def plan_upscale(
    studio: Studio,
    user: User,
    factor: float,
    upscaler: str | None = None,
    image_id: str | None = None,
    upload_id: str | None = None,
    fmt: str | None = None,
    source: str = "api",
    sent: bytes | None = None,
) -> Job:
    """The upscale's job, checked (the picture, the factor, the upscaler), not queued.
    ``sent``: the file of a picture sent with the request, whose metadata the upload (kept
    as plain pixels) no longer has; it is carried with the job."""
    with studio.db.session() as session:
        picture = find_source(session, user, image_id, upload_id)
    width, height = target_size((picture.width, picture.height), float(factor))
    chosen = find_upscaler(upscaler, studio.catalog())
    fmt = (fmt or picture.format).lower()
    fmt = {"jpeg": "jpg"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise InvalidRequest(f"format is one of {', '.join(FORMATS)}; got {fmt!r}.")
    work = width * height / 1e6 * MODEL_STEPS if chosen.path else 0.0
    return Job(
        user_id=user.id,
        source=source,
        model_name=chosen.name,
        model_path=str(chosen.path or ""),
        settings={
            "width": width,
            "height": height,
            "batch_size": 1,
            "megapixel_steps": round(work, 4),
            "scale": float(factor),
            "upscaler": chosen.name,
        },
        upscale={
            "image_id": picture.image_id,
            "upload_id": picture.upload_id,
            "scale": float(factor),
            "upscaler": chosen.name,
            "texts": kept_texts(sent) if sent else None,
        },
        format=fmt,
        total=steps((picture.width, picture.height), float(factor), chosen),
        warnings=[],
    )


@dataclass
class TileStep:
    """An upscale's progress, shaped as a generation's step for the job runner."""

    done: int
    total: int
    picture: PILImage.Image

    def preview(self, index: int = 0) -> PILImage.Image:
        return self.picture


def execute_upscale(
    studio: Studio, job: Job, on_step: StepCallback, cancel: threading.Event
) -> list[Image]:
    """Run an upscale's job: the picture enlarged, stored with its metadata as a new history
    entry, and the job marked done, in one transaction."""
    started = time.perf_counter()
    asked = job.upscale
    with studio.db.session() as session:
        user = session.get_one(User, job.user_id)
        source = find_source(session, user, asked.get("image_id"), asked.get("upload_id"))
        key = (
            session.get_one(Image, source.image_id).file_key
            if source.image_id
            else session.get_one(Upload, source.upload_id).file_key
        )
    if not studio.files.exists(key):
        raise NotFound("The picture to upscale is gone from the library.")
    content = studio.files.get(key)
    picture = PILImage.open(io.BytesIO(content)).convert("RGB")
    chosen = find_upscaler(asked["upscaler"], studio.catalog())
    small = picture.copy()
    small.thumbnail((256, 256))

    def progress(done: int, total: int) -> None:
        on_step(TileStep(done, total, small))

    device = pick_device(studio.config.load.device)
    if chosen.path is not None:  # the network loaded (or found loaded) before the clock starts
        models.load(chosen.path, device)
    loaded = time.perf_counter()
    result = upscale(picture, asked["scale"], chosen, device, progress, cancel)
    rendered = time.perf_counter()
    texts = kept_texts(content) if source.image_id else asked.get("texts") or {}
    parameters, data = carried_metadata(texts, asked["scale"], chosen.name, source.image_id)
    encoded = encode_image(result, FILE_FORMATS["." + job.format], parameters, data)
    made_with = data.get("model") or {}
    row, written = store_picture(
        studio,
        job,
        0,
        result,
        dict(data.get("settings") or {}),
        encoded,
        made_with,
        model_name=made_with.get("name") or job.model_name,
    )
    row.source_image_id = source.image_id
    try:
        record(studio, job, [row], started, loaded, rendered)
    except BaseException:
        for key in written:  # no file without its row
            studio.files.delete(key)
        raise
    return [row]


def postprocess_line(factor: float, upscaler: str) -> str:
    """A1111's extras info: "Postprocess upscale by: 4, Postprocess upscaler: Lanczos"."""
    return f"Postprocess upscale by: {factor:g}, Postprocess upscaler: {upscaler}"


def kept_texts(content: bytes) -> dict[str, str]:
    """The metadata of a picture an upscale keeps: A1111's text and our JSON (none from a
    file that has none, or is no picture the reader can open)."""
    try:
        texts = read_texts(content, "The picture")
    except InvalidRequest:
        return {}
    return {k: v for k, v in texts.items() if k in ("parameters", JSON_KEY)}


def carried_metadata(
    texts: dict[str, str], factor: float, upscaler: str, image_id: str | None
) -> tuple[str, dict]:
    """The source picture's ``parameters`` and our JSON, the upscale added to both."""
    line = postprocess_line(factor, upscaler)
    parameters = texts.get("parameters", "").rstrip()
    parameters = f"{parameters}, {line}" if parameters else line
    try:
        data = json.loads(texts.get(JSON_KEY) or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    data.setdefault("generator", f"sfumato {__version__}")
    data["upscale"] = {"scale": factor, "upscaler": upscaler, "source_image": image_id}
    return parameters, data
