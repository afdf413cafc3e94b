"""The parameter table is the one definition every layer derives from: these tests fail when a
layer drifts from it (a field missing, a bound written differently, a metadata key lost)."""

import re
from dataclasses import fields
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from sfumato.api.requests import GenerationInput
from sfumato.cli import app
from sfumato.engine.families import SD15
from sfumato.engine.parameters import PARAMETERS, PER_FAMILY
from sfumato.engine.request import GenerationRequest, GenerationSettings, resolve
from sfumato.errors import InvalidRequest
from sfumato.metadata.a1111 import format_parameters
from sfumato.metadata.read import parse_a1111
from sfumato.preferences import FamilyPreferences

PAGE = Path(__file__).parents[2] / "sfumato" / "web" / "static" / "index.html"


def test_every_parameter_is_a_field_of_the_request_and_of_the_settings():
    request = {f.name for f in fields(GenerationRequest)}
    settings = {f.name for f in fields(GenerationSettings)}
    for p in PARAMETERS:
        assert p.name in request and p.name in settings, p.name


def test_the_api_schema_documents_every_parameter_with_its_help_and_bounds():
    properties = GenerationInput.model_json_schema()["properties"]
    for p in PARAMETERS:
        schema = properties[p.name]
        assert schema["description"].startswith(p.help)
        assert schema.get("minimum") == p.minimum and schema.get("maximum") == p.maximum
    # left out, a field is None (the model's value), so the request resolves it
    request = GenerationInput(prompt="a cat").to_request()
    assert all(getattr(request, p.name) is None for p in PARAMETERS)


def test_the_api_hands_every_parameter_to_the_request():
    values = {"negative_prompt": "blur", "width": 640, "height": 384, "steps": 9,
              "guidance": 4.5, "sampler": "Euler a", "seed": 3, "batch_size": 2, "clip_skip": 2,
              "strength": 0.5, "guidance_cutoff": 0.6, "deep_cache": 3,
              "variations": "all", "hr_scale": 1.5, "hr_resize_x": 768, "hr_resize_y": 512,
              "hr_upscaler": "Lanczos", "hr_second_pass_steps": 7,
              "denoising_strength": 0.4}  # fmt: skip
    assert set(values) == {p.name for p in PARAMETERS}, "a new parameter needs a value here"
    request = GenerationInput(prompt="a cat", **values).to_request()
    assert {name: getattr(request, name) for name in values} == values


def test_every_parameter_is_an_option_of_generate_with_its_help():
    help_text = CliRunner().invoke(app, ["generate", "--help"], terminal_width=300).output
    flat = re.sub(r"[\s│]+", " ", help_text)
    for p in PARAMETERS:
        assert p.flags[0] in help_text, p.name
        assert re.sub(r"\s+", " ", p.help)[:40] in flat, p.name


def test_generate_hands_every_option_to_the_engine(tmp_path):
    # out-of-bounds values are refused by the engine's check, so each option must reach it
    # (with a starting picture, which strength needs)
    start = tmp_path / "start.png"
    Image.new("RGB", (64, 64), "red").save(start)
    for p in PARAMETERS:
        if p.maximum is None:
            continue
        too_big = str(int(p.maximum) + 1 if p.kind is int else p.maximum + 1)
        result = CliRunner().invoke(
            app,
            ["generate", "x", p.flags[0], too_big, "-i", str(start), "--data-dir", str(tmp_path)],
        )
        assert result.exit_code == 1, (p.name, result.output)
        assert f"{p.label} must be" in result.output, (p.name, result.output)


def test_preferences_take_the_per_family_parameters_with_their_bounds():
    assert set(FamilyPreferences.model_fields) == {p.name for p in PER_FAMILY}
    for p in PER_FAMILY:
        if p.maximum is not None:
            with pytest.raises(ValueError):
                FamilyPreferences(**{p.name: p.maximum + p.kind(1)})


BOUNDED = [p for p in PARAMETERS if p.maximum is not None]


@pytest.mark.parametrize("p", BOUNDED, ids=lambda p: p.name)
def test_resolve_refuses_each_bound_with_a_sentence_naming_it(p):
    start = Image.new("RGB", (64, 64))  # strength is only read with a starting picture
    with pytest.raises(InvalidRequest, match=f"{p.label} must be"):
        resolve(GenerationRequest("x", init_image=start, **{p.name: p.maximum + p.kind(1)}), SD15)


def test_every_a1111_key_is_written_and_read_back():
    settings, _ = resolve(
        GenerationRequest("a cat", seed=7, clip_skip=2, guidance_cutoff=0.5, deep_cache=3),
        SD15,
    )
    from dataclasses import replace

    settings = replace(settings, strength=0.4, mode="img2img")  # image-to-image writes it
    # the hires fix's "Denoising strength" is image-to-image's key too: a picture of its own
    hires, _ = resolve(
        GenerationRequest("a cat", hr_scale=2, hr_second_pass_steps=5, denoising_strength=0.3),
        SD15,
    )
    checked = set()
    for made in (settings, hires):
        info = parse_a1111(format_parameters(made, "model"))
        for p in PARAMETERS:
            if p.a1111 and getattr(made, p.name) not in (None, p.neutral):
                assert getattr(info, p.name) == getattr(made, p.name), p.name
                checked.add(p.name)
    assert checked == {p.name for p in PARAMETERS if p.a1111}


def test_neutral_values_are_left_out_of_the_a1111_text():
    settings, _ = resolve(GenerationRequest("a cat", seed=7), SD15)
    text = format_parameters(settings, "model")
    for p in PARAMETERS:
        if p.neutral is not None:
            assert f"{p.a1111}:" not in text


class _Inputs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: dict[str, dict] = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "input" and attributes.get("type") == "number" and "name" in attributes:
            self.found[attributes["name"]] = attributes


def test_the_pages_number_inputs_carry_the_tables_bounds():
    parser = _Inputs()
    parser.feed(PAGE.read_text())
    checked = 0
    for p in PARAMETERS:
        attributes = parser.found.get(p.name)
        if attributes is None:
            continue
        checked += 1
        assert float(attributes["min"]) == p.minimum, p.name
        if "max" in attributes:
            assert float(attributes["max"]) == p.maximum, p.name
        if p.multiple_of:
            assert int(attributes["step"]) == p.multiple_of, p.name
    assert checked >= 5  # width, height, steps, guidance, seed, batch
