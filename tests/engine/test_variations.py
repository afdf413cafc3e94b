"""Dynamic prompts: one template, a prompt per picture, every picture made again alone from
its seed and the template; every combination when asked; wildcards from text files."""

import numpy as np
import pytest

from sfumato.engine.generate import generate
from sfumato.engine.request import GenerationRequest, resolve, with_variations
from sfumato.engine.variations import MAX_COMBINATIONS, expand, has_variations
from sfumato.errors import InvalidRequest

TEMPLATE = "a {red|green|blue|yellow|white} circle on a {black|purple} background"


def test_random_draws_are_made_from_each_pictures_seed():
    draws = expand(TEMPLATE, "random", 6, seed=40)
    assert draws == expand(TEMPLATE, "random", 6, seed=40)
    assert len(set(draws)) > 1 and all("{" not in d for d in draws)
    # picture i's draw is the draw of seed + i alone: any picture is made again by itself
    assert [expand(TEMPLATE, "random", 1, seed=40 + i)[0] for i in range(6)] == draws


def test_all_gives_every_combination_once():
    combos = expand("a {red|green} {circle|square}", "all", 1, seed=0)
    assert sorted(combos) == sorted(
        ["a red circle", "a red square", "a green circle", "a green square"]
    )
    with pytest.raises(InvalidRequest, match=f"more than {MAX_COMBINATIONS} combinations"):
        expand("{a|b|c|d|e} {f|g|h|i}", "all", 1, 0)


def test_wildcards_come_from_text_files_and_a_missing_one_is_named(tmp_path):
    (tmp_path / "colour.txt").write_text("red\ngreen\n")
    assert sorted(expand("a __colour__ circle", "all", 1, 0, tmp_path)) == [
        "a green circle",
        "a red circle",
    ]
    with pytest.raises(InvalidRequest, match=r"no wildcard __shape__.*Wildcards: __colour__"):
        expand("a __shape__", "random", 1, 0, tmp_path)


def test_broken_syntax_is_a_sentence_and_plain_prompts_are_left_alone():
    with pytest.raises(InvalidRequest, match="variations to off"):
        expand("a {red|green circle", "random", 1, 0)
    assert not has_variations("a (red:1.2) circle, [blue] <lora:x:0.5> BREAK square")


def _settings(model, **fields):
    request = GenerationRequest(**{"width": 64, "height": 64, "steps": 3, "seed": 21} | fields)
    settings, _ = resolve(request, model.source.family)
    return with_variations(settings)[0]


def test_each_picture_of_a_batch_is_its_prompt_made_alone(loaded):
    model = loaded["sd15"]
    settings = _settings(model, prompt="a {red|green|blue} circle", batch_size=3)
    assert len(settings.prompts) == 3 and settings.prompt == "a {red|green|blue} circle"
    batch = generate(model, settings)
    for i, picture in enumerate(batch):
        alone = settings.for_image(i)
        assert alone.prompt == settings.prompts[i] and alone.prompt_template == settings.prompt
        plain = _settings(model, prompt=alone.prompt, seed=alone.seed)
        assert np.array_equal(np.asarray(picture), np.asarray(generate(model, plain)[0]))


def test_all_sets_the_batch_and_off_keeps_the_braces(loaded):
    model = loaded["sd15"]
    settings = _settings(model, prompt="a {red|green} circle", variations="all")
    assert settings.batch_size == 2 and set(settings.prompts) == {"a red circle", "a green circle"}
    off = _settings(model, prompt="a {red|green} circle", variations="off")
    assert off.prompts == () and off.batch_size == 1
    with pytest.raises(InvalidRequest, match="variations is one of"):
        _settings(model, prompt="x", variations="sometimes")
