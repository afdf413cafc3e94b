"""Samplers by the names users know (A1111, Dezgo's API), each a diffusers scheduler recipe.

The mapping follows diffusers' own table of A1111/k-diffusion equivalents. ``k_`` ids are the
k-diffusion names of the Stability/Dezgo APIs (``k_lms`` is LMS), not "Karras".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sfumato.errors import InvalidRequest


@dataclass(frozen=True)
class Sampler:
    id: str  # snake-case id, as in Dezgo's API
    name: str  # A1111's sampler name
    scheduler: str  # diffusers scheduler class
    options: dict = field(default_factory=dict)
    schedule: str | None = None  # A1111's "Schedule type", when not the sampler's own
    aliases: tuple[str, ...] = ()

    def make_scheduler(self, base_config: dict, overrides: dict | None = None):
        """A fresh scheduler from the model's own scheduler config (betas, prediction type)."""
        import diffusers  # here, not at the top: listing samplers should not load diffusers

        cls = getattr(diffusers, self.scheduler)
        return cls.from_config(base_config, **self.options, **(overrides or {}))


KARRAS = {"use_karras_sigmas": True}
SDE = {"algorithm_type": "sde-dpmsolver++"}

SAMPLERS: list[Sampler] = [
    Sampler("euler", "Euler", "EulerDiscreteScheduler", aliases=("k_euler",)),
    Sampler(
        "euler_a",
        "Euler a",
        "EulerAncestralDiscreteScheduler",
        aliases=("euler_ancestral", "k_euler_a", "k_euler_ancestral"),
    ),
    Sampler("heun", "Heun", "HeunDiscreteScheduler", aliases=("k_heun",)),
    Sampler("dpm2", "DPM2", "KDPM2DiscreteScheduler", aliases=("dpm_2", "k_dpm_2")),
    Sampler(
        "dpm2_karras",
        "DPM2 Karras",
        "KDPM2DiscreteScheduler",
        KARRAS,
        "Karras",
        aliases=("dpm_2_karras",),
    ),
    Sampler(
        "dpm2_a",
        "DPM2 a",
        "KDPM2AncestralDiscreteScheduler",
        aliases=("dpm_2_a", "dpm2_ancestral", "dpm_2_ancestral", "k_dpm_2_a", "k_dpm_2_ancestral"),
    ),
    Sampler(
        "dpm2_a_karras",
        "DPM2 a Karras",
        "KDPM2AncestralDiscreteScheduler",
        KARRAS,
        "Karras",
        aliases=("dpm_2_a_karras",),
    ),
    Sampler("dpmpp_2m", "DPM++ 2M", "DPMSolverMultistepScheduler", aliases=("k_dpmpp_2m",)),
    Sampler("dpmpp_2m_karras", "DPM++ 2M Karras", "DPMSolverMultistepScheduler", KARRAS, "Karras"),
    Sampler("dpmpp_sde", "DPM++ SDE", "DPMSolverSinglestepScheduler"),
    Sampler(
        "dpmpp_sde_karras", "DPM++ SDE Karras", "DPMSolverSinglestepScheduler", KARRAS, "Karras"
    ),
    Sampler("dpmpp_2m_sde", "DPM++ 2M SDE", "DPMSolverMultistepScheduler", SDE),
    Sampler(
        "dpmpp_2m_sde_karras",
        "DPM++ 2M SDE Karras",
        "DPMSolverMultistepScheduler",
        SDE | KARRAS,
        "Karras",
    ),
    Sampler("ddim", "DDIM", "DDIMScheduler"),
    Sampler("lms", "LMS", "LMSDiscreteScheduler", aliases=("k_lms",)),
    Sampler("lms_karras", "LMS Karras", "LMSDiscreteScheduler", KARRAS, "Karras"),
    Sampler("pndm", "PNDM", "PNDMScheduler", aliases=("plms",)),
    Sampler("unipc", "UniPC", "UniPCMultistepScheduler"),
    Sampler("deis", "DEIS", "DEISMultistepScheduler"),
    Sampler("lcm", "LCM", "LCMScheduler"),
]

# "auto" (Dezgo's default) means the model's recommended sampler; it is resolved by the caller.
AUTO = "auto"


def _key(text: str) -> str:
    """'DPM++ 2M Karras' -> 'dpmpp_2m_karras'; 'Euler a' -> 'euler_a'."""
    text = text.strip().lower().replace("++", "pp").replace("+", "p")
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


_INDEX: dict[str, Sampler] = {}
for _s in SAMPLERS:
    for _name in (_s.id, _s.name, *_s.aliases):
        _INDEX[_key(_name)] = _s


def get_sampler(name: str) -> Sampler:
    sampler = _INDEX.get(_key(name))
    if sampler is None:
        names = ", ".join(s.name for s in SAMPLERS)
        raise InvalidRequest(
            f"Unknown sampler '{name}'. Choose one of: {names} (or their ids, "
            "see `sfumato samplers`)."
        )
    return sampler
