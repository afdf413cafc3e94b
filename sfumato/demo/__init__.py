"""The bundled demo model: its synthetic world of shapes, a deterministic picture analyzer,
training and evaluation. The trained weights ship in ``weights/`` as a diffusers folder."""

from pathlib import Path

WEIGHTS = Path(__file__).parent / "weights"
NAME = "sfumato-demo"
