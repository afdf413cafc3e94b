"""Dezgo-compatible routes: an existing Dezgo client works by changing its base URL and key.

They take JSON (pictures in base64), a urlencoded form, or multipart/form-data (pictures as
files); they queue the job like any other (it lands in the history), wait for it, and answer
with the picture's bytes and its seed in ``X-Input-Seed``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from sfumato.api.bodies import request_fields
from sfumato.api.deps import MakeUser, StudioDep, client_address
from sfumato.api.errors import error_response
from sfumato.api.openapi import hand_parsed_body
from sfumato.api.requests import GenerationInput, queue_generation
from sfumato.api.routes.catalog import TEXT_FUNCTION
from sfumato.api.routes.images import MEDIA_TYPES
from sfumato.api.routes.upscales import UpscaleInput, upscaled
from sfumato.catalog.scan import CHECKPOINT
from sfumato.engine.families import FAMILIES
from sfumato.errors import STATUS, InvalidRequest, ModelNotFound
from sfumato.jobs.queue import SUCCEEDED
from sfumato.jobs.submit import default_models
from sfumato.jobs.wait import finished
from sfumato.store.site import read_site
from sfumato.store.tables import Job, User
from sfumato.studio import Studio

router = APIRouter(tags=["dezgo"])


class DezgoInput(GenerationInput):
    # Dezgo clients send fields this server has no use for (upscale, refiner, ...)
    model_config = ConfigDict(extra="ignore")


def _input(fields: dict) -> DezgoInput:
    # forms send every field as text, and empty ones for "not set" (lora2="", seed="")
    cleaned = {k: v for k, v in fields.items() if v not in ("", None)}
    if "format" not in cleaned and "output_format" in cleaned:
        cleaned["format"] = cleaned["output_format"]
    try:
        return DezgoInput.model_validate(cleaned)
    except ValidationError as e:
        raise InvalidRequest(f"The request is not valid: {_problems(e)}.") from None


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in error.errors()[:5]
    )


def _model_for(studio: Studio, user: User, family: str | None, requested: str | None) -> str | None:
    """The model to run: the one asked for (of the route's family), else the user's or the
    server's default if it is of that family, else the first installed of that family."""
    if family is None:
        return requested
    catalog = studio.catalog()
    label = FAMILIES[family].label
    of_family = [e for e in catalog.listing(CHECKPOINT) if e.family == family and not e.broken]
    if requested:
        entry = catalog.resolve(requested, CHECKPOINT)
        if entry.family != family:
            names = ", ".join(e.display for e in of_family) or "none is installed"
            raise InvalidRequest(
                f"{entry.display} is not a {label} model; this route runs {label} models: {names}."
            )
        return requested
    with studio.db.session() as session:
        site = read_site(session)
    for default in default_models(user, site):
        try:
            if catalog.resolve(default, CHECKPOINT).family == family:
                return default
        except ModelNotFound:
            pass
    if not of_family:
        raise ModelNotFound(f"No {label} model is installed on this server.")
    return of_family[0].name


def _route(function: str, family: str | None, needs: tuple[str, ...]):
    async def generate(request: Request, user: MakeUser, studio: StudioDep) -> Response:
        studio.throttle.action("submit", user.id, client_address(request))
        fields, files = await request_fields(request, studio.config.max_upload_bytes)
        body = _input(fields)
        pictures = {name: files.get(name) or getattr(body, name) for name in needs}
        for name, value in pictures.items():
            if not value:
                raise InvalidRequest(f"/{function} needs {name} (a picture).")

        def queue() -> Job:
            model = _model_for(studio, user, family, body.model)
            return queue_generation(
                studio,
                user,
                body.model_copy(update={"batch_size": 1}),
                "dezgo",
                model=model,
                init_image=files.get("init_image"),
                mask_image=files.get("mask_image"),
            )

        job = await run_in_threadpool(queue)
        job, images = await finished(studio, job)
        if job.status != SUCCEEDED:
            code = job.error_code or "cancelled"
            message = job.error_message or "The generation was cancelled."
            return error_response(STATUS.get(code, 400), code, message)
        image = images[0]
        content = await run_in_threadpool(studio.files.get, image.file_key)
        return Response(
            content,
            media_type=MEDIA_TYPES[image.format],
            headers={"X-Input-Seed": str(image.settings["seed"]), "X-Job-Id": job.id},
        )

    generate.__name__ = function
    generate.__doc__ = (
        f"Dezgo-compatible {function}: JSON, a form or multipart; answers with the picture."
    )
    return generate


_BODY = hand_parsed_body(DezgoInput, files=("init_image", "mask_image"))

for _function, _family, _needs in (
    *((function, family, ()) for family, function in TEXT_FUNCTION.items()),
    ("image2image", None, ("init_image",)),
    ("inpainting", None, ("init_image", "mask_image")),
):
    router.add_api_route(
        f"/{_function}",
        _route(_function, _family, _needs),
        methods=["POST"],
        response_class=Response,
        openapi_extra=_BODY,
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
        summary=f"Dezgo-compatible {_function}",
    )


class DezgoUpscale(BaseModel):
    """Dezgo's upscale: the picture (base64 in JSON, or a file), and how much larger."""

    model_config = ConfigDict(extra="ignore")  # face_enhance, ...: nothing this server does

    image: str | None = Field(None, description="The picture, in base64 (JSON or a form).")
    upscale_factor: float = Field(4.0, description="2 or 4 (or any factor up to 8).")
    upscaler: str | None = Field(None, description="Left out: Lanczos; or a model's name.")
    format: str | None = Field(None, description="png, jpg or webp; left out: png.")


@router.post(
    "/upscale",
    response_class=Response,
    openapi_extra=hand_parsed_body(DezgoUpscale, files=("image",)),
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}}},
    summary="Dezgo-compatible upscale",
)
async def upscale(request: Request, user: MakeUser, studio: StudioDep) -> Response:
    """Dezgo-compatible upscale: JSON, a form or multipart; answers with the picture, which
    lands in the history too."""
    studio.throttle.action("submit", user.id, client_address(request))
    fields, files = await request_fields(request, studio.config.max_upload_bytes)
    cleaned = {k: v for k, v in fields.items() if v not in ("", None)}
    try:
        body = DezgoUpscale.model_validate(cleaned)
    except ValidationError as e:
        raise InvalidRequest(f"The request is not valid: {_problems(e)}.") from None
    picture = files.get("image")
    if not picture and not body.image:
        raise InvalidRequest("/upscale needs image (a picture).")
    asked = UpscaleInput(
        image=body.image, scale=body.upscale_factor, upscaler=body.upscaler, format=body.format
    )
    job, image, content = await upscaled(studio, user, asked, "dezgo", picture)
    return Response(content, media_type=MEDIA_TYPES[image.format], headers={"X-Job-Id": job.id})
