"""The A1111 ``parameters`` text: the de-facto standard most SD tools write and read.

    a prompt
    Negative prompt: a negative prompt
    Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 42, Size: 512x512,
    Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Version: sfumato 0.1.0

(the last line is one line). Values holding a comma, colon or quote are JSON-quoted, as A1111
does, so readers that split on ", " and ": " keep them whole.
"""

from __future__ import annotations

import json

from sfumato import __version__
from sfumato.engine.families import get_family
from sfumato.engine.parameters import PARAMETERS
from sfumato.engine.request import GenerationSettings
from sfumato.engine.samplers import get_sampler

# written first, always, in A1111's order (with the sampler and size, which are not plain rows)
ALWAYS = ("Steps", "CFG scale", "Seed")
OPTIONAL = tuple(p for p in PARAMETERS if p.a1111 and p.a1111 not in ALWAYS)


def _quote(value: object) -> str:
    text = str(value)
    if any(c in text for c in ',:"\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


def format_parameters(
    settings: GenerationSettings, model_name: str | None = None, model_hash: str | None = None
) -> str:
    sampler = get_sampler(settings.sampler)
    family = get_family(settings.family)
    fields: dict[str, object] = {
        "Steps": settings.steps,
        "Sampler": sampler.name.removesuffix(" Karras") if sampler.schedule else sampler.name,
    }
    schedule = sampler.schedule or family.schedule_label
    if schedule:
        fields["Schedule type"] = schedule
    fields |= {
        "CFG scale": f"{settings.guidance:g}",
        "Seed": settings.seed,
        "Size": f"{settings.width}x{settings.height}",
    }
    if model_hash:
        fields["Model hash"] = model_hash
    if model_name:
        fields["Model"] = model_name
    # the rest only where they are used (the opt-in shortcuts change the pixels, so a picture
    # says when it was made with them)
    for p in OPTIONAL:
        value = getattr(settings, p.name)
        if value is not None and value != p.neutral:
            fields[p.a1111] = p.number(value)
    if settings.hr_resize_x or settings.hr_resize_y:  # in place of "Hires upscale", as A1111
        fields["Hires resize"] = f"{settings.hr_resize_x}x{settings.hr_resize_y}"
    if hashes := [f"{name}: {digest}" for name, _, digest in settings.loras if digest]:
        fields["Lora hashes"] = ", ".join(hashes)
    if settings.prompt_template and settings.prompt_template != settings.prompt:
        fields["Template"] = settings.prompt_template  # as the Dynamic Prompts extension says
    fields["Version"] = f"sfumato {__version__}"
    lines = [settings.prompt]
    if settings.negative_prompt:
        lines.append(f"Negative prompt: {settings.negative_prompt}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in fields.items()))
    return "\n".join(lines)
