"""A1111's txt2img and img2img: the request checked and translated (``fields``), queued as
one job, or several when more pictures are asked than one batch holds, each waited for, and
answered as A1111 answers (``answers``)."""

from __future__ import annotations

import base64
import time

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from sfumato.api.a1111 import answers
from sfumato.api.a1111.fields import (
    Img2ImgRequest,
    Txt2ImgRequest,
    a1111_mask,
    a1111_names,
    batches,
    check_supported,
    to_input,
)
from sfumato.api.deps import client_address
from sfumato.api.requests import queue_generation
from sfumato.catalog.upscalers import model_names
from sfumato.engine.hires import built_in
from sfumato.engine.parameters import MAX_SEED
from sfumato.engine.request import GenerationSettings, random_seed
from sfumato.errors import JobFailed
from sfumato.jobs.queue import CANCELLED, FAILED
from sfumato.jobs.wait import finished
from sfumato.preferences import Preferences
from sfumato.store.tables import Image, User
from sfumato.studio import Studio
from sfumato.uploads import decode_base64

SOURCE = "a1111"  # the jobs' source: they land in the history as A1111's


def interrupts(request: Request) -> dict[int, float]:
    """user id -> when they last called /interrupt (a /skip lets a request go on)."""
    state = request.app.state
    if not hasattr(state, "a1111_interrupts"):
        state.a1111_interrupts = {}
    return state.a1111_interrupts


def set_default(studio: Studio, user: User, name: str) -> None:
    """The user's default model, as their preferences keep it (never the server's)."""
    with studio.db.session() as session:
        row = session.get_one(User, user.id)
        preferences = Preferences.model_validate(row.preferences or {})
        preferences.default_model = name
        row.preferences = preferences.model_dump(exclude_none=True)


def _model(studio: Studio, user: User, body: Txt2ImgRequest) -> str:
    wanted = (body.override_settings or {}).get("sd_model_checkpoint")
    if not wanted:
        return answers.current_model(studio, user).display
    entry = answers.find_model(studio, str(wanted))
    if not body.override_settings_restore_afterwards:  # A1111 keeps it, as POST /options does
        set_default(studio, user, entry.display)
    return entry.display


async def _pictures(body: Txt2ImgRequest) -> tuple[bytes | None, bytes | None]:
    if not isinstance(body, Img2ImgRequest):
        return None, None
    init = decode_base64(body.init_images[0], "init_images")
    if not body.mask:
        return init, None
    mask = decode_base64(body.mask, "mask")
    invert = bool(body.inpainting_mask_invert)
    return init, await run_in_threadpool(a1111_mask, mask, invert, body.mask_blur)


async def generate(request: Request, user: User, studio: Studio, body: Txt2ImgRequest) -> dict:
    """The pictures of ``body``, made and answered as A1111 answers. A request for more
    pictures than one batch holds runs as several jobs in turn, their seeds consecutive as
    A1111's are; /skip cancels one of them and the rest go on, /interrupt ends the request
    with the pictures made before it."""
    studio.throttle.action("submit", user.id, client_address(request))
    warnings = check_supported(body)
    started = time.monotonic()
    # drawn here, not by each job, so that the jobs' seeds follow on from each other
    seed = random_seed() if body.seed == -1 else body.seed
    plan = batches(body.batch_size * body.n_iter)
    upscalers: tuple[str, ...] = ()  # read when the hires fix names an upscaler model
    if body.enable_hr and body.hr_upscaler and not built_in(body.hr_upscaler):
        upscalers = await run_in_threadpool(lambda: model_names(studio.catalog()))
    to_input(body, plan[0], seed, upscalers)  # a mistake is answered before anything changes
    init, mask = await _pictures(body)
    model = await run_in_threadpool(_model, studio, user, body)
    made: list[Image] = []
    offset = 0
    for count in plan:
        first_seed = seed if seed < 0 else (seed + offset) % (MAX_SEED + 1)
        offset += count
        piece = to_input(body, count, first_seed, upscalers)
        job = await run_in_threadpool(
            queue_generation, studio, user, piece, SOURCE, model, init, mask
        )
        # the next jobs reuse the pictures this one uploaded, rather than uploading them again
        init, mask = job.init_upload_id or init, job.mask_upload_id or mask
        job, images = await finished(studio, job)
        warnings += [w for w in job.warnings or () if w not in warnings]
        if job.status == FAILED:
            code, message = job.error_code or "internal_error", job.error_message or "Failed."
            raise JobFailed(code, message)
        if job.status == CANCELLED:
            if interrupts(request).get(user.id, 0) >= started:
                warnings.append("Interrupted: the pictures made before it are answered.")
                break
            warnings.append(f"Skipped {count} picture(s).")
            continue
        made += images
    return await _answer(studio, body, made, warnings)


async def _answer(studio: Studio, body: Txt2ImgRequest, images: list[Image], warnings):
    contents = [await run_in_threadpool(studio.files.get, image.file_key) for image in images]
    texts = answers.infotexts(contents)
    parameters = body.model_dump()
    if images:
        settings = GenerationSettings.from_dict(images[0].settings)
        sampler, scheduler = a1111_names(settings.sampler)
        ran = {
            "negative_prompt": settings.negative_prompt,
            "steps": settings.steps,
            "cfg_scale": settings.guidance,
            "width": settings.width,
            "height": settings.height,
            "sampler_name": sampler,
            "scheduler": scheduler,
            "denoising_strength": answers.denoising_of(settings),
        }
        parameters |= {k: v for k, v in ran.items() if parameters.get(k) is None}
    if isinstance(body, Img2ImgRequest) and not body.include_init_images:
        parameters |= {"init_images": None, "mask": None}
    return {
        "images": [base64.b64encode(c).decode() for c in contents] if body.send_images else [],
        "parameters": parameters,
        "info": answers.info(body, images, texts, warnings),
    }
