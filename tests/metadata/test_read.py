"""Reading other tools' pictures: fixtures written as each tool writes its metadata."""

from __future__ import annotations

import json

import pytest
from PIL import Image, PngImagePlugin

from sfumato.errors import InvalidRequest
from sfumato.metadata.read import NoGenerationData, read_info

A1111 = (
    "masterpiece, a café in 東京 at night,\n(neon lights:1.2), <lora:citypop_v2:0.8>\n"
    "Negative prompt: blurry, text,\nwatermark\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
    'Size: 512x768, Model hash: 879db523c3, Model: "dreamshaper_8, final: v2", '
    "Denoising strength: 0.45, Clip skip: 2, "
    'Lora hashes: "citypop_v2: 1f2e3d4c5b6a, other: 0a0b0c0d0e0f", Version: v1.10.1'
)


def png(path, **chunks):
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return path


def test_a1111_png_with_quoted_values_multiline_prompts_and_loras(tmp_path):
    info = read_info(png(tmp_path / "a.png", parameters=A1111))
    assert info.tool == "A1111"
    assert info.prompt.startswith("masterpiece, a café in 東京 at night,\n(neon lights:1.2)")
    assert info.negative_prompt == "blurry, text,\nwatermark"
    assert (info.steps, info.seed, info.guidance) == (28, 3141592653, 6.5)
    assert (info.sampler, info.scheduler) == ("DPM++ 2M", "Karras")
    assert (info.width, info.height) == (512, 768)
    assert (info.model, info.model_hash) == ("dreamshaper_8, final: v2", "879db523c3")
    assert (info.strength, info.clip_skip) == (0.45, 2)
    assert info.loras == [{"name": "citypop_v2", "weight": 0.8, "hash": "1f2e3d4c5b6a"}]
    assert info.extra["Version"] == "v1.10.1"


def test_the_old_sampler_form_and_missing_fields(tmp_path):
    text = "a cat\nSteps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1"
    info = read_info(png(tmp_path / "a.png", parameters=text))
    assert (info.sampler, info.scheduler, info.width, info.model) == (
        "DPM++ 2M Karras",
        None,
        None,
        None,
    )
    assert info.negative_prompt == ""


def test_a1111_jpeg_keeps_its_text_in_exif_user_comment(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + A1111.encode("utf-16-be")  # as piexif writes
    Image.new("RGB", (8, 8)).save(tmp_path / "a.jpg", exif=exif)
    info = read_info(tmp_path / "a.jpg")
    assert info.tool == "A1111" and info.seed == 3141592653 and "東京" in info.prompt


COMFY_PROMPT = {
    "4": {"class_type": "CheckpointLoaderSimple",
          "inputs": {"ckpt_name": "juggernautXL_v10.safetensors"}},
    "10": {"class_type": "LoraLoader",
           "inputs": {"lora_name": "styles/pixel_v2.safetensors", "strength_model": 0.7,
                      "strength_clip": 0.7, "model": ["4", 0], "clip": ["4", 1]}},
    "6": {"class_type": "CLIPTextEncode",
          "inputs": {"text": "a lighthouse, pixel art", "clip": ["10", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["10", 1]}},
    "5": {"class_type": "EmptyLatentImage",
          "inputs": {"width": 832, "height": 1216, "batch_size": 1}},
    "3": {"class_type": "KSampler",
          "inputs": {"seed": 42, "steps": 30, "cfg": 5.5, "sampler_name": "dpmpp_2m",
                     "scheduler": "karras", "denoise": 1.0, "model": ["10", 0],
                     "positive": ["6", 0], "negative": ["7", 0], "latent_image": ["5", 0]}},
}  # fmt: skip
COMFY_WORKFLOW = {
    "links": [
        [1, 4, 0, 10, 0, "MODEL"], [2, 4, 1, 10, 1, "CLIP"], [3, 10, 0, 3, 0, "MODEL"],
        [4, 10, 1, 6, 0, "CLIP"], [5, 10, 1, 7, 0, "CLIP"], [6, 6, 0, 3, 1, "CONDITIONING"],
        [7, 7, 0, 3, 2, "CONDITIONING"], [8, 5, 0, 3, 3, "LATENT"],
    ]
}  # fmt: skip


def test_comfyui_graph_is_followed_from_the_sampler(tmp_path):
    path = png(
        tmp_path / "c.png", prompt=json.dumps(COMFY_PROMPT), workflow=json.dumps(COMFY_WORKFLOW)
    )
    info = read_info(path)
    assert info.tool == "ComfyUI"
    assert (info.prompt, info.negative_prompt) == ("a lighthouse, pixel art", "blurry")
    assert (info.seed, info.steps, info.guidance) == (42, 30, 5.5)
    assert (info.sampler, info.scheduler) == ("dpmpp_2m", "karras")
    assert (info.width, info.height) == (832, 1216)
    assert info.model == "juggernautXL_v10.safetensors"
    assert info.loras == [{"name": "pixel_v2", "weight": 0.7, "hash": None}]
    assert info.strength is None


def test_invokeai_metadata(tmp_path):
    meta = {
        "generation_mode": "txt2img", "positive_prompt": "a red fox", "negative_prompt": "",
        "width": 1024, "height": 1024, "seed": 7, "steps": 25, "cfg_scale": 6,
        "scheduler": "euler_a", "model": {"model_name": "sdxl-base-1.0", "base_model": "sdxl"},
    }  # fmt: skip
    info = read_info(png(tmp_path / "i.png", invokeai_metadata=json.dumps(meta)))
    assert info.tool == "InvokeAI"
    assert (info.prompt, info.seed, info.steps, info.guidance) == ("a red fox", 7, 25, 6)
    assert (info.width, info.height, info.model) == (1024, 1024, "sdxl-base-1.0")


def test_fooocus_parameters(tmp_path):
    meta = {
        "prompt": "a castle", "negative_prompt": "ugly", "styles": "['Fooocus V2']",
        "performance": "Speed", "resolution": "(1152, 896)", "guidance_scale": 4,
        "sharpness": 2, "adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8",
        "base_model_hash": "aeb7e9e689", "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras",
        "seed": "12345", "steps": 30, "version": "Fooocus v2.5.5",
    }  # fmt: skip
    info = read_info(png(tmp_path / "f.png", parameters=json.dumps(meta), fooocus_scheme="fooocus"))
    assert info.tool == "Fooocus"
    assert (info.prompt, info.negative_prompt, info.seed) == ("a castle", "ugly", 12345)
    assert (info.width, info.height, info.model) == (1152, 896, "juggernautXL_v8")


def test_no_metadata_and_broken_metadata_are_sentences(tmp_path):
    with pytest.raises(NoGenerationData, match="no generation data in this image"):
        read_info(png(tmp_path / "plain.png"))
    broken = png(tmp_path / "b.png", parameters="Steps: x\n,,::", sfumato="{not json", prompt="{")
    with pytest.raises(NoGenerationData):
        read_info(broken)
    (tmp_path / "x.png").write_bytes(b"not a picture at all")
    with pytest.raises(InvalidRequest, match="x.png is not a picture sfumato can read"):
        read_info(tmp_path / "x.png")


@pytest.mark.parametrize("name", ["s.png", "s.jpg", "s.webp"])
def test_our_own_pictures_read_back_with_every_setting(tmp_path, name):
    from tests.metadata.test_files import SETTINGS, _save

    info = read_info(_save(tmp_path, name))
    assert info.tool == "sfumato"
    assert (info.prompt, info.negative_prompt) == (SETTINGS.prompt, SETTINGS.negative_prompt)
    assert (info.seed, info.steps, info.guidance, info.sampler) == (1234567890, 25, 7.5,
                                                                    "dpmpp_2m_karras")  # fmt: skip
    assert (info.width, info.height) == (512, 768)


def test_info_command_prints_the_settings_and_a_command_to_make_it_again(tmp_path):
    from tests.test_cli import run

    result = run("info", str(png(tmp_path / "a.png", parameters=A1111)))
    assert result.exit_code == 0, result.output
    assert "Made with:          A1111" in result.output
    assert "Model:              dreamshaper_8, final: v2 [879db523c3]" in result.output
    assert "LoRAs:              citypop_v2:0.8" in result.output
    assert "--seed 3141592653 --steps 28 --cfg 6.5 -W 512 -H 768" in result.output
    assert "--sampler 'DPM++ 2M Karras' --clip-skip 2" in result.output
    # its LoRA is a tag in the prompt, which the command carries: not given twice
    assert "--lora" not in result.output
    as_json = json.loads(run("info", "--json", str(tmp_path / "a.png")).stdout)
    assert as_json["seed"] == 3141592653 and as_json["loras"][0]["hash"] == "1f2e3d4c5b6a"
    plain = run("info", str(png(tmp_path / "plain.png")))
    assert plain.exit_code == 1
    assert "There is no generation data in this image." in plain.output


def test_comfyui_api_pictures_with_only_the_prompt_graph(tmp_path):
    info = read_info(png(tmp_path / "api.png", prompt=json.dumps(COMFY_PROMPT)))
    assert info.tool == "ComfyUI"
    assert (info.prompt, info.negative_prompt, info.seed) == (
        "a lighthouse, pixel art",
        "blurry",
        42,
    )
    assert (info.width, info.height, info.model) == (832, 1216, "juggernautXL_v10.safetensors")
    assert info.loras == [{"name": "pixel_v2", "weight": 0.7, "hash": None}]
