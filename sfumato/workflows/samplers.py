"""ComfyUI's sampler and scheduler names, mapped onto the engine's samplers (diffusers'
schedulers), following diffusers' own table of k-diffusion equivalents.

A sampler name picks the algorithm; a scheduler name picks the noise levels it visits, which
diffusers sets with options of the scheduler (Karras, exponential or beta sigmas, trailing
timesteps). ComfyUI's other samplers (its CFG++ and third-order variants, ``dpm_adaptive``,
...) have no diffusers scheduler, so they are not offered: ``/object_info`` lists only what
runs, and a graph naming another gets a node error with the list.
"""

from __future__ import annotations

import inspect

from sfumato.engine.samplers import Sampler, get_sampler

# ComfyUI's name -> the engine's sampler id; "_gpu" variants differ in where noise is drawn
SAMPLERS = {
    "euler": "euler",
    "euler_ancestral": "euler_a",
    "heun": "heun",
    "dpm_2": "dpm2",
    "dpm_2_ancestral": "dpm2_a",
    "lms": "lms",
    "dpmpp_sde": "dpmpp_sde",
    "dpmpp_sde_gpu": "dpmpp_sde",
    "dpmpp_2m": "dpmpp_2m",
    "dpmpp_2m_sde": "dpmpp_2m_sde",
    "dpmpp_2m_sde_gpu": "dpmpp_2m_sde",
    "lcm": "lcm",
    "deis": "deis",
    "ddim": "ddim",
    "uni_pc": "unipc",
    "uni_pc_bh2": "unipc",
}

# ComfyUI's scheduler name -> scheduler options; "normal" and "simple" keep the model's own
SCHEDULERS = {
    "normal": {},
    "simple": {},
    "karras": {"use_karras_sigmas": True},
    "exponential": {"use_exponential_sigmas": True},
    "sgm_uniform": {"timestep_spacing": "trailing"},
    "beta": {"use_beta_sigmas": True},
    "ddim_uniform": {"timestep_spacing": "leading"},
}


def scheduler_problem(sampler_name: str, scheduler_name: str) -> str | None:
    """Why this pair cannot run, or None."""
    sampler = get_sampler(SAMPLERS[sampler_name])
    cls = _scheduler_class(sampler)
    accepted = inspect.signature(cls.__init__).parameters
    missing = [key for key in SCHEDULERS[scheduler_name] if key not in accepted]
    if not missing:
        return None
    fits = [name for name, options in SCHEDULERS.items() if all(k in accepted for k in options)]
    return (
        f"The scheduler '{scheduler_name}' cannot drive the sampler '{sampler_name}' here; "
        f"with it, use one of: {', '.join(fits)}."
    )


def make_scheduler(sampler_name: str, scheduler_name: str, model):
    """A fresh diffusers scheduler for the pair, on ``model``'s own scheduler config."""
    sampler = get_sampler(SAMPLERS[sampler_name])
    options = dict(model.source.family.scheduler_overrides) | SCHEDULERS[scheduler_name]
    options = {k: v for k, v in options.items() if k not in sampler.options}
    return sampler.make_scheduler(model.scheduler_config, options)


def _scheduler_class(sampler: Sampler):
    import diffusers

    return getattr(diffusers, sampler.scheduler)
