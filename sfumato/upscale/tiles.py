"""A network run over overlapping tiles of a picture, the tiles blended back together.

A convolutional upscaler's working memory grows with the picture: ESRGAN holds feature maps
of 64 to 192 channels at the input size and 64 at the output size, so a 4x of a 1024-px
picture would need several GB at once. Tile by tile it needs what one tile needs. Where tiles
overlap, each output pixel is a weighted mean of the tiles that cover it, the weight falling
linearly toward a tile's inner edges, so no seam shows. Near an edge a tile's network sees
less context than the whole picture would give it, hence the overlap: wider ones match the
untiled result more closely (tests/upscale measure the difference).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import torch

from sfumato.errors import Cancelled

# ComfyUI's defaults (ImageUpscaleWithModel): an ESRGAN-sized 4x model peaks at about 3 GB on
# a 512-px tile in fp32 (benchmarks/upscale.py); smaller tiles cost time in overlap and in
# less efficient small convolutions
TILE = 512  # input pixels per tile side
OVERLAP = 32  # input pixels shared by neighbouring tiles

Network = Callable[[torch.Tensor], torch.Tensor]  # (1, 3, h, w) -> (1, 3, h*s, w*s)
Progress = Callable[[int, int], None]  # tiles done, tiles in all


def layout(length: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """The tiles along one side: their size and where each begins. As few tiles as cover the
    side at ``tile`` pixels sharing ``overlap``, then shrunk to share the side evenly: a 512-px
    side is three tiles of 192, not 256, 256 and a third flush with the end (which would
    compute 2.25 times the pixels, not 1.27)."""
    if length <= tile:
        return length, [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (count - 1) * overlap) / count)
    stride = (length - size) / (count - 1)
    return size, [round(i * stride) for i in range(count)]


def count(size: tuple[int, int], tile: int, overlap: int) -> int:
    """How many tiles cover a picture of ``size`` (width, height)."""
    overlap = min(overlap, tile // 2)
    return len(layout(size[0], tile, overlap)[1]) * len(layout(size[1], tile, overlap)[1])


def _ramp(size: int, before: int, after: int) -> torch.Tensor:
    """Weights along one side of a tile: rising over ``before`` pixels, falling over
    ``after``, 1 between; never 0, so every pixel is covered."""
    weight = torch.ones(size)
    if before:
        weight[:before] = (torch.arange(before) + 0.5) / before
    if after:
        weight[size - after :] = torch.minimum(
            weight[size - after :], (torch.arange(after, 0, -1) - 0.5) / after
        )
    return weight


def run_tiled(
    network: Network,
    picture: torch.Tensor,
    scale: int,
    tile: int = TILE,
    overlap: int = OVERLAP,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> torch.Tensor:
    """``network`` over ``picture`` (1, 3, H, W) tile by tile; (1, 3, H*scale, W*scale)."""
    _, channels, height, width = picture.shape
    overlap = min(overlap, tile // 2)
    (tile_h, rows), (tile_w, columns) = layout(height, tile, overlap), layout(width, tile, overlap)
    total = len(rows) * len(columns)
    if total == 1:
        out = network(picture)
        if progress:
            progress(1, 1)
        return out
    out = torch.zeros(1, channels, height * scale, width * scale)
    weights = torch.zeros(1, 1, height * scale, width * scale)
    done = 0
    for i, top in enumerate(rows):
        for j, left in enumerate(columns):
            if cancel is not None and cancel.is_set():
                raise Cancelled("The upscale was cancelled.")
            bottom, right = top + tile_h, left + tile_w
            piece = network(picture[..., top:bottom, left:right]).float()
            # the overlap with the previous and next tile, at the output scale
            before_y = (rows[i - 1] + tile_h - top) * scale if i else 0
            after_y = (bottom - rows[i + 1]) * scale if i + 1 < len(rows) else 0
            before_x = (columns[j - 1] + tile_w - left) * scale if j else 0
            after_x = (right - columns[j + 1]) * scale if j + 1 < len(columns) else 0
            weight = (
                _ramp(piece.shape[-2], before_y, after_y)[:, None]
                * _ramp(piece.shape[-1], before_x, after_x)[None, :]
            )
            y, x = top * scale, left * scale
            out[..., y : y + piece.shape[-2], x : x + piece.shape[-1]] += piece * weight
            weights[..., y : y + piece.shape[-2], x : x + piece.shape[-1]] += weight
            done += 1
            if progress:
                progress(done, total)
    return out / weights
