"""Upscaling: the time and the memory of a 4x by an ESRGAN-sized model, tiled and whole.

A RealESRGAN_x4plus laid out as the real file (BasicSR's RRDBNet, 23 blocks, 16.7 M
parameters, random weights: the time and memory are the architecture's) enlarges pictures of
several sizes 4x, each run in a fresh process: the seconds, and the peak RSS growth over the
loaded network, tiled (``upscale/tiles.py``: 512-px tiles overlapping by 32) and whole (one
pass over the picture, as without tiling). Lanczos on the largest picture is the baseline.

    python benchmarks/upscale.py [--sides 512,1024] [--whole-up-to 1024]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROBE = r"""
import resource, sys, time
from pathlib import Path
import numpy as np
from PIL import Image
from sfumato.upscale import models
from sfumato.upscale.run import Upscaler, upscale
path, side, tile = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side, 3), np.uint8))
models.load(path, "cpu")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
out = upscale(picture, 4, Upscaler(path.stem, path, 4), tile=tile)
seconds = time.perf_counter() - started
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
print(seconds, grown, out.width)
"""


def probe(path: Path, side: int, tile: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(side), str(tile)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    seconds, grown, width = done.stdout.split()
    assert int(width) == side * 4
    return {"seconds": round(float(seconds), 2), "peak_growth_mib": round(int(grown) / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="512,1024")
    parser.add_argument("--whole-up-to", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/upscale.json")
    args = parser.parse_args()
    from PIL import Image

    from sfumato.upscale.tiles import TILE
    from tests.fixtures.upscaler_files import realesrgan_pth

    sides = [int(x) for x in args.sides.split(",")]
    results: dict = {"model": "RealESRGAN_x4plus layout, 23 blocks, random weights"}
    with tempfile.TemporaryDirectory() as folder:
        path = realesrgan_pth(Path(folder) / "RealESRGAN_x4plus.pth", blocks=23)
        for side in sides:
            row = {"tiled": probe(path, side, TILE)}
            if TILE < side <= args.whole_up_to:  # at most one tile: the same run as whole
                row["whole"] = probe(path, side, 1 << 20)
            results[f"{side}px"] = row
            print(f"{side} px -> {side * 4} px: {row}", flush=True)
    big = Image.new("RGB", (sides[-1], sides[-1]), "gray")
    started = time.perf_counter()
    big.resize((sides[-1] * 4,) * 2, Image.Resampling.LANCZOS)
    results["lanczos_s"] = round(time.perf_counter() - started, 3)
    print(f"Lanczos {sides[-1]} px -> {sides[-1] * 4} px: {results['lanczos_s']} s")
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
