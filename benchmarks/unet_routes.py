"""One UNet call of the full-size SD 1.5 (random weights, 512 px, batch 2: guidance) on each
route that could run it on a CPU, by turns in one process; medians and ratios to sfumato's.

    python benchmarks/unet_routes.py [--rounds 3] [--work-dir DIR] [--int8]

Routes:
- PyTorch, in the dtype sfumato picks for this CPU (``--backend torch``);
- OpenVINO with the batch, prompt length and size open: the network sfumato's cache holds
  (one conversion serves every request), as sfumato ran it until 2026-12, and still does where
  the memory for models has no room for a copy of the weights per shape;
- OpenVINO reshaped to this one request's shape: **sfumato's backend** (``ShapedNetwork``), as
  optimum-intel exports it too (a compile per shape; its first call makes no kernels);
- ``--int8``: sfumato's ``--dtype int8``, the network quantized to int8 by NNCF (weights and
  activations of every convolution and matrix product, calibrated on pictures drawn on the
  model; needs ``pip install nncf``). The quantization, once per model, is in its setup
  (minutes, about 15 GiB for SD 1.5).

The first call of each route is reported apart (OpenVINO makes its kernels for a new shape
there), with the compile.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import engine_speed  # noqa: E402  (the random model and its conversion)

CASE = engine_speed.FULL[0]  # SD 1.5, 512 px, guidance
BATCH, LATENT, TEXT = 2, CASE.size // 8, (77, 768)


def inputs(count: int, seed: int) -> list[tuple]:
    """UNet inputs across the steps of a picture: latents, timestep, text."""
    generator = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(BATCH, 4, LATENT, LATENT, generator=generator),
            torch.tensor(999.0 - 999.0 * k / max(count - 1, 1)),
            torch.randn(BATCH, *TEXT, generator=generator),
        )
        for k in range(count)
    ]


@dataclass
class Route:
    name: str
    call: object  # (sample, timestep, text) -> None
    setup_s: float
    times: list[float] = field(default_factory=list)


def openvino_route(name: str, model, static: bool) -> Route:
    import openvino as ov

    if static:
        model.reshape(
            {model.inputs[0]: [BATCH, 4, LATENT, LATENT], model.inputs[2]: [BATCH, *TEXT]}
        )
    started = time.perf_counter()
    compiled = ov.Core().compile_model(model, "CPU")
    setup_s = time.perf_counter() - started
    return Route(name, lambda *x: compiled([t.numpy() for t in x]), setup_s)


def routes(folder: Path, int8: bool) -> list[Route]:
    import openvino as ov

    from sfumato.catalog.cards import describe_model
    from sfumato.engine.loader import load_model

    source = describe_model(folder, family_hint=CASE.family)
    options = {"device": "cpu", "backend": "openvino", "cache_dir": folder.parent / "cache"}
    quantized = None
    if int8:  # first, while this process holds no network: the quantization takes the most
        started = time.perf_counter()
        network = load_model(source, dtype="int8", **options).backend.compiled.unet
        setup_s = time.perf_counter() - started
        name = "OpenVINO, int8 (sfumato --dtype int8)"
        quantized = Route(name, lambda *x: network([t.numpy() for t in x]), setup_s)
    converted = load_model(source, **options).backend.compiled.folder / "unet.xml"
    started = time.perf_counter()
    unet = load_model(source, device="cpu", backend="torch").pipe.unet
    torch_s = time.perf_counter() - started

    def torch_call(sample, timestep, text):
        with torch.inference_mode():
            unet(sample.to(unet.dtype), timestep, encoder_hidden_states=text.to(unet.dtype))

    core = ov.Core()
    chosen = [
        Route(f"PyTorch ({str(unet.dtype).removeprefix('torch.')})", torch_call, torch_s),
        openvino_route("OpenVINO, shapes open", core.read_model(converted), False),
        openvino_route("OpenVINO, this shape fixed (sfumato)", core.read_model(converted), True),
    ]
    return chosen + ([quantized] if quantized else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, help="Keep the random model here for reruns.")
    parser.add_argument("--int8", action="store_true", help="Add sfumato's --dtype int8.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = (args.work_dir or Path(temporary)) / CASE.architecture
        if not (folder / "model_index.json").is_file():
            engine_speed.build_random_model(CASE, folder)
        measured = routes(folder, args.int8)
        first = {}
        for round_, x in enumerate(inputs(args.rounds + 1, seed=1)):
            for route in measured:  # by turns: a drifting machine slows them alike
                started = time.perf_counter()
                route.call(*x)
                elapsed = time.perf_counter() - started
                if round_:
                    route.times.append(elapsed)
                else:
                    first[route.name] = elapsed
    from sfumato.engine.device import cpu_has_native_bf16, cpu_name

    print(
        f"\nfull-size SD 1.5 UNet (random weights), {CASE.size} px, batch {BATCH}; "
        f"{cpu_name()}, {os.cpu_count()} cores, {engine_speed.vector_units()}, "
        "native bf16: "
        f"{'yes' if cpu_has_native_bf16() else 'no'}; {args.rounds} rounds, medians"
    )
    print(f"{'route':38} {'setup':>7} {'first call':>11} {'call':>7}  vs sfumato's")
    ours = statistics.median(measured[2].times)
    for route in measured:
        median = statistics.median(route.times)
        print(
            f"{route.name:38} {route.setup_s:6.1f}s {first[route.name]:10.2f}s "
            f"{median:6.2f}s  {median / ours:5.2f}x"
        )


if __name__ == "__main__":
    main()
