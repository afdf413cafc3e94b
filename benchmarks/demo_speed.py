"""Seconds per picture of the bundled demo model at its default settings, on this machine.

Times sfumato's engine path (`generate`: sampler set-up, CPU seeds, callbacks) on PyTorch
against a plain diffusers call on the same loaded pipeline, and the engine on OpenVINO (the
CPU's default backend), taking turns so that a noisy, shared machine affects all alike, and
prints medians and their ratio to the plain call.

    python benchmarks/demo_speed.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sfumato import demo
from sfumato.demo.evaluate import load
from sfumato.engine.generate import generate
from sfumato.engine.loader import load_model
from sfumato.engine.request import GenerationRequest, resolve

PROMPT = "a small red circle at the top on a blue background"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        run(args.runs, Path(cache))


def run(runs: int, cache: Path) -> None:
    model = load(demo.WEIGHTS)
    settings, _ = resolve(
        GenerationRequest(PROMPT, seed=0), model.source.family, model.source.effective_defaults
    )

    def engine() -> None:
        generate(model, settings)

    def plain() -> None:
        model.pipe(
            PROMPT,
            negative_prompt=settings.negative_prompt or None,
            width=settings.width,
            height=settings.height,
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            generator=torch.Generator().manual_seed(0),
        )

    converted = load_model(model.source, device="cpu", backend="openvino", cache_dir=cache)
    paths = {
        "sfumato engine, PyTorch": engine,
        "plain diffusers call": plain,
        "sfumato engine, OpenVINO": lambda: generate(converted, settings),
    }
    timings: dict[str, list[float]] = {name: [] for name in paths}
    for path in paths.values():
        path()  # warm-up: first calls allocate and pick kernels
    for _ in range(runs):
        for name, path in paths.items():
            start = time.perf_counter()
            path()
            timings[name].append(time.perf_counter() - start)
    print(
        f"demo model, {settings.width}x{settings.height}, {settings.steps} steps "
        f"{settings.sampler}, guidance {settings.guidance:g}, {torch.get_num_threads()} "
        f"threads, {runs} runs each, by turns"
    )
    medians = {name: statistics.median(t) for name, t in timings.items()}
    plain_s = medians["plain diffusers call"]
    for name, median in medians.items():
        print(f"  {name:<28} median {median:.3f} s/picture, {median / plain_s:.2f}x the plain call")


if __name__ == "__main__":
    main()
