"""What each shortcut saves per picture on each backend, full-size SD 1.5 at 512 px, 8 steps,
guidance 7.5 (random weights: the compute of the real model, the pictures are noise); with
``--sdxl``, SDXL-Lightning at 1024 px, 4 steps, on OpenVINO only (both backends' SDXL in one
process would take 20 GiB), with and without DeepCache (no guidance: nothing to cut).

The paths take turns picture by picture in one process, both backends loaded side by side,
so a shared machine whose speed drifts (it does: up to 3x within minutes, measured) affects them
alike; each path's time is divided by the default's (OpenVINO, no shortcut) of the same round,
and the medians of those ratios are printed with the medians of the times.

    python benchmarks/shortcut_speed.py [--rounds 3] [--work-dir DIR] [--sdxl]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
from engine_speed import FULL, SFUMATO, _child, settings

from sfumato.catalog.cards import describe_model
from sfumato.engine.generate import generate
from sfumato.engine.loader import load_model

# engine_speed's sfumato paths (load options, request fields) measured here
DEFAULT = "sfumato OpenVINO (default)"
SD15_PATHS = (
    DEFAULT,
    "sfumato OpenVINO + guidance cutoff 0.5",
    "sfumato OpenVINO + DeepCache 2",
    "sfumato OpenVINO + both",
    "sfumato PyTorch",
    "sfumato PyTorch + DeepCache 2",
)
SDXL_PATHS = (DEFAULT, "sfumato OpenVINO + DeepCache 2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work-dir", type=Path, help="Keep the random model here for reruns.")
    parser.add_argument("--sdxl", action="store_true", help="SDXL-Lightning, on OpenVINO.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        run(args.rounds, args.work_dir or Path(temporary), args.sdxl)


def run(rounds: int, work: Path, sdxl: bool) -> None:
    # SD 1.5, 512 px, 8 steps, DPM++ 2M, guidance 7.5; or SDXL-Lightning, 1024 px, 4 steps
    case = FULL[1] if sdxl else FULL[0]
    paths = SDXL_PATHS if sdxl else SD15_PATHS
    folder = work / case.architecture
    if not (folder / "model_index.json").is_file():
        print(f"building a random-weight {case.architecture} model in {folder}", flush=True)
        _child("--build", json.dumps(asdict(case)), str(folder))  # its own process: memory
    source = describe_model(folder, family_hint=case.family)
    backends = {SFUMATO[name][0]["backend"] for name in paths}  # each loaded once
    models = {
        backend: load_model(source, device="cpu", backend=backend, cache_dir=work / "cache")
        for backend in backends
    }

    def picture(name: str) -> float:
        options, fields = SFUMATO[name]
        started = time.perf_counter()
        generate(models[options["backend"]], settings(case, source, 0, **fields))
        return time.perf_counter() - started

    for name in paths:
        picture(name)  # warm-up: kernels for this size are made at the first picture
    times: dict[str, list[float]] = {name: [] for name in paths}
    ratios: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(rounds):
        for name in paths:
            times[name].append(picture(name))
        for name in paths:
            ratios[name].append(times[name][-1] / times[DEFAULT][-1])
        print(f"round {round_ + 1}: " + ", ".join(f"{t[-1]:.1f}" for t in times.values()))
    print(
        f"{case.name}, guidance {case.guidance:g}, random weights, {torch.get_num_threads()} "
        f"threads, {rounds} rounds by turns, medians"
    )
    for name in paths:
        time_s, ratio = statistics.median(times[name]), statistics.median(ratios[name])
        print(f"  {name:40} {time_s:6.1f} s  {ratio:4.2f}x the default's time")


if __name__ == "__main__":
    main()
