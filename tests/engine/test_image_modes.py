"""Image-to-image and inpainting through the real diffusers pipelines, on tiny models of each
family, with normal and with 9-channel inpainting checkpoints."""

import numpy as np
import pytest
from PIL import Image

from sfumato.engine.checkpoint import inspect_model
from sfumato.engine.generate import generate
from sfumato.engine.images import prepare
from sfumato.engine.loader import load_model
from sfumato.engine.request import GenerationRequest, resolve
from tests.fixtures.tiny_models import tiny_sd15

PICTURE = Image.fromarray(
    np.random.default_rng(0).integers(0, 255, (48, 96, 3), dtype=np.uint8)
)  # 96 x 48: twice as wide as high
MASK = Image.new("L", (96, 48), 0)
MASK.paste(255, (32, 8, 64, 40))  # repaint a box in the middle


def _run(model, mask=None, **fields):
    request = GenerationRequest(
        "a red circle", init_image=PICTURE, mask_image=mask, steps=4, seed=5, **fields
    )
    settings, _ = resolve(request, model.source.family, model.source.effective_defaults)
    inputs = prepare(request.init_image, mask, settings.width, settings.height)
    steps = []
    images = generate(model, settings, inputs, on_step=lambda s: steps.append(s.done))
    return settings, inputs, images, steps


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_image_to_image_keeps_proportions_and_strength_sets_the_steps(arch, loaded):
    settings, _, images, steps = _run(loaded[arch], width=128, strength=0.5)
    assert images[0].size == (128, 64)  # the input is twice as wide as high
    assert steps == [1, 2]  # half of 4 steps: the rest is the picture itself
    again = _run(loaded[arch], width=128, strength=0.5)[2][0]
    assert np.array_equal(np.asarray(again), np.asarray(images[0]))
    stronger = _run(loaded[arch], width=128, strength=1.0)[2][0]
    assert not np.array_equal(np.asarray(stronger), np.asarray(images[0]))


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_inpainting_keeps_every_pixel_outside_the_mask(arch, loaded):
    _, inputs, images, _ = _run(loaded[arch], mask=MASK, width=128)
    result, original = np.asarray(images[0]), np.asarray(inputs.image)
    outside = np.asarray(inputs.mask) == 0
    assert np.array_equal(result[outside], original[outside])
    assert not np.array_equal(result[~outside], original[~outside])


@pytest.fixture(scope="module")
def inpainting_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inpainting") / "tiny-sd15-inpainting"
    tiny_sd15(in_channels=9).save_pretrained(folder)
    source = inspect_model(folder)
    assert source.inpainting
    return load_model(source, device="cpu", backend="torch")


def test_a_9_channel_inpainting_model_does_all_three(inpainting_model):
    _, inputs, images, _ = _run(inpainting_model, mask=MASK, width=128)
    outside = np.asarray(inputs.mask) == 0
    assert np.array_equal(np.asarray(images[0])[outside], np.asarray(inputs.image)[outside])
    assert _run(inpainting_model, width=128)[2][0].size == (128, 64)
    settings, _ = resolve(
        GenerationRequest("a red circle", width=64, height=64, steps=2, seed=1),
        inpainting_model.source.family,
    )
    assert generate(inpainting_model, settings)[0].size == (64, 64)


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_shipped_inpainting_configs_are_the_base_ones_with_a_9_channel_unet(arch):
    import json

    from sfumato.engine.families import get_family

    family = get_family(arch)
    base, inpainting = family.config_dir_for(False), family.config_dir_for(True)
    files = sorted(p.relative_to(base) for p in base.rglob("*.json"))
    assert files == sorted(p.relative_to(inpainting) for p in inpainting.rglob("*.json"))
    for name in files:
        a, b = json.loads((base / name).read_text()), json.loads((inpainting / name).read_text())
        if name.parts[0] == "unet":
            assert (a.pop("in_channels"), b.pop("in_channels")) == (4, 9)
        if name.name == "model_index.json":
            assert b.pop("_class_name") == a.pop("_class_name").replace(
                "Pipeline", "InpaintPipeline"
            )
        assert a == b
