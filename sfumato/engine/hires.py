"""The hires fix: A1111's two passes, for pictures larger than the model's native size.

The first pass makes the picture at the asked size (the model's own, by default), where the
model composes well; the picture is then enlarged, in latent space or in pixels, and the
second pass redraws it at the larger size with image-to-image: the composition is kept and
the detail is made at the new size, without the repeated subjects a model draws when asked
for a size it was not trained at.

Names and meaning are A1111's (``modules/processing.py``, ``StableDiffusionProcessingTxt2Img``):
``hr_scale`` (or ``hr_resize_x``/``hr_resize_y``, the latent cropped to fit when both are
given), ``hr_upscaler``, ``hr_second_pass_steps`` (0: the first pass's steps) and
``denoising_strength``. As in A1111, the second pass runs exactly the asked steps: the last
ones of a schedule ``steps / denoising_strength`` long.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from PIL import Image

from sfumato.errors import InvalidRequest, ModelNotFound, OutOfMemory
from sfumato.upscale.run import Upscaler, enlarge

if TYPE_CHECKING:
    from sfumato.engine.generate import StepCallback
    from sfumato.engine.loader import LoadedModel
    from sfumato.engine.loras import LoraSpec
    from sfumato.engine.request import GenerationSettings

# A1111's latent upscale modes (``shared.latent_upscale_modes``): interpolation, antialias
LATENT = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
# in pixels, between a decode and an encode; A1111's "None" is a plain Lanczos resize
PIXELS = {
    "None": Image.Resampling.LANCZOS,
    "Lanczos": Image.Resampling.LANCZOS,
    "Nearest": Image.Resampling.NEAREST,
}
UPSCALERS = (*LATENT, *PIXELS)
DEFAULT_UPSCALER = "Latent"  # A1111's latent_upscale_default_mode
DEFAULT_SCALE = 2.0  # A1111's hr_scale
DEFAULT_DENOISE = 0.7  # A1111's page and webuiapi's default (its processing class says 0.75)
GRID = 8  # every size is a multiple of 8 pixels (SD's latent is 1/8 of each side)


def upscaler_name(name: str | None, installed: tuple[str, ...] = ()) -> str:
    """A1111's name for the upscaler ``name`` (any case), or the name of an ``installed``
    upscaler model; unknown names are refused with the list of choices."""
    if name is None or not name.strip():
        return DEFAULT_UPSCALER
    wanted = " ".join(name.split()).lower()
    for known in (*UPSCALERS, *installed):
        if known.lower() == wanted:
            return known
    choices = ", ".join((*UPSCALERS, *installed))
    raise InvalidRequest(f"Unknown hires upscaler '{name}'. Choose one of: {choices}.")


def built_in(name: str) -> bool:
    """Whether ``name`` (any case) is one of A1111's own hires upscalers, not a model file."""
    wanted = " ".join(name.split()).lower()
    return any(known.lower() == wanted for known in UPSCALERS)


def is_latent(upscaler: str) -> bool:
    return upscaler in LATENT


def upscaled_size(
    width: int, height: int, scale: float | None, resize_x: int, resize_y: int
) -> tuple[int, int]:
    """The size the first pass's picture is enlarged to, before any crop: A1111's
    ``hr_upscale_to_x``/``_y`` (``calculate_target_resolution``), on the 8-pixel grid."""
    if not resize_x and not resize_y:
        w, h = int(width * scale), int(height * scale)
    elif not resize_y:
        w, h = resize_x, resize_x * height // width
    elif not resize_x:
        w, h = resize_y * width // height, resize_y
    elif width / height < resize_x / resize_y:  # both: cover the asked size, then crop
        w, h = resize_x, resize_x * height // width
    else:
        w, h = resize_y * width // height, resize_y
    return w // GRID * GRID, h // GRID * GRID


def final_size(
    width: int, height: int, scale: float | None, resize_x: int, resize_y: int
) -> tuple[int, int]:
    """The picture's size after the hires fix."""
    w, h = upscaled_size(width, height, scale, resize_x, resize_y)
    if resize_x and resize_y:
        return resize_x, resize_y
    return w, h


# --- memory ----------------------------------------------------------------------------------

# Working memory of the second pass, in bytes per byte of the model's dtype (bf16 and fp16
# need half of fp32's), measured on SD 1.5's architecture by benchmarks/hires.py (peak RSS
# growth over the loaded network, bf16, CPU; figures in benchmarks/RESULTS.md):
# - the VAE decode at the final size, one picture at a time: 841 MiB at 512 px and 1460 MiB
#   at 768 px, so about 0.19 GB fixed and 0.99 GB a megapixel (0.2 and 1.0 kept);
# - the UNet, one picture with guidance (two rows): 1245 MiB a megapixel at 512 px (0.65 GB
#   kept), growing with the batch; SDXL's taken as 1.3 times SD 1.5's (not measured).
# They do not run at once: the larger counts.
DECODE_FIXED_BYTES = 0.2e9
DECODE_BYTES_PER_MPX = 1.0e9
UNET_BYTES_PER_MPX = 0.65e9  # per picture with guidance
SDXL_FACTOR = 1.3


def memory_needed(settings: GenerationSettings, dtype: torch.dtype) -> int:
    """Bytes the second pass of ``settings`` needs beyond the loaded model, about."""
    width, height = settings.hires_size
    megapixels = width * height / 1e6
    size = torch.tensor([], dtype=dtype).element_size()
    rows = settings.batch_size * (2 if settings.guidance > 1 else 1)
    unet = UNET_BYTES_PER_MPX * megapixels * rows / 2
    if settings.family.startswith("sdxl"):
        unet *= SDXL_FACTOR
    decode = DECODE_FIXED_BYTES + DECODE_BYTES_PER_MPX * megapixels
    return int(max(decode, unet) * size)


def memory_available(device: torch.device) -> int | None:
    """Free memory on ``device`` for working tensors (None: not known, as on Apple's MPS)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        # what PyTorch holds cached but unused is free to it too
        return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    if device.type == "cpu":
        import psutil

        return psutil.virtual_memory().available
    return None


def check_memory(
    settings: GenerationSettings, device: torch.device, dtype: torch.dtype, free: int | None
) -> None:
    """Refuse, before the first pass, a hires fix the memory cannot hold: on the CPU the
    system would kill the process (and a server with it) part way through; a GPU would fail
    after the first pass's work."""
    need = memory_needed(settings, dtype)
    if free is None or need <= free:
        return
    width, height = settings.hires_size
    raise OutOfMemory(
        f"A hires fix to {width}x{height} ({settings.batch_size} picture(s)) needs about "
        f"{need / 2**30:.1f} GiB of free memory on {device} and {free / 2**30:.1f} GiB is "
        "free: lower the hires factor or the number of pictures."
    )


# --- the passes ------------------------------------------------------------------------------


def first_pass_steps(on_step: StepCallback | None, settings: GenerationSettings):
    """The first pass's step callback, counting toward both passes' steps."""
    if on_step is None:
        return None
    more = settings.hires_steps

    def counted(step) -> None:
        on_step(replace(step, total=step.total + more))

    return counted


def second_pass(
    model: LoadedModel,
    settings: GenerationSettings,
    latents: torch.Tensor,
    embeddings: dict,
    on_step: StepCallback | None,
    cancel: threading.Event | None,
    loras: list[LoraSpec],
    upscaler: Upscaler | None = None,
) -> list[Image.Image]:
    """The first pass's ``latents`` (diffusers-scaled) enlarged and redrawn; the pictures.

    ``embeddings`` are the first pass's encoded prompts (``encode_prompts``), read again as
    they were, LoRAs and emphasis included. ``upscaler``: the model file ``hr_upscaler``
    names, when it is an upscaler model (ESRGAN, ...)."""
    from sfumato.engine.families import get_family
    from sfumato.engine.generate import Step
    from sfumato.engine.samplers import get_sampler
    from sfumato.engine.sampling import Cond, Schedule, decode, encode_pictures, sample

    s = settings
    up_w, up_h = upscaled_size(s.width, s.height, s.hr_scale, s.hr_resize_x, s.hr_resize_y)
    scale = model.pipe.vae_scale_factor  # 8 for SD's VAE; the demo's is 4
    latents = latents.float()
    if is_latent(s.hr_upscaler):
        mode, antialias = LATENT[s.hr_upscaler]
        latents = F.interpolate(
            latents, size=(up_h // scale, up_w // scale), mode=mode, antialias=antialias
        )
    else:
        pictures = decode(model, latents)
        if s.hr_upscaler in PIXELS:
            pictures = [p.resize((up_w, up_h), PIXELS[s.hr_upscaler]) for p in pictures]
        elif upscaler is not None:
            pictures = [
                enlarge(p, (up_w, up_h), upscaler, model.device, cancel=cancel) for p in pictures
            ]
        else:
            raise ModelNotFound(f"The hires upscaler {s.hr_upscaler} is not installed here.")
        latents = encode_pictures(model, pictures)
    latents = _cropped(latents, s.hires_size, scale)
    positive = Cond(embeddings["prompt_embeds"], embeddings.get("pooled_prompt_embeds"))
    negative = Cond(
        embeddings["negative_prompt_embeds"], embeddings.get("negative_pooled_prompt_embeds")
    )
    scheduler = get_sampler(s.sampler).make_scheduler(
        model.scheduler_config, get_family(s.family).scheduler_overrides
    )
    first = s.steps

    def counted(step: Step) -> None:
        on_step(replace(step, done=first + step.done, total=first + step.total))

    sampled = sample(
        model,
        [positive],
        [negative],
        latents,
        s.seed,
        s.guidance,
        scheduler,
        Schedule.denoise(s.hires_steps, s.denoising_strength),
        loras=loras,
        on_step=counted if on_step is not None else None,
        cancel=cancel,
    )
    try:
        return decode(model, sampled)
    except Exception as e:
        from sfumato.engine.generate import _is_out_of_memory

        if _is_out_of_memory(e):
            width, height = s.hires_size
            raise OutOfMemory(
                f"Ran out of memory decoding the hires fix's {width}x{height} picture on "
                f"{model.device}. Lower the hires factor."
            ) from None
        raise


def _cropped(latents: torch.Tensor, size: tuple[int, int], scale: int) -> torch.Tensor:
    """The middle of ``latents`` at ``size`` (pixels): A1111's truncation, when a width and a
    height were both asked for and the first pass had other proportions."""
    rows, columns = size[1] // scale, size[0] // scale
    cut_y, cut_x = latents.shape[-2] - rows, latents.shape[-1] - columns
    top, left = cut_y // 2, cut_x // 2
    return latents[..., top : top + rows, left : left + columns]
