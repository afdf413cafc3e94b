"""What switching models costs the server: a cold load from disk against a warm switch to a
model its cache already holds, measured in one run, medians and their ratio.

    python benchmarks/model_switch.py [--full-size]

The demo model always; ``--full-size`` adds a full-size SD 1.5 checkpoint (every tensor of
the real architecture, zeros: load time and memory are a real model's, its pictures are not),
written once to a temporary folder. Both backends: PyTorch, and OpenVINO (the CPU's default),
whose cold load reads the converted form made by a first load. A cold load here reads files
the operating system has just cached; from a disk that has not seen them, add their read time.
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

BACKENDS = ("torch", "openvino")  # openvino: the CPU's default


def measure(name: str, path: Path, options: LoadOptions, cold_runs: int = 3) -> None:
    source = describe_model(path)
    ModelCache().get(source, options)  # on OpenVINO the first load converts: not a switch
    cold = []
    for _ in range(cold_runs):
        cache = ModelCache()  # empty: the model comes from disk
        start = time.perf_counter()
        model = cache.get(source, options)
        cold.append(time.perf_counter() - start)
    other = describe_model(demo.WEIGHTS) if path != demo.WEIGHTS else None
    cache = ModelCache(max_models=2)
    cache.get(source, options)
    if other is not None:
        cache.get(other, options)  # switch away, then back
    warm = []
    for _ in range(20):
        start = time.perf_counter()
        cache.get(source, options)
        warm.append(time.perf_counter() - start)
    c, w = statistics.median(cold), statistics.median(warm)
    dtype = str(model.dtype).removeprefix("torch.")
    print(
        f"{name}, {options.backend}, {dtype}: {loaded_bytes(model) / GB:.2f} GB counted; "
        f"cold load {c:.2f} s, warm switch {w * 1e6:.0f} µs ({c / w:,.0f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full-size", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        models = {"demo model": demo.WEIGHTS}
        if args.full_size:
            sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' checkpoint writer
            from tests.fixtures.full_size import write_full_size_checkpoint

            path = folder / "sd15-full.safetensors"
            models["full-size SD 1.5, zeros (fp16 file)"] = write_full_size_checkpoint(
                "sd15", path, sparse=False
            )
        for backend in BACKENDS:
            options = LoadOptions(device="cpu", backend=backend, cache_dir=folder / "cache")
            for name, path in models.items():
                measure(name, path, options)


if __name__ == "__main__":
    main()
