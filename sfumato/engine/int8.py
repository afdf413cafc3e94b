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

import contextlib
import importlib.util
import logging
from pathlib import Path

from sfumato.errors import InvalidRequest, NoMemoryToQuantize

log = logging.getLogger(__name__)

# varied subjects, so that the activations' ranges are those of real requests; each is drawn
# with guidance (the prompt and the empty negative prompt, as most requests)
PROMPTS = (
    "portrait photo of an old fisherman, detailed skin, soft window light",
    "a castle on a cliff above a stormy sea, oil painting",
    "anime girl with short blue hair in a neon city street at night",
)
STEPS = 4  # per prompt: 12 UNet calls, spread over the whole schedule
GUIDANCE = 7.0
# the most private memory a quantization takes, per UNet parameter: SD 1.5's (860 M) peaked at
# 16.0 GiB, the model loaded included, most of it OpenVINO compiling and running NNCF's
# statistics network, which grows with the network, not with the calibration's pictures
# (benchmarks/RESULTS.md); 22 bytes a parameter is that and a tenth. SDXL's UNet (2.6 G)
# would take about 53 GiB.
BYTES_PER_PARAMETER = 22


def check_installed() -> None:
    if importlib.util.find_spec("nncf") is None:
        raise InvalidRequest("--dtype int8 needs the nncf package: pip install nncf")


def check_memory(parameters: int, name: str) -> None:
    """Refuses, before the model is read, a quantization this machine has not the memory for:
    the system would kill the process (a server with it) part way through."""
    import psutil  # NNCF's own dependency, so there wherever int8 can run

    need, have = parameters * BYTES_PER_PARAMETER, psutil.virtual_memory().available
    if need > have:
        raise NoMemoryToQuantize(
            f"Quantizing {name}'s UNet to int8 needs about {need / 2**30:.0f} GiB of free memory "
            f"and this machine has {have / 2**30:.0f} GiB free; run it without --dtype int8."
        )


def quantize(network: Path, samples: list[list], out: Path) -> None:
    """The converted UNet at ``network`` quantized, saved as ``out``; its activations' ranges
    read on ``samples`` (its inputs, as the compiled network takes them)."""
    import nncf
    import openvino as ov
    import rich

    model = ov.Core().read_model(network)
    log.info("Quantizing the UNet to int8 (a few minutes, once per model)")
    # NNCF draws progress bars (rich's) on stdout, which would run through the CLI's spinner
    # and a server's log; its own log lines say no more than ours
    nncf.set_log_level(logging.WARNING)
    with _quiet(rich.get_console()):
        quantized = nncf.quantize(
            model,
            nncf.Dataset(samples),
            # SmoothQuant for the attention's matrix products, as NNCF does for transformers
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(samples),
        )
    ov.save_model(quantized, out)


@contextlib.contextmanager
def _quiet(console):
    before, console.quiet = console.quiet, True
    try:
        yield
    finally:
        console.quiet = before
