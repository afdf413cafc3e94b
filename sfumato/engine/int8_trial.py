"""A model's UNet tried in int8 before a server switches to it (``sfumato serve
--int8-in-background``, ``jobs/int8_switch.py``): quantized once into the conversion cache as
``--dtype int8`` does it, then drawn beside the default backend on the same requests: how far
its pictures are from the default's (PSNR), and how long a UNet call takes on each.

It runs in a process of its own, ``python -m sfumato.engine.int8_trial``, at a lower priority
than the server's jobs: the quantization's memory (gigabytes of NNCF's statistics) goes back
to the system when it ends, and a crash or a kill for memory leaves the server running. It
prints its figures as one line of JSON, or ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from sfumato.engine.device import INT8
from sfumato.engine.loader import LoadedModel, LoadOptions, load_model

# not the calibration's prompts (int8.PROMPTS): the pictures it is judged on are new to it
PROMPTS = (
    "a red bicycle leaning on a brick wall, street photo",
    "watercolor landscape, mountains above a lake at sunrise",
    "close-up portrait of a tabby cat, studio lighting",
)
STEPS = 8


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def _timing(model: LoadedModel, into: list[float]) -> None:
    """Every call of the model's converted UNet timed into ``into``."""
    compiled = model.backend.compiled
    network = compiled.unet

    def timed(inputs):
        started = time.perf_counter()
        out = network(inputs)
        into.append(time.perf_counter() - started)
        return out

    compiled.unet = timed


def trial(source, options: LoadOptions) -> dict:
    """``source`` quantized (unless its int8 conversion is cached) and drawn in int8 and on
    the default backend: the figures a server decides on."""
    from sfumato.engine.generate import generate
    from sfumato.engine.request import GenerationRequest, resolve

    started = time.perf_counter()
    quantized = load_model(source, replace(options, dtype=INT8))
    quantize_s = quantized.backend.compiled.converted_s  # None: quantized before
    default = load_model(source, replace(options, dtype=None))
    calls: dict[str, list[float]] = {"int8": [], "default": []}
    _timing(quantized, calls["int8"])
    _timing(default, calls["default"])
    distances = []
    for seed, prompt in enumerate(PROMPTS):
        request = GenerationRequest(prompt, seed=seed, steps=STEPS)
        settings = resolve(request, source.family, source.effective_defaults)[0]
        pictures = [np.asarray(generate(m, settings)[0]) for m in (quantized, default)]
        distances.append(psnr(*pictures))
    return {
        "psnr_db": round(statistics.median(distances), 1),
        # medians: the first call of each shape compiles, one call in many
        "unet_call_s": round(statistics.median(calls["int8"]), 3),
        "default_unet_call_s": round(statistics.median(calls["default"]), 3),
        "quantize_s": None if quantize_s is None else round(quantize_s),
        "seconds": round(time.perf_counter() - started),
        "peak_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 1),
    }


def main(arguments: str) -> None:
    from sfumato.catalog.cards import describe_model
    from sfumato.errors import SfumatoError

    given = json.loads(arguments)
    lightning = Path(given["lightning"]) if given.get("lightning") else None
    options = LoadOptions(
        device="cpu",
        backend="openvino",
        cache_dir=Path(given["cache_dir"]),
        config_dir=Path(given["config_dir"]) if given.get("config_dir") else None,
        lightning=lightning,
    )
    try:
        figures = trial(describe_model(Path(given["model"]), lightning=lightning), options)
    except SfumatoError as e:
        figures = {"error": e.message}
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
