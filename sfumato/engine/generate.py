"""Turn resolved settings into images with a loaded model."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting
from PIL import Image

from sfumato.engine import hires
from sfumato.engine.conditioning import encode_prompts
from sfumato.engine.families import get_family
from sfumato.engine.images import ImageInputs, keep_outside_mask
from sfumato.engine.loader import LoadedModel
from sfumato.engine.loras import LoraSpec, applied
from sfumato.engine.preview import LatentPreview
from sfumato.engine.prompts import extract_lora_tags
from sfumato.engine.request import IMAGE_TO_IMAGE, TEXT_TO_IMAGE, GenerationSettings
from sfumato.engine.samplers import get_sampler
from sfumato.engine.shortcuts import deep_cache, guidance_cutoff
from sfumato.errors import Cancelled, InvalidRequest, OutOfMemory
from sfumato.upscale.run import Upscaler


@dataclass
class Step:
    """Where a generation is, passed to the step callback after every step."""

    done: int
    total: int
    latents: torch.Tensor  # the batch's latents after this step
    previewer: LatentPreview

    def preview(self, index: int = 0) -> Image.Image:
        """Picture ``index`` as it stands, at latent size (1/8 for SD's autoencoders)."""
        return self.previewer.image(self.latents, index)


StepCallback = Callable[[Step], None]


def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError | MemoryError):
        return True
    text = str(error)
    return "out of memory" in text or "can't allocate memory" in text


def _pipeline(model: LoadedModel, settings: GenerationSettings, inputs: ImageInputs | None):
    """The pipeline for the request's mode, and the arguments only that mode takes.

    Image-to-image and inpainting pipelines are made once per model from its components (no
    copy of the weights). A 9-channel inpainting model always runs its own pipeline: for a
    plain picture with an empty picture and all of it to paint, as A1111 does.
    """
    size = {"width": settings.width, "height": settings.height}
    if settings.mode == TEXT_TO_IMAGE and not model.source.inpainting:
        return model.pipe, size
    if inputs is None:
        if settings.mode != TEXT_TO_IMAGE:
            raise InvalidRequest(f"A {settings.mode} request needs its picture.")
        inputs = ImageInputs(Image.new("RGB", (settings.width, settings.height), "gray"))
    image = {"image": inputs.image, "strength": settings.strength or 1.0}
    if model.source.inpainting:
        mask = inputs.mask or Image.new("L", inputs.image.size, 255)
        return model.pipe, size | image | {"mask_image": mask}
    if settings.mode == IMAGE_TO_IMAGE:
        return _variant(model, AutoPipelineForImage2Image), image
    return _variant(model, AutoPipelineForInpainting), size | image | {"mask_image": inputs.mask}


def _variant(model: LoadedModel, auto):
    if auto.__name__ not in model.variants:
        pipe = auto.from_pipe(model.pipe)
        pipe.set_progress_bar_config(disable=True)
        model.variants[auto.__name__] = pipe
    return model.variants[auto.__name__]


def generate(
    model: LoadedModel,
    settings: GenerationSettings,
    inputs: ImageInputs | None = None,
    on_step: StepCallback | None = None,
    cancel: threading.Event | None = None,
    loras: list[LoraSpec] | None = None,
    upscaler: Upscaler | None = None,
) -> list[Image.Image]:
    """One image per seed of ``settings``; the same settings give the same pixels again.

    ``inputs`` holds the picture (and mask) of image-to-image and inpainting, at the output
    size (``images.prepare``). Outside an inpainting mask the input's own pixels are kept.
    ``loras`` are active for this generation only. Pictures whose prompts differ (a template's
    variations) are made one at a time, each as it would be made alone. ``upscaler``: the
    upscaler model file the hires fix's ``hr_upscaler`` names, when it names one.
    """
    if len(set(settings.prompts)) > 1:
        pictures: list[Image.Image] = []
        for index in range(settings.batch_size):
            alone = settings.for_image(index)
            steps = _counted(on_step, index, settings.batch_size)
            pictures += _generate(model, alone, inputs, steps, cancel, loras, upscaler)
        return pictures
    if settings.prompts:  # one prompt for every picture
        settings = replace(settings, prompt=settings.prompts[0], prompts=())
    return _generate(model, settings, inputs, on_step, cancel, loras, upscaler)


def _counted(on_step: StepCallback | None, index: int, count: int) -> StepCallback | None:
    """Steps of picture ``index`` of ``count`` made one at a time, counted over them all."""
    if on_step is None:
        return None

    def counted(step: Step) -> None:
        on_step(replace(step, done=index * step.total + step.done, total=count * step.total))

    return counted


def _generate(
    model: LoadedModel,
    settings: GenerationSettings,
    inputs: ImageInputs | None,
    on_step: StepCallback | None,
    cancel: threading.Event | None,
    loras: list[LoraSpec] | None,
    upscaler: Upscaler | None = None,
) -> list[Image.Image]:
    family = get_family(settings.family)
    if settings.hires:  # refused now rather than after the first pass, or killed in it
        hires.check_memory(
            settings, model.device, model.dtype, hires.memory_available(model.device)
        )
        second_on_step, on_step = on_step, hires.first_pass_steps(on_step, settings)
    pipe, mode_arguments = _pipeline(model, settings, inputs)
    pipe.scheduler = get_sampler(settings.sampler).make_scheduler(
        model.scheduler_config, family.scheduler_overrides
    )
    # One CPU generator per image: the starting noise (and any sampler noise) of image i
    # depends on seed + i alone, and is the same whichever device runs the model.
    generators = [torch.Generator("cpu").manual_seed(seed) for seed in settings.seeds]
    previewer = model.source.effective_preview
    cut = guidance_cutoff(settings.guidance_cutoff)

    def step_end(pipeline, step: int, timestep, tensors: dict) -> dict:
        if cut is not None:
            tensors = cut(pipeline, step, tensors)
        if on_step is not None:
            on_step(Step(step + 1, pipeline.num_timesteps, tensors["latents"], previewer))
        if cancel is not None and cancel.is_set():
            # out of the pipeline at once, through the blocks below that undo the request's
            # changes: diffusers' own flag for this is private (``_interrupt``), and it would
            # still decode the unfinished picture
            raise Cancelled("The generation was cancelled.")
        return tensors

    backend, loras = model.backend, loras or []
    try:
        with (
            backend.unet_for(pipe, loras),  # PyTorch's UNet, where LoRAs change it
            applied(pipe, loras),
            deep_cache(pipe, settings.deep_cache) as cache,
            backend.running(pipe, loras, cache),  # its UNet calls and decodes on the backend
            torch.inference_mode(),
        ):
            embeddings = encode_prompts(
                pipe,
                extract_lora_tags(settings.prompt)[0],
                extract_lora_tags(settings.negative_prompt)[0],
                settings.clip_skip,
            )
            result = pipe(
                **embeddings,
                **mode_arguments,
                num_inference_steps=settings.steps,
                guidance_scale=settings.guidance,
                num_images_per_prompt=settings.batch_size,
                generator=generators,
                callback_on_step_end=step_end,
                # the cutoff trims every batched tensor; by default only the latents come.
                # diffusers names them in a private attribute only (its docstrings point there;
                # tests/engine/test_diffusers_private.py guards it)
                callback_on_step_end_tensor_inputs=pipe._callback_tensor_inputs
                if cut
                else ["latents"],
                output_type="latent" if settings.hires else "pil",
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
    if settings.hires:
        return hires.second_pass(
            model, settings, result.images, embeddings, second_on_step, cancel, loras, upscaler
        )
    if inputs is not None and inputs.mask is not None:
        return [keep_outside_mask(inputs.image, image, inputs.mask) for image in result.images]
    return result.images
