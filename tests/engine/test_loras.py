"""LoRAs in the layouts their tools write, on tiny models: applied for one request, gone after it.

The files come from ``tests/fixtures/lora_files.py`` (kohya sd-scripts, LyCORIS, diffusers/PEFT).
A text encoder's LoRA is checked on the prompt embeddings sfumato's own conditioning makes,
the UNet's on the pixels; after the request both are exactly as before it.
"""

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from PIL import Image
from safetensors.torch import load_file, save_file
from transformers import CLIPTextModel

from sfumato.engine.conditioning import encode_prompts
from sfumato.engine.generate import generate
from sfumato.engine.loras import LoraSpec, applied
from sfumato.engine.request import GenerationRequest, resolve
from sfumato.errors import UnsupportedModel
from tests.fixtures import lora_files
from tests.fixtures.tiny_models import _text_config, tiny_sd15, tiny_sdxl


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


# ---- the layouts users download, exactly as their tools write them


def _embeddings(model, loras=None, prompt="a red circle, (sharp:1.2)", clip_skip=1):
    """What sfumato's conditioning hands the pipeline, with ``loras`` applied."""
    with applied(model.pipe, loras or []), torch.inference_mode():
        return {
            k: v.clone() for k, v in encode_prompts(model.pipe, prompt, "blurry", clip_skip).items()
        }


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _every_layer_lands(model, path) -> None:
    """Each layer the file holds becomes one LoRA layer of the model (none dropped on the way)."""
    in_file = {key.split(".")[0] for key in load_file(path)}
    networks = [model.pipe.unet, model.pipe.text_encoder]
    networks += [model.pipe.text_encoder_2] if hasattr(model.pipe, "text_encoder_2") else []
    with applied(model.pipe, [LoraSpec(path, "count", 1.0)]):
        loaded = [n for net in networks for n, _ in net.named_modules() if n.endswith(".lora_A")]
    assert len(loaded) == len(in_file)


def _kohya(model, path, **options):
    pipe = model.pipe
    encoders = [pipe.text_encoder] + (
        [pipe.text_encoder_2] if hasattr(pipe, "text_encoder_2") else []
    )
    return lora_files.kohya_lora(path, pipe.unet, encoders, sdxl=len(encoders) == 2, **options)


@pytest.mark.parametrize(
    ("options", "clip_skip"),
    [
        ({}, 1),  # sd-scripts' defaults: every attention and MLP layer, fp16, alpha 1 of rank 4
        ({"text_layers": ("q_proj", "v_proj")}, 2),  # the layout that failed: no out_proj, MLP
        ({"dtype": torch.bfloat16, "alpha": 8.0, "convs": True}, 1),  # conv_dim too, bf16
    ],
    ids=["kohya", "kohya-te-q-v-only", "kohya-conv-bf16"],
)
def test_a_kohya_sd15_lora_with_text_encoder_changes_prompt_and_pixels_then_leaves(
    options, clip_skip, loaded, tmp_path
):
    model = loaded["sd15"]
    path = _kohya(model, tmp_path / "style.safetensors", **options)
    lora = [LoraSpec(path, "style", 1.0)]
    embeddings = _embeddings(model, clip_skip=clip_skip)
    pixels = _picture(model, clip_skip=clip_skip)
    _every_layer_lands(model, path)

    with_lora = _embeddings(model, lora, clip_skip=clip_skip)
    assert not torch.equal(with_lora["prompt_embeds"], embeddings["prompt_embeds"])
    negative = "negative_prompt_embeds"
    assert not torch.equal(with_lora[negative], embeddings[negative])
    assert not np.array_equal(_picture(model, lora, clip_skip=clip_skip), pixels)

    # after the request: the same embeddings and pixels as before, to the bit
    assert _same(_embeddings(model, clip_skip=clip_skip), embeddings)
    assert np.array_equal(_picture(model, clip_skip=clip_skip), pixels)
    assert not any("lora" in name for name, _ in model.pipe.text_encoder.named_modules())
    assert not any("lora" in name for name, _ in model.pipe.unet.named_modules())


def test_the_text_encoders_lora_follows_its_weight(loaded, tmp_path):
    model = loaded["sd15"]
    # text encoder only: what the prompt turns into is all the LoRA changes
    path = lora_files.kohya_lora(tmp_path / "te.safetensors", None, [model.pipe.text_encoder])
    base = _embeddings(model)["prompt_embeds"]
    full = _embeddings(model, [LoraSpec(path, "te", 1.0)])["prompt_embeds"]
    half = _embeddings(model, [LoraSpec(path, "te", 0.5)])["prompt_embeds"]
    off = _embeddings(model, [LoraSpec(path, "te", 0.0)])["prompt_embeds"]
    assert torch.equal(off, base)
    assert (half - base).abs().mean() < (full - base).abs().mean()
    assert not torch.equal(half, base)
    # beside a UNet-only LoRA, each with its own weight
    unet_only = kohya_sd15_lora(tmp_path / "unet.safetensors", model.pipe.unet, seed=3)
    both = [LoraSpec(path, "te", -0.7), LoraSpec(unet_only, "unet", 1.0)]
    assert not torch.equal(_embeddings(model, both)["prompt_embeds"], base)
    assert not np.array_equal(_picture(model, both), _picture(model, [both[1]]))
    assert torch.equal(_embeddings(model)["prompt_embeds"], base)


@pytest.mark.parametrize("algo", ["lora", "locon"])
def test_a_kohya_sdxl_lora_changes_both_text_encoders_and_the_pixels(algo, loaded, tmp_path):
    model = loaded["sdxl"]
    path = _kohya(model, tmp_path / "xl.safetensors", algo=algo)  # SGM block names
    lora = [LoraSpec(path, "xl", 1.0)]
    embeddings, pixels = _embeddings(model), _picture(model)
    _every_layer_lands(model, path)
    with_lora = _embeddings(model, lora)
    width_1 = model.pipe.text_encoder.config.hidden_size
    before, after = embeddings["prompt_embeds"], with_lora["prompt_embeds"]
    assert not torch.equal(after[..., :width_1], before[..., :width_1])  # lora_te1_
    assert not torch.equal(after[..., width_1:], before[..., width_1:])  # lora_te2_
    assert not torch.equal(with_lora["pooled_prompt_embeds"], embeddings["pooled_prompt_embeds"])
    assert not np.array_equal(_picture(model, lora), pixels)
    assert _same(_embeddings(model), embeddings)
    assert np.array_equal(_picture(model), pixels)


def test_a_diffusers_peft_lora_with_text_encoder(loaded, tmp_path):
    model = loaded["sd15"]
    path = lora_files.peft_lora(tmp_path / "pytorch_lora_weights.safetensors", tiny_sd15())
    lora = [LoraSpec(path, "peft", 1.0)]
    embeddings, pixels = _embeddings(model), _picture(model)
    assert not torch.equal(_embeddings(model, lora)["prompt_embeds"], embeddings["prompt_embeds"])
    assert not np.array_equal(_picture(model, lora), pixels)
    assert _same(_embeddings(model), embeddings)
    assert np.array_equal(_picture(model), pixels)


def test_a_lycoris_locon_is_applied_convolutions_included(loaded, tmp_path):
    model = loaded["sd15"]
    path = _kohya(model, tmp_path / "locon.safetensors", algo="locon")
    lora = [LoraSpec(path, "locon", 1.0)]
    pixels = _picture(model)
    with applied(model.pipe, lora):
        layers = {name for name, _ in model.pipe.unet.named_modules() if name.endswith(".lora_A")}
    assert any(".resnets." in name and ".conv1." in name for name in layers)
    assert any(".downsamplers." in name for name in layers)
    assert not np.array_equal(_picture(model, lora), pixels)
    assert np.array_equal(_picture(model), pixels)


@pytest.mark.parametrize(
    ("algo", "kind"),
    [("loha", "a LyCORIS LoHa file"), ("lokr", "a LyCORIS LoKr file"), ("dora", "a DoRA")],
)
def test_lycoris_kinds_diffusers_cannot_apply_are_refused_with_a_sentence(
    algo, kind, loaded, tmp_path
):
    model = loaded["sd15"]
    path = tmp_path / f"{algo}.safetensors"
    if algo == "dora":  # a kohya LoRA with the magnitudes DoRA adds
        _kohya(model, path)
        tensors = load_file(path)
        for key in [k for k in tensors if k.endswith(".lora_down.weight")]:
            out = tensors[key.replace("lora_down", "lora_up")].shape[0]
            tensors[key.replace("lora_down.weight", "dora_scale")] = torch.ones(1, out)
        save_file(tensors, path)
    else:
        _kohya(model, path, algo=algo)
    embeddings, pixels = _embeddings(model), _picture(model)
    with pytest.raises(UnsupportedModel, match=f"The LoRA {algo} is {kind}") as refused:
        _picture(model, [LoraSpec(path, algo, 1.0)])
    assert "LoCon" in str(refused.value)  # and says what it can apply
    assert _same(_embeddings(model), embeddings)
    assert np.array_equal(_picture(model), pixels)


@pytest.mark.parametrize("other", ["wider text encoder", "deeper text encoder", "wider unet"])
def test_a_lora_for_networks_of_another_size_gets_a_sentence(other, loaded, tmp_path):
    model = loaded["sd15"]
    pipe = model.pipe
    path = tmp_path / "other.safetensors"
    if other == "wider text encoder":  # e.g. SD 2.x's (OpenCLIP, 1024 wide) on SD 1.5's (768)
        lora_files.kohya_lora(path, pipe.unet, [CLIPTextModel(_text_config(64))])
        sentence = r"whose text encoder is of another size \(.*64 wide in the LoRA, 32 in this"
    elif other == "deeper text encoder":  # SD 2.x's has 24 layers (23 used), SD 1.5's 12
        config = _text_config()
        config.num_hidden_layers = 4
        lora_files.kohya_lora(path, pipe.unet, [CLIPTextModel(config)])
        sentence = r"has text-encoder layers this model lacks \(encoder.layers.[23]\..*larger"
    else:
        config = {**pipe.unet.config, "cross_attention_dim": 48}
        lora_files.kohya_lora(path, UNet2DConditionModel(**config), [pipe.text_encoder])
        sentence = r"whose UNet is of another size \(.*attn2.to_k is 48 wide in the LoRA"
    embeddings, pixels = _embeddings(model), _picture(model)
    with pytest.raises(UnsupportedModel, match=sentence + ".*another family of models"):
        _picture(model, [LoraSpec(path, "other", 1.0)])
    assert _same(_embeddings(model), embeddings)
    assert np.array_equal(_picture(model), pixels)


def test_the_cli_applies_a_kohya_lora_with_text_encoder_and_refuses_loha(tiny_models, tmp_path):
    from typer.testing import CliRunner

    from sfumato.cli import app

    pipe = tiny_sd15()  # the architecture of tiny_models' sd15
    kohya = lora_files.kohya_lora(tmp_path / "kohya.safetensors", pipe.unet, [pipe.text_encoder])
    loha = lora_files.kohya_lora(
        tmp_path / "loha.safetensors", pipe.unet, [pipe.text_encoder], algo="loha"
    )
    model = str(tiny_models["sd15"]["folder"])
    common = ["generate", "a red circle", "-m", model, "-W", "64", "-H", "64", "-s", "2"]
    outputs = []
    for extra in ([], ["--lora", f"{kohya}:0.8"]):
        out = tmp_path / f"out{len(extra)}.png"
        result = CliRunner().invoke(app, [*common, "--seed", "5", "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
        outputs.append(np.asarray(Image.open(out)))
    assert not np.array_equal(outputs[0], outputs[1])
    refused = CliRunner().invoke(app, [*common, "--lora", f"{loha}:1"])
    assert refused.exit_code != 0
    assert "is a LyCORIS LoHa file" in refused.output and "Traceback" not in refused.output
