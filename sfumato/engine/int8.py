"""``--dtype int8``: the UNet quantized to int8 by NNCF, on the OpenVINO backend.

Post-training quantization of the UNet's convolutions and matrix products, weights and
activations: CPUs that multiply int8 natively (VNNI, AMX) run a UNet call in about two thirds
of the bf16 network's time (``benchmarks/RESULTS.md``). The activations' ranges come from the
model itself: a few pictures of ``PROMPTS`` drawn on its converted fp32 network, once per
model, when it is converted. Everything else stays as the default backend runs it (the text
encoders on PyTorch, the VAE decoder and DeepCache's shallow network on OpenVINO in bf16 or
f32).

NNCF is an optional dependency: ``pip install nncf``, or the ``int8`` extra of sfumato.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sfumato.errors import InvalidRequest

# varied subjects, so that the activations' ranges are those of real requests; each is drawn
# with guidance (the prompt and the empty negative prompt, as most requests)
PROMPTS = (
    "portrait photo of an old fisherman, detailed skin, soft window light",
    "a castle on a cliff above a stormy sea, oil painting",
    "anime girl with short blue hair in a neon city street at night",
)
STEPS = 4  # per prompt: 12 UNet calls, spread over the whole schedule
GUIDANCE = 7.0


def check_installed() -> None:
    if importlib.util.find_spec("nncf") is None:
        raise InvalidRequest("--dtype int8 needs the nncf package: pip install nncf")


def quantize(network: Path, samples: list[list], out: Path) -> None:
    """The converted UNet at ``network`` quantized, saved as ``out``; its activations' ranges
    read on ``samples`` (its inputs, as the compiled network takes them)."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(network)
    quantized = nncf.quantize(
        model,
        nncf.Dataset(samples),
        # SmoothQuant for the attention's matrix products, as NNCF does for transformers
        model_type=nncf.ModelType.TRANSFORMER,
        subset_size=len(samples),
    )
    ov.save_model(quantized, out)
