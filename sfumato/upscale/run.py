"""A picture enlarged by a factor with a named upscaler: a resize (Lanczos, Nearest), or an
upscaler model run tile by tile and, as A1111 does, again while the picture is still smaller
than asked (at most three times), then resized to the exact size with Lanczos."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sfumato.errors import InvalidRequest
from sfumato.upscale import models, tiles

# A1111's built-in upscalers that resize (``modules/upscaler.py``); "None" resizes with Lanczos
RESIZES = {
    "Lanczos": Image.Resampling.LANCZOS,
    "Nearest": Image.Resampling.NEAREST,
    "None": Image.Resampling.LANCZOS,
}
DEFAULT = "Lanczos"
MIN_FACTOR, MAX_FACTOR = 1.0, 8.0
MAX_SIDE = 8192  # pixels per side of an upscaled picture
MODEL_PASSES = 3


@dataclass(frozen=True)
class Upscaler:
    """What a name resolved to: a resize, or a model file."""

    name: str
    path: Path | None = None  # None: a resize
    scale: int | None = None  # the model's own factor


def target_size(size: tuple[int, int], factor: float) -> tuple[int, int]:
    """The upscaled size of a picture of ``size``, checked."""
    if not MIN_FACTOR < factor <= MAX_FACTOR:
        raise InvalidRequest(
            f"The upscale factor must be more than {MIN_FACTOR:g} and at most {MAX_FACTOR:g}; "
            f"got {factor:g}."
        )
    width, height = round(size[0] * factor), round(size[1] * factor)
    if max(width, height) > MAX_SIDE:
        raise InvalidRequest(
            f"A {factor:g}x upscale of {size[0]}x{size[1]} would be {width}x{height}: at most "
            f"{MAX_SIDE} pixels a side. Ask for a smaller factor."
        )
    return width, height


def upscale(
    picture: Image.Image,
    factor: float,
    upscaler: Upscaler,
    device: torch.device | None = None,
    progress: tiles.Progress | None = None,
    cancel: threading.Event | None = None,
    tile: int = tiles.TILE,
) -> Image.Image:
    """``picture`` (RGB) ``factor`` times larger with ``upscaler``."""
    size = target_size(picture.size, factor)
    return enlarge(picture, size, upscaler, device, progress, cancel, tile)


def enlarge(
    picture: Image.Image,
    size: tuple[int, int],
    upscaler: Upscaler,
    device: torch.device | None = None,
    progress: tiles.Progress | None = None,
    cancel: threading.Event | None = None,
    tile: int = tiles.TILE,
) -> Image.Image:
    """``picture`` (RGB) brought to ``size`` with ``upscaler`` (the hires fix's exact size)."""
    if upscaler.path is None:
        result = picture.resize(size, RESIZES[upscaler.name])
        if progress:
            progress(1, 1)
        return result
    network = models.load(upscaler.path, device or torch.device("cpu"))
    counts = tile_counts(picture.size, size, network.scale, tile)
    image, done = picture, 0
    for count in counts:

        def counted(step: int, _: int, before: int = done) -> None:
            if progress:
                progress(before + step, sum(counts))

        image = _run(network, image, counted, cancel, tile)
        done += count
    if image.size != size:
        image = image.resize(size, Image.Resampling.LANCZOS)
    return image


def steps(size: tuple[int, int], factor: float, upscaler: Upscaler) -> int:
    """What an upscale's progress counts to: the tiles of every pass of a model (1 for a
    resize)."""
    if upscaler.path is None:
        return 1
    return sum(tile_counts(size, target_size(size, factor), upscaler.scale, tiles.TILE))


def tile_counts(size: tuple[int, int], target: tuple[int, int], scale: int, tile: int) -> list[int]:
    """The tiles of each pass of a model of ``scale``: it runs until the picture is at least
    the target size (at most ``MODEL_PASSES`` times)."""
    counts, (width, height) = [], size
    while not counts or (width < target[0] and len(counts) < MODEL_PASSES):
        counts.append(tiles.count((width, height), tile, tiles.OVERLAP))
        width, height = width * scale, height * scale
    return counts


def _run(network, picture: Image.Image, progress, cancel, tile: int) -> Image.Image:
    parameter = next(network.model.parameters())
    pixels = torch.from_numpy(np.asarray(picture.convert("RGB"), dtype=np.float32) / 255.0)
    tensor = pixels.permute(2, 0, 1)[None].to(parameter.device, parameter.dtype)
    with torch.inference_mode():
        out = tiles.run_tiled(
            lambda x: network(x).float().cpu(),
            tensor,
            network.scale,
            tile,
            tiles.OVERLAP,
            progress,
            cancel,
        )
    array = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(array)
