"""Model families: what each base architecture needs and the settings it works best with.

Every default lives here, in one place; a model card (catalog) may override any of them for its
own model, and a request overrides both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sfumato.engine import preview
from sfumato.engine.preview import LatentPreview
from sfumato.errors import InvalidRequest

CONFIG_ROOT = Path(__file__).parent / "configs"

# The negative prompt the hosted sites put under SD 1.5 models: it steers away from the
# artefacts SD 1.5 is known for. XL models need it far less, and Dezgo leaves theirs empty.
SD15_NEGATIVE = (
    "worst quality, low quality, lowres, blurry, jpeg artifacts, watermark, signature, text, "
    "deformed, bad anatomy, bad hands, extra fingers, extra limbs, cropped"
)


@dataclass(frozen=True)
class Defaults:
    width: int
    height: int
    steps: int
    guidance: float
    sampler: str
    negative_prompt: str = ""
    clip_skip: int = 1  # A1111's count: 1 reads the last CLIP layer, 2 the one before


@dataclass(frozen=True)
class Family:
    id: str
    label: str
    architecture: str  # "sd15" or "sdxl": which pipeline and shipped configs load it
    defaults: Defaults
    preview: LatentPreview  # latents to RGB for live previews
    # scheduler settings the family needs whatever sampler is picked
    scheduler_overrides: dict = field(default_factory=dict)
    schedule_label: str | None = None  # A1111's "Schedule type" for those overrides

    @property
    def config_dir(self) -> Path:
        return CONFIG_ROOT / self.architecture

    def config_dir_for(self, inpainting: bool) -> Path:
        """Component configs for a single-file checkpoint (9-channel UNet for inpainting)."""
        return CONFIG_ROOT / f"{self.architecture}-inpainting" if inpainting else self.config_dir


SD15 = Family(
    id="sd15",
    label="Stable Diffusion 1.5",
    architecture="sd15",
    defaults=Defaults(
        512, 512, steps=25, guidance=7.0, sampler="dpmpp_2m_karras", negative_prompt=SD15_NEGATIVE
    ),
    preview=preview.SD15,
)
SDXL = Family(
    id="sdxl",
    label="Stable Diffusion XL",
    architecture="sdxl",
    defaults=Defaults(1024, 1024, steps=30, guidance=6.0, sampler="dpmpp_2m_karras"),
    preview=preview.SDXL,
)
# SDXL distilled to a few steps. Its authors prescribe Euler with "trailing" timesteps and no
# classifier-free guidance (1.0 turns it off); the step count must match the checkpoint's.
SDXL_LIGHTNING = Family(
    id="sdxl-lightning",
    label="SDXL Lightning",
    architecture="sdxl",
    defaults=Defaults(1024, 1024, steps=4, guidance=1.0, sampler="euler"),
    preview=preview.SDXL,
    scheduler_overrides={"timestep_spacing": "trailing"},
    schedule_label="SGM Uniform",
)

FAMILIES: dict[str, Family] = {f.id: f for f in (SD15, SDXL, SDXL_LIGHTNING)}
ALIASES = {
    "sd1.5": "sd15",
    "sd-1.5": "sd15",
    "sd1": "sd15",
    "sd_1.5": "sd15",
    "v1": "sd15",
    "xl": "sdxl",
    "sd-xl": "sdxl",
    "lightning": "sdxl-lightning",
    "sdxl_lightning": "sdxl-lightning",
    "sdxl-lightning": "sdxl-lightning",
}


def get_family(name: str) -> Family:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in FAMILIES:
        raise InvalidRequest(
            f"Unknown model family '{name}'. Choose one of: {', '.join(FAMILIES)}."
        )
    return FAMILIES[key]
