"""AUTOMATIC1111-compatible routes (``/sdapi/v1``): Open WebUI, SillyTavern, ``webuiapi`` and
other A1111 clients work by changing the base URL and signing in (an API key, or HTTP Basic
with a user name and a key or the password).

Pictures are queued like any other job (source ``a1111``: they land in the history), waited
for, and answered as A1111 answers. ``/options`` and ``/progress``, ``/interrupt`` and
``/skip`` are the caller's own: A1111's model setting is the user's default model, never the
server's, and nobody interrupts anyone else's picture.

Errors keep sfumato's body and add A1111's ``detail`` (the same sentence), which is what A1111's
clients print; the status codes are sfumato's (422 where A1111 says 422: an unknown sampler,
hires fix, a field of the wrong type). The shape is registered for the /sdapi/ paths in
``api/errors.ERROR_SHAPES``, so errors made before a route runs have it too.
"""

from __future__ import annotations

import base64
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from sfumato.api import errors
from sfumato.api.a1111 import answers
from sfumato.api.a1111.fields import (
    SCHEDULERS,
    Img2ImgRequest,
    Txt2ImgRequest,
)
from sfumato.api.a1111.generate import SOURCE, generate, interrupts, set_default
from sfumato.api.a1111.schemas import (
    Embeddings,
    ExtraSingleImageAnswer,
    ExtraSingleImageRequest,
    GenerationAnswer,
    LoraItem,
    ModelItem,
    NamedItem,
    Options,
    PngInfo,
    PngInfoRequest,
    Progress,
    SamplerItem,
    SchedulerItem,
    Scripts,
    UpscalerItem,
    VaeItem,
)
from sfumato.api.deps import MakeUser, ReadUser, SessionDep, StudioDep, client_address
from sfumato.api.routes.generations import cancel_jobs
from sfumato.api.routes.upscales import UpscaleInput, upscaled
from sfumato.catalog.scan import LORA
from sfumato.catalog.upscalers import listing
from sfumato.engine.hires import LATENT, PIXELS
from sfumato.engine.samplers import SAMPLERS
from sfumato.errors import (
    InvalidRequest,
    ModelNotFound,
    NoGenerationData,
    TooLarge,
)
from sfumato.jobs.queue import ACTIVE, RUNNING
from sfumato.jobs.upscales import postprocess_line
from sfumato.metadata.read import parse_a1111, read_info_bytes, read_texts
from sfumato.store.tables import Job, User
from sfumato.uploads import decode_base64


def _error(status: int, code: str, message: str, headers=None, param=None) -> JSONResponse:
    """sfumato's error body, with A1111's ``detail`` (the same sentence) beside it."""
    body = {"error": {"code": code, "message": message}, "detail": message}
    return JSONResponse(body, status_code=status, headers=headers)


# every answer under /sdapi/, also those made before a route runs (sign-in, a body that is
# not JSON, a path that does not exist)
errors.ERROR_SHAPES["/sdapi/"] = _error
router = APIRouter(prefix="/sdapi/v1", tags=["a1111"])


# --- generating -----------------------------------------------------------------------------


@router.post("/txt2img", response_model=GenerationAnswer, summary="A1111: text to image")
async def txt2img(body: Txt2ImgRequest, request: Request, user: MakeUser, studio: StudioDep):
    """Waits for the pictures (queued like any other job, kept in your history)."""
    return await generate(request, user, studio, body)


@router.post("/img2img", response_model=GenerationAnswer, summary="A1111: image to image")
async def img2img(body: Img2ImgRequest, request: Request, user: MakeUser, studio: StudioDep):
    """One picture in `init_images`; with a `mask` (white, or opaque, = repaint), inpainting."""
    return await generate(request, user, studio, body)


# --- the caller's jobs ----------------------------------------------------------------------


def _active(session, user: User) -> list[Job]:
    query = select(Job).where(Job.user_id == user.id, Job.source == SOURCE, Job.status.in_(ACTIVE))
    return list(session.scalars(query.order_by(Job.created_at, Job.id)))


@router.get("/progress", response_model=Progress, summary="A1111: your picture's progress")
def progress(
    user: ReadUser,
    studio: StudioDep,
    session: SessionDep,
    skip_current_image: Annotated[bool, Query()] = False,
):
    """Of your own /sdapi jobs only: `job_count` of them queued or running."""
    jobs = _active(session, user)
    running = next((j for j in jobs if j.status == RUNNING), None)
    state = {"job_count": len(jobs)}
    answer: dict[str, Any] = {"progress": 0.0, "eta_relative": 0.0, "current_image": None}
    if running is not None:
        live = studio.dispatch.live(running.id)
        step, total = (live.step, live.total) if live else (running.step, running.total)
        total = total or running.total
        state |= {
            "job": running.id,
            "job_timestamp": (running.started_at or running.created_at).strftime("%Y%m%d%H%M%S"),
            "sampling_step": step,
            "sampling_steps": total,
        }
        answer["progress"] = min(1.0, step / total) if total else 0.0
        answer["eta_relative"] = (live.eta_s if live else None) or 0.0
        if live and live.preview and not skip_current_image:
            answer["current_image"] = live.preview.partition(",")[2]  # base64, as A1111's
    return answer | {"state": state}


@router.post("/interrupt", summary="A1111: stop your /sdapi pictures")
def interrupt(request: Request, user: MakeUser, studio: StudioDep, session: SessionDep) -> dict:
    """Cancels your own queued and running /sdapi jobs (nobody else's); the waiting request
    answers with the pictures made before."""
    interrupts(request)[user.id] = time.monotonic()
    cancel_jobs(studio, session, _active(session, user))
    return {}


@router.post("/skip", summary="A1111: skip your running /sdapi picture")
def skip(user: MakeUser, studio: StudioDep, session: SessionDep) -> dict:
    """Cancels your running /sdapi job; a request of several jobs goes on with the next."""
    cancel_jobs(studio, session, [j for j in _active(session, user) if j.status == RUNNING])
    return {}


# --- models and settings --------------------------------------------------------------------


@router.get("/sd-models", response_model=list[ModelItem], summary="A1111: the models")
def sd_models(user: ReadUser, studio: StudioDep):
    return [answers.model_item(studio, e) for e in answers.models(studio)]


@router.get("/options", response_model=Options, summary="A1111: your settings")
def get_options(user: ReadUser, studio: StudioDep):
    """`sd_model_checkpoint` is your default model (a title from /sd-models)."""
    try:
        entry = answers.current_model(studio, user)
    except ModelNotFound:
        return {"sd_model_checkpoint": None}
    item = answers.model_item(studio, entry)
    clip_skip = entry.source.effective_defaults.clip_skip if entry.source else 1
    return {
        "sd_model_checkpoint": item["title"],
        "sd_checkpoint_hash": item["sha256"],
        "CLIP_stop_at_last_layers": clip_skip,
    }


@router.post("/options", summary="A1111: set your default model")
def set_options(
    options: Annotated[dict[str, Any], Body()], user: MakeUser, studio: StudioDep
) -> None:
    """Only `sd_model_checkpoint` (a title or a name) is used: it becomes your own default
    model, never the server's. Every other option is accepted and ignored."""
    wanted = options.get("sd_model_checkpoint")
    if isinstance(wanted, str) and wanted:
        set_default(studio, user, answers.find_model(studio, wanted).display)


@router.get("/samplers", response_model=list[SamplerItem], summary="A1111: the samplers")
def samplers(user: ReadUser):
    """Exactly those sampler_name takes (with `scheduler`: see /schedulers)."""
    return [
        {
            "name": s.name,
            "aliases": [s.id, *s.aliases],
            "options": {"scheduler": s.schedule.lower()} if s.schedule else {},
        }
        for s in SAMPLERS
    ]


@router.get("/schedulers", response_model=list[SchedulerItem], summary="A1111: the schedulers")
def schedulers(user: ReadUser):
    """automatic: the sampler's own; karras: its Karras variant; the evenly spaced ones
    (uniform, normal, simple, sgm_uniform): its plain variant."""
    return [
        {"name": name, "label": label, "default_rho": 7.0 if name == "karras" else -1}
        for name, label in SCHEDULERS.items()
    ]


@router.get("/upscalers", response_model=list[UpscalerItem], summary="A1111: upscalers")
def upscalers(user: ReadUser, studio: StudioDep):
    """The hires fix's upscalers in pixels (hr_upscaler), in A1111's order, then the upscaler
    models (for the extras' upscaler_1 and the hires fix), with their scale."""
    models = [x for x in listing(studio.catalog()) if x.kind == "model" and not x.broken]
    return [{"name": name} for name in PIXELS] + [
        {"name": x.name, "model_name": x.architecture, "scale": x.scale} for x in models
    ]


@router.get(
    "/latent-upscale-modes",
    response_model=list[NamedItem],
    summary="A1111: latent upscale modes",
)
def latent_upscale_modes(user: ReadUser):
    """The hires fix's upscalers in latent space (hr_upscaler; the default: Latent)."""
    return [{"name": name} for name in LATENT]


@router.get("/sd-vae", response_model=list[VaeItem], summary="A1111: VAEs (each model's own)")
def sd_vae(user: ReadUser):
    return []  # every model runs its own VAE


@router.get("/loras", response_model=list[LoraItem], summary="A1111: the LoRAs")
def loras(user: ReadUser, studio: StudioDep):
    """Use one as `<lora:name:weight>` in the prompt."""
    return [
        {
            "name": e.name,
            "alias": (e.lora.output_name if e.lora else None) or e.name,
            "path": e.path.name,
            "metadata": {k: str(v) for k, v in (e.lora.metadata if e.lora else {}).items()},
        }
        for e in studio.catalog().listing(LORA, all_versions=True)
        if not e.broken
    ]


@router.get("/embeddings", response_model=Embeddings, summary="A1111: embeddings (none)")
def embeddings(user: ReadUser):
    return {}


@router.get("/scripts", response_model=Scripts, summary="A1111: scripts (none)")
def scripts(user: ReadUser):
    return {}


@router.post("/extra-single-image", response_model=ExtraSingleImageAnswer, summary="A1111: upscale")
async def extra_single_image(
    body: ExtraSingleImageRequest, request: Request, user: MakeUser, studio: StudioDep
):
    """The extras tab's upscale: by `upscaling_resize` with `upscaler_1` (queued like any job;
    the picture lands in your history). Face restoration and a second upscaler are not here."""
    studio.throttle.action("submit", user.id, client_address(request))
    if body.resize_mode != 0:
        raise InvalidRequest(
            "resize_mode 1 (to a size) is not supported here: use resize_mode 0 with "
            "upscaling_resize, the factor."
        )
    if body.gfpgan_visibility or body.codeformer_visibility:
        raise InvalidRequest(
            "Face restoration (GFPGAN, CodeFormer) is not available on this server: send "
            "gfpgan_visibility and codeformer_visibility 0."
        )
    if body.extras_upscaler_2_visibility and body.upscaler_2 not in ("None", ""):
        raise InvalidRequest(
            "A second upscaler blended in is not supported here: send "
            "extras_upscaler_2_visibility 0."
        )
    content = decode_base64(body.image, "image")
    asked = UpscaleInput(scale=body.upscaling_resize, upscaler=body.upscaler_1, format="png")
    job, _, picture = await upscaled(studio, user, asked, SOURCE, content)
    info = postprocess_line(body.upscaling_resize, job.upscale["upscaler"])
    return {"html_info": f"<p>{info}</p>", "image": base64.b64encode(picture).decode()}


@router.post("/png-info", response_model=PngInfo, summary="A1111: how a picture was made")
async def png_info(body: PngInfoRequest, request: Request, user: MakeUser, studio: StudioDep):
    """The picture's infotext (A1111's, or one made from sfumato's, ComfyUI's, InvokeAI's or
    Fooocus's metadata), its other text, and its settings."""
    studio.throttle.action("image_info", user.id, client_address(request))
    content = decode_base64(body.image, "image")
    if len(content) > studio.config.max_upload_bytes:
        raise TooLarge(f"The image is larger than {studio.config.max_upload_bytes / 1e6:.0f} MB.")

    def read() -> dict:
        texts = read_texts(content, "The image")
        own = texts.get("parameters")
        # A1111's own text, read as A1111 reads it (its sampler names); else what the
        # metadata reader makes of sfumato's, ComfyUI's, InvokeAI's or Fooocus's data
        found = parse_a1111(own) if own else None
        if found is None:
            try:
                found = read_info_bytes(content)
            except NoGenerationData:
                found = None
        text = own or (answers.infotext_of(found) if found else "")
        items = {k: v for k, v in texts.items() if k != "parameters"}
        settings = answers.parameters_of(found) if found else {}
        return {"info": text, "items": items, "parameters": settings}

    return await run_in_threadpool(read)
