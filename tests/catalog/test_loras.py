import pytest
from transformers import CLIPTextModel

from sfumato.catalog.loras import check_lora_fits, describe_lora
from sfumato.engine.checkpoint import read_header
from sfumato.errors import UnsupportedModel
from tests.catalog.conftest import kohya_lora as kohya_stub
from tests.catalog.conftest import peft_lora
from tests.fixtures.lora_files import kohya_lora
from tests.fixtures.tiny_models import _text_config, tiny_sd15


def _info(path):
    shapes, metadata = read_header(path)
    return describe_lora(shapes, metadata, path.name)


def test_family_of_kohya_and_peft_loras(tmp_path):
    assert _info(kohya_stub(tmp_path / "a.safetensors", "sd15")).architecture == "sd15"
    assert _info(kohya_stub(tmp_path / "b.safetensors", "sdxl")).architecture == "sdxl"
    assert _info(peft_lora(tmp_path / "c.safetensors", 768)).architecture == "sd15"
    assert _info(peft_lora(tmp_path / "d.safetensors", 2048)).architecture == "sdxl"
    assert _info(peft_lora(tmp_path / "e.safetensors", 1024)).architecture == "sd2"
    assert _info(tmp_path / "a.safetensors").layout == "kohya"
    assert _info(tmp_path / "c.safetensors").layout == "diffusers"


def test_training_tags_become_keywords_most_frequent_first(tmp_path):
    path = kohya_stub(
        tmp_path / "l.safetensors",
        "sd15",
        {"1girl": 12, "pixel art": 40, " smile": 3},
        ss_output_name="pixelart_v2",
    )
    info = _info(path)
    assert list(info.tag_frequency.items()) == [("pixel art", 40), ("1girl", 12), ("smile", 3)]
    assert info.output_name == "pixelart_v2"


def test_a_lora_of_another_family_is_refused_with_a_sentence(tmp_path):
    info = _info(kohya_stub(tmp_path / "style.safetensors", "sd15"))
    check_lora_fits("style", info, "dreamshaper", "sd15")  # the same family is fine
    with pytest.raises(UnsupportedModel, match=r"style was made for SD 1\.5 models; .*SDXL"):
        check_lora_fits("style", info, "juggernautXL", "sdxl")


def test_a_checkpoint_is_not_a_lora(tiny_models):
    path = tiny_models["sd15"]["single"]
    with pytest.raises(UnsupportedModel, match="is not a LoRA"):
        _info(path)


def _text_encoder(width: int):
    """A one-layer CLIP text encoder of a real family's width (768 CLIP-L, 1024 OpenCLIP-H)."""
    config = _text_config(width)
    config.num_hidden_layers = 1
    return CLIPTextModel(config)


def test_a_text_encoder_only_lora_tells_its_family_by_the_encoders_width(tmp_path):
    sd15 = kohya_lora(
        tmp_path / "a.safetensors", None, [_text_encoder(768)], ss_base_model_version=""
    )
    sd2 = kohya_lora(
        tmp_path / "b.safetensors", None, [_text_encoder(1024)], ss_base_model_version=""
    )
    assert _info(sd15).architecture == "sd15"
    assert _info(sd2).architecture == "sd2"
    with pytest.raises(UnsupportedModel, match=r"made for SD 2\.x models; dreamshaper is SD 1\.5"):
        check_lora_fits("b", _info(sd2), "dreamshaper", "sd15")


def test_a_kind_the_engine_cannot_apply_is_refused_before_the_request_queues(tmp_path):
    pipe = tiny_sd15()
    for algo, kind in (("loha", "a LyCORIS LoHa file"), ("lokr", "a LyCORIS LoKr file")):
        path = kohya_lora(
            tmp_path / f"{algo}.safetensors", pipe.unet, [pipe.text_encoder], algo=algo
        )
        info = _info(path)
        assert info.unsupported == kind and info.layout == "kohya"
        with pytest.raises(UnsupportedModel, match=f"The LoRA {algo} is {kind}, which sfumato"):
            check_lora_fits(algo, info, "dreamshaper", "sd15")
    locon = kohya_lora(tmp_path / "locon.safetensors", pipe.unet, [pipe.text_encoder], algo="locon")
    assert _info(locon).unsupported is None
    check_lora_fits("locon", _info(locon), "dreamshaper", "sd15")
