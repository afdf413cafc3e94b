import pytest

from sfumato.catalog.loras import check_lora_fits, describe_lora
from sfumato.engine.checkpoint import read_header
from sfumato.errors import UnsupportedModel
from tests.catalog.conftest import kohya_lora, peft_lora


def _info(path):
    shapes, metadata = read_header(path)
    return describe_lora(shapes, metadata, path.name)


def test_family_of_kohya_and_peft_loras(tmp_path):
    assert _info(kohya_lora(tmp_path / "a.safetensors", "sd15")).architecture == "sd15"
    assert _info(kohya_lora(tmp_path / "b.safetensors", "sdxl")).architecture == "sdxl"
    assert _info(peft_lora(tmp_path / "c.safetensors", 768)).architecture == "sd15"
    assert _info(peft_lora(tmp_path / "d.safetensors", 2048)).architecture == "sdxl"
    assert _info(peft_lora(tmp_path / "e.safetensors", 1024)).architecture == "sd2"
    assert _info(tmp_path / "a.safetensors").layout == "kohya"
    assert _info(tmp_path / "c.safetensors").layout == "diffusers"


def test_training_tags_become_keywords_most_frequent_first(tmp_path):
    path = kohya_lora(
        tmp_path / "l.safetensors",
        "sd15",
        {"1girl": 12, "pixel art": 40, " smile": 3},
        ss_output_name="pixelart_v2",
    )
    info = _info(path)
    assert list(info.tag_frequency.items()) == [("pixel art", 40), ("1girl", 12), ("smile", 3)]
    assert info.output_name == "pixelart_v2"


def test_a_lora_of_another_family_is_refused_with_a_sentence(tmp_path):
    info = _info(kohya_lora(tmp_path / "style.safetensors", "sd15"))
    check_lora_fits("style", info, "dreamshaper", "sd15")  # the same family is fine
    with pytest.raises(UnsupportedModel, match=r"style was made for SD 1\.5 models; .*SDXL"):
        check_lora_fits("style", info, "juggernautXL", "sdxl")


def test_a_checkpoint_is_not_a_lora(tiny_models):
    path = tiny_models["sd15"]["single"]
    with pytest.raises(UnsupportedModel, match="is not a LoRA"):
        _info(path)
