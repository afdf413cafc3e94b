"""What each shortcut saves per picture on each backend, full-size SD 1.5 at 512 px, 8 steps,
guidance 7.5 (random weights: the compute of the real model, the pictures are noise); with
``--sdxl``, SDXL-Lightning at 1024 px, 4 steps, on OpenVINO only (both backends' SDXL in one
process would take 20 GiB), with and without DeepCache (no guidance: nothing to cut).

The paths take turns picture by picture in one process, both backends loaded side by side,
so a shared machine whose speed drifts (it does: 1.7x within minutes, measured) affects them
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
from engine_speed import FULL, _child, settings

from sfumato.catalog.cards import describe_model
from sfumato.engine.generate import generate
from sfumato.engine.loader import load_model

DEFAULT = "OpenVINO (default)"
PATHS = {  # name -> (backend, request fields)
    DEFAULT: ("openvino", {}),
    "OpenVINO + guidance cutoff 0.5": ("openvino", {"guidance_cutoff": 0.5}),
    "OpenVINO + DeepCache 2": ("openvino", {"deep_cache": 2}),
    "OpenVINO + both": ("openvino", {"guidance_cutoff": 0.5, "deep_cache": 2}),
    "PyTorch": ("torch", {}),
    "PyTorch + DeepCache 2": ("torch", {"deep_cache": 2}),
}
SDXL_PATHS = (DEFAULT, "OpenVINO + DeepCache 2")


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
    paths = {name: PATHS[name] for name in (SDXL_PATHS if sdxl else PATHS)}
    folder = work / case.architecture
    if not (folder / "model_index.json").is_file():
        print(f"building a random-weight {case.architecture} model in {folder}", flush=True)
        _child("--build", json.dumps(asdict(case)), str(folder))  # its own process: memory
    source = describe_model(folder, family_hint=case.family)
    models = {
        backend: load_model(source, device="cpu", backend=backend, cache_dir=work / "cache")
        for backend in {backend for backend, _ in paths.values()}
    }

    def picture(name: str) -> float:
        backend, fields = paths[name]
        started = time.perf_counter()
        generate(models[backend], settings(case, source, 0, **fields))
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
        print(f"  {name:32} {time_s:6.1f} s  {ratio:4.2f}x the default's time")


if __name__ == "__main__":
    main()
