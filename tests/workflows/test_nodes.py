"""The nodes that need no model, on their own: sizes as ComfyUI computes them."""

import pytest
import torch
from PIL import Image

from sfumato.engine.sampling import Cond
from sfumato.errors import InvalidRequest
from sfumato.workflows import nodes
from sfumato.workflows.values import Conditioning, Latent, Pictures


def test_a_latent_is_resized_in_pixels_and_a_zero_side_keeps_the_proportions():
    latent = Latent(torch.randn(1, 4, 8, 16), (128, 64))  # a VAE that scales by 8
    (wide,) = nodes.latent_upscale(None, latent, "bicubic", 256, 0, "disabled")
    assert wide.size == (256, 128) and wide.samples.shape == (1, 4, 16, 32)
    (square,) = nodes.latent_upscale(None, latent, "bilinear", 128, 128, "center")
    assert square.samples.shape == (1, 4, 16, 16)  # the middle cut out first, then resized
    (same,) = nodes.latent_upscale(None, latent, "area", 0, 0, "disabled")
    assert same.size == (128, 64)
    (by,) = nodes.latent_upscale_by(None, latent, "nearest-exact", 1.5)
    assert by.size == (192, 96) and by.samples.shape == (1, 4, 12, 24)
    empty = Latent(None, (64, 64))
    assert nodes.latent_upscale_by(None, empty, "bilinear", 2.0)[0].size == (128, 128)
    with pytest.raises(InvalidRequest, match="outside"):
        nodes.latent_upscale_by(None, latent, "bilinear", 40.0)


def test_pictures_are_resized_with_their_method_and_crop():
    pictures = Pictures([Image.new("RGB", (100, 50), "red")])
    (scaled,) = nodes.image_scale(None, pictures, "lanczos", 0, 25, "disabled")
    assert scaled.images[0].size == (50, 25)
    (cropped,) = nodes.image_scale(None, pictures, "bicubic", 40, 40, "center")
    assert cropped.images[0].size == (40, 40)
    (by,) = nodes.image_scale_by(None, pictures, "area", 0.5)
    assert by.images[0].size == (50, 25)


def test_zeroed_and_combined_conditionings():
    cond = Cond(torch.ones(1, 77, 8), torch.ones(1, 4))
    (zero,) = nodes.conditioning_zero_out(None, Conditioning([cond], "m", ["a"]))
    assert not zero.conds[0].embeds.any() and not zero.conds[0].pooled.any()
    (both,) = nodes.conditioning_combine(
        None, Conditioning([cond], "m", ["a"]), Conditioning([cond], "m", ["b"])
    )
    assert len(both.conds) == 2 and both.texts == ["a", "b"]
    with pytest.raises(InvalidRequest, match="different checkpoints"):
        nodes.conditioning_combine(
            None, Conditioning([cond], "m", ["a"]), Conditioning([cond], "other", ["b"])
        )
