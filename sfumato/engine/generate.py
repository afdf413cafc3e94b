"""Turn resolved settings into images with a loaded model."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from sfumato.engine.conditioning import encode_prompts
from sfumato.engine.families import get_family
from sfumato.engine.loader import LoadedModel
from sfumato.engine.preview import LatentPreview
from sfumato.engine.prompts import extract_lora_tags
from sfumato.engine.request import GenerationSettings
from sfumato.engine.samplers import get_sampler
from sfumato.errors import OutOfMemory, SfumatoError


@dataclass
class Step:
    """Where a generation is, passed to the step callback after every step."""

    done: int
    total: int
    latents: torch.Tensor  # the batch's latents after this step
    previewer: LatentPreview

    def preview(self, index: int = 0) -> Image.Image:
        """Picture ``index`` as it stands, at 1/8 of its size (a linear map; no decoder)."""
        return self.previewer.image(self.latents, index)


StepCallback = Callable[[Step], None]


class Cancelled(SfumatoError):
    code = "cancelled"


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(error)
    return "out of memory" in text or "can't allocate memory" in text


def generate(
    model: LoadedModel,
    settings: GenerationSettings,
    on_step: StepCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[Image.Image]:
    """One image per seed of ``settings``; the same settings give the same pixels again."""
    family = get_family(settings.family)
    pipe = model.pipe
    pipe.scheduler = get_sampler(settings.sampler).make_scheduler(
        model.scheduler_config, family.scheduler_overrides
    )
    # One CPU generator per image: the starting noise (and any sampler noise) of image i
    # depends on seed + i alone, and is the same whichever device runs the model.
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in settings.seeds]
    previewer = model.source.effective_preview

    def step_end(pipeline, step: int, timestep, tensors: dict) -> dict:
        if on_step is not None:
            on_step(Step(step + 1, pipeline.num_timesteps, tensors["latents"], previewer))
        if cancel is not None and cancel.is_set():
            pipeline._interrupt = True  # diffusers' own "stop after this step" flag
        return tensors

    try:
        with torch.inference_mode():
            embeddings = encode_prompts(
                pipe,
                extract_lora_tags(settings.prompt)[0],
                extract_lora_tags(settings.negative_prompt)[0],
                settings.clip_skip,
            )
            result = pipe(
                **embeddings,
                width=settings.width,
                height=settings.height,
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                num_images_per_prompt=settings.batch_size,
                generator=generators,
                callback_on_step_end=step_end,
                output_type="pil",
            )
    except Exception as e:
        if _is_out_of_memory(e):
            raise OutOfMemory(
                f"Ran out of memory making {settings.batch_size} image(s) of "
                f"{settings.width}x{settings.height} on {model.device}. Lower the width and "
                "height or the number of images."
            ) from None
        raise
    if cancel is not None and cancel.is_set():
        raise Cancelled("The generation was cancelled.")
    return result.images
