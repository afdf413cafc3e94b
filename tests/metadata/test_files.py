import json

import pytest
from PIL import Image
from sd_parsers import ParserManager

from sfumato.engine.request import GenerationSettings
from sfumato.errors import InvalidRequest, OutputExists
from sfumato.metadata.a1111 import format_parameters
from sfumato.metadata.files import read_sfumato_data, save_image

SETTINGS = GenerationSettings(
    family="sd15",
    prompt="a café at night, (neon:1.2), 東京",
    negative_prompt="blurry, text",
    width=512,
    height=768,
    steps=25,
    guidance=7.5,
    sampler="dpmpp_2m_karras",
    seed=1234567890,
)


def _save(tmp_path, name, settings=SETTINGS, model="dreamshaper_8", model_hash="879db523c3"):
    text = format_parameters(settings, model, model_hash)
    return save_image(
        Image.new("RGB", (64, 96), "teal"), tmp_path / name, text, {"settings": settings.to_dict()}
    )


def test_parameters_text_is_a1111s():
    text = format_parameters(SETTINGS, "dreamshaper_8", "879db523c3")
    assert text.splitlines() == [
        "a café at night, (neon:1.2), 東京",
        "Negative prompt: blurry, text",
        "Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 1234567890, "
        "Size: 512x768, Model hash: 879db523c3, Model: dreamshaper_8, Version: sfumato 0.1.0",
    ]


def test_no_negative_line_when_empty_and_lightning_schedule():
    settings = GenerationSettings(
        family="sdxl-lightning",
        prompt="a fox",
        negative_prompt="",
        width=1024,
        height=1024,
        steps=4,
        guidance=1.0,
        sampler="euler",
        seed=3,
    )
    text = format_parameters(settings, "juggernaut_lightning")
    assert "Negative prompt" not in text
    assert "Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1, Seed: 3" in text


def test_values_with_commas_or_colons_are_quoted():
    text = format_parameters(SETTINGS, "my model, v2: final")
    assert 'Model: "my model, v2: final"' in text


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.webp"])
def test_a_third_party_parser_reads_our_files(tmp_path, name):
    path = _save(tmp_path, name)
    info = ParserManager().parse(path)
    assert info is not None, f"sd-parsers found no generation data in {name}"
    sampler = info.samplers[0]
    assert [p.value for p in sampler.prompts] == [SETTINGS.prompt]
    assert [p.value for p in sampler.negative_prompts] == [SETTINGS.negative_prompt]
    assert sampler.name == "DPM++ 2M"
    assert sampler.parameters["scheduler"] == "Karras"
    assert sampler.parameters["seed"] == "1234567890"
    assert sampler.parameters["steps"] == "25"
    assert sampler.parameters["cfg_scale"] == "7.5"
    assert (sampler.model.name, sampler.model.hash) == ("dreamshaper_8", "879db523c3")


@pytest.mark.parametrize("name", ["out.png", "out.jpg", "out.webp"])
def test_our_own_json_comes_back_whole(tmp_path, name):
    path = _save(tmp_path, name)
    assert read_sfumato_data(path) == {"settings": SETTINGS.to_dict()}
    with Image.open(path) as image:
        assert image.size == (64, 96)


def test_png_text_chunk_is_readable_by_pillow_as_a1111_reads_it(tmp_path):
    path = _save(tmp_path, "out.png")
    with Image.open(path) as image:
        assert image.text["parameters"].startswith("a café at night")
        assert json.loads(image.text["sfumato"])["settings"]["seed"] == 1234567890


def test_existing_pictures_are_never_replaced_silently(tmp_path):
    first = _save(tmp_path, "out.png")
    before = first.read_bytes()
    with pytest.raises(OutputExists, match="--overwrite"):
        _save(tmp_path, "out.png", model="other")
    assert first.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]  # no partial file left behind


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(InvalidRequest, match=".png, .jpg or .webp"):
        _save(tmp_path, "out.gif")


def test_clip_skip_is_written_as_a1111_writes_it():
    from dataclasses import replace

    assert "Clip skip" not in format_parameters(SETTINGS)
    text = format_parameters(replace(SETTINGS, clip_skip=2), "anything_v5")
    assert ", Model: anything_v5, Clip skip: 2, Version: sfumato" in text
