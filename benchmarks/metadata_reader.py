"""The metadata reader's time on a picture's text: linear in its length.

PNGs of 8x8 pixels whose ``parameters`` text (a zTXt chunk) is 100 KB and 1 MB, two shapes:
a long A1111 text (a prompt of many lines, LoRA tags, a real settings line) and a hostile one
(one letter repeated, which the old settings regex read in quadratic time). Prints the best
of a few reads of each, in milliseconds, and the ratio 1 MB / 100 KB (~10 = linear).

    python benchmarks/metadata_reader.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from pathlib import Path

from PIL import Image, PngImagePlugin

sys.path.insert(0, str(Path(__file__).parents[1]))

from sfumato.errors import NoGenerationData  # noqa: E402
from sfumato.metadata.read import read_info_bytes  # noqa: E402

SETTINGS = (
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, "
    'Size: 512x768, Model hash: 879db523c3, Model: "dreamshaper_8, final: v2", '
    'Lora hashes: "citypop_v2: 1f2e3d4c5b6a", Version: v1.10.1'
)


def a1111_text(size: int) -> str:
    line = "masterpiece, a café at night, (neon lights:1.2), <lora:citypop_v2:0.8>\n"
    return (line * (size // len(line)))[:size] + "\nNegative prompt: blurry\n" + SETTINGS


def hostile_text(size: int) -> str:
    return "a" * size


def picture(text: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text, zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def best_ms(content: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with contextlib.suppress(NoGenerationData):
            read_info_bytes(content)
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def measure(repeat: int = 5) -> dict[str, tuple[float, float]]:
    """{shape: (ms for 100 KB, ms for 1 MB)}"""
    return {
        name: tuple(best_ms(picture(make(size)), repeat) for size in (100_000, 1_000_000))
        for name, make in (("A1111 text", a1111_text), ("one letter", hostile_text))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'text':<12} {'100 KB':>9} {'1 MB':>9} {'ratio':>6}")
    for name, (small, large) in measure(args.repeat).items():
        print(f"{name:<12} {small:>7.1f}ms {large:>7.1f}ms {large / small:>6.1f}")


if __name__ == "__main__":
    main()
