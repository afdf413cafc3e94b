import pickle
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from sfumato.engine.checkpoint import inspect_model
from sfumato.errors import ModelNotFound, UnsupportedModel
from tests.fixtures.original_layout import pipeline_to_original
from tests.fixtures.tiny_models import tiny_sd15


def test_single_files_are_recognised_from_their_tensors(tiny_models):
    sd = inspect_model(tiny_models["sd15"]["single"])
    xl = inspect_model(tiny_models["sdxl"]["single"])
    assert (sd.layout, sd.family.id, sd.inpainting) == ("single_file", "sd15", False)
    assert (xl.layout, xl.family.id) == ("single_file", "sdxl")


def test_diffusers_folders_are_recognised_from_their_configs(tiny_models):
    assert inspect_model(tiny_models["sd15"]["folder"]).family.id == "sd15"
    xl = inspect_model(tiny_models["sdxl"]["folder"])
    assert (xl.layout, xl.family.id, xl.name) == ("diffusers", "sdxl", "tiny-sdxl")


def test_family_does_not_come_from_the_file_name(tiny_models, tmp_path):
    misleading = tmp_path / "sdxl_turbo_xl_v2.safetensors"
    shutil.copy(tiny_models["sd15"]["single"], misleading)
    assert inspect_model(misleading).family.id == "sd15"


def test_lightning_merges_are_told_by_name_or_flag_with_their_step_count(tiny_models, tmp_path):
    merged = tmp_path / "juggernautXL_lightning_8steps.safetensors"
    shutil.copy(tiny_models["sdxl"]["single"], merged)
    source = inspect_model(merged)
    assert source.family.id == "sdxl-lightning" and source.effective_defaults.steps == 8
    flagged = inspect_model(tiny_models["sdxl"]["single"], family_hint="sdxl-lightning")
    assert flagged.family.id == "sdxl-lightning" and flagged.effective_defaults.steps == 4
    with_unet = inspect_model(
        tiny_models["sdxl"]["single"], lightning=tmp_path / "sdxl_lightning_2step_unet.safetensors"
    )
    assert with_unet.family.id == "sdxl-lightning" and with_unet.effective_defaults.steps == 2


def test_family_hint_must_fit_the_architecture(tiny_models):
    with pytest.raises(UnsupportedModel, match="SDXL model, not Stable Diffusion 1.5"):
        inspect_model(tiny_models["sdxl"]["single"], family_hint="sd15")
    with pytest.raises(UnsupportedModel, match="goes with an SDXL checkpoint"):
        inspect_model(tiny_models["sd15"]["single"], lightning=tiny_models["sd15"]["single"])


def test_inpainting_checkpoints_are_recognised(tmp_path):
    path = tmp_path / "inpaint.safetensors"
    save_file(pipeline_to_original(tiny_sd15(in_channels=9)), path)
    assert inspect_model(path).inpainting


def _keys_only(path, *keys):
    save_file({k: torch.zeros(1) for k in keys}, path)
    return path


@pytest.mark.parametrize(
    "keys, words",
    [
        (
            [
                "model.diffusion_model.input_blocks.0.0.weight",
                "cond_stage_model.model.token_embedding.weight",
            ],
            "Stable Diffusion 2.x",
        ),
        (
            [
                "model.diffusion_model.input_blocks.0.0.weight",
                "conditioner.embedders.0.model.text_projection",
            ],
            "SDXL refiner",
        ),
        (["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"], "is a LoRA"),
        (["conv_in.weight", "down_blocks.0.resnets.0.conv1.weight"], "--lightning"),
        (["model.diffusion_model.input_blocks.0.0.weight"], "no text encoder"),
        (["foo.bar", "baz.qux"], "--config DIR"),
    ],
)
def test_unrecognised_files_say_what_was_found(tmp_path, keys, words):
    path = _keys_only(tmp_path / "mystery.safetensors", *keys)
    with pytest.raises(UnsupportedModel) as e:
        inspect_model(path)
    assert words in e.value.message and "mystery.safetensors" in e.value.message


def test_truncated_and_garbage_files_are_refused(tiny_models, tmp_path):
    data = tiny_models["sd15"]["single"].read_bytes()
    truncated = tmp_path / "half.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"<html>404 Not Found</html>" * 40)
    for path in (truncated, garbage):
        with pytest.raises(UnsupportedModel, match="truncated or corrupt"):
            inspect_model(path)


def test_ckpt_with_plain_tensors_loads_safely(tiny_models, tmp_path):
    ckpt = tmp_path / "old-model.ckpt"
    torch.save({"state_dict": load_file(tiny_models["sd15"]["single"])}, ckpt)
    assert inspect_model(ckpt).family.id == "sd15"


class _Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_ckpt_that_would_run_code_is_refused_and_never_unpickled(tmp_path, capsys):
    ckpt = tmp_path / "evil.ckpt"
    ckpt.write_bytes(pickle.dumps({"state_dict": {"x": _Exploit()}}))
    with pytest.raises(UnsupportedModel, match="Convert it to .safetensors"):
        inspect_model(ckpt)
    assert "this must never run" not in capsys.readouterr().out


def test_missing_paths_and_other_files(tmp_path):
    with pytest.raises(ModelNotFound):
        inspect_model(tmp_path / "nope.safetensors")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UnsupportedModel, match=".safetensors, .ckpt"):
        inspect_model(tmp_path / "notes.txt")
    with pytest.raises(UnsupportedModel, match="no model_index.json"):
        inspect_model(tmp_path)
