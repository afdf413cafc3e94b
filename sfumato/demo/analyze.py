"""Read a picture of the demo world back into attributes, without any learned model.

`analyze` takes the background colour from the picture's border, finds the largest blob that
stands out from it, and then asks which world shape, in which colour, at which extent and how
blurred, reproduces that part of the picture best (a small search by synthesis, least
squares). That answers the shape, its colour (nearest entry of `world.COLOURS`), its size and
its position. Matching blurred renderings rather than outlines is what makes it hold up on the
demo model's pictures, which are soft and a little noisy.

Measured on 600 ground-truth pictures from `world.make_dataset(600, seed=2024)` at 64 px:
colour, background, shape, size and position all 100% right, on the clean pictures and after a
Gaussian blur of radius 1 px plus Gaussian noise of sigma 8 (of 255); still 100% after radius
2 px plus sigma 16. Only at radius 3 px do small crosses start to pass for circles (94% of
shapes right). 4 to 8 ms a picture on a shared 2-core machine. See tests/demo/test_analyze.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from sfumato.demo.world import (
    COLOURS,
    POSITION_OFFSET,
    SHAPES,
    SIZE_EXTENT,
    Scene,
)

_NAMES = list(COLOURS)
_TABLE = np.array([COLOURS[name] for name in _NAMES], dtype=np.float32)

# Bigger pictures are box-downscaled to this side first: the world is defined in fractions of
# the picture, 64 px is what the model makes, and it keeps the pure-Python blob search cheap.
ANALYSIS_SIDE = 64

# A pixel belongs to the shape's first rough mask when it is this far (RGB distance) from the
# background, or further if the border shows more noise than that. 40 is well under half the
# closest pair of table colours (~105), and well over mild noise (sigma 8 gives ~13 on average).
MIN_CONTRAST = 40.0

# A blob smaller than this fraction of the picture is noise, not a shape (a small shape of the
# world covers at least ~2% of the picture; a triangle of 0.2 x 0.2 of the side).
MIN_AREA_FRACTION = 0.004

# A blob that no world shape reproduces even this well (1 - squared misfit / area) is not a
# shape: pure noise fits at 0; world pictures at >= 0.98 sharp or mildly soft, and >= 0.8 even
# blurred by 2 px with noise of sigma 25.
MIN_SHAPE_FIT = 0.2

# Size: the shape's longer side as a fraction of the picture's, split at the geometric mean of
# the two world extents (0.22 and 0.40 -> ~0.30), which jitter of +-10% never crosses.
SIZE_THRESHOLD = float(np.sqrt(SIZE_EXTENT["small"] * SIZE_EXTENT["large"]))

# Position: the shape's centre is "centre" when within half the world's offset (0.22 / 2) of the
# middle on both axes; otherwise the axis with the larger offset decides.
CENTRE_RADIUS = POSITION_OFFSET / 2


@dataclass(frozen=True)
class Analysis:
    """What `analyze` saw. Names are keys of `world.COLOURS`, `world.SHAPES`, ... or None when
    there was nothing to see. `found` says whether a shape was found at all; `confidence`
    (0..1) is the weakest of several cues (see analyze): clean pictures of the world score
    0.88 to 1, blurred and mildly noisy ones about 0.97 (median); a picture that does not look
    like the world scores low."""

    found: bool
    colour: str | None
    background: str | None
    shape: str | None
    size: str | None
    position: str | None
    confidence: float
    shape_fit: float = 0.0  # 1 - squared misfit of the best rendered shape / its area, 0..1
    softness: float = 0.0  # the blur (Gaussian sigma, px at <= 64 px) that fitted best
    extent: float = 0.0  # the shape's side, as a fraction of the picture's longer side
    centre: tuple[float, float] = (0.5, 0.5)  # the centre of the shape's box, (x, y) fractions


def _nothing(background: str | None = None) -> Analysis:
    return Analysis(False, None, background, None, None, None, 0.0)


# Input -----------------------------------------------------------------------------------------


def _as_rgb(image: Image.Image | np.ndarray) -> np.ndarray | None:
    """Any PIL picture or array (H x W, H x W x 1/3/4; uint8 0..255 or float 0..1) as float32
    H x W x 3 in 0..255, at most ANALYSIS_SIDE on its longer side; None if it has no pixels."""
    if isinstance(image, Image.Image):
        if 0 in image.size:
            return None
        picture = image.convert("RGB")
    else:
        array = np.asarray(image)
        is_float = np.issubdtype(array.dtype, np.floating)
        if array.ndim == 2:
            array = array[..., None]
        if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
            raise ValueError(f"not a picture: array of shape {array.shape}")
        if 0 in array.shape:
            return None
        array = np.nan_to_num(array[..., :3].astype(np.float32))
        if is_float and array.max() <= 1.0:
            array = array * 255  # floats in 0..1, as models and torchvision-style code give
        array = np.clip(array, 0, 255).astype(np.uint8)
        picture = Image.fromarray(np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array)
    if max(picture.size) > ANALYSIS_SIDE:
        scale = ANALYSIS_SIDE / max(picture.size)
        new_size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(new_size, Image.Resampling.BOX)
    return np.asarray(picture, dtype=np.float32)


def _nearest(pixels: np.ndarray, exclude: int | None = None) -> np.ndarray:
    """Index into the colour table of the nearest colour for each of `pixels` (N x 3)."""
    distance = np.linalg.norm(pixels[:, None, :] - _TABLE[None, :, :], axis=2)
    if exclude is not None:
        distance[:, exclude] = np.inf
    return distance.argmin(axis=1)


def _box_blur(image: np.ndarray) -> np.ndarray:
    """3 x 3 mean, edges repeated: cuts per-pixel noise by 3x before thresholding, and moves a
    straight edge's half-way point not at all (so shape outlines keep their size)."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
    height, width = image.shape[:2]
    total = sum(padded[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3))
    return total / 9


# Blobs -----------------------------------------------------------------------------------------


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of `mask` (all False when `mask` is empty). Plain Python
    lists: a few hundred pixels per picture, faster than numpy's per-element indexing."""
    height, width = mask.shape
    free = mask.ravel().tolist()  # True where a mask pixel is not yet in a region
    best: list[int] = []
    for start in np.flatnonzero(mask).tolist():
        if not free[start]:
            continue
        free[start] = False
        region, stack = [start], [start]
        while stack:
            index = stack.pop()
            x = index % width
            for neighbour, ok in (
                (index - width, index >= width),
                (index + width, index < (height - 1) * width),
                (index - 1, x > 0),
                (index + 1, x < width - 1),
            ):
                if ok and free[neighbour]:
                    free[neighbour] = False
                    region.append(neighbour)
                    stack.append(neighbour)
        if len(region) > len(best):
            best = region
    result = np.zeros(mask.size, dtype=bool)
    result[best] = True
    return result.reshape(mask.shape)


# Each world shape filling the square [-1, 1]^2, as a test on coordinates (u, v) with v pointing
# down; this mirrors world.render. FILL is the share of that square the shape covers.
def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    in_box = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    if shape == "circle":
        return u**2 + v**2 <= 1
    if shape == "square":
        return in_box
    if shape == "triangle":  # apex at the top middle, base along the bottom
        return in_box & (np.abs(u) <= (v + 1) / 2)
    if shape == "cross":  # arms a third of the extent wide
        return in_box & ((np.abs(u) <= 1 / 3) | (np.abs(v) <= 1 / 3))
    raise ValueError(f"no outline for shape {shape!r}")


FILL = {"circle": np.pi / 4, "square": 1.0, "triangle": 0.5, "cross": 5 / 9}
# How far below the centre of its box a shape's centre of mass lies, in half-extents: a
# triangle's is a third of the way from its base's middle to its apex.
_MASS_DROP = {"circle": 0.0, "square": 0.0, "triangle": 1 / 3, "cross": 0.0}

# Blur levels tried when matching (Gaussian sigma, in pixels of the analysis picture): sharp
# renders, the softness of a small diffusion model's output, and beyond.
BLURS = (0.0, 0.5, 1.0, 1.5, 2.0, 2.5)
# Extents tried, relative to the one the measured area gives: blur dilutes the first guess of
# the colour in small shapes, which makes the measured area up to ~1/3 too big.
EXTENT_FACTORS = (0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05)
_SUBPIXELS = 4  # coverage of each pixel is estimated from 4 x 4 samples, as world.render draws


def _coverage(shape: str, window: tuple[int, int, int, int], centres: np.ndarray,
              halves: np.ndarray) -> np.ndarray:  # fmt: skip
    """Share of each pixel of `window` (top, left, height, width) that `shape` covers, for each
    (x, y) of `centres` (n x 2, pixels) and half-extent of `halves` (n): n x height x width."""
    top, left, height, width = window
    steps = (np.arange(_SUBPIXELS) + 0.5) / _SUBPIXELS
    ys = (np.arange(top, top + height)[:, None] + steps).ravel()
    xs = (np.arange(left, left + width)[:, None] + steps).ravel()
    scale = halves[:, None, None]
    u = (xs[None, None, :] - centres[:, 0, None, None]) / scale
    v = (ys[None, :, None] - centres[:, 1, None, None]) / scale
    inside = _inside(shape, u, v).astype(np.float64)
    return _pixel_means(height) @ inside @ _pixel_means(width).T


@lru_cache(maxsize=256)
def _pixel_means(length: int) -> np.ndarray:
    """length x (length * _SUBPIXELS): averages each pixel's samples (faster than a reshape)."""
    return np.kron(np.eye(length), np.full((1, _SUBPIXELS), 1 / _SUBPIXELS))


@lru_cache(maxsize=256)
def _blur_matrices(length: int) -> np.ndarray:
    """Gaussian blur along one axis of a window, as one matrix per sigma of BLURS. Coverage
    blurred out of the window is lost, as it is from the picture's window."""
    offsets = np.arange(length)[:, None] - np.arange(length)[None, :]
    matrices = []
    for sigma in BLURS:
        if sigma == 0:
            matrices.append(np.eye(length))
            continue
        reach = int(np.ceil(3 * sigma))
        kernel_sum = np.exp(-0.5 * (np.arange(-reach, reach + 1) / sigma) ** 2).sum()
        weights = np.exp(-0.5 * (offsets / sigma) ** 2) * (np.abs(offsets) <= reach)
        matrices.append(weights / kernel_sum)
    return np.stack(matrices)


@dataclass(frozen=True)
class _Fit:
    shape: str
    blur: float  # Gaussian sigma, pixels
    centre: tuple[float, float]  # centre of the shape's box, (x, y) in pixels
    half: float  # half its extent, in pixels
    colour: np.ndarray  # the shape's RGB that best explains the picture
    residual: float  # squared RGB error left over the window compared
    pixels: int  # the window's size


def _fit_shape(
    rgb: np.ndarray, background: np.ndarray, colour: np.ndarray, blob: np.ndarray
) -> _Fit:
    """Which world shape, drawn in some colour and blurred, best reproduces the picture around
    `blob`: a small search by synthesis.

    Blur keeps a shape's area and its centre of mass, so those, measured on the picture, give
    each candidate shape's box, however soft the picture. The candidate is rendered there, at a
    few extents (the area measured with `colour`, a first guess, is too big when blur has
    diluted that guess towards the background) and blurred at each of BLURS; for each such
    rendering the colour that explains the picture best follows by least squares, and the
    rendering that leaves the least error wins. Comparing with blurred renders is what keeps
    small soft crosses and triangles from passing for circles, and solving for the colour is
    what keeps a small soft blue shape from passing for purple."""
    rows, cols = np.flatnonzero(blob.any(axis=1)), np.flatnonzero(blob.any(axis=0))
    margin = 1 + int(np.ceil(2 * max(BLURS)))  # room for the blurred edge outside the blob
    top, left = max(0, rows[0] - margin), max(0, cols[0] - margin)
    bottom = min(rgb.shape[0], rows[-1] + margin + 1)
    right = min(rgb.shape[1], cols[-1] + margin + 1)
    seen = rgb[top:bottom, left:right] - background  # what the shape adds to the background
    height, width = seen.shape[:2]
    mix = _mix(rgb[top:bottom, left:right], background, colour)
    area = max(float(mix.sum()), 1.0)
    ys, xs = np.mgrid[top:bottom, left:right] + 0.5
    mass_x, mass_y = float((mix * xs).sum() / area), float((mix * ys).sum() / area)
    blur_y, blur_x = _blur_matrices(height), _blur_matrices(width).transpose(0, 2, 1)
    factors = np.array(EXTENT_FACTORS)
    best: _Fit | None = None
    best_explained = -1.0
    for shape in SHAPES:
        halves = factors * np.sqrt(area / FILL[shape]) / 2
        centres = np.stack([np.full_like(halves, mass_x), mass_y - _MASS_DROP[shape] * halves], 1)
        sharp = _coverage(shape, (top, left, height, width), centres, halves)
        # every extent x every blur: extents x blurs x height x width
        models = blur_y[None] @ sharp[:, None] @ blur_x[None]
        flat = models.reshape(-1, height * width)
        norms = np.maximum((flat**2).sum(axis=1), 1e-9).reshape(models.shape[:2])
        along = (flat @ seen.reshape(-1, 3)).reshape(*models.shape[:2], 3)  # model x picture
        explained = (along**2).sum(axis=2) / norms  # the part of the picture each explains
        f, b = np.unravel_index(int(explained.argmax()), explained.shape)
        if explained[f, b] > best_explained:
            best_explained = float(explained[f, b])
            shade = along[f, b] / norms[f, b]  # least-squares colour, less the background
            residual = float((seen**2).sum()) - best_explained
            centre = (float(centres[f, 0]), float(centres[f, 1]))
            best = _Fit(
                shape,
                BLURS[b],
                centre,
                float(halves[f]),
                background + shade,
                residual,
                seen.size // 3,
            )
    assert best is not None  # there are shapes, and the blob is not empty
    return best


def _position(centre_x: float, centre_y: float) -> str:
    dx, dy = centre_x - 0.5, centre_y - 0.5
    if max(abs(dx), abs(dy)) < CENTRE_RADIUS:
        return "centre"
    if abs(dx) >= abs(dy):
        return "left" if dx < 0 else "right"
    return "top" if dy < 0 else "bottom"


# Analysis --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Background:
    index: int  # into the colour table
    rgb: np.ndarray  # as seen: the median
    noise: float  # 95th percentile of the distance from that median
    noise_power: float  # mean squared distance from it
    share: float  # of the border that is this colour


def _background(image: np.ndarray) -> _Background:
    """The background as seen in the outermost 2 px ring (world shapes keep ~2 px clear of the
    border): the table colour most of it is nearest to."""
    height, width = image.shape[:2]
    ring = max(1, min(height, width) // 32)
    inner = np.zeros((height, width), dtype=bool)
    inner[ring:-ring, ring:-ring] = True
    border = image[~inner] if inner.any() else image.reshape(-1, 3)
    labels = _nearest(border)
    index = int(np.bincount(labels, minlength=len(_NAMES)).argmax())
    agreeing = border[labels == index]
    rgb = np.median(agreeing, axis=0)
    distance = np.linalg.norm(agreeing - rgb, axis=1)
    return _Background(
        index=index,
        rgb=rgb,
        noise=float(np.percentile(distance, 95)),
        noise_power=float((distance**2).mean()),
        share=len(agreeing) / len(border),
    )


def _mix(rgb: np.ndarray, background: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Each pixel's position from `background` (0) to `colour` (1), along the line joining them."""
    axis = colour - background
    return (rgb - background) @ axis / max(float(axis @ axis), 1e-6)


def analyze(image: Image.Image | np.ndarray) -> Analysis:
    """Describe a picture of the demo world. Never raises for a picture, however empty or
    messy: when no shape stands out, `found` is False and the shape's fields are None."""
    rgb = _as_rgb(image)
    if rgb is None:
        return _nothing()
    height, width = rgb.shape[:2]
    back = _background(rgb)
    background = _NAMES[back.index]
    smooth = _box_blur(rgb)

    # First, rough: everything clearly unlike the background, largest blob. The 3 x 3 mean cuts
    # the border's measured noise by 3; anything over twice that is not noise.
    distance = np.linalg.norm(smooth - back.rgb, axis=2)
    rough = _largest_component(distance > max(MIN_CONTRAST, 2 * back.noise / 3))
    min_area = max(3, MIN_AREA_FRACTION * height * width)
    if rough.sum() < min_area:
        return _nothing(background)

    # A first guess at the shape's colour: the median of the blob's most distinct pixels,
    # leaving out edge pixels that blur mixed with the background (red on yellow looks orange).
    core = rough & (distance >= 0.7 * np.percentile(distance[rough], 90))
    guess = np.median(rgb[core], axis=0)

    # Then, precise: how far each pixel is from the background towards that colour (0 =
    # background, 1 = shape). The blob is where the smoothed picture is over half way: that
    # keeps a blurred outline near its true size, and noise specks out.
    if float(np.linalg.norm(guess - back.rgb)) < MIN_CONTRAST:
        return _nothing(background)
    over_half = _mix(smooth, back.rgb, guess) > 0.5
    blob = _largest_component(over_half)
    area = int(blob.sum())
    if area < min_area:
        return _nothing(background)
    fit = _fit_shape(rgb, back.rgb, guess, blob)
    colour_index = int(_nearest(fit.colour[None], exclude=back.index)[0])

    # How well the shape explains the picture: 1 - the squared error left beyond the noise the
    # border shows, in units of the shape's area at full contrast. Noise and scribbles fit ~0.
    contrast = float(np.sum((fit.colour - back.rgb) ** 2))
    structure_error = max(0.0, fit.residual - fit.pixels * back.noise_power)
    shape_fit = max(0.0, 1 - structure_error / max(contrast * area, 1.0))
    if shape_fit < MIN_SHAPE_FIT:
        return _nothing(background)

    # Confidence: the weakest of that fit, how much of the shape-coloured area is this one
    # blob, how close the colour is to the table's, and how uniform the border is.
    colour_gap = float(np.linalg.norm(fit.colour - _TABLE[colour_index]))
    colour_fit = max(0.0, 1 - colour_gap / 100)  # 100: about the closest pair of table colours
    blob_share = area / int(over_half.sum())
    confidence = min(shape_fit, blob_share, colour_fit, back.share)
    extent = 2 * fit.half / max(height, width)
    centre = (fit.centre[0] / width, fit.centre[1] / height)
    return Analysis(
        found=True,
        colour=_NAMES[colour_index],
        background=background,
        shape=fit.shape,
        size="large" if extent >= SIZE_THRESHOLD else "small",
        position=_position(*centre),
        confidence=round(confidence, 3),
        shape_fit=round(shape_fit, 3),
        softness=fit.blur,
        extent=round(extent, 3),
        centre=(round(centre[0], 3), round(centre[1], 3)),
    )


# Scoring ---------------------------------------------------------------------------------------

SCORE_KEYS = ("colour", "background", "shape", "size", "position", "all")


def score(expected: Scene, analysis: Analysis) -> dict[str, bool]:
    """Which attributes `analysis` got right. "all" means colour, background and shape together
    (what a prompt for "a red circle on a blue background" must get right); size and position
    are reported separately."""
    right = {
        "colour": analysis.colour == expected.colour,
        "background": analysis.background == expected.background,
        "shape": analysis.shape == expected.shape,
        "size": analysis.size == expected.size,
        "position": analysis.position == expected.position,
    }
    right["all"] = right["colour"] and right["background"] and right["shape"]
    return right


def evaluate(images: Sequence[Any] | np.ndarray, scenes: Sequence[Scene]) -> dict[str, float]:
    """Share of `images` (pictures or an N x H x W x 3 array) whose analysis gets each of
    SCORE_KEYS right, compared with the `scenes` they should show."""
    if len(images) != len(scenes):
        raise ValueError(f"{len(images)} pictures but {len(scenes)} scenes")
    totals = dict.fromkeys(SCORE_KEYS, 0)
    for image, scene in zip(images, scenes, strict=True):
        for key, right in score(scene, analyze(image)).items():
            totals[key] += right
    return {key: totals[key] / max(1, len(scenes)) for key in SCORE_KEYS}
