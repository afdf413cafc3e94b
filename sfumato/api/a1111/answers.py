"""What A1111's routes answer: models by their titles, the ``info`` of finished pictures, and
a picture's infotext for ``png-info``."""

from __future__ import annotations

import io
import json
import re

from sfumato import __version__
from sfumato.catalog.scan import CHECKPOINT, Entry
from sfumato.engine.request import GenerationSettings
from sfumato.errors import ModelNotFound
from sfumato.jobs.submit import default_models
from sfumato.metadata.read import GenerationInfo, png_texts
from sfumato.store.site import read_site
from sfumato.store.tables import Image, User
from sfumato.studio import Studio

from .fields import Txt2ImgRequest, a1111_names

# "name.safetensors [6ce0161689]": how A1111 titles a checkpoint; clients send titles back
_TITLE = re.compile(r"^(?P<name>.*?)(?:\.(?:safetensors|ckpt|pt|bin))?(?: \[[0-9a-fA-F]{8,64}\])?$")


def models(studio: Studio) -> list[Entry]:
    """The checkpoints a client may choose: every version that is not hidden or broken."""
    listed = studio.catalog().listing(CHECKPOINT, all_versions=True)
    return [e for e in listed if not e.broken and not e.card.hidden]


def short_hash(studio: Studio, entry: Entry) -> str | None:
    """A1111's short hash, once sfumato has hashed the file (a generation does); never
    computed here, so listing a big collection reads no weights."""
    full = studio.models().hashes.known(entry.path) if entry.path.is_file() else None
    return full[:10] if full else None


def title(studio: Studio, entry: Entry) -> str:
    """``name [hash]``, or the name alone until the hash is known (as A1111 titles it)."""
    digest = short_hash(studio, entry)
    return f"{entry.display} [{digest}]" if digest else entry.display


def model_item(studio: Studio, entry: Entry) -> dict:
    full = studio.models().hashes.known(entry.path) if entry.path.is_file() else None
    return {
        "title": title(studio, entry),
        "model_name": entry.display,
        "hash": full[:10] if full else None,
        "sha256": full,
        "filename": entry.path.name,  # never the server's folders
        "config": None,
    }


def find_model(studio: Studio, text: str) -> Entry:
    """The checkpoint a client means: a title from ``/sd-models``, a name, or a hash."""
    models_ = studio.models()
    catalog = studio.catalog()
    for query in dict.fromkeys((text.strip(), _TITLE.match(text.strip())["name"])):
        try:
            return catalog.resolve(query, CHECKPOINT, hashes=models_.hashes)
        except ModelNotFound as e:
            error = e
    raise ModelNotFound(f"{error.message} (GET /sdapi/v1/sd-models lists their titles)")


def current_model(studio: Studio, user: User) -> Entry:
    """What A1111 calls the loaded model: the user's default, else the server's, else the
    catalog's own choice, else the first listed (A1111 always has one)."""
    catalog = studio.catalog()
    with studio.db.session() as session:
        site = read_site(session)
    for name in default_models(user, site):
        try:
            return catalog.resolve(name, CHECKPOINT, hashes=studio.models().hashes)
        except ModelNotFound:
            pass  # removed since it was set: passed over, as the queue passes over it
    if (entry := catalog.default_checkpoint()) is not None:
        return entry
    listed = models(studio)
    if not listed:
        raise ModelNotFound("No model is installed on this server; an admin adds models.")
    return listed[0]


def infotexts(contents: list[bytes]) -> list[str]:
    """Each picture's A1111 infotext, read back from the PNG itself."""
    return [png_texts(io.BytesIO(content)).get("parameters", "") for content in contents]


def info(body: Txt2ImgRequest, images: list[Image], texts: list[str], warnings: list[str]) -> str:
    """``info``: A1111's JSON string, about the pictures as they were made."""
    settings = [GenerationSettings.from_dict(image.settings) for image in images]
    first = settings[0] if settings else None
    seeds = [s.seed for s in settings]
    subseed = body.subseed if body.subseed >= 0 else (seeds[0] if seeds else -1)
    sampler, schedule = a1111_names(first.sampler) if first else (None, None)
    model = (images[0].model or {}) if images else {}
    value = {
        "prompt": first.prompt if first else body.prompt,
        "all_prompts": [s.prompt for s in settings],
        "negative_prompt": first.negative_prompt if first else body.negative_prompt,
        "all_negative_prompts": [s.negative_prompt for s in settings],
        "seed": seeds[0] if seeds else body.seed,
        "all_seeds": seeds,
        "subseed": subseed,
        "all_subseeds": [subseed + i for i in range(len(seeds))],
        "subseed_strength": 0,
        "width": first.width if first else body.width,
        "height": first.height if first else body.height,
        "sampler_name": sampler,
        "cfg_scale": first.guidance if first else body.cfg_scale,
        "steps": first.steps if first else body.steps,
        "batch_size": body.batch_size,
        "restore_faces": False,
        "face_restoration_model": None,
        "sd_model_name": model.get("name"),
        "sd_model_hash": model.get("hash"),
        "sd_vae_name": None,
        "sd_vae_hash": None,
        "seed_resize_from_w": -1,
        "seed_resize_from_h": -1,
        "denoising_strength": denoising_of(first),
        "extra_generation_params": {"Schedule type": schedule} if schedule != "Automatic" else {},
        "index_of_first_image": 0,
        "infotexts": texts,
        "styles": [],
        "job_timestamp": images[0].created_at.strftime("%Y%m%d%H%M%S") if images else "",
        "clip_skip": first.clip_skip if first else 1,
        "is_using_inpainting_conditioning": False,
        "version": f"sfumato {__version__}",
        "warnings": warnings,  # sfumato's: what was ignored that A1111 would have done
    }
    return json.dumps(value, ensure_ascii=False)


def denoising_of(settings: GenerationSettings | None) -> float | None:
    """A1111's one denoising_strength: image-to-image's, or the hires fix's."""
    if settings is None:
        return None
    return settings.strength if settings.strength is not None else settings.denoising_strength


def parameters_of(found: GenerationInfo) -> dict:
    """A picture's settings under A1111's infotext keys, as png-info's ``parameters``."""
    keys = {
        "Prompt": found.prompt,
        "Negative prompt": found.negative_prompt,
        "Steps": found.steps,
        "Sampler": found.sampler,
        "Schedule type": found.scheduler,
        "CFG scale": found.guidance,
        "Seed": found.seed,
        "Size-1": found.width,
        "Size-2": found.height,
        "Model hash": found.model_hash,
        "Model": found.model,
        "Denoising strength": found.strength or found.denoising_strength,
        "Clip skip": found.clip_skip,
        "Hires upscale": found.hr_scale,
        "Hires resize-1": found.hr_resize_x,
        "Hires resize-2": found.hr_resize_y,
        "Hires steps": found.hr_second_pass_steps,
        "Hires upscaler": found.hr_upscaler,
    }
    extra = {k: v for k, v in found.extra.items() if isinstance(v, str | int | float)}
    return {k: v for k, v in keys.items() if v not in (None, "")} | extra


def infotext_of(found: GenerationInfo) -> str:
    """An A1111 infotext for a picture that has none of its own (ComfyUI's, InvokeAI's)."""
    fields = {
        "Steps": found.steps,
        "Sampler": found.sampler,
        "CFG scale": found.guidance,
        "Seed": found.seed,
        "Size": f"{found.width}x{found.height}" if found.width and found.height else None,
        "Model": found.model,
    }
    lines = [found.prompt]
    if found.negative_prompt:
        lines.append(f"Negative prompt: {found.negative_prompt}")
    lines.append(", ".join(f"{k}: {v}" for k, v in fields.items() if v not in (None, "")))
    return "\n".join(lines)
