import pytest

from sfumato.engine.families import SD15, SDXL, SDXL_LIGHTNING, get_family
from sfumato.engine.request import GenerationRequest, resolve
from sfumato.errors import InvalidRequest


def test_family_defaults_fill_what_the_user_left_out():
    sd, _ = resolve(GenerationRequest("a cat"), SD15)
    assert (sd.width, sd.height, sd.steps, sd.sampler) == (512, 512, 25, "dpmpp_2m_karras")
    assert "worst quality" in sd.negative_prompt  # SD 1.5 gets a default negative prompt
    xl, _ = resolve(GenerationRequest("a cat"), SDXL)
    assert (xl.width, xl.height) == (1024, 1024) and xl.negative_prompt == ""
    lightning, _ = resolve(GenerationRequest("a cat"), SDXL_LIGHTNING)
    assert (lightning.steps, lightning.guidance, lightning.sampler) == (4, 1.0, "euler")
    assert lightning.negative_prompt == ""


def test_request_values_win_over_defaults():
    s, _ = resolve(
        GenerationRequest(
            "a cat",
            negative_prompt="",
            width=640,
            height=384,
            steps=12,
            guidance=4.5,
            sampler="Euler a",
            seed=7,
            batch_size=3,
        ),
        SD15,
    )
    assert (s.width, s.height, s.steps, s.guidance, s.sampler) == (640, 384, 12, 4.5, "euler_a")
    assert s.negative_prompt == "" and s.seeds == [7, 8, 9]


def test_no_seed_or_minus_one_picks_a_random_seed():
    a, _ = resolve(GenerationRequest("x"), SD15)
    b, _ = resolve(GenerationRequest("x", seed=-1), SD15)
    assert 0 <= a.seed < 2**32 and 0 <= b.seed < 2**32 and a.seed != b.seed


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("width", 500, "multiple of 8"),
        ("height", 4096, "between 64 and 2048"),
        ("width", 56, "between 64 and 2048"),
        ("steps", 0, "Steps must be between 1 and 150"),
        ("steps", 500, "Steps must be between 1 and 150"),
        ("guidance", -1, "Guidance must be between 0 and 30"),
        ("seed", -5, "seed must be between"),
        ("batch_size", 0, "number of images"),
        ("sampler", "nope", "Unknown sampler"),
    ],
)
def test_out_of_range_values_are_refused_with_a_sentence(field, value, words):
    with pytest.raises(InvalidRequest) as e:
        resolve(GenerationRequest("x", **{field: value}), SD15)
    assert words in e.value.message and str(value) in e.value.message


def test_any_family_takes_any_valid_size_but_warns_far_from_native():
    s, warnings = resolve(GenerationRequest("x", width=2048, height=2048), SD15)
    assert (s.width, s.height) == (2048, 2048)
    assert warnings and "512x512" in warnings[0]
    _, warnings = resolve(GenerationRequest("x", width=64, height=64), SDXL)
    assert warnings and "1024x1024" in warnings[0]
    _, warnings = resolve(GenerationRequest("x", width=832, height=1216), SDXL)
    assert warnings == []


def test_family_names_and_aliases():
    assert get_family("SD1.5") is SD15 and get_family("lightning") is SDXL_LIGHTNING
    with pytest.raises(InvalidRequest) as e:
        get_family("flux")
    assert "sd15, sdxl, sdxl-lightning" in e.value.message


def test_clip_skip_from_the_model_or_the_request_and_checked():
    from dataclasses import replace

    assert resolve(GenerationRequest("a cat"), SD15)[0].clip_skip == 1
    anime = replace(SD15.defaults, clip_skip=2)  # as a model card recommends
    assert resolve(GenerationRequest("a cat"), SD15, anime)[0].clip_skip == 2
    assert resolve(GenerationRequest("a cat", clip_skip=1), SD15, anime)[0].clip_skip == 1
    with pytest.raises(InvalidRequest, match="Clip skip must be between 1 and 12; got 0"):
        resolve(GenerationRequest("a cat", clip_skip=0), SD15)


def test_loras_come_from_the_request_and_the_prompts_tags():
    from sfumato.engine.request import requested_loras

    request = GenerationRequest("a cat <lora:pixel:0.8> <lora:ink>", loras=[("pixel", -0.5)])
    assert requested_loras(request) == [("pixel", -0.5), ("ink", 1.0)]  # the field wins
    with pytest.raises(InvalidRequest, match="weight of LoRA ink must be between -5 and 5"):
        resolve(GenerationRequest("a cat <lora:ink:9>"), SD15)


def test_too_few_steps_for_the_strength_is_a_sentence_not_a_pipeline_error():
    from PIL import Image

    picture = Image.new("RGB", (64, 64))
    with pytest.raises(InvalidRequest, match="at least 2 steps"):
        resolve(GenerationRequest("x", init_image=picture, steps=1, strength=0.75), SD15)
    settings, _ = resolve(GenerationRequest("x", init_image=picture, steps=2, strength=0.5), SD15)
    assert settings.steps == 2
