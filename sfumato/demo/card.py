"""The demo model's card: what it honestly is, how it was made, what words it knows."""

from __future__ import annotations

import textwrap
from pathlib import Path

from sfumato.catalog import cards
from sfumato.demo import NAME
from sfumato.demo.model import DemoConfig
from sfumato.demo.world import COLOURS, HELD_OUT, POSITIONS, SHAPES
from sfumato.engine.preview import LatentPreview

DESCRIPTION = (
    textwrap.fill(
        "A tiny text-to-image model of a toy world, trained from scratch on this project's own "
        "synthetic pictures by `sfumato demo train`, in the architecture of Stable Diffusion 1.5 "
        "(CLIP text encoder, UNet with cross-attention, AutoencoderKL) and run by the same engine. "
        f"It draws one shape ({', '.join(SHAPES)}) in one colour ({', '.join(COLOURS)}) on a plain "
        f"background of another colour, small or large, at the {', '.join(POSITIONS)}, at 64x64 "
        "pixels, and knows nothing else: it is there so that sfumato works the moment it is "
        "installed, and so that tests can tell a right picture from a wrong one. Never seen in "
        f"training: {', '.join(f'{c} {s}' for c, s in sorted(HELD_OUT))}. How well it follows "
        "prompts is measured by `sfumato demo eval` (see [evaluation]). For real pictures, add "
        'Stable Diffusion 1.5 or SDXL models (see the README, "Models").',
        width=88,
    )
    + "\n"
)


def write_demo_card(
    folder: Path,
    config: DemoConfig,
    preview: LatentPreview,
    vocabulary: dict[str, int],
    training: dict,
) -> Path:
    card = cards.Card(
        name=NAME,
        family="sd15",
        description=DESCRIPTION,
        defaults=config.defaults,
        keywords=vocabulary,
        category="demo",
        lineage=NAME,
        version="1",
        license="Apache-2.0",
        extra={
            cards.LIVE_PREVIEW: preview.to_card(),
            "training": training | {"config": config.to_dict()},
        },
    )
    return cards.write_card(folder, card)
