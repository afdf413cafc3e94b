"""The demo model's synthetic world: what it draws, what its captions say, what it holds out."""

from __future__ import annotations

import itertools
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from sfumato.demo import world
from sfumato.demo.world import (
    COLOURS,
    HELD_OUT,
    POSITION_CENTRE,
    POSITIONS,
    SHAPES,
    SIZE_EXTENT,
    SIZES,
    Scene,
    canonical_prompt,
    caption,
    make_dataset,
    parse_caption,
    render,
    sample_scene,
    vocabulary,
)

ALL_SCENES = [
    Scene(shape, colour, background, size, position)
    for shape, size, position in itertools.product(SHAPES, SIZES, POSITIONS)
    for colour, background in (("red", "blue"), ("white", "black"))
]


@pytest.fixture(scope="module")
def training_set() -> tuple[np.ndarray, list[str], list[Scene]]:
    return make_dataset(3000, seed=11)


# The table of things ----------------------------------------------------------------------------


def test_colour_table_has_the_basic_colours_far_apart():
    assert {"red", "green", "blue", "yellow", "white", "black"} <= set(COLOURS)
    assert len(COLOURS) >= 6
    for rgb in COLOURS.values():
        assert len(rgb) == 3 and all(0 <= c <= 255 for c in rgb)
    closest = min(
        np.linalg.norm(np.subtract(a, b)) for a, b in itertools.combinations(COLOURS.values(), 2)
    )
    assert closest >= 90  # soft, noisy generated pictures must still land on the right name


def test_world_has_the_promised_shapes_sizes_and_positions():
    assert {"circle", "square", "triangle"} <= set(SHAPES)
    assert set(SIZES) == {"small", "large"}
    assert set(POSITIONS) == {"left", "right", "top", "bottom", "centre"}


def test_scene_refuses_nonsense():
    with pytest.raises(ValueError, match="both red"):
        Scene("circle", "red", "red", "small", "left")
    with pytest.raises(ValueError, match="unknown shape"):
        Scene("hexagon", "red", "blue", "small", "left")
    with pytest.raises(ValueError, match="unknown position"):
        Scene("circle", "red", "blue", "small", "center")  # the scene itself speaks British


# Pictures --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scene", ALL_SCENES, ids=str)
def test_render_paints_the_shape_in_its_colour_where_it_belongs(scene):
    picture = np.asarray(render(scene))
    assert picture.shape == (64, 64, 3) and picture.dtype == np.uint8
    background, colour = np.array(COLOURS[scene.background]), np.array(COLOURS[scene.colour])
    for corner in (picture[0, 0], picture[0, -1], picture[-1, 0], picture[-1, -1]):
        assert (corner == background).all()
    # The middle of the shape's box is inside every shape (a triangle's too) and unblended.
    cx, cy = POSITION_CENTRE[scene.position]
    assert (picture[int(cy * 64), int(cx * 64)] == colour).all()
    # Its extent is what the size says, to within a pixel of anti-aliasing.
    covered = np.flatnonzero((picture != background).any(axis=2).any(axis=0))
    width = covered[-1] - covered[0] + 1
    assert abs(width - SIZE_EXTENT[scene.size] * 64) <= 1.5


def test_shapes_are_drawn_to_their_ideal_area():
    for shape, fill in {"circle": np.pi / 4, "square": 1, "triangle": 0.5, "cross": 5 / 9}.items():
        picture = np.asarray(render(Scene(shape, "white", "black", "large", "centre")))
        coverage = (picture[..., 0].astype(float) - 20) / (245 - 20)
        ideal = fill * (SIZE_EXTENT["large"] * 64) ** 2
        assert coverage.sum() == pytest.approx(ideal, rel=0.03), shape


def test_small_shapes_stay_big_enough_to_recognise():
    for shape in SHAPES:
        picture = np.asarray(render(Scene(shape, "white", "black", "small", "centre")))
        mask = picture[..., 0] > 132
        assert mask.any(axis=0).sum() >= 12 and mask.any(axis=1).sum() >= 12, shape


def test_render_takes_a_picture_size():
    scene = Scene("cross", "green", "purple", "large", "top")
    for size in (32, 48, 128):
        picture = render(scene, size)
        assert picture.size == (size, size)
        middle = np.asarray(picture)[int(0.28 * size), size // 2]  # "top": centre 0.28 down
        assert middle.tolist() == list(COLOURS["green"])


def test_jitter_moves_and_resizes_a_little_and_follows_the_seed():
    scene = Scene("square", "yellow", "black", "large", "centre")

    def coverage(picture: Image.Image) -> np.ndarray:  # share of each pixel that is yellow
        return (np.asarray(picture)[..., 0].astype(float) - 20) / (250 - 20)

    exact = coverage(render(scene)).sum()
    grid = np.arange(64) + 0.5
    areas, offsets = [], []
    for seed in range(40):
        shape = coverage(render(scene, rng=np.random.default_rng(seed)))
        areas.append(shape.sum() / exact)
        centre_x = (shape.sum(axis=0) * grid).sum() / shape.sum()
        centre_y = (shape.sum(axis=1) * grid).sum() / shape.sum()
        offsets.append(max(abs(centre_x - 32), abs(centre_y - 32)))
    assert len(set(areas)) >= 30  # samples differ (to the 1/4 px the renderer resolves)...
    assert min(areas) >= 0.9**2 - 0.02 and max(areas) <= 1.1**2 + 0.02  # ...by at most 10%
    assert 0.5 < max(offsets) <= 0.03 * 64 + 0.1  # a couple of pixels at 64 px
    again = render(scene, rng=np.random.default_rng(3))
    assert (np.asarray(again) == np.asarray(render(scene, rng=np.random.default_rng(3)))).all()


def test_shapes_never_touch_the_border(training_set):
    images, _, scenes = training_set
    for picture, scene in zip(images, scenes, strict=True):
        ring = np.concatenate([picture[0], picture[-1], picture[:, 0], picture[:, -1]])
        assert (ring == COLOURS[scene.background]).all(), scene


# Datasets --------------------------------------------------------------------------------------


def test_make_dataset_is_deterministic_per_seed():
    images, captions, scenes = make_dataset(40, seed=5)
    assert images.shape == (40, 64, 64, 3) and images.dtype == np.uint8
    assert len(captions) == len(scenes) == 40
    again = make_dataset(40, seed=5)
    assert (again[0] == images).all() and again[1] == captions and again[2] == scenes
    other = make_dataset(40, seed=6)
    assert other[1] != captions and not (other[0] == images).all()
    assert make_dataset(3, seed=5, size=32)[0].shape == (3, 32, 32, 3)


def test_training_never_shows_a_held_out_combination(training_set):
    _, _, scenes = training_set
    assert 3 <= len(HELD_OUT) <= 4
    for colour, shape in HELD_OUT:
        assert colour in COLOURS and shape in SHAPES
    pairs = Counter((s.colour, s.shape) for s in scenes)
    assert not set(pairs) & HELD_OUT
    # ...while every colour and every shape on its own is well represented
    assert {s.colour for s in scenes} == set(COLOURS)
    assert {s.background for s in scenes} == set(COLOURS)
    assert {s.shape for s in scenes} == set(SHAPES)
    assert {(s.size, s.position) for s in scenes} == set(itertools.product(SIZES, POSITIONS))
    assert len(pairs) == len(COLOURS) * len(SHAPES) - len(HELD_OUT)
    assert min(pairs.values()) >= 50
    assert all(not s.held_out for s in scenes)


def test_held_out_sampling_gives_only_held_out_combinations():
    rng = np.random.default_rng(0)
    scenes = [sample_scene(rng, held_out=True) for _ in range(200)]
    assert {(s.colour, s.shape) for s in scenes} == HELD_OUT
    assert all(s.held_out for s in scenes)
    _, _, from_dataset = make_dataset(20, seed=1, held_out=True)
    assert all(s.held_out for s in from_dataset)


# Captions --------------------------------------------------------------------------------------


def test_every_caption_names_colour_shape_and_background(training_set):
    _, captions, scenes = training_set
    for text, scene in zip(captions, scenes, strict=True):
        named = parse_caption(text)
        assert (named.get("colour"), named.get("shape"), named.get("background")) == (
            scene.colour,
            scene.shape,
            scene.background,
        ), text


def test_captions_name_position_and_size_often_and_rightly(training_set):
    _, captions, scenes = training_set
    named = [parse_caption(text) for text in captions]
    with_position = [(n, s) for n, s in zip(named, scenes, strict=True) if "position" in n]
    with_size = [(n, s) for n, s in zip(named, scenes, strict=True) if "size" in n]
    assert len(with_position) / len(captions) >= 0.8
    assert len(with_size) / len(captions) >= 0.7
    assert all(n["position"] == s.position for n, s in with_position)
    assert all(n["size"] == s.size for n, s in with_size)


def test_captions_vary_in_wording(training_set):
    _, captions, scenes = training_set
    skeletons = set()
    for text, scene in zip(captions, scenes, strict=True):
        for word in (scene.colour, scene.background, scene.shape):
            text = re.sub(rf"\b{word}\b", "X", text)
        skeletons.add(text)
    assert len(skeletons) >= 50
    words = vocabulary(captions)
    assert words["centre"] > words["center"] > 0  # British first, American understood
    assert {"left", "right", "top", "bottom", "middle", "little", "big"} <= set(words)


def test_captions_read_as_english(training_set):
    _, captions, _ = training_set
    for text in captions:
        assert text == text.strip() and "  " not in text and not text.endswith(",")
        assert not re.search(r"\ba [aeiou]", text) and not re.search(r"\ban [^aeiou]", text), text


def test_caption_follows_the_seed():
    scene = Scene("triangle", "orange", "white", "small", "bottom")
    first = [caption(scene, np.random.default_rng(9)) for _ in range(2)]
    assert first[0] == first[1]
    assert len({caption(scene, np.random.default_rng(seed)) for seed in range(50)}) >= 15


def test_canonical_prompt_names_everything():
    scene = Scene("circle", "red", "blue", "small", "top")
    assert canonical_prompt(scene) == "a small red circle at the top on a blue background"
    assert canonical_prompt(Scene("cross", "orange", "white", "large", "centre")) == (
        "a large orange cross in the centre on a white background"
    )
    for scene in ALL_SCENES:
        named = parse_caption(canonical_prompt(scene))
        assert Scene(**named) == scene


def test_parse_caption_understands_people_too():
    assert parse_caption("A big blue square, centered, on a WHITE background.") == {
        "colour": "blue",
        "shape": "square",
        "background": "white",
        "size": "large",
        "position": "centre",
    }
    assert parse_caption("in the center: a tiny green cross on a black picture")["position"] == (
        "centre"
    )
    assert "position" not in parse_caption("a red circle at the top left on a blue background")
    assert parse_caption("a cat") == {}


def test_vocabulary_counts_words_most_frequent_first():
    assert vocabulary(["a red circle", "A red square, red background"]) == {
        "red": 3,
        "a": 2,
        "background": 1,
        "circle": 1,
        "square": 1,
    }


def test_vocabulary_of_the_world_is_small_and_complete(training_set):
    _, captions, _ = training_set
    words = vocabulary(captions)
    assert set(COLOURS) | set(SHAPES) | set(SIZES) <= set(words)
    assert len(words) <= 60  # a tiny text encoder's worth; the model card records it


def test_module_exports_what_the_model_card_uses():
    for name in ("SHAPES", "COLOURS", "SIZES", "POSITIONS", "HELD_OUT", "DEFAULT_SIZE"):
        assert hasattr(world, name)
    assert world.DEFAULT_SIZE == 64
