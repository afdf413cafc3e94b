"""Upscaler files as people download them, read through spandrel: detected, described, run
tile by tile; bad files refused with a sentence."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file

from sfumato.errors import InvalidRequest
from sfumato.upscale import models, tiles
from sfumato.upscale.library import spandrel
from sfumato.upscale.run import Upscaler, steps, target_size, upscale
from tests.fixtures.upscaler_files import compact_pth, esrgan_safetensors, realesrgan_pth


def _scene(size=(160, 120)) -> Image.Image:
    """A picture with edges and gradients, where a seam would show."""
    x, y = np.meshgrid(np.linspace(0, 1, size[0]), np.linspace(0, 1, size[1]))
    pixels = np.stack([x, y, (np.sin(x * 20) + 1) / 2], axis=-1)
    pixels[(x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.05] = (1.0, 0.2, 0.1)
    return Image.fromarray((pixels * 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("make", "name", "architecture", "scale"),
    [
        (realesrgan_pth, "RealESRGAN_x4plus_anime_6B.pth", "ESRGAN", 4),
        (esrgan_safetensors, "4x-UltraSharp.safetensors", "ESRGAN", 4),
        (compact_pth, "realesr-general-x2.pth", "RealESRGAN Compact", 2),
    ],
)
def test_each_layout_is_detected_from_its_weights(tmp_path, make, name, architecture, scale):
    info = models.describe(make(tmp_path / name))
    assert (info.architecture, info.scale) == (architecture, scale)
    assert info.parameters > 1000


def test_importing_spandrel_leaves_no_torchvision_behind():
    spandrel()
    assert "torchvision" not in sys.modules
    assert importlib.util.find_spec("torchvision") is None
    from diffusers.utils import is_torchvision_available

    assert not is_torchvision_available()


def test_tiled_and_whole_results_match_closely(tmp_path):
    path = realesrgan_pth(tmp_path / "RealESRGAN_x4plus.pth")
    picture = _scene()
    chosen = Upscaler("RealESRGAN_x4plus", path, 4)
    whole = np.asarray(upscale(picture, 4, chosen, tile=1024), dtype=float)
    tiled = np.asarray(upscale(picture, 4, chosen, tile=64), dtype=float)  # 3 x 4 tiles
    assert whole.shape == tiled.shape == (480, 640, 3)
    difference = np.abs(whole - tiled)
    # what differs is near the seams, where a tile's network saw less of the picture
    assert difference.mean() < 1.0 and np.percentile(difference, 99) < 8


def test_tiles_blend_back_exactly_for_a_network_without_context():
    picture = torch.rand(1, 3, 100, 130)

    def nearest(x):  # each output pixel depends on one input pixel: no seam is possible
        return F.interpolate(x, scale_factor=2, mode="nearest")

    seen = []
    out = tiles.run_tiled(
        nearest, picture, 2, tile=48, overlap=8, progress=lambda d, t: seen.append((d, t))
    )
    assert torch.allclose(out, nearest(picture), atol=1e-6)
    assert seen[-1] == (12, 12) == (tiles.count((130, 100), 48, 8),) * 2 and len(seen) == 12


def test_a_model_runs_again_until_the_factor_and_counts_every_tile(tmp_path):
    chosen = Upscaler("2x", compact_pth(tmp_path / "2x.pth"), 2)
    picture = _scene((300, 200))
    seen = []
    result = upscale(picture, 3, chosen, progress=lambda d, t: seen.append((d, t)))
    assert result.size == (900, 600)  # 2x, 2x again, then down to 3x with Lanczos
    total = steps(picture.size, 3, chosen)
    assert total == 1 + 2  # 300x200 in one tile of 512; 600x400 in two
    assert [d for d, _ in seen] == list(range(1, total + 1)) and {t for _, t in seen} == {total}


@pytest.mark.parametrize(
    ("content", "name", "words"),
    [
        (b"not a pickle at all", "broken.pth", "broken.pth cannot be read as an upscaler"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{", "cut.safetensors", "cannot be read as an upscaler"),
        (None, "lora.safetensors", "not an upscaler model spandrel recognises"),
        (b"", "model.pt", "use .pth or .safetensors"),
    ],
)
def test_a_bad_file_is_refused_with_a_sentence(tmp_path, content, name, words):
    path = tmp_path / name
    if content is None:  # a kohya LoRA, put in the wrong folder
        save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight":
                   torch.zeros(4, 320, 1, 1)}, str(path))  # fmt: skip
    else:
        path.write_bytes(content)
    with pytest.raises(InvalidRequest, match=words):
        models.describe(path)


@pytest.mark.parametrize(
    ("size", "factor", "words"),
    [((64, 64), 1.0, "more than 1"), ((64, 64), 8.5, "at most 8"), ((1200, 900), 8, "8192")],
)
def test_a_factor_out_of_bounds_is_refused(size, factor, words):
    with pytest.raises(InvalidRequest, match=words):
        target_size(size, factor)


def test_the_install_line_the_error_gives_is_the_one_the_tests_install_with():
    from pathlib import Path

    from sfumato.upscale.library import INSTALL

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert INSTALL.removeprefix("pip install ") in readme
