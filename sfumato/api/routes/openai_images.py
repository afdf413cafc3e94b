"""OpenAI's Images API at ``/openai/v1``: a program built on the ``openai`` SDK (Open WebUI's
and LibreChat's OpenAI engines, scripts) works with sfumato by changing its base URL and key.

A thin translation (``api/openai/translate.py``): OpenAI's fields become the one request
model, the job is queued like any other (it lands in the history, source ``openai``) and
waited for, and the answer is OpenAI's: the pictures in base64, or URLs to sfumato's own
picture route that the same key fetches. Errors are OpenAI's shape (``api/openai/errors.py``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from sfumato.api import errors
from sfumato.api.bodies import request_fields
from sfumato.api.deps import MakeUser, ReadUser, StudioDep, client_address
from sfumato.api.openai.errors import PREFIX, RESPONSES, OpenAIInvalid, openai_error
from sfumato.api.openai.translate import (
    VARIATION_STRENGTH,
    OpenAIFields,
    OpenAIImageRequest,
    first_picture,
    generation_input,
    model_name,
    picture_size,
    read_fields,
    repaint_mask,
    variation_prompt,
)
from sfumato.api.openapi import hand_parsed_body
from sfumato.api.requests import queue_generation
from sfumato.catalog.scan import CHECKPOINT
from sfumato.errors import STATUS, NotFound
from sfumato.jobs.queue import SUCCEEDED
from sfumato.jobs.submit import checkpoint_path
from sfumato.jobs.wait import finished
from sfumato.store.tables import Image, Job, User
from sfumato.studio import Studio

router = APIRouter(prefix="/openai/v1", tags=["openai"], responses=RESPONSES)
errors.ERROR_SHAPES[PREFIX] = openai_error


class OpenAIImage(BaseModel):
    b64_json: str | None = Field(None, description="The picture file in base64.")
    url: str | None = Field(
        None, description="The picture file, fetched with the same key (never public)."
    )
    revised_prompt: str = Field(description="The prompt as it ran (sfumato does not rewrite).")


class OpenAIImagesResponse(BaseModel):
    created: int = Field(description="When the job was queued, in Unix seconds.")
    data: list[OpenAIImage]
    output_format: Literal["png", "jpeg", "webp"]
    size: str = Field(description="The size made, WIDTHxHEIGHT (the model's scale).")
    quality: str = Field(description="As asked (auto when not): it does not change the steps.")
    background: Literal["opaque"] = "opaque"


class OpenAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class OpenAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OpenAIModel]


KINDS = ("generations", "edits", "variations")


async def _pictures(kind: str, options: OpenAIFields, fields: dict, files: dict):
    """The prompt, the starting picture, its mask (sfumato's convention) and the settings a
    kind of request adds (a variation's strength)."""
    if kind == "generations":
        return options.prompt, None, None, {}
    picture = first_picture(files, fields, "image")
    if picture is None:
        raise OpenAIInvalid(f"images/{kind} needs image: the picture, sent as a file.", "image")
    if kind == "variations":
        prompt, kept = await run_in_threadpool(variation_prompt, picture)
        return options.prompt or prompt, picture, None, {"strength": VARIATION_STRENGTH} | kept
    sent = first_picture(files, fields, "mask")
    # without a mask, the picture's own transparent pixels are the mask (as DALL-E 2 has it);
    # a picture without any is edited whole (image-to-image)
    mask = await run_in_threadpool(repaint_mask, sent or picture, "mask" if sent else "image")
    if sent and mask is None:
        raise OpenAIInvalid(
            "The mask has no transparent pixels, so nothing would be repainted: make the parts "
            "to repaint fully transparent (alpha 0) in a PNG with an alpha channel.",
            "mask",
        )
    return options.prompt, picture, mask, {}


def _queue(studio: Studio, user: User, prompt, options, extras, picture, mask) -> Job:
    model = model_name(studio, options.model)
    # the size is the model's scale, so the model is looked up before the request is made
    native = studio.source_of(checkpoint_path(studio, user, model)).effective_defaults
    size = picture_size(options.size, (native.width, native.height))
    body = generation_input(prompt, options, extras, model, size)
    return queue_generation(
        studio, user, body, "openai", model=model, init_image=picture, mask_image=mask
    )


def _answer(request: Request, studio: Studio, job: Job, images: list[Image], options) -> dict:
    data = []
    for image in images:
        item = {"revised_prompt": image.prompt}
        if options.response_format == "url":
            # sfumato's own picture route: its owner's key fetches it, nobody else
            item["url"] = str(request.url_for("image_file", image_id=image.id))
        else:
            try:
                content = studio.files.get(image.file_key)
            except FileNotFoundError:  # deleted from the history the moment it was made
                raise NotFound("The picture was deleted before it could be sent.") from None
            item["b64_json"] = base64.b64encode(content).decode()
        data.append(item)
    if not images:
        raise NotFound("The pictures were deleted before they could be sent.")
    created = job.created_at.replace(tzinfo=job.created_at.tzinfo or UTC)
    return {
        "created": int(created.timestamp()),
        "data": data,
        "output_format": {"jpg": "jpeg"}.get(job.format, job.format),
        "size": f"{images[0].width}x{images[0].height}",
        "quality": options.quality or "auto",
    }


def _route(kind: str):
    async def route(request: Request, response: Response, user: MakeUser, studio: StudioDep):
        studio.throttle.action("submit", user.id, client_address(request))
        fields, files = await request_fields(request, studio.config.max_upload_bytes)
        options, extras = read_fields(fields)
        prompt, picture, mask, added = await _pictures(kind, options, fields, files)
        if not prompt:
            raise OpenAIInvalid("prompt is required: a sentence that says what to draw.", "prompt")
        job = await run_in_threadpool(
            _queue, studio, user, prompt, options, added | extras, picture, mask
        )
        job, images = await finished(studio, job)
        if job.status != SUCCEEDED:
            code = job.error_code or "cancelled"
            message = job.error_message or "The generation was cancelled."
            return openai_error(STATUS.get(code, 400), code, message)
        response.headers["X-Job-Id"] = job.id
        return await run_in_threadpool(_answer, request, studio, job, images, options)

    route.__name__ = f"openai_images_{kind}"
    return route


_SUMMARIES = {
    "generations": "OpenAI-compatible: pictures from a prompt",
    "edits": "OpenAI-compatible: edit a picture (its mask's transparent pixels are repainted)",
    "variations": "OpenAI-compatible: variations of a picture",
}
_DOCS = {
    "generations": "JSON, as the `openai` SDK sends it; sfumato's own settings may be added "
    "(negative_prompt, seed, steps, guidance, sampler, ...).",
    "edits": "Multipart: `image` (or `image[]`: the first is used), an optional `mask` (a PNG "
    "whose fully transparent pixels mark what to repaint; without one, the picture's own "
    "transparent pixels, else the whole picture is redrawn), `prompt`, `n`, `size`.",
    "variations": "Multipart: `image`, `n`, `size`. Image-to-image at strength "
    f"{VARIATION_STRENGTH}, with the picture's own prompt when it carries one (sfumato's or "
    "A1111's metadata), else a generic one; `prompt` and `strength` may be sent.",
}
for _kind in KINDS:
    router.add_api_route(
        f"/images/{_kind}",
        _route(_kind),
        methods=["POST"],
        response_model=OpenAIImagesResponse,
        response_model_exclude_none=True,
        openapi_extra=hand_parsed_body(
            OpenAIImageRequest, files=() if _kind == "generations" else ("image", "mask")
        ),
        summary=_SUMMARIES[_kind],
        description=_DOCS[_kind],
    )


@router.get("/models", response_model=OpenAIModelList, summary="OpenAI-compatible: the models")
def list_models(user: ReadUser, studio: StudioDep):
    """sfumato's models, by the names a request's `model` takes."""
    entries = [e for e in studio.catalog().listing(CHECKPOINT) if not e.broken]
    return {
        "data": [
            {"id": e.name, "created": _created(e.path), "owned_by": "sfumato"} for e in entries
        ]
    }


def _created(path: Path) -> int:
    try:
        return int(path.stat().st_mtime)  # when the file was put there
    except OSError:
        return int(datetime.now(UTC).timestamp())
