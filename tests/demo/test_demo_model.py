"""The bundled demo model: it is the default, and it really follows prompts (the fast variant
of `sfumato demo eval`, with the acceptance thresholds)."""

from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from sfumato import demo
from sfumato.cli import app
from sfumato.demo.analyze import analyze
from sfumato.demo.evaluate import TARGETS, evaluate_model, load


@pytest.fixture(scope="module")
def model():
    return load(demo.WEIGHTS)


def test_the_shipped_model_is_small_and_described():
    weights = sum(f.stat().st_size for f in demo.WEIGHTS.rglob("*.safetensors"))
    assert weights < 25e6
    card = (demo.WEIGHTS / "sfumato.toml").read_text()
    assert "toy world" in card and "[keywords]" in card


def test_generate_without_a_model_uses_the_demo_and_draws_the_prompt(tmp_path):
    colours_right = 0
    for seed in range(5):
        out = tmp_path / f"{seed}.png"
        result = CliRunner().invoke(
            app,
            ["generate", "a red circle on a blue background", "--seed", str(seed), "-o", str(out)],
        )
        assert result.exit_code == 0, result.output
        assert "sfumato-demo" in result.output and "Warning" not in result.output
        found = analyze(Image.open(out))
        colours_right += (found.colour, found.background) == ("red", "blue")
    # colours are what this model gets right nearly always (98-99 %); how often it also gets
    # the shape is the evaluation's business (test below, and the model card)
    assert colours_right >= 4, f"only {colours_right} of 5 pictures were red on blue"


# A fast variant of `sfumato demo eval` (one prompt in eight) asserts the bar: every
# target but the position stretch, which this model does not meet (21 %, chance is 20 %). On
# that eighth (2026-12-04): shape 96 % (bar 85), guidance gain 14 points (bar 10).
BAR = [name for name in TARGETS if name != "position (stretch)"]


def test_quick_eval_meets_the_bar(model):
    report = evaluate_model(model, every=8, negative_seeds=20)
    passed = report.passed()
    missed = {k: round(report.rates[k], 3) for k in BAR if not passed[k]}
    assert not missed, f"below target: {missed} (targets {TARGETS})"


def test_live_previews_show_the_picture_as_it_forms(model, tmp_path):
    import numpy as np

    from sfumato.engine.generate import generate
    from sfumato.engine.request import GenerationRequest, resolve

    settings, _ = resolve(
        GenerationRequest("a large red square on a blue background", seed=3),
        model.source.family,
        model.source.effective_defaults,
    )
    frames = []
    image = generate(model, settings, on_step=lambda step: frames.append(step.preview()))[0]
    assert len(frames) == settings.steps
    final = np.asarray(image.resize(frames[-1].size, Image.Resampling.BOX), dtype=float)
    distance = [np.abs(np.asarray(frame, dtype=float) - final).mean() for frame in frames]
    # from noise to the picture: each frame closer than the one before, the last one read as
    # the same scene (the card's factors are fitted on this model's own autoencoder)
    assert all(b < a for a, b in zip(distance, distance[1:], strict=False)), distance
    assert distance[-1] < distance[0] / 2
    seen, drawn = analyze(frames[-1].resize((64, 64))), analyze(image)
    assert (seen.colour, seen.background) == (drawn.colour, drawn.background)
    assert seen.shape == drawn.shape


def _edit(model, prompt, seed, **fields):
    from sfumato.engine.generate import generate
    from sfumato.engine.images import prepare
    from sfumato.engine.request import GenerationRequest, resolve

    request = GenerationRequest(prompt, seed=seed, **fields)
    settings, _ = resolve(request, model.source.family, model.source.effective_defaults)
    inputs = prepare(request.init_image, request.mask_image, settings.width, settings.height)
    return generate(model, settings, inputs)[0]


def test_inpainting_paints_the_prompt_inside_the_mask_and_keeps_the_rest(model):
    import numpy as np

    from sfumato.demo.world import COLOURS

    blue = Image.new("RGB", (64, 64), COLOURS["blue"])
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (12, 12, 52, 52))
    outside = np.asarray(mask) == 0
    right = 0
    for seed in range(6):
        image = _edit(model, "a large yellow square on a blue background", seed,
                      init_image=blue, mask_image=mask)  # fmt: skip
        assert np.array_equal(np.asarray(image)[outside], np.asarray(blue)[outside])
        found = analyze(image)
        right += (found.colour, found.shape) == ("yellow", "square")
    assert right >= 5, f"only {right} of 6 inpainted pictures show a yellow square"


def test_image_to_image_strength_decides_how_much_of_the_picture_stays(model):
    import numpy as np

    from sfumato.demo.world import Scene, render

    start = render(Scene("circle", "red", "blue", "large", "centre"), 64, np.random.default_rng(0))
    prompt = "a large green square on a yellow background"
    for seed in range(3):
        light = _edit(model, prompt, seed, init_image=start, strength=0.3)
        full = _edit(model, prompt, seed, init_image=start, strength=1.0)
        # 0.3 keeps the picture's blue background (measured: 10 levels from the start on
        # average); 1.0 draws the prompt's yellow one (160 levels away)
        assert analyze(light).background == "blue" and analyze(full).background == "yellow"
        distance = [
            np.abs(np.asarray(x, float) - np.asarray(start, float)).mean() for x in (light, full)
        ]
        assert distance[0] < 25 < 100 < distance[1], distance


LORA = Path(__file__).parents[1] / "data" / "demo-white-background.safetensors"


def test_the_demo_lora_does_what_it_was_trained_for_and_nothing_after(model):
    import numpy as np

    from sfumato.engine.generate import generate
    from sfumato.engine.loras import LoraSpec
    from sfumato.engine.request import GenerationRequest, resolve

    def run(seed, loras=None):
        request = GenerationRequest("a red circle on a blue background", seed=seed)
        settings, _ = resolve(request, model.source.family, model.source.effective_defaults)
        return generate(model, settings, loras=loras)[0]

    plain = [run(seed) for seed in range(5)]
    white = [run(seed, [LoraSpec(LORA, "white", 1.0)]) for seed in range(5)]
    against = [run(seed, [LoraSpec(LORA, "white", -1.0)]) for seed in range(5)]
    backgrounds = lambda images: [analyze(i).background for i in images]  # noqa: E731
    assert backgrounds(plain).count("blue") >= 4
    assert backgrounds(white).count("white") >= 4, backgrounds(white)
    assert backgrounds(against).count("white") == 0
    # taken off after each request: the same request without it gives the same pixels
    assert np.array_equal(np.asarray(run(0)), np.asarray(plain[0]))


def test_loras_by_name_and_tag_end_to_end_with_their_hash_in_the_metadata(tmp_path):
    import hashlib
    import shutil
    import struct

    from sfumato.metadata.read import parse_a1111, read_info

    models = tmp_path / "models"
    (models / "Lora").mkdir(parents=True)
    shutil.copy(LORA, models / "Lora" / LORA.name)
    out = tmp_path / "white.png"
    result = CliRunner().invoke(
        app,
        ["generate", "a red circle on a blue background <lora:demo-white-background:0.9>",
         "--model", "sfumato-demo", "--seed", "1", "-o", str(out), "--models-dir", str(models)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "LoRA demo-white-background:0.9" in result.output
    data = LORA.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    expected = hashlib.sha256(data[8 + length :]).hexdigest()[:12]
    lora = {"name": "demo-white-background", "weight": 0.9, "hash": expected}
    assert read_info(out).loras == [lora]  # from our JSON
    text = Image.open(out).text["parameters"]  # and A1111's text says the same
    assert f'Lora hashes: "demo-white-background: {expected}"' in text
    assert parse_a1111(text).loras == [lora]
    wrong = CliRunner().invoke(
        app, ["generate", "a circle <lora:nothing:1>", "--models-dir", str(models)]
    )
    assert wrong.exit_code == 1
    assert "No LoRA named 'nothing'. Installed: demo-white-background" in wrong.output
