"""Live previews: the latent-to-RGB map, its fit, and the frames a generation reports."""

import pytest
import torch
import torch.nn.functional as F

from sfumato.engine.preview import SD15, LatentPreview, fit_latent_preview


def test_a_latent_along_a_factor_row_shows_that_rows_colour():
    latent = torch.zeros(1, 4, 2, 2)
    latent[0, 3] = 1.0  # SD 1.5's 4th channel: strongly towards blue's opposite
    pixel = SD15.image(latent).getpixel((0, 0))
    expected = [round((max(-1, min(1, v)) + 1) * 127.5) for v in SD15.factors[3]]
    assert list(pixel) == expected
    assert SD15.image(torch.zeros(2, 4, 8, 6), index=1).size == (6, 8)  # latent size, w x h


def test_fitting_recovers_a_known_map():
    torch.manual_seed(0)
    truth = torch.tensor([[0.5, -0.2, 0.1], [0.0, 0.4, -0.3], [0.2, 0.2, 0.2], [-0.1, 0.0, 0.6]])
    bias = torch.tensor([0.1, -0.05, 0.0])
    latents = torch.randn(16, 4, 8, 8)
    small = torch.einsum("nchw,cr->nrhw", latents, truth) + bias[None, :, None, None]
    pictures = F.interpolate(small, scale_factor=4, mode="nearest")  # as a decoder's output
    fitted = fit_latent_preview(latents, pictures)
    assert torch.allclose(torch.tensor(fitted.factors), truth, atol=1e-3)
    assert torch.allclose(torch.tensor(fitted.bias), bias, atol=1e-3)


def test_card_tables_round_trip_and_bad_ones_are_refused():
    table = SD15.to_card()
    assert LatentPreview.from_card(table) == SD15
    with pytest.raises(ValueError, match="one \\[R, G, B\\] row"):
        LatentPreview.from_card({"latent_rgb": [[1, 2]] * 4})
