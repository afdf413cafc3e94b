"""Sampling in latent space, one step at a time: the engine's building blocks for graphs.

``generate`` runs a whole diffusers pipeline: prompt in, pictures out. A ComfyUI graph takes
the same work apart (encode a prompt, sample a latent, decode it) and joins the pieces in its
own ways: a latent sampled twice (hires), sampling stopped half-way and finished by another
sampler (SDXL's refiner), several prompts at once. This module offers those pieces over the
same loaded models, backends and LoRAs.

``sample`` is the denoising loop of diffusers' Stable Diffusion pipelines, written out: the
same scheduler calls in the same order, so an empty latent sampled from step 0 gives the
pipeline's pixels exactly (a test holds them equal). What the pipelines cannot do is added:
starting and stopping at any step, noise off, a noise mask (repaint only part of a latent),
more than one prompt per side (their predictions averaged, as ComfyUI's
``ConditioningCombine`` means).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from sfumato.engine.conditioning import encode_prompt
from sfumato.engine.generate import Step, StepCallback, _is_out_of_memory
from sfumato.engine.loader import LoadedModel
from sfumato.engine.loras import LoraSpec, applied
from sfumato.errors import Cancelled, InvalidRequest, OutOfMemory, UnsupportedModel


@dataclass(frozen=True)
class Cond:
    """One encoded prompt: its token features and, for SDXL, the pooled embedding."""

    embeds: torch.Tensor  # (1, tokens, features)
    pooled: torch.Tensor | None = None

    def zeroed(self) -> Cond:
        pooled = None if self.pooled is None else torch.zeros_like(self.pooled)
        return Cond(torch.zeros_like(self.embeds), pooled)


@dataclass
class Schedule:
    """Which steps of a schedule a sampler runs, and what it does with noise."""

    steps: int  # the schedule's length
    start: int = 0  # first step run
    end: int | None = None  # first step not run (None: to the end)
    add_noise: bool = True  # noise the latent for the first step (off: it is noisy already)
    leftover_noise: bool = False  # stopped early: keep the noise (True) or the clean estimate

    @classmethod
    def denoise(cls, steps: int, denoise: float) -> Schedule:
        """ComfyUI's ``denoise``: ``steps`` steps, the last ones of a schedule ``steps /
        denoise`` long (so 20 steps at 0.5 are 20 steps, not 10, unlike A1111's strength)."""
        if denoise >= 1:
            return cls(steps)
        total = int(steps / denoise)
        return cls(total, start=total - steps)


def encode(model: LoadedModel, text: str, clip_skip: int, loras: list[LoraSpec]) -> Cond:
    """``text`` as the model's text encoders read it, with ``loras`` on them."""
    pipe = model.pipe
    with _with_loras(model, loras), torch.inference_mode():
        embeds, pooled = encode_prompt(pipe, text, clip_skip, emphasis="comfy")
    return Cond(embeds, pooled)


def _with_loras(model: LoadedModel, loras: list[LoraSpec]):
    """LoRAs applied for a block, PyTorch's UNet read first where a backend let it go (the
    LoRAs' UNet layers load into it)."""
    from contextlib import ExitStack

    stack = ExitStack()
    stack.enter_context(model.backend.unet_for(model.pipe, loras))
    stack.enter_context(applied(model.pipe, loras))
    return stack


def _padded(conds: list[Cond]) -> list[torch.Tensor]:
    """Token features of equal length, to be batched: each repeated up to the least common
    multiple of their lengths, as ComfyUI does (a 77-token negative beside a 154-token
    prompt is read twice)."""
    common = math.lcm(*(c.embeds.shape[1] for c in conds))
    return [c.embeds.repeat(1, common // c.embeds.shape[1], 1) for c in conds]


def _time_ids(height: int, width: int, rows: int) -> torch.Tensor:
    """SDXL's size conditioning: original size, crop corner, target size, all the picture's."""
    return torch.tensor([[height, width, 0, 0, height, width]], dtype=torch.float32).repeat(rows, 1)


def sample(
    model: LoadedModel,
    positive: list[Cond],
    negative: list[Cond],
    latents: torch.Tensor,
    seed: int,
    guidance: float,
    scheduler,
    schedule: Schedule,
    noise_mask: torch.Tensor | None = None,
    loras: list[LoraSpec] | None = None,
    on_step: StepCallback | None = None,
    cancel: threading.Event | None = None,
) -> torch.Tensor:
    """``latents`` (diffusers-scaled, as the pipelines hold them) denoised over ``schedule``.

    Image ``i`` of the batch draws its noise from ``seed + i`` on the CPU, as ``generate``
    does. ``noise_mask`` (batch or 1, 1, height, width; 1 = repaint), at any size: the rest of
    the latent is kept. ``scheduler`` is a fresh one (``Sampler.make_scheduler``).
    """
    if not positive or not negative:
        raise InvalidRequest("A sampler needs a positive and a negative conditioning.")
    pipe, loras = model.pipe, loras or []
    unet_config = pipe.unet.config
    if getattr(unet_config, "time_cond_proj_dim", None):
        raise InvalidRequest(
            "This model's UNet takes guidance as an input (an LCM-distilled UNet); it runs "
            "through /v1/generations, not through a graph's sampler."
        )
    batch = latents.shape[0]
    # the pipelines' loop runs in the text encoder's dtype (bf16 on most CPUs here): so does
    # this one, noise included, for the same pixels
    dtype = positive[0].embeds.dtype
    latents = latents.to(dtype)
    scheduler.set_timesteps(schedule.steps, device="cpu")
    order = scheduler.order
    end = schedule.steps if schedule.end is None else min(schedule.end, schedule.steps)
    if not 0 <= schedule.start < end:
        raise InvalidRequest(
            f"The sampler runs no step: it starts at step {schedule.start} and ends at {end} "
            f"of {schedule.steps}."
        )
    timesteps = scheduler.timesteps[schedule.start * order : end * order]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(schedule.start * order)
    generators = [torch.Generator("cpu").manual_seed((seed + i) % 2**64) for i in range(batch)]
    noise = randn_tensor(tuple(latents.shape), generator=generators, dtype=dtype)
    original = latents
    if not schedule.add_noise:
        x = latents
    elif schedule.start == 0 and not latents.any():
        # an empty latent from the first step: the text-to-image pipeline's start, exactly
        x = noise * scheduler.init_noise_sigma
    else:
        x = scheduler.add_noise(latents, noise, timesteps[:1].repeat(batch))
    mask = None
    if noise_mask is not None:
        mask = F.interpolate(noise_mask.float(), size=x.shape[-2:], mode="bilinear")
        mask = mask.clamp(0, 1).expand(batch, 1, *x.shape[-2:]).to(dtype)
    guided = guidance > 1
    sides = [negative, positive] if guided else [positive]
    conds = [c for side in sides for c in side]
    features = _padded(conds)
    scale = pipe.vae_scale_factor
    height, width = x.shape[-2] * scale, x.shape[-1] * scale
    sdxl = hasattr(pipe, "text_encoder_2")
    step_arguments = _step_arguments(scheduler, generators)
    inpainting = unet_config.in_channels == 9
    if inpainting:  # the picture to repaint and where, beside the latent, at every call
        # (the latent of a picture whose masked part is blank already: VAEEncodeForInpaint's)
        where = mask if mask is not None else torch.ones_like(x[:, :1])
        extra = torch.cat([where, original], dim=1)
    total = len(timesteps) // order
    previewer = model.source.effective_preview
    last = None
    try:
        with (
            _with_loras(model, loras),
            model.backend.running(pipe, loras, None),
            torch.inference_mode(),
        ):
            for i, t in enumerate(timesteps):
                noise_pred = _predict(
                    pipe,
                    scheduler,
                    x,
                    t,
                    conds,
                    features,
                    sides,
                    guidance,
                    sdxl,
                    (height, width),
                    extra if inpainting else None,
                )
                last = scheduler.step(noise_pred, t, x, **step_arguments, return_dict=True)
                x = last.prev_sample
                if mask is not None and not inpainting:
                    # outside the mask, the original at this step's noise level
                    kept = original
                    if i + 1 < len(timesteps):
                        kept = scheduler.add_noise(original, noise, timesteps[i + 1 : i + 2])
                    x = kept * (1 - mask) + x * mask
                if on_step is not None and (i + 1) % order == 0:
                    on_step(Step((i + 1) // order, total, x, previewer))
                if cancel is not None and cancel.is_set():
                    raise Cancelled("The generation was cancelled.")
    except (Cancelled, InvalidRequest):
        raise
    except Exception as e:
        if _is_out_of_memory(e):
            raise OutOfMemory(
                f"Ran out of memory sampling {batch} latent(s) of {width}x{height} on "
                f"{model.device}. Lower the size or the batch."
            ) from None
        raise
    if end < schedule.steps and not schedule.leftover_noise:
        x = _clean_estimate(last, scheduler)
    if mask is not None:
        x = original * (1 - mask) + x * mask
    return x.float()


def _predict(pipe, scheduler, x, t, conds, features, sides, guidance, sdxl, size, extra):
    """The guided noise prediction at ``t``: one UNet call on the batch of every prompt."""
    per_cond = len(conds)
    model_input = scheduler.scale_model_input(torch.cat([x] * per_cond), t)
    if extra is not None:
        model_input = torch.cat([model_input, torch.cat([extra] * per_cond)], dim=1)
    batch = x.shape[0]
    hidden = torch.cat([f.repeat(batch, 1, 1) for f in features])
    added = None
    if sdxl:
        pooled = torch.cat([c.pooled.repeat(batch, 1) for c in conds])
        time_ids = _time_ids(*size, len(hidden)).to(hidden.dtype)
        added = {"text_embeds": pooled, "time_ids": time_ids}
    out = pipe.unet(
        model_input,
        t,
        encoder_hidden_states=hidden,
        added_cond_kwargs=added,
        return_dict=False,
    )[0]
    predictions = out.split(batch)
    # each side's prompts averaged (ComfyUI's combined conditioning), then guidance
    averaged, at = [], 0
    for side in sides:
        averaged.append(sum(predictions[at : at + len(side)]) / len(side))
        at += len(side)
    if len(averaged) == 1:
        return averaged[0]
    uncond, text = averaged
    return uncond + guidance * (text - uncond)


def _step_arguments(scheduler, generators) -> dict:
    """What ``scheduler.step`` takes beside the prediction, as diffusers' pipelines pass it."""
    accepted = inspect.signature(scheduler.step).parameters
    arguments = {}
    if "eta" in accepted:
        arguments["eta"] = 0.0
    if "generator" in accepted:
        arguments["generator"] = generators
    return arguments


def _clean_estimate(last, scheduler) -> torch.Tensor:
    """The sampler's estimate of the noiseless latent at its last step: where ComfyUI, told
    to leave no noise, ends a schedule cut short (its last step goes to noise level 0)."""
    for name in ("pred_original_sample", "denoised"):
        estimate = getattr(last, name, None)
        if estimate is not None:
            return estimate
    raise InvalidRequest(
        f"The sampler {type(scheduler).__name__} gives no clean estimate, so it cannot stop "
        "before the last step without leftover noise: enable return_with_leftover_noise, "
        "run to the last step, or use euler, euler_ancestral, ddim, lms or lcm."
    )


def empty_latent(model: LoadedModel, width: int, height: int, batch: int = 1) -> torch.Tensor:
    """ComfyUI's empty latent: zeros at the model's latent size (1/8 of the picture's)."""
    scale = model.pipe.vae_scale_factor
    channels = getattr(model.pipe.vae.config, "latent_channels", 4)
    return torch.zeros(batch, channels, height // scale, width // scale)


def decode(model: LoadedModel, latents: torch.Tensor, vae=None) -> list[Image.Image]:
    """Latents to pictures, on the backend that decodes for the model (as the pipelines do);
    ``vae``: another VAE of the same latent space (``read_vae``), on PyTorch."""
    pipe = model.pipe
    running = model.backend.running(pipe, [], None) if vae is None else contextlib.nullcontext()
    vae = vae or pipe.vae
    with running, torch.inference_mode():
        # in the VAE's dtype before scaling, as the pipelines' latents are
        scaled = latents.to(vae.dtype) / vae.config.scaling_factor
        images = []
        for one in scaled.split(1):  # one at a time: a batch's decode memory is per picture
            decoded = vae.decode(one, return_dict=False)[0]
            images.extend(pipe.image_processor.postprocess(decoded, output_type="pil"))
    return images


@functools.lru_cache(maxsize=2)
def read_vae(path: Path, config: Path, dtype: torch.dtype):
    """A VAE file (A1111's and ComfyUI's ``VAE`` folders) read against the model's configs:
    it decodes the same latent space as the model's own VAE (kept: the last two read)."""
    from diffusers import AutoencoderKL

    try:
        return AutoencoderKL.from_single_file(
            str(path), config=str(config), subfolder="vae", dtype=dtype, local_files_only=True
        )
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise UnsupportedModel(
            f"The VAE {path.name} cannot be read for this model: {str(e).splitlines()[0][:300]}"
        ) from None


def encode_pictures(model: LoadedModel, pictures: list[Image.Image]) -> torch.Tensor:
    """Pictures (all of one size, a multiple of 8) to diffusers-scaled latents, by the mean of
    the VAE's distribution (no randomness: the same picture gives the same latent)."""
    pipe = model.pipe
    vae = pipe.vae
    with torch.inference_mode():
        pixels = pipe.image_processor.preprocess(pictures).to(vae.dtype)
        moments = vae.encode(pixels).latent_dist.mode()
    return moments.float() * vae.config.scaling_factor
