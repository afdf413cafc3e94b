"""The nodes sfumato runs, with ComfyUI's class names, input names, defaults and meaning.

Limits are sfumato's where they are tighter than ComfyUI's (steps, guidance, sizes, batch,
LoRA strength: the same limits as every other door), and ``/object_info`` says so. Each
node's function takes the run's ``Context`` and its inputs by name, and returns its outputs
as a tuple (output nodes: the pictures they kept, for the history).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from sfumato.engine import sampling
from sfumato.engine.device import pick_device
from sfumato.engine.images import keep_outside_mask
from sfumato.engine.parameters import BY_NAME, MAX_SEED
from sfumato.engine.request import MAX_LORA_WEIGHT, MIN_LORA_WEIGHT
from sfumato.engine.weights import configs_for
from sfumato.errors import InvalidRequest
from sfumato.upscale.run import Upscaler, enlarge, target_size
from sfumato.workflows import samplers
from sfumato.workflows.spec import (
    CLIP,
    COMBO,
    CONDITIONING,
    FLOAT,
    IMAGE,
    INT,
    LATENT,
    MASK,
    MODEL,
    STRING,
    UPSCALE_MODEL,
    VAE,
    Input,
    Node,
)
from sfumato.workflows.values import (
    ClipRef,
    Conditioning,
    Context,
    Latent,
    Mask,
    Pictures,
    VaeRef,
)

P = BY_NAME
SIDE = {
    "min": int(P["width"].minimum),
    "max": int(P["width"].maximum),
    "step": P["width"].multiple_of,
}
SEED = Input("seed", INT, {"default": 0, "min": 0, "max": MAX_SEED, "control_after_generate": True})
STEPS = Input("steps", INT, {"default": 20, "min": 1, "max": int(P["steps"].maximum)})
CFG = Input(
    "cfg", FLOAT, {"default": 8.0, "min": 0.0, "max": float(P["guidance"].maximum), "step": 0.1}
)
SAMPLER = Input("sampler_name", COMBO, values="samplers")
SCHEDULER = Input("scheduler", COMBO, values="schedulers")
STRENGTH = {"default": 1.0, "min": MIN_LORA_WEIGHT, "max": MAX_LORA_WEIGHT, "step": 0.01}
LATENT_METHODS = ("nearest-exact", "bilinear", "area", "bicubic")
IMAGE_METHODS = (*LATENT_METHODS, "lanczos")
CROP = ("disabled", "center")
_RESAMPLE = {
    "nearest-exact": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


# ---- loaders


def checkpoint_loader(ctx: Context, ckpt_name: str):
    model = ctx.checkpoint(ckpt_name)
    return model, ClipRef(model), VaeRef(model=model)


def vae_loader(ctx: Context, vae_name: str):
    return (VaeRef(file=ctx.vae_file(vae_name), name=vae_name),)


def lora_loader(ctx, model, clip, lora_name, strength_model, strength_clip):
    clip = ClipRef(clip.model.with_lora(lora_name, strength_clip), clip.clip_skip)
    return model.with_lora(lora_name, strength_model), clip


def lora_loader_model_only(ctx, model, lora_name, strength_model):
    return (model.with_lora(lora_name, strength_model),)


def unet_loader(ctx, unet_name, weight_dtype):
    raise InvalidRequest("sfumato runs whole checkpoints; load one with CheckpointLoaderSimple.")


# ---- text


def clip_set_last_layer(ctx, clip: ClipRef, stop_at_clip_layer: int):
    return (ClipRef(clip.model, -stop_at_clip_layer),)


def clip_text_encode(ctx: Context, text: str, clip: ClipRef):
    model = ctx.load(clip.model)
    loras = ctx.loras(clip.model.loras, model)
    try:
        cond = sampling.encode(model, text, clip.clip_skip, loras)
    except IndexError:
        raise InvalidRequest(
            f"This model's text encoder has fewer layers than CLIPSetLastLayer asks to skip "
            f"({clip.clip_skip})."
        ) from None
    return (Conditioning([cond], clip.model.name, [text]),)


def conditioning_combine(ctx, conditioning_1: Conditioning, conditioning_2: Conditioning):
    if conditioning_1.model != conditioning_2.model:
        raise InvalidRequest("The two conditionings were encoded by different checkpoints.")
    return (
        Conditioning(
            conditioning_1.conds + conditioning_2.conds,
            conditioning_1.model,
            conditioning_1.texts + conditioning_2.texts,
        ),
    )


def conditioning_zero_out(ctx, conditioning: Conditioning):
    zeroed = [c.zeroed() for c in conditioning.conds]
    return (Conditioning(zeroed, conditioning.model, [""] * len(zeroed)),)


# ---- sampling


def empty_latent_image(ctx, width: int, height: int, batch_size: int):
    return (Latent(None, (width, height), batch_size),)


def _sample(ctx, node_id, model, seed, cfg, sampler_name, scheduler, positive, negative,
            latent, schedule):  # fmt: skip
    for side, cond in (("positive", positive), ("negative", negative)):
        if cond.model != model.name:
            raise InvalidRequest(
                f"The {side} conditioning was encoded by {cond.model}, not by {model.name}, "
                "the model that samples: connect the same checkpoint's CLIP."
            )
    loaded = ctx.load(model)
    loras = ctx.loras(model.loras, loaded)
    start = latent.tensor(loaded)
    out = sampling.sample(
        loaded,
        positive.conds,
        negative.conds,
        start,
        seed,
        cfg,
        samplers.make_scheduler(sampler_name, scheduler, loaded),
        schedule,
        noise_mask=latent.noise_mask,
        loras=loras,
        on_step=lambda step: ctx.progress(
            node_id, step.done, step.total, step.latents, step.previewer
        ),  # fmt: skip
        cancel=ctx.cancel,
    )
    scale = loaded.pipe.vae_scale_factor
    trace = {
        "model": model.name,
        "family": loaded.source.family.id,
        "prompt": ", ".join(positive.texts),
        "negative_prompt": ", ".join(negative.texts),
        "seed": seed,
        "steps": schedule.steps,
        "cfg": cfg,
        "sampler": sampler_name,
        "scheduler": scheduler,
        "loras": [list(x) for x in model.loras],
        "width": out.shape[-1] * scale,
        "height": out.shape[-2] * scale,
    }
    size = (out.shape[-1] * scale, out.shape[-2] * scale)
    kept = latent.pixels if size == latent.size else None
    return (Latent(out, size, out.shape[0], latent.noise_mask, latent.trace | trace, model, kept),)


def ksampler(ctx, model, seed, steps, cfg, sampler_name, scheduler, positive, negative,
             latent_image, denoise, node_id=""):  # fmt: skip
    if denoise <= 0:  # ComfyUI: no step at all, the latent as it was
        return (latent_image,)
    schedule = sampling.Schedule.denoise(steps, denoise)
    out = _sample(ctx, node_id, model, seed, cfg, sampler_name, scheduler, positive, negative,
                  latent_image, schedule)  # fmt: skip
    out[0].trace["denoise"] = denoise
    return out


def ksampler_advanced(ctx, model, add_noise, noise_seed, steps, cfg, sampler_name, scheduler,
                      positive, negative, latent_image, start_at_step, end_at_step,
                      return_with_leftover_noise, node_id=""):  # fmt: skip
    if start_at_step >= min(steps, end_at_step):  # ComfyUI: nothing to run
        return (latent_image,)
    schedule = sampling.Schedule(
        steps,
        start=start_at_step,
        end=end_at_step,
        add_noise=add_noise == "enable",
        leftover_noise=return_with_leftover_noise == "enable",
    )
    return _sample(ctx, node_id, model, noise_seed, cfg, sampler_name, scheduler, positive,
                   negative, latent_image, schedule)  # fmt: skip


# ---- latents and pictures


def vae_decode(ctx: Context, samples: Latent, vae: VaeRef):
    if vae.model is not None:
        model = ctx.load(vae.model)
        images = sampling.decode(model, samples.tensor(model))
        return (Pictures(_outside_mask(samples, images), samples.trace),)
    if samples.model is None:
        raise InvalidRequest(
            "A VAE file decodes a sampled latent: connect a sampler's output to VAEDecode."
        )
    model = ctx.load(samples.model)
    source = model.source  # the configs of the model's own VAE: the file's must match them
    config = source.path if source.layout == "diffusers" else configs_for(source, None)
    config = model.options.config_dir or config
    dtype = model.pipe.text_encoder.dtype
    images = sampling.decode(model, samples.samples, sampling.read_vae(vae.file, config, dtype))
    return (Pictures(_outside_mask(samples, images), samples.trace | {"vae": vae.name}),)


def _outside_mask(latent: Latent, images: list[Image.Image]) -> list[Image.Image]:
    """The encoded pictures' own pixels outside the noise mask, as sfumato's (and A1111's)
    inpainting keeps them: the VAE alone would shift their colours a little (its decoder
    normalises over the whole picture). ComfyUI leaves this to an ImageCompositeMasked node."""
    if latent.noise_mask is None or not latent.pixels:
        return images
    out = []
    for i, image in enumerate(images):
        original = latent.pixels[min(i, len(latent.pixels) - 1)]
        if original.size != image.size:
            return images
        mask = latent.noise_mask[min(i, len(latent.noise_mask) - 1), 0]
        mask = F.interpolate(mask[None, None].float(), size=(image.height, image.width))[0, 0]
        grey = Image.fromarray((mask.clamp(0, 1) * 255).round().byte().numpy(), "L")
        out.append(keep_outside_mask(original, image, grey))
    return out


def _crop_to_grid(pictures: list[Image.Image], grid: int) -> list[Image.Image]:
    """Centred crop to a multiple of the VAE's scale (ComfyUI crops the same way)."""
    out = []
    for image in pictures:
        w, h = image.width // grid * grid, image.height // grid * grid
        if (w, h) != image.size:
            left, top = (image.width - w) // 2, (image.height - h) // 2
            image = image.crop((left, top, left + w, top + h))
        out.append(image)
    return out


def _encoder(ctx: Context, vae: VaeRef):
    if vae.model is None:
        raise InvalidRequest(
            "Encoding runs on a checkpoint's own VAE: connect the checkpoint's VAE output."
        )
    return ctx.load(vae.model)


def vae_encode(ctx: Context, pixels: Pictures, vae: VaeRef):
    model = _encoder(ctx, vae)
    images = _crop_to_grid(pixels.images, model.pipe.vae_scale_factor)
    _same_size(images)
    latents = sampling.encode_pictures(model, images)
    return (Latent(latents, images[0].size, len(images), pixels=images),)


def vae_encode_for_inpaint(ctx: Context, pixels: Pictures, vae: VaeRef, mask: Mask,
                           grow_mask_by: int):  # fmt: skip
    model = _encoder(ctx, vae)
    images = _crop_to_grid(pixels.images, model.pipe.vae_scale_factor)
    _same_size(images)
    w, h = images[0].size
    m = F.interpolate(mask.values[:, None].float(), size=(h, w), mode="bilinear").clamp(0, 1)
    if grow_mask_by > 0:  # a few pixels more around the mask, so the seam is redrawn too
        kernel = torch.ones(1, 1, grow_mask_by, grow_mask_by)
        padding = math.ceil((grow_mask_by - 1) / 2)
        m = F.conv2d(m.round(), kernel, padding=padding).clamp(0, 1)[..., :h, :w]
    greyed = []
    for i, image in enumerate(images):  # the masked part blanked to grey before encoding
        keep = (1 - m[min(i, len(m) - 1), 0].round()).numpy()[..., None]
        pixels_ = np.asarray(image, dtype=np.float32) / 255
        blank = (pixels_ - 0.5) * keep + 0.5
        greyed.append(Image.fromarray((blank * 255).round().astype(np.uint8), "RGB"))
    latents = sampling.encode_pictures(model, greyed)
    return (Latent(latents, (w, h), len(images), noise_mask=m.round(), pixels=images),)


def set_latent_noise_mask(ctx, samples: Latent, mask: Mask):
    return (replace(samples, noise_mask=mask.values[:, None]),)


def _latent_resized(samples: Latent, width: int, height: int, method: str, crop: str):
    if samples.samples is None:
        return Latent(None, (width, height), samples.batch, samples.noise_mask, samples.trace)
    x = samples.samples
    scale = samples.size[0] // x.shape[-1]
    if crop == "center":
        x = _center_crop(x, width / height)
    resized = F.interpolate(x, size=(height // scale, width // scale), mode=method)
    return Latent(resized, (width, height), samples.batch, samples.noise_mask, samples.trace)


def _center_crop(x: torch.Tensor, aspect: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    if w / h > aspect:
        keep = round(h * aspect)
        left = (w - keep) // 2
        return x[..., left : left + keep]
    keep = round(w / aspect)
    top = (h - keep) // 2
    return x[..., top : top + keep, :]


def _sized(width: int, height: int, size: tuple[int, int], grid: int = 8) -> tuple[int, int]:
    """ComfyUI's rule: a side of 0 keeps the proportions; both 0, the size as it was."""
    w0, h0 = size
    if width == 0 and height == 0:
        return size
    if width == 0:
        width = max(grid, round(w0 * height / h0 / grid) * grid)
    if height == 0:
        height = max(grid, round(h0 * width / w0 / grid) * grid)
    return width, height


def latent_upscale(ctx, samples: Latent, upscale_method, width, height, crop):
    width, height = _sized(width, height, samples.size)
    _check_side(width, height)
    return (_latent_resized(samples, width, height, upscale_method, crop),)


def latent_upscale_by(ctx, samples: Latent, upscale_method, scale_by):
    w, h = samples.size
    width, height = round(w * scale_by / 8) * 8, round(h * scale_by / 8) * 8
    _check_side(width, height)
    return (_latent_resized(samples, width, height, upscale_method, "disabled"),)


def _check_side(width: int, height: int) -> None:
    for side in (width, height):
        if not SIDE["min"] <= side <= SIDE["max"]:
            raise InvalidRequest(
                f"An upscaled latent of {width}x{height} is outside {SIDE['min']}-{SIDE['max']} "
                "pixels a side."
            )


def _image_resized(pictures: Pictures, width: int, height: int, method: str, crop: str):
    out = []
    for image in pictures.images:
        if crop == "center":
            out.append(ImageOps.fit(image, (width, height), _RESAMPLE[method]))
        else:
            out.append(image.resize((width, height), _RESAMPLE[method]))
    return Pictures(out, pictures.trace)


def image_scale(ctx, image: Pictures, upscale_method, width, height, crop):
    width, height = _sized(width, height, image.images[0].size, grid=1)
    _check_pixels(width, height)
    return (_image_resized(image, width, height, upscale_method, crop),)


def image_scale_by(ctx, image: Pictures, upscale_method, scale_by):
    w, h = image.images[0].size
    width, height = max(1, round(w * scale_by)), max(1, round(h * scale_by))
    _check_pixels(width, height)
    return (_image_resized(image, width, height, upscale_method, "disabled"),)


def upscale_model_loader(ctx: Context, model_name: str):
    return (ctx.upscaler(model_name),)


def image_upscale_with_model(ctx: Context, upscale_model: Upscaler, image: Pictures):
    """Each picture enlarged by the model's own factor, tile by tile (``sfumato/upscale``)."""
    scale = upscale_model.scale
    w, h = image.images[0].size
    target_size((w, h), scale)  # a sentence for a picture the factor makes too large
    device = pick_device(None)
    out = [
        enlarge(p, (p.width * scale, p.height * scale), upscale_model, device, cancel=ctx.cancel)
        for p in image.images
    ]
    return (Pictures(out, image.trace),)


def _check_pixels(width: int, height: int) -> None:
    if width * height > SIDE["max"] ** 2:
        raise InvalidRequest(
            f"A picture of {width}x{height} is larger than {SIDE['max']}x{SIDE['max']}."
        )


def _same_size(images: list[Image.Image]) -> None:
    if len({image.size for image in images}) > 1:
        raise InvalidRequest("The pictures of one batch must all be of one size.")


def load_image(ctx: Context, image: str):
    picture = ImageOps.exif_transpose(ctx.picture(image))
    rgb = picture.convert("RGB")
    if "A" in picture.getbands() or "transparency" in picture.info:
        alpha = np.asarray(picture.convert("RGBA").getchannel("A"), dtype=np.float32) / 255
        mask = 1.0 - torch.from_numpy(alpha)  # transparent: to be repainted, as in ComfyUI
    else:
        mask = torch.zeros(64, 64)
    return Pictures([rgb], {"source": image}), Mask(mask[None])


def load_image_mask(ctx: Context, image: str, channel: str):
    picture = ImageOps.exif_transpose(ctx.picture(image)).convert("RGBA")
    band = picture.getchannel(channel[0].upper())
    values = torch.from_numpy(np.asarray(band, dtype=np.float32) / 255)
    if channel == "alpha":
        values = 1.0 - values
    return (Mask(values[None]),)


def save_image(ctx: Context, images: Pictures, filename_prefix: str, node_id: str = ""):
    return ctx.save(node_id, images, filename_prefix, temporary=False)


def preview_image(ctx: Context, images: Pictures, node_id: str = ""):
    return ctx.save(node_id, images, "ComfyUI", temporary=True)


def _node(name, display, category, description, inputs, outputs, run, **extra) -> Node:
    return Node(name, display, category, description, tuple(inputs), tuple(outputs), run, **extra)


_HIDDEN = {"prompt": "PROMPT", "extra_pnginfo": "EXTRA_PNGINFO"}
_SAMPLING = (MODEL, CONDITIONING, LATENT)
NODES: dict[str, Node] = {
    n.name: n
    for n in (
        _node(
            "CheckpointLoaderSimple", "Load Checkpoint", "loaders",
            "Loads an installed checkpoint: its model, text encoders and VAE.",
            [Input("ckpt_name", COMBO, values="checkpoints")],
            [MODEL, CLIP, VAE], checkpoint_loader,
        ),
        _node(
            "VAELoader", "Load VAE", "loaders", "Loads an installed VAE file.",
            [Input("vae_name", COMBO, values="vaes")], [VAE], vae_loader,
        ),
        _node(
            "LoraLoader", "Load LoRA", "loaders",
            "Adds a LoRA to a model and its text encoders, each at its own strength.",
            [
                Input("model", MODEL), Input("clip", CLIP),
                Input("lora_name", COMBO, values="loras"),
                Input("strength_model", FLOAT, STRENGTH), Input("strength_clip", FLOAT, STRENGTH),
            ],
            [MODEL, CLIP], lora_loader,
        ),
        _node(
            "LoraLoaderModelOnly", "LoraLoaderModelOnly", "loaders",
            "Adds a LoRA to a model only.",
            [
                Input("model", MODEL), Input("lora_name", COMBO, values="loras"),
                Input("strength_model", FLOAT, STRENGTH),
            ],
            [MODEL], lora_loader_model_only,
        ),
        _node(
            "UNETLoader", "Load Diffusion Model", "advanced/loaders",
            "Standalone UNet files are not run by sfumato (the list is empty): load a "
            "checkpoint with CheckpointLoaderSimple.",
            [
                Input("unet_name", COMBO, values=()),
                Input("weight_dtype", COMBO, values=("default",)),
            ],
            [MODEL], unet_loader,
        ),
        _node(
            "CLIPTextEncode", "CLIP Text Encode (Prompt)", "conditioning",
            "Encodes a prompt; (word:1.2) weighs words as ComfyUI does.",
            [Input("text", STRING, {"multiline": True, "dynamicPrompts": True}),
             Input("clip", CLIP)],
            [CONDITIONING], clip_text_encode,
        ),
        _node(
            "CLIPSetLastLayer", "CLIP Set Last Layer", "conditioning",
            "Reads the text encoder's output this many layers from the end (-2: clip skip 2).",
            [Input("clip", CLIP),
             Input("stop_at_clip_layer", INT, {"default": -1, "min": -12, "max": -1, "step": 1})],
            [CLIP], clip_set_last_layer,
        ),
        _node(
            "ConditioningCombine", "Conditioning (Combine)", "conditioning",
            "Both prompts at once: the sampler averages their predictions.",
            [Input("conditioning_1", CONDITIONING), Input("conditioning_2", CONDITIONING)],
            [CONDITIONING], conditioning_combine,
        ),
        _node(
            "ConditioningZeroOut", "ConditioningZeroOut", "advanced/conditioning",
            "The conditioning with every value zero.",
            [Input("conditioning", CONDITIONING)], [CONDITIONING], conditioning_zero_out,
        ),
        _node(
            "EmptyLatentImage", "Empty Latent Image", "latent",
            "An empty latent of the picture's size, to sample from noise.",
            [
                Input("width", INT, {"default": 512, **SIDE}),
                Input("height", INT, {"default": 512, **SIDE}),
                Input("batch_size", INT,
                      {"default": 1, "min": 1, "max": int(P["batch_size"].maximum)}),
            ],
            [LATENT], empty_latent_image,
        ),
        _node(
            "KSampler", "KSampler", "sampling",
            "Denoises the latent with the model, guided by the positive and negative prompts.",
            [
                Input("model", MODEL), SEED, STEPS, CFG, SAMPLER, SCHEDULER,
                Input("positive", CONDITIONING), Input("negative", CONDITIONING),
                Input("latent_image", LATENT),
                Input("denoise", FLOAT, {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
            ],
            [LATENT], ksampler,
        ),
        _node(
            "KSamplerAdvanced", "KSampler (Advanced)", "sampling",
            "A sampler that may start and stop at any step, with or without adding noise.",
            [
                Input("model", MODEL),
                Input("add_noise", COMBO, values=("enable", "disable")),
                Input("noise_seed", INT, dict(SEED.options)), STEPS, CFG, SAMPLER, SCHEDULER,
                Input("positive", CONDITIONING), Input("negative", CONDITIONING),
                Input("latent_image", LATENT),
                Input("start_at_step", INT, {"default": 0, "min": 0, "max": 10000}),
                Input("end_at_step", INT, {"default": 10000, "min": 0, "max": 10000}),
                Input("return_with_leftover_noise", COMBO, values=("disable", "enable")),
            ],
            [LATENT], ksampler_advanced,
        ),
        _node(
            "VAEDecode", "VAE Decode", "latent", "Latents to pictures.",
            [Input("samples", LATENT), Input("vae", VAE)], [IMAGE], vae_decode,
        ),
        _node(
            "VAEEncode", "VAE Encode", "latent", "Pictures to latents.",
            [Input("pixels", IMAGE), Input("vae", VAE)], [LATENT], vae_encode,
        ),
        _node(
            "VAEEncodeForInpaint", "VAE Encode (for Inpainting)", "latent/inpaint",
            "Pictures to latents, the masked part blanked, the mask kept for the sampler.",
            [
                Input("pixels", IMAGE), Input("vae", VAE), Input("mask", MASK),
                Input("grow_mask_by", INT, {"default": 6, "min": 0, "max": 64, "step": 1}),
            ],
            [LATENT], vae_encode_for_inpaint,
        ),
        _node(
            "SetLatentNoiseMask", "Set Latent Noise Mask", "latent/inpaint",
            "Only the masked part of the latent is denoised; the rest is kept.",
            [Input("samples", LATENT), Input("mask", MASK)], [LATENT], set_latent_noise_mask,
        ),
        _node(
            "LatentUpscale", "Upscale Latent", "latent", "Resizes a latent (pixels: 0 keeps "
            "the proportions).",
            [
                Input("samples", LATENT),
                Input("upscale_method", COMBO, values=LATENT_METHODS),
                Input("width", INT, {"default": 512, "min": 0, "max": SIDE["max"], "step": 8}),
                Input("height", INT, {"default": 512, "min": 0, "max": SIDE["max"], "step": 8}),
                Input("crop", COMBO, values=CROP),
            ],
            [LATENT], latent_upscale,
        ),
        _node(
            "LatentUpscaleBy", "Upscale Latent By", "latent", "Resizes a latent by a factor.",
            [
                Input("samples", LATENT),
                Input("upscale_method", COMBO, values=LATENT_METHODS),
                Input("scale_by", FLOAT, {"default": 1.5, "min": 0.01, "max": 8.0, "step": 0.01}),
            ],
            [LATENT], latent_upscale_by,
        ),
        _node(
            "ImageScale", "Upscale Image", "image/upscaling", "Resizes pictures.",
            [
                Input("image", IMAGE), Input("upscale_method", COMBO, values=IMAGE_METHODS),
                Input("width", INT, {"default": 512, "min": 0, "max": SIDE["max"], "step": 1}),
                Input("height", INT, {"default": 512, "min": 0, "max": SIDE["max"], "step": 1}),
                Input("crop", COMBO, values=CROP),
            ],
            [IMAGE], image_scale,
        ),
        _node(
            "ImageScaleBy", "Upscale Image By", "image/upscaling", "Resizes pictures by a "
            "factor.",
            [
                Input("image", IMAGE), Input("upscale_method", COMBO, values=IMAGE_METHODS),
                Input("scale_by", FLOAT, {"default": 1.0, "min": 0.01, "max": 8.0, "step": 0.01}),
            ],
            [IMAGE], image_scale_by,
        ),
        _node(
            "UpscaleModelLoader", "Load Upscale Model", "loaders",
            "Loads an installed upscaler model (ESRGAN, RealESRGAN, SwinIR, ...).",
            [Input("model_name", COMBO, values="upscale_models")],
            [UPSCALE_MODEL], upscale_model_loader,
        ),
        _node(
            "ImageUpscaleWithModel", "Upscale Image (using Model)", "image/upscaling",
            "Enlarges pictures by the upscaler model's own factor, tile by tile.",
            [Input("upscale_model", UPSCALE_MODEL), Input("image", IMAGE)],
            [IMAGE], image_upscale_with_model,
        ),
        _node(
            "LoadImage", "Load Image", "image",
            "One of your uploaded pictures; its mask is its transparent part.",
            [Input("image", COMBO, {"image_upload": True}, values="images")],
            [IMAGE, MASK], load_image,
        ),
        _node(
            "LoadImageMask", "Load Image (as Mask)", "mask",
            "A mask from one channel of an uploaded picture.",
            [
                Input("image", COMBO, {"image_upload": True}, values="images"),
                Input("channel", COMBO, values=("alpha", "red", "green", "blue")),
            ],
            [MASK], load_image_mask,
        ),
        _node(
            "SaveImage", "Save Image", "image", "Saves the pictures to your history.",
            [Input("images", IMAGE), Input("filename_prefix", STRING, {"default": "ComfyUI"})],
            [], save_image, output_node=True, hidden=_HIDDEN,
        ),
        _node(
            "PreviewImage", "Preview Image", "image",
            "Shows the pictures without keeping them in your history.",
            [Input("images", IMAGE)], [], preview_image, output_node=True, hidden=_HIDDEN,
        ),
    )
}  # fmt: skip
# nodes whose function is told which node it is (samplers report progress, savers name files)
TAKES_NODE_ID = {"KSampler", "KSamplerAdvanced", "SaveImage", "PreviewImage"}
STEPPED = {"KSampler": "steps", "KSamplerAdvanced": "steps"}
