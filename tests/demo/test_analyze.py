"""The analyzer reads pictures of the demo world back, sharp or soft, and never falls over."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from PIL import Image, ImageFilter

from sfumato.demo.analyze import SCORE_KEYS, Analysis, analyze, evaluate, score
from sfumato.demo.world import (
    COLOURS,
    POSITION_CENTRE,
    SHAPES,
    SIZE_EXTENT,
    SIZES,
    Scene,
    make_dataset,
    render,
)

N = 300  # pictures per check: every shape x size x position appears ~7 times


@pytest.fixture(scope="module")
def ground_truth() -> tuple[np.ndarray, list[Scene]]:
    images, _, scenes = make_dataset(N, seed=2024)
    return images, scenes


def soften(images: np.ndarray, radius: float, noise: float, seed: int = 0) -> np.ndarray:
    """Like a small diffusion model's output: Gaussian blur, then Gaussian noise (of 255)."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    for i, picture in enumerate(images):
        blurred = np.asarray(Image.fromarray(picture).filter(ImageFilter.GaussianBlur(radius)))
        noisy = blurred.astype(np.float32) + rng.normal(0, noise, blurred.shape)
        out[i] = np.clip(noisy, 0, 255).round().astype(np.uint8)
    return out


def accuracy_by_group(images, scenes, key) -> dict[tuple, float]:
    """Share of `images` whose colour, background and shape are all right, per group."""
    right, total = defaultdict(int), defaultdict(int)
    for picture, scene in zip(images, scenes, strict=True):
        right[key(scene)] += score(scene, analyze(picture))["all"]
        total[key(scene)] += 1
    return {group: right[group] / total[group] for group in total}


# Accuracy ---------------------------------------------------------------------------------------


def test_reads_ground_truth_pictures(ground_truth):
    images, scenes = ground_truth
    accuracy = evaluate(images, scenes)
    for key in ("colour", "background", "shape", "all"):
        assert accuracy[key] >= 0.98, accuracy
    assert accuracy["position"] >= 0.98 and accuracy["size"] >= 0.98, accuracy


def test_reads_soft_noisy_pictures(ground_truth):
    images, scenes = ground_truth
    # Gaussian blur of radius 1 px and noise of sigma 8: how soft a small model's output is.
    accuracy = evaluate(soften(images, radius=1.0, noise=8.0), scenes)
    for key in ("colour", "background", "shape", "all"):
        assert accuracy[key] >= 0.97, accuracy
    assert accuracy["position"] >= 0.97 and accuracy["size"] >= 0.97, accuracy


def test_reads_even_very_soft_pictures(ground_truth):
    # Twice as blurred and noisy again: the margin above the requirement (measured: 100%).
    images, scenes = ground_truth
    accuracy = evaluate(soften(images[:150], radius=2.0, noise=16.0, seed=1), scenes[:150])
    for key in ("colour", "background", "shape", "position", "size"):
        assert accuracy[key] >= 0.9, accuracy


def test_no_kind_of_shape_is_a_blind_spot(ground_truth):
    # An average can hide a kind of picture it always gets wrong; look at each kind alone.
    images, scenes = ground_truth
    groups = accuracy_by_group(
        soften(images, radius=1.0, noise=8.0, seed=2), scenes, lambda s: (s.shape, s.size)
    )
    assert len(groups) == len(SHAPES) * len(SIZES)
    assert min(groups.values()) >= 0.9, groups


@pytest.mark.parametrize("size", [32, 128])
def test_reads_other_picture_sizes(size):
    images, _, scenes = make_dataset(60, seed=7, size=size)
    accuracy = evaluate(images, scenes)
    assert min(accuracy.values()) >= 0.95, accuracy


def test_reads_held_out_combinations():
    images, _, scenes = make_dataset(60, seed=8, held_out=True)
    assert evaluate(images, scenes)["all"] >= 0.98


# What an analysis says -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
def test_measures_extent_and_centre(shape):
    for size, position in (("small", "left"), ("large", "bottom"), ("small", "centre")):
        scene = Scene(shape, "purple", "yellow", size, position)
        result = analyze(render(scene))
        assert result.found and result.shape == shape
        assert result.extent == pytest.approx(SIZE_EXTENT[size], abs=0.02)
        assert result.centre == pytest.approx(POSITION_CENTRE[position], abs=0.02)
        assert result.softness == 0.0 and result.shape_fit > 0.95 and result.confidence > 0.85


def test_softness_tracks_blur():
    scene = Scene("triangle", "white", "blue", "large", "right")
    picture = np.asarray(render(scene))[None]
    sharp, soft = analyze(picture[0]), analyze(soften(picture, radius=2.0, noise=0.0)[0])
    assert sharp.softness <= 0.5 and soft.softness >= 1.5
    assert soft.shape == "triangle" and soft.confidence < sharp.confidence


def test_same_answer_whatever_the_picture_format():
    scene = Scene("cross", "orange", "green", "large", "top")
    picture = render(scene)
    array = np.asarray(picture)
    forms = [
        picture,
        array,
        array.astype(np.float32) / 255,  # floats in 0..1
        picture.convert("RGBA"),
        picture.resize((256, 256), Image.Resampling.NEAREST),  # bigger than the model makes
    ]
    for form in forms:
        result = analyze(form)
        assert (result.colour, result.background, result.shape, result.size, result.position) == (
            "orange",
            "green",
            "cross",
            "large",
            "top",
        )


# Pictures that are not the world ---------------------------------------------------------------

RNG = np.random.default_rng(0)
NOT_THE_WORLD = {
    "blank": np.full((64, 64, 3), 200, np.uint8),
    "pure noise": RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8),
    "float noise": RNG.random((64, 64, 3)),
    "one pixel": np.zeros((1, 1, 3), np.uint8),
    "no pixels": np.zeros((0, 0, 3), np.uint8),
    "grey 2 x 3": np.zeros((2, 3), np.uint8),
    "nan": np.full((16, 16, 3), np.nan),
    "stripes": np.tile(np.array([[0], [255]], np.uint8), (32, 64)),
    "transparent": Image.new("RGBA", (64, 64)),
    "speck": np.pad(np.full((1, 1, 3), 255, np.uint8), ((30, 33), (30, 33), (0, 0))),
}


@pytest.mark.parametrize("name", NOT_THE_WORLD)
def test_empty_or_messy_pictures_give_an_answer_not_an_error(name):
    result = analyze(NOT_THE_WORLD[name])
    assert isinstance(result, Analysis)
    assert not result.found
    assert result.shape is None and result.colour is None and result.confidence == 0.0


def test_blank_picture_still_names_its_colour():
    result = analyze(np.full((64, 64, 3), COLOURS["green"], np.uint8))
    assert not result.found and result.background == "green"


def test_two_shapes_take_the_larger_and_lower_the_confidence():
    big = np.asarray(render(Scene("circle", "red", "black", "large", "left")))
    small = np.asarray(render(Scene("square", "red", "black", "small", "right")))
    result = analyze(np.maximum(big, small))
    assert result.found and result.shape == "circle" and result.position == "left"
    assert result.confidence < 0.8 < analyze(big).confidence


def test_a_picture_with_two_halves_is_not_confidently_a_shape():
    halves = np.zeros((64, 64, 3), np.uint8)
    halves[32:] = 255
    assert analyze(halves).confidence < 0.5


# Scoring ---------------------------------------------------------------------------------------


def test_score_says_which_attributes_are_right():
    scene = Scene("circle", "red", "blue", "small", "top")
    right = score(scene, analyze(render(scene)))
    assert set(right) == set(SCORE_KEYS) and all(right.values())

    wrong_shape = score(scene, analyze(render(Scene("square", "red", "blue", "small", "top"))))
    assert not wrong_shape["shape"] and not wrong_shape["all"]
    assert wrong_shape["colour"] and wrong_shape["background"] and wrong_shape["position"]

    # "all" is colour, background and shape: a misplaced shape still counts as right there.
    misplaced = score(scene, analyze(render(Scene("circle", "red", "blue", "large", "bottom"))))
    assert misplaced["all"] and not misplaced["position"] and not misplaced["size"]

    nothing = score(scene, analyze(np.full((64, 64, 3), COLOURS["blue"], np.uint8)))
    assert nothing["background"] and not any(v for k, v in nothing.items() if k != "background")


def test_evaluate_needs_one_scene_per_picture(ground_truth):
    images, scenes = ground_truth
    with pytest.raises(ValueError, match="3 pictures but 2 scenes"):
        evaluate(images[:3], scenes[:2])
    assert evaluate([], []) == dict.fromkeys(SCORE_KEYS, 0.0)
