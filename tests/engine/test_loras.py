"""LoRAs in both common layouts on tiny models: applied for one request, gone after it."""

import numpy as np
import pytest
import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file

from sfumato.engine.generate import generate
from sfumato.engine.loras import LoraSpec
from sfumato.engine.request import GenerationRequest, resolve
from sfumato.errors import UnsupportedModel
from tests.fixtures.tiny_models import tiny_sdxl


def _picture(model, loras=None, **fields):
    request = GenerationRequest("a red circle", width=64, height=64, steps=3, seed=2, **fields)
    settings, _ = resolve(request, model.source.family)
    return np.asarray(generate(model, settings, loras=loras)[0])


def kohya_sd15_lora(path, unet, scale=0.5, seed=0):
    """Every attention projection of a tiny SD 1.5 UNet, in kohya's naming, random weights."""
    g = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in unet.named_modules():
        if name.endswith(("to_q", "to_k", "to_v", "to_out.0")) and hasattr(module, "weight"):
            key = "lora_unet_" + name.replace(".", "_")
            out_features, in_features = module.weight.shape
            tensors[f"{key}.lora_down.weight"] = torch.randn(4, in_features, generator=g) * scale
            tensors[f"{key}.lora_up.weight"] = torch.randn(out_features, 4, generator=g) * scale
            tensors[f"{key}.alpha"] = torch.tensor(4.0)
    save_file(tensors, path, metadata={"ss_base_model_version": "sd_v1"})
    return path


def peft_sdxl_lora(path, seed=0):
    """A LoRA in diffusers' own layout, made by PEFT on a tiny SDXL UNet."""
    torch.manual_seed(seed)
    pipe = tiny_sdxl()
    pipe.unet.add_adapter(
        LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=["to_k", "to_v"])
    )
    with torch.no_grad():
        for name, p in pipe.unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # PEFT starts B at zero: give it an effect
    type(pipe).save_lora_weights(
        path.parent, unet_lora_layers=get_peft_model_state_dict(pipe.unet), weight_name=path.name
    )
    return path


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_a_lora_changes_the_picture_and_leaves_nothing_behind(arch, loaded, tmp_path):
    model = loaded[arch]
    path = tmp_path / "style.safetensors"
    if arch == "sd15":
        kohya_sd15_lora(path, model.pipe.unet)
    else:
        peft_sdxl_lora(path)
    before = _picture(model)
    with_lora = _picture(model, [LoraSpec(path, "style", 1.0)])
    assert not np.array_equal(with_lora, before)
    assert np.array_equal(_picture(model), before)  # the same request without it: as before
    assert np.array_equal(_picture(model, [LoraSpec(path, "style", 1.0)]), with_lora)


def test_several_loras_with_their_own_weights_negative_too(loaded, tmp_path):
    model = loaded["sd15"]
    a = kohya_sd15_lora(tmp_path / "a.safetensors", model.pipe.unet, seed=1)
    b = kohya_sd15_lora(tmp_path / "b.safetensors", model.pipe.unet, seed=2)
    one = _picture(model, [LoraSpec(a, "a", 1.0)])
    both = _picture(model, [LoraSpec(a, "a", 1.0), LoraSpec(b, "b", -0.7)])
    assert not np.array_equal(one, both)
    half = _picture(model, [LoraSpec(a, "a", 0.5)])
    assert not np.array_equal(one, half)


def test_a_file_that_is_not_a_lora_is_refused_with_a_sentence(loaded, tmp_path):
    bogus = tmp_path / "bogus.safetensors"
    save_file({"something.else": torch.zeros(2)}, bogus)
    before = _picture(loaded["sd15"])
    with pytest.raises(UnsupportedModel, match="bogus"):
        _picture(loaded["sd15"], [LoraSpec(bogus, "bogus", 1.0)])
    assert np.array_equal(_picture(loaded["sd15"]), before)
