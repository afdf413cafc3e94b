"""Cheap live previews: latents to RGB by one linear map, no decoder and no extra weights.

Each latent channel of a Stable Diffusion VAE carries a rough colour direction, so ``rgb =
latent @ factors + bias`` gives a recognisable picture at 1/8 of the size for the cost of a
few thousand multiplications. The SD 1.5 and SDXL factors are the ones the community fitted
on those VAEs (the same numbers ComfyUI previews with); a model with a VAE of its own (the demo
model) brings factors fitted on its VAE in its card's ``[live_preview]`` table
(see ``fit_latent_preview``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:  # torch and numpy are imported where used: the CLI reads the families alone
    import torch

Matrix = tuple[tuple[float, float, float], ...]


@dataclass(frozen=True)
class LatentPreview:
    factors: Matrix  # one (R, G, B) row per latent channel
    bias: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def image(self, latents: torch.Tensor, index: int = 0) -> Image.Image:
        """Picture ``index`` of a batch of latents (as the sampler holds them), at latent size."""
        import torch

        factors = torch.tensor(self.factors, dtype=torch.float32)
        bias = torch.tensor(self.bias, dtype=torch.float32)
        latent = latents[index].detach().float().cpu()
        rgb = torch.einsum("chw,cr->hwr", latent, factors) + bias
        array = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        return Image.fromarray(array, "RGB")

    def to_card(self) -> dict:
        return {"latent_rgb": [list(row) for row in self.factors], "bias": list(self.bias)}

    @classmethod
    def from_card(cls, table: dict) -> LatentPreview:
        factors = tuple(tuple(float(v) for v in row) for row in table["latent_rgb"])
        bias = tuple(float(v) for v in table.get("bias", (0, 0, 0)))
        if any(len(row) != 3 for row in factors) or len(bias) != 3:
            raise ValueError("latent_rgb needs one [R, G, B] row per latent channel")
        return cls(factors, bias)


SD15 = LatentPreview(
    (
        (0.3512, 0.2297, 0.3227),
        (0.3250, 0.4974, 0.2350),
        (-0.2829, 0.1762, 0.2721),
        (-0.2120, -0.2616, -0.7177),
    )
)
SDXL = LatentPreview(
    (
        (0.3920, 0.4054, 0.4549),
        (-0.2634, -0.0196, 0.0653),
        (0.0568, 0.1687, -0.0755),
        (-0.3112, -0.2359, -0.2076),
    )
)


def fit_latent_preview(latents: torch.Tensor, pictures: torch.Tensor) -> LatentPreview:
    """Least-squares factors from latents (N, C, h, w; as the sampler holds them, i.e. scaled)
    to their pictures (N, 3, H, W in [-1, 1]) brought down to the latent size."""
    import numpy as np
    import torch.nn.functional as F

    small = F.adaptive_avg_pool2d(pictures.detach().float(), latents.shape[-2:])
    x = latents.detach().float().permute(0, 2, 3, 1).reshape(-1, latents.shape[1]).numpy()
    y = small.permute(0, 2, 3, 1).reshape(-1, 3).numpy()
    x = np.concatenate([x, np.ones((len(x), 1), np.float32)], axis=1)
    solution, *_ = np.linalg.lstsq(x, y, rcond=None)
    rows = tuple(tuple(round(float(v), 4) for v in row) for row in solution[:-1])
    return LatentPreview(rows, tuple(round(float(v), 4) for v in solution[-1]))
