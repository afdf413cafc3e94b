"""diffusers' private attributes sfumato relies on, named, so that a diffusers that drops or
renames one fails here, loudly, rather than making pictures that silently ignore a setting.

Each is used only where diffusers offers no public way (as of 0.42):
- ``_guidance_scale`` (``shortcuts.guidance_cutoff``): ``guidance_scale`` and
  ``do_classifier_free_guidance`` are read-only properties over it; diffusers' own docs and
  its ``SDCFGCutoffCallback`` set it the same way (that callback keeps only one picture's
  prompt and leaves an inpainting pipeline's mask batched, so sfumato has its own).
- ``_callback_tensor_inputs`` (``generate.generate``, for the cutoff): the only place a
  pipeline names the tensors a step callback may change; diffusers' docstrings point there.

Cancelling used diffusers' ``_interrupt`` flag; it raises out of the step callback instead
(``tests/engine/test_generate.py``). pyproject.toml pins diffusers to the minor versions these
tests ran on: a new one is tried by widening the pin and running them.
"""

import re
from importlib.metadata import version
from pathlib import Path

import pytest
import torch
from diffusers import (
    StableDiffusionImg2ImgPipeline,
    StableDiffusionXLImg2ImgPipeline,
)
from packaging.requirements import Requirement

import sfumato
from sfumato.engine.loader import PIPELINES

# attribute -> where sfumato uses it
PRIVATE = {
    "_guidance_scale": "sfumato/engine/shortcuts.py",
    "_callback_tensor_inputs": "sfumato/engine/generate.py",
}
# every pipeline class a request runs: the loader's and the image-to-image ones made from them
CLASSES = [*PIPELINES.values(), StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline]
PACKAGE = Path(sfumato.__file__).parent
ROOT = PACKAGE.parent


def test_every_private_diffusers_attribute_sfumato_uses_is_named_here():
    """A private attribute of a pipeline used anywhere in sfumato, and where."""
    used = {}
    pattern = re.compile(r"\b(?:pipe|pipeline)\.(_[a-z]\w*)")
    for path in PACKAGE.rglob("*.py"):
        for name in pattern.findall(path.read_text()):
            used.setdefault(name, set()).add(path.relative_to(ROOT).as_posix())
    assert used == {name: {where} for name, where in PRIVATE.items()}


def test_the_installed_diffusers_is_the_pinned_one():
    """The range in pyproject.toml is the one these tests were run on."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    line = re.search(r'"(diffusers[^"]*)"', pyproject).group(1)
    requirement = Requirement(line)
    assert requirement.specifier.contains(version("diffusers")), requirement
    assert "<" in str(requirement.specifier), "diffusers is pinned below its next minor version"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_pipeline_names_its_step_tensors_in_callback_tensor_inputs(cls):
    names = cls._callback_tensor_inputs
    assert isinstance(names, list) and {"latents", "prompt_embeds"} <= set(names)


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_setting_guidance_scale_mid_picture_turns_guidance_off(arch, loaded):
    """What the guidance cutoff relies on: ``do_classifier_free_guidance`` reads
    ``_guidance_scale`` at each step, and a step callback may set it and trim the batched
    tensors it names in ``_callback_tensor_inputs``."""
    pipe = loaded[arch].pipe
    batches = []
    hook = pipe.unet.register_forward_pre_hook(lambda m, args: batches.append(args[0].shape[0]))

    def cut(pipeline, step, timestep, tensors):
        if step == 0:
            pipeline._guidance_scale = 1.0
            for name, value in tensors.items():
                if name != "latents" and torch.is_tensor(value) and value.shape[0] == 2:
                    tensors[name] = value.chunk(2)[1]
        return tensors

    try:
        pipe(
            "a red circle",
            width=64,
            height=64,
            num_inference_steps=3,
            guidance_scale=7.0,
            generator=torch.Generator().manual_seed(0),
            callback_on_step_end=cut,
            callback_on_step_end_tensor_inputs=pipe._callback_tensor_inputs,
            output_type="latent",
        )
    finally:
        hook.remove()
    assert batches == [2, 1, 1]
    assert pipe.guidance_scale == 1.0 and not pipe.do_classifier_free_guidance
