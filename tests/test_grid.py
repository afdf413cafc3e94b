"""X/Y/Z comparison grids: A1111's axis syntax, cells that differ only by their axes (one seed
for all), and one labelled picture; end to end on the demo model from the command line."""

import pytest
from PIL import Image
from typer.testing import CliRunner

from sfumato.cli import app
from sfumato.demo.analyze import analyze
from sfumato.engine.request import GenerationRequest
from sfumato.errors import InvalidRequest
from sfumato.grid import MAX_CELLS, Layout, cells, compose, grid_axes, parse_axis
from sfumato.metadata.files import read_sfumato_data


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("steps=1-5", (1, 2, 3, 4, 5)),
        ("steps=1-10 (+2)", (1, 3, 5, 7, 9)),
        ("steps=10-20 [5]", (10, 12, 15, 18, 20)),
        ("cfg=3,5.5,7", (3.0, 5.5, 7.0)),
        ("guidance=2-4 (+0.5)", (2.0, 2.5, 3.0, 3.5, 4.0)),
        ("seed=7, 8 ,9", (7, 8, 9)),
        ("sampler=Euler,DPM++ 2M", ("Euler", "DPM++ 2M")),
        ("size=512x512,768x512", ((512, 512), (768, 512))),
        ("lora:demo-white-background=0,0.5,1", (0.0, 0.5, 1.0)),
    ],
)
def test_axes_read_a1111s_lists_and_ranges(text, values):
    assert parse_axis(text).values == values


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("guidance", "name=values"),
        ("colour=red", "Unknown axis"),
        ("steps=0,5", "Steps must be between 1 and 150"),
        ("steps=a,b", "not a number"),
        ("steps=1-100000", "too long"),
        ("size=big", "WIDTHxHEIGHT"),
    ],
)
def test_a_bad_axis_is_a_sentence(text, says):
    with pytest.raises(InvalidRequest, match=says):
        parse_axis(text)


def test_cells_differ_only_by_their_axes():
    base = GenerationRequest("a red circle on a white background", seed=4, steps=8)
    axes = [parse_axis("prompt=red,green"), parse_axis("guidance=3,7")]
    made = cells(base, "sfumato-demo", axes)
    assert [c.position for c in made] == [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)]
    assert {c.request.seed for c in made} == {4} and {c.request.steps for c in made} == {8}
    assert made[3].request.prompt == "a green circle on a white background"
    assert made[3].request.guidance == 7 and made[0].request.guidance == 3
    with pytest.raises(InvalidRequest, match="does not hold"):
        cells(base, None, [parse_axis("prompt=blue,green")])
    with pytest.raises(InvalidRequest, match=f"at most {MAX_CELLS}"):
        cells(base, None, [parse_axis("seed=1-20"), parse_axis("steps=1-10")])


def test_the_grid_picture_holds_every_cell_where_its_labels_say():
    axes = [parse_axis("seed=1,2,3"), parse_axis("steps=1,2"), parse_axis("guidance=1,2")]
    colours = {}
    pictures = {}
    for i in range(3):
        for j in range(2):
            for k in range(2):
                colours[i, j, k] = (i * 80, j * 120, k * 200)
                pictures[i, j, k] = Image.new("RGB", (64, 48), colours[i, j, k])
    sheet = compose(pictures, axes)
    at = Layout.of(axes, (64, 48))
    for position, colour in colours.items():
        x0, y0 = at.origin(*position)
        assert sheet.getpixel((x0 + 32, y0 + 24)) == colour
    assert at.left > 0 and at.top > 0 and at.title > 0  # room for the labels


def test_sfumato_grid_on_the_demo_model_every_cell_reads_as_its_axes(tmp_path):
    output = tmp_path / "grid.png"
    result = CliRunner().invoke(
        app,
        ["grid", "a red circle on a white background", "--x", "prompt=red,green,blue",
         "--y", "prompt=white,black", "--seed", "4", "--steps", "10", "-o", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "6 cells" in result.output or "6 cells" in result.stdout
    sheet = Image.open(output)
    axes = [parse_axis("prompt=red,green,blue"), parse_axis("prompt=white,black")]
    at = Layout.of(axes, (64, 64))
    seeds = set()
    for i, colour in enumerate(("red", "green", "blue")):
        for j, background in enumerate(("white", "black")):
            cell = output.with_name(f"grid-{i + 1}-{j + 1}-1.png")
            seeds.add(read_sfumato_data(cell)["settings"]["seed"])
            drawn = analyze(Image.open(cell))
            assert (drawn.colour, drawn.background) == (colour, background), (i, j, drawn)
            x0, y0 = at.origin(i, j, 0)
            crop = sheet.crop((x0, y0, x0 + 64, y0 + 64))
            assert list(crop.getdata()) == list(Image.open(cell).convert("RGB").getdata())
    assert seeds == {4}  # one seed for every cell


def test_a_prompt_matrix_is_every_combination_of_the_optional_parts():
    base, axes = grid_axes([None, None, None], "a castle|at night|in fog|with a dragon", True)
    assert base == "a castle"
    x, y, z = axes
    assert x.labels == ("-", "at night", "in fog", "at night + in fog")
    assert y.labels == ("-", "with a dragon") and z is None
    made = cells(GenerationRequest(base, seed=1), None, axes)
    prompts = {c.position: c.request.prompt for c in made}
    assert prompts[0, 0, 0] == "a castle"
    assert prompts[3, 1, 0] == "a castle, at night, in fog, with a dragon"
    assert len(made) == 8
    with pytest.raises(InvalidRequest, match="give only z"):
        grid_axes(["seed=1,2", None, None], "a|b", True)
    with pytest.raises(InvalidRequest, match="optional parts"):
        grid_axes([None, None, None], "a castle", True)
