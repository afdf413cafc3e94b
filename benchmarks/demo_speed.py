"""Seconds per picture of the bundled demo model at its default settings, on this machine.

Times sfumato's engine path (`generate`: sampler set-up, CPU seeds, callbacks) against a plain
diffusers call on the same loaded pipeline, alternating the two so that a noisy, shared machine
affects both alike, and prints medians and their ratio.

    python benchmarks/demo_speed.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from sfumato import demo
from sfumato.demo.evaluate import load
from sfumato.engine.generate import generate
from sfumato.engine.request import GenerationRequest, resolve

PROMPT = "a small red circle at the top on a blue background"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
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

    timings: dict[str, list[float]] = {"sfumato engine": [], "plain diffusers call": []}
    engine(), plain()  # warm-up: first calls allocate and pick kernels
    for _ in range(args.runs):
        for name, run in (("sfumato engine", engine), ("plain diffusers call", plain)):
            start = time.perf_counter()
            run()
            timings[name].append(time.perf_counter() - start)
    print(
        f"demo model, {settings.width}x{settings.height}, {settings.steps} steps "
        f"{settings.sampler}, guidance {settings.guidance:g}, {torch.get_num_threads()} "
        f"threads, {args.runs} runs each, alternating"
    )
    medians = {name: statistics.median(t) for name, t in timings.items()}
    for name, median in medians.items():
        print(f"  {name:<22} median {median:.3f} s/picture")
    ratio = medians["sfumato engine"] / medians["plain diffusers call"]
    print(f"  engine / plain ratio   {ratio:.2f}")


if __name__ == "__main__":
    main()
