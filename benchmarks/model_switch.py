"""What switching models costs the server: a cold load from disk against a warm switch to a
model its cache already holds, measured in one run, medians and their ratio.

    python benchmarks/model_switch.py [--full-size]

The demo model always; ``--full-size`` adds a full-size SD 1.5 checkpoint (every tensor of
the real architecture, zeros: load time and memory are a real model's, its pictures are not),
written once to a temporary folder. A cold load here reads files the operating system has
just cached; from a disk that has not seen them, add their read time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sfumato import demo
from sfumato.catalog.cards import describe_model
from sfumato.engine.cache import GB, ModelCache, loaded_bytes
from sfumato.engine.loader import LoadOptions

OPTIONS = LoadOptions(device="cpu")


def measure(name: str, path: Path, cold_runs: int = 3, warm_runs: int = 20) -> None:
    source = describe_model(path)
    cold = []
    for _ in range(cold_runs):
        cache = ModelCache()  # empty: the model comes from disk
        start = time.perf_counter()
        model = cache.get(source, OPTIONS)
        cold.append(time.perf_counter() - start)
    other = describe_model(demo.WEIGHTS) if path != demo.WEIGHTS else None
    cache = ModelCache(max_models=2)
    cache.get(source, OPTIONS)
    if other is not None:
        cache.get(other, OPTIONS)  # switch away, then back
    warm = []
    for _ in range(warm_runs):
        start = time.perf_counter()
        cache.get(source, OPTIONS)
        warm.append(time.perf_counter() - start)
    c, w = statistics.median(cold), statistics.median(warm)
    print(
        f"{name}: {loaded_bytes(model) / GB:.2f} GB loaded; cold load {c:.2f} s, "
        f"warm switch {w * 1e6:.0f} µs ({c / w:,.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-size", action="store_true")
    args = parser.parse_args()
    measure("demo model (fp32)", demo.WEIGHTS)
    if args.full_size:
        sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' checkpoint writer
        from tests.fixtures.full_size import write_full_size_checkpoint

        with tempfile.TemporaryDirectory() as folder:
            path = write_full_size_checkpoint("sd15", Path(folder) / "sd15-full.safetensors")
            measure("full-size SD 1.5, zeros (fp16 file, fp32 loaded)", path, cold_runs=3)


if __name__ == "__main__":
    main()
