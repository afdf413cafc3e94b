import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file

from sfumato.engine.checkpoint import inspect_model
from sfumato.engine.device import cpu_has_native_bf16
from sfumato.engine.generate import generate
from sfumato.engine.loader import load_model
from sfumato.engine.request import GenerationRequest, resolve
from sfumato.errors import UnsupportedModel
from tests.fixtures.full_size import write_full_size_checkpoint
from tests.fixtures.tiny_models import tiny_sd15, tiny_sdxl

COMPONENTS = {
    "sd15": ["unet", "vae", "text_encoder"],
    "sdxl": ["unet", "vae", "text_encoder", "text_encoder_2"],
}


def _state(module) -> dict:
    return {k.removeprefix("text_model."): v for k, v in module.state_dict().items()}


@pytest.mark.parametrize("arch, build", [("sd15", tiny_sd15), ("sdxl", tiny_sdxl)])
def test_single_file_loads_every_weight_of_the_original(arch, build, loaded):
    reference = build()  # the pipeline the single file was written from
    for name in COMPONENTS[arch]:
        want, got = _state(getattr(reference, name)), _state(getattr(loaded[arch].pipe, name))
        assert want.keys() == got.keys(), name
        for key in want:
            # exactly the original, in the dtype the CPU loads in (bf16 where it is native)
            assert torch.equal(want[key].to(got[key].dtype), got[key]), f"{name}.{key}"


def _one_image(model, **request):
    settings, _ = resolve(
        GenerationRequest(
            "a red circle on a blue background", width=64, height=64, steps=3, seed=5, **request
        ),
        model.source.family,
    )
    return np.asarray(generate(model, settings)[0])


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_folder_and_single_file_of_one_model_give_the_same_pixels(arch, tiny_models, loaded):
    folder = load_model(inspect_model(tiny_models[arch]["folder"]))
    assert np.array_equal(_one_image(folder), _one_image(loaded[arch]))


def test_shipped_sd15_configs_fit_a_full_size_original_checkpoint(tmp_path):
    path = write_full_size_checkpoint("sd15", tmp_path / "v1-5-pruned-emaonly.safetensors")
    model = load_model(inspect_model(path))  # no --config: the configs sfumato ships
    assert model.pipe.unet.config.block_out_channels == [320, 640, 1280, 1280]
    assert sum(p.numel() for p in model.pipe.unet.parameters()) == 859_520_964
    assert _one_image(model).shape == (64, 64, 3)


@pytest.mark.slow
def test_shipped_sdxl_configs_fit_a_full_size_original_checkpoint(tmp_path):
    path = write_full_size_checkpoint("sdxl", tmp_path / "sd_xl_base_1.0.safetensors")
    # the CPU's own dtype: bf16 where it has it (7 GB); fp32 elsewhere (14 GB), since PyTorch's
    # emulated bf16 takes 2 minutes for this one small picture
    model = load_model(inspect_model(path))
    assert sum(p.numel() for p in model.pipe.unet.parameters()) == 2_567_463_684
    assert sum(p.numel() for p in model.pipe.text_encoder_2.parameters()) == 694_659_840
    assert _one_image(model).shape == (64, 64, 3)


def test_bf16_asked_of_a_cpu_without_it_says_it_is_emulated(tiny_models, caplog):
    folder = inspect_model(tiny_models["sd15"]["folder"])
    load_model(folder, device="cpu", dtype="fp32")
    assert "emulates" not in caplog.text
    load_model(folder, device="cpu", dtype="bf16")
    # where the CPU multiplies bf16 itself there is nothing to say
    assert ("PyTorch emulates it" in caplog.text) == (not cpu_has_native_bf16())


def test_config_folder_must_be_a_diffusers_folder(tiny_models, tmp_path):
    with pytest.raises(UnsupportedModel, match="no model_index.json"):
        load_model(inspect_model(tiny_models["sd15"]["single"]), config_dir=tmp_path)


def test_tiny_checkpoint_against_full_size_configs_fails_with_a_sentence(tiny_models):
    with pytest.raises(UnsupportedModel, match="Could not load tiny-sd15"):
        load_model(inspect_model(tiny_models["sd15"]["single"]))  # no --config


def _lightning_unet_file(path):
    torch.manual_seed(123)  # other weights than the base UNet, the same architecture
    unet = UNet2DConditionModel.from_config(tiny_sdxl().unet.config)
    save_file(unet.state_dict(), path)
    return unet


def test_lightning_unet_file_replaces_the_sdxl_unet(tiny_models, loaded, tmp_path):
    file = tmp_path / "sdxl_lightning_4step_unet.safetensors"
    lightning_unet = _lightning_unet_file(file)
    source = inspect_model(tiny_models["sdxl"]["single"], lightning=file)
    model = load_model(source, config_dir=tiny_models["sdxl"]["config"], lightning=file)
    for key, value in lightning_unet.state_dict().items():
        got = model.pipe.unet.state_dict()[key]
        assert torch.equal(got, value.to(got.dtype)), key
    image = _one_image(model)
    assert model.pipe.scheduler.config.timestep_spacing == "trailing"
    assert not np.array_equal(image, _one_image(loaded["sdxl"]))


def _lightning_lora_file(path):
    unet = tiny_sdxl().unet
    unet.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=4,
            init_lora_weights=False,
            target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        )
    )
    save_file({f"unet.{k}": v for k, v in get_peft_model_state_dict(unet).items()}, path)


def test_lightning_lora_is_fused_into_the_unet(tiny_models, loaded, tmp_path):
    file = tmp_path / "sdxl_lightning_8step_lora.safetensors"
    _lightning_lora_file(file)
    source = inspect_model(tiny_models["sdxl"]["single"], lightning=file)
    assert source.effective_defaults.steps == 8
    model = load_model(source, config_dir=tiny_models["sdxl"]["config"], lightning=file)
    weights = model.pipe.unet.state_dict()
    assert not any("lora" in k for k in weights)  # fused in, adapter layers gone
    base = loaded["sdxl"].pipe.unet.state_dict()
    changed = [k for k in base if "attn1.to_q" in k and not torch.equal(base[k], weights[k])]
    assert changed


def test_a_file_that_is_neither_lightning_unet_nor_lora_is_refused(tiny_models, tmp_path):
    file = tmp_path / "random.safetensors"
    save_file({"conv_in.weight": torch.zeros(3, 3)}, file)
    source = inspect_model(tiny_models["sdxl"]["single"], lightning=file)
    with pytest.raises(UnsupportedModel, match="neither an SDXL-Lightning LoRA nor a UNet"):
        load_model(source, config_dir=tiny_models["sdxl"]["config"], lightning=file)
