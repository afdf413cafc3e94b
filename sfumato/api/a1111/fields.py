"""A1111's request fields, and what they become in sfumato's request.

A field left out means the model's recommended value (A1111 would use its own fixed defaults:
512x512, 50 steps, "Euler"), so an SDXL model gets its 1024 px without the client knowing.
Fields sfumato has no use for are accepted; those that would have changed the picture are
named in the answer's ``info.warnings``.
"""

from __future__ import annotations

import io
import math

from PIL import Image, ImageChops, ImageFilter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sfumato.api.requests import GenerationInput
from sfumato.engine.hires import upscaler_name
from sfumato.engine.images import MAX_INPUT_PIXELS
from sfumato.engine.parameters import BY_NAME
from sfumato.engine.samplers import SAMPLERS, Sampler, get_sampler
from sfumato.errors import InvalidRequest, SfumatoError

MAX_BATCH = int(BY_NAME["batch_size"].maximum)  # pictures one job makes
MAX_PICTURES = 100  # batch_size x n_iter of one request (more run as several jobs)


class Unprocessable(InvalidRequest):
    """A request A1111 itself would refuse with 422 (an unknown sampler or scheduler)."""

    status = 422


# --- samplers and schedulers: the one place A1111's names meet sfumato's samplers -----------

# A1111 (1.9 on) names the noise schedule apart from the sampler. "automatic" is the
# sampler's own; these follow the model's evenly spaced timesteps, as sfumato's plain
# samplers do; "karras" is the Karras variant of a sampler that has one.
EVEN = {"uniform": "Uniform", "normal": "Normal", "simple": "Simple", "sgm_uniform": "SGM Uniform"}
SCHEDULERS = {"automatic": "Automatic", **EVEN, "karras": "Karras"}
KARRAS_SUFFIX = " Karras"


def _base(sampler: Sampler) -> Sampler:
    return get_sampler(sampler.name.removesuffix(KARRAS_SUFFIX)) if sampler.schedule else sampler


def _karras(sampler: Sampler) -> Sampler | None:
    wanted = _base(sampler).name + KARRAS_SUFFIX
    return next((s for s in SAMPLERS if s.name == wanted), None)


def scheduler_key(name: str) -> str:
    """A scheduler as A1111 accepts it: its name or its label, any case."""
    text = name.strip().lower().replace(" ", "_")
    if text not in SCHEDULERS:
        names = ", ".join(SCHEDULERS)
        raise Unprocessable(f"Unknown scheduler '{name}'. Choose one of: {names}.")
    return text


def sampler_for(name: str | None, scheduler: str | None) -> Sampler | None:
    """The sfumato sampler for A1111's sampler and scheduler; None: the model's own."""
    schedule = scheduler_key(scheduler) if scheduler else "automatic"
    if not name:
        if schedule != "automatic":
            raise Unprocessable(
                f"The scheduler {schedule} needs a sampler_name: the model's own sampler "
                "comes with its own schedule."
            )
        return None
    try:
        sampler = get_sampler(name)
    except SfumatoError:
        names = ", ".join(s.name for s in SAMPLERS)
        raise Unprocessable(
            f"Unknown sampler '{name}'. Choose one of: {names} (GET /sdapi/v1/samplers)."
        ) from None
    if schedule == "karras":
        karras = _karras(sampler)
        if karras is None:
            with_karras = ", ".join(_base(s).name for s in SAMPLERS if s.schedule)
            raise Unprocessable(
                f"{sampler.name} has no Karras schedule here; samplers with one: {with_karras}."
            )
        return karras
    return _base(sampler) if schedule in EVEN else sampler


def a1111_names(sampler_id: str) -> tuple[str, str]:
    """(sampler_name, scheduler) as A1111 1.9 writes them: "DPM++ 2M", "Karras"."""
    sampler = get_sampler(sampler_id)
    if sampler.schedule:
        return _base(sampler).name, sampler.schedule
    return sampler.name, "Automatic"


# --- the request ---------------------------------------------------------------------------


class Txt2ImgRequest(BaseModel):
    """A1111's txt2img fields (others are accepted and ignored)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = ""
    negative_prompt: str | None = Field(None, description="Left out: the model's own.")
    styles: list[str] | None = None
    seed: int = Field(-1, description="-1: random.")
    subseed: int = -1
    subseed_strength: float | None = 0
    seed_resize_from_h: int | None = -1
    seed_resize_from_w: int | None = -1
    sampler_name: str | None = Field(None, description="Left out: the model's own.")
    sampler_index: str | None = Field(None, description="The old name of sampler_name.")
    scheduler: str | None = Field(None, description="automatic, uniform, karras, ...")
    batch_size: int = 1
    n_iter: int = 1
    steps: int | None = None
    cfg_scale: float | None = None
    width: int | None = None
    height: int | None = None
    restore_faces: bool | None = None
    tiling: bool | None = None
    eta: float | None = None
    s_churn: float | None = None
    s_noise: float | None = None
    s_tmin: float | None = None
    s_tmax: float | None = None
    s_min_uncond: float | None = None
    denoising_strength: float | None = None
    override_settings: dict | None = None
    override_settings_restore_afterwards: bool = True
    refiner_checkpoint: str | None = None
    disable_extra_networks: bool = False
    enable_hr: bool = False
    # the hires fix (engine/hires.py), A1111's fields and defaults
    hr_scale: float = 2.0
    hr_upscaler: str | None = None
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_sampler_name: str | None = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""
    hr_checkpoint_name: str | None = None
    firstphase_width: int = 0
    firstphase_height: int = 0
    script_name: str | None = None
    script_args: list | None = None
    alwayson_scripts: dict | None = None
    send_images: bool = True
    save_images: bool = False


class Img2ImgRequest(Txt2ImgRequest):
    """A1111's img2img fields: txt2img's, and the picture, its mask and how to lay them."""

    init_images: list[str] = Field(min_length=1, max_length=1)
    mask: str | None = None
    mask_blur: int | None = None
    inpainting_fill: int | None = None
    inpaint_full_res: bool | None = None
    inpainting_mask_invert: int = 0
    resize_mode: int = 0
    initial_noise_multiplier: float | None = None
    include_init_images: bool = False


# values that change nothing: what A1111's own clients send by default
_NEUTRAL = {
    "subseed_strength": (None, 0),
    "seed_resize_from_h": (None, -1, 0),
    "seed_resize_from_w": (None, -1, 0),
    "restore_faces": (None, False),
    "tiling": (None, False),
    "eta": (None, 0, 1),
    "s_churn": (None, 0),
    "s_noise": (None, 1),
    "s_tmin": (None, 0),
    "s_tmax": (None, 0, math.inf),
    "s_min_uncond": (None, 0),
    "refiner_checkpoint": (None, "", "None"),
    "initial_noise_multiplier": (None, 1),
}
OVERRIDES = ("sd_model_checkpoint", "CLIP_stop_at_last_layers", "sd_vae")


def check_supported(body: Txt2ImgRequest) -> list[str]:
    """Refuse what cannot be done; the warnings for what was ignored but shows in pictures."""
    if body.script_name:
        raise Unprocessable(f"This server runs no scripts; '{body.script_name}' cannot run.")
    if body.batch_size < 1 or body.n_iter < 1:
        raise InvalidRequest("batch_size and n_iter are at least 1.")
    if body.batch_size * body.n_iter > MAX_PICTURES:
        raise InvalidRequest(
            f"At most {MAX_PICTURES} pictures a request (batch_size x n_iter); got "
            f"{body.batch_size * body.n_iter}."
        )
    sent = body.model_dump(exclude_unset=True)
    warnings = [
        f"{name} ({sent[name]}) is not supported and was ignored."
        for name, neutral in _NEUTRAL.items()
        if name in sent and sent[name] not in neutral
    ]
    if body.enable_hr and not isinstance(body, Img2ImgRequest):
        warnings += _hires_warnings(body)
    if body.styles:
        warnings.append("styles are not supported here and were ignored; put them in the prompt.")
    for name, script in (body.alwayson_scripts or {}).items():
        args = script.get("args") if isinstance(script, dict) else None
        if args and any(args):  # [] and [False] (a script turned off) change nothing
            warnings.append(f"The script {name} is not installed here and was ignored.")
    overrides = body.override_settings or {}
    if overrides.get("sd_vae") not in (None, "", "Automatic", "None"):
        warnings.append(f"sd_vae {overrides['sd_vae']!r} was ignored: the model's own VAE ran.")
    if ignored := sorted(k for k in overrides if k not in OVERRIDES):
        warnings.append(f"override_settings ignored: {', '.join(ignored)}.")
    if isinstance(body, Img2ImgRequest) and body.mask:
        if body.inpainting_fill not in (None, 1):
            warnings.append(
                f"inpainting_fill {body.inpainting_fill} is not supported: the masked part "
                "started from the original picture (1, original)."
            )
        if body.inpaint_full_res:
            warnings.append(
                "inpaint_full_res is not supported: the whole picture was inpainted at its size."
            )
    if isinstance(body, Img2ImgRequest) and body.resize_mode not in (0,):
        warnings.append(
            f"resize_mode {body.resize_mode} is not supported: the picture was resized to fit."
        )
    return warnings


def _hires_warnings(body: Txt2ImgRequest) -> list[str]:
    """What of A1111's hires fix was not done: the second pass runs the first's sampler,
    prompts and model."""
    warnings = []
    if body.hr_sampler_name not in (None, "", body.sampler_name, body.sampler_index):
        warnings.append(f"hr_sampler_name ({body.hr_sampler_name}) was ignored: the second "
                        "pass ran the first pass's sampler.")  # fmt: skip
    for name in ("hr_prompt", "hr_negative_prompt"):
        if getattr(body, name) not in ("", getattr(body, name.removeprefix("hr_"))):
            warnings.append(f"{name} was ignored: the second pass read the first's prompts.")
    if body.hr_checkpoint_name not in (None, "", "Use same checkpoint"):
        warnings.append(f"hr_checkpoint_name ({body.hr_checkpoint_name}) was ignored: the "
                        "second pass ran the same model.")  # fmt: skip
    if body.firstphase_width or body.firstphase_height:
        warnings.append("firstphase_width and firstphase_height (the old hires fix) were "
                        "ignored: width and height are the first pass's.")  # fmt: skip
    return warnings


def _hires_values(body: Txt2ImgRequest, upscalers: tuple[str, ...]) -> dict:
    """The hires fix's fields of sfumato's request (A1111's names: the same meaning)."""
    if not body.enable_hr or isinstance(body, Img2ImgRequest):
        return {}
    try:
        upscaler_name(body.hr_upscaler, upscalers)
    except InvalidRequest as e:  # A1111 refuses an upscaler it does not have
        raise Unprocessable(e.message) from None
    return {
        "enable_hr": True,
        "hr_scale": body.hr_scale,
        "hr_resize_x": body.hr_resize_x,
        "hr_resize_y": body.hr_resize_y,
        "hr_upscaler": body.hr_upscaler,
        "hr_second_pass_steps": body.hr_second_pass_steps,
        "denoising_strength": body.denoising_strength,
    }


def clip_skip_of(body: Txt2ImgRequest) -> int | None:
    value = (body.override_settings or {}).get("CLIP_stop_at_last_layers")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest("override_settings.CLIP_stop_at_last_layers is a whole number.")
    return value


def to_input(
    body: Txt2ImgRequest, batch_size: int, seed: int | None, upscalers: tuple[str, ...] = ()
) -> GenerationInput:
    """The sfumato request for ``batch_size`` of the pictures, from ``seed`` on;
    ``upscalers``: the upscaler models installed, which hr_upscaler may name."""
    sampler = sampler_for(body.sampler_name or body.sampler_index, body.scheduler)
    image = isinstance(body, Img2ImgRequest)
    values = {
        "prompt": body.prompt,
        "negative_prompt": body.negative_prompt,
        "width": body.width,
        "height": body.height,
        "steps": body.steps,
        "guidance": body.cfg_scale,
        "sampler": sampler.id if sampler else None,
        "seed": seed,
        "batch_size": batch_size,
        "clip_skip": clip_skip_of(body),
        "strength": body.denoising_strength if image else None,
        **_hires_values(body, upscalers),
    }
    if not body.prompt.strip():
        raise InvalidRequest("The prompt is empty; say what the picture should show.")
    try:
        return GenerationInput.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as e:  # pydantic's bounds on the prompts' length
        problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise InvalidRequest(f"The request is not valid: {problems}.") from None


def batches(total: int) -> list[int]:
    """The pictures of each job: one job while a batch can hold them all."""
    return [min(MAX_BATCH, total - start) for start in range(0, total, MAX_BATCH)]


def a1111_mask(content: bytes, invert: bool, blur: int | None) -> bytes:
    """A1111's mask as sfumato reads masks (white = repaint, as a greyscale PNG). A mask with
    transparency is its alpha channel, opaque = repaint, as A1111 reads it; ``invert``
    (inpainting_mask_invert) swaps the parts, ``blur`` (mask_blur) softens the edge."""
    try:
        with Image.open(io.BytesIO(content)) as image:
            if image.width * image.height > MAX_INPUT_PIXELS:
                raise InvalidRequest("The mask is too large a picture.")
            if image.mode in ("RGBA", "LA", "PA") and image.getextrema()[-1] != (255, 255):
                mask = image.getchannel("A")
            else:
                mask = image.convert("L")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise InvalidRequest(f"The mask is not a picture sfumato can read: {e}.") from None
    if invert:
        mask = ImageChops.invert(mask)
    if blur:
        if not 0 <= blur <= 64:
            raise InvalidRequest(f"mask_blur is between 0 and 64 pixels; got {blur}.")
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()
