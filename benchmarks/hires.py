"""The hires fix: what it costs, whether it keeps the scene, and the memory it needs.

1. On the demo model (64 px native, PyTorch), each eval scene made plain, with a 2x hires
   fix (128 px; Latent and Lanczos, 6 second-pass steps at 0.5) and directly at 128 px: how
   many of the 128-px pictures the analyzer reads as the plain one (colour, background,
   shape), and the median times.
2. The working memory of the second pass's parts on SD 1.5's architecture (random weights):
   the VAE decode of one picture and the UNet call of one picture with guidance, each in a
   fresh process (peak RSS growth over the loaded network, MiB per megapixel), against what
   ``engine/hires.py`` counts for them.

    python benchmarks/hires.py [--scenes 8] [--rounds 3] [--decode 256,512,768] [--unet 512,1024]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROBE = r"""
import resource, sys, torch
from diffusers import AutoencoderKL, UNet2DConditionModel
part, side, dtype = sys.argv[1], int(sys.argv[2]), getattr(torch, sys.argv[3])
torch.manual_seed(0)
torch.set_default_dtype(dtype)  # made in its dtype: no fp32 copy in the peak
config = sys.argv[4]
with torch.inference_mode():
    if part == "decode":
        net = AutoencoderKL.from_config(AutoencoderKL.load_config(config, subfolder="vae")).eval()
        x = torch.randn(1, 4, side // 8, side // 8)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        net.decode(x)
    else:
        net = UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(config, subfolder="unet")).eval()
        x, text = torch.randn(2, 4, side // 8, side // 8), torch.randn(2, 77, 768)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        net(x, 500, encoder_hidden_states=text)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""


def memory(part: str, side: int, dtype: str) -> float:
    """MiB per megapixel of peak RSS growth for one ``part`` at ``side`` px, fresh process."""
    config = str(ROOT / "sfumato" / "engine" / "configs" / "sd15")
    done = subprocess.run(
        [sys.executable, "-c", PROBE, part, str(side), dtype, config],
        capture_output=True,
        text=True,
        check=True,
    )
    grown = int(done.stdout.strip().splitlines()[-1])
    return grown / 2**20 / (side * side / 1e6)


def scenes(count: int, rounds: int) -> dict:
    from PIL import Image

    from sfumato import demo
    from sfumato.catalog.cards import describe_model
    from sfumato.demo.analyze import analyze
    from sfumato.demo.evaluate import canonical_prompt, eval_scenes
    from sfumato.engine.generate import generate
    from sfumato.engine.loader import load_model
    from sfumato.engine.request import GenerationRequest, resolve

    model = load_model(describe_model(demo.WEIGHTS), device="cpu", backend="torch")
    ways = {
        "plain": {},
        "Latent": {"hr_scale": 2, "hr_upscaler": "Latent"},
        "Lanczos": {"hr_scale": 2, "hr_upscaler": "Lanczos"},
        "direct": {"width": 128, "height": 128},  # what the hires fix is there to avoid
    }
    second = {"hr_second_pass_steps": 6, "denoising_strength": 0.5}
    chosen = eval_scenes(1)[:: max(1, len(eval_scenes(1)) // count)][:count]
    kept = {way: 0 for way in ways if way != "plain"}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for seed, scene in enumerate(chosen):
        drawn = {}
        for round_ in range(rounds):
            for way, fields in ways.items():  # in turns, so drift hits each way alike
                extra = second if "hr_scale" in fields else {}
                request = GenerationRequest(canonical_prompt(scene), seed=seed, **fields, **extra)
                settings = resolve(request, model.source.family, model.source.effective_defaults)[0]
                started = time.perf_counter()
                (picture,) = generate(model, settings)
                times[way].append(time.perf_counter() - started)
                if round_ == 0:
                    assert picture.size == ((128, 128) if fields else (64, 64))
                    found = analyze(picture.resize((64, 64), Image.Resampling.LANCZOS))
                    drawn[way] = (found.colour, found.background, found.shape)
        for way in kept:
            kept[way] += drawn[way] == drawn["plain"]
    return {
        "scenes": len(chosen),
        "kept": kept,
        "median_s": {way: round(statistics.median(t), 3) for way, t in times.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--decode", default="256,512,768", help="VAE decode sides (px)")
    parser.add_argument("--unet", default="512,1024", help="UNet sides (px)")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hires.json")
    args = parser.parse_args()

    from sfumato.engine import hires

    figures = scenes(args.scenes, args.rounds)
    k = figures["kept"]
    m = figures["median_s"]
    print(f"demo model, {figures['scenes']} scenes: the 128-px picture keeps the 64-px one's "
          f"scene in {k['Latent']} (hires, Latent), {k['Lanczos']} (hires, Lanczos) and "
          f"{k['direct']} (made at 128 px); median {m['plain']:.2f} s plain, "
          f"{m['Latent']:.2f} s / {m['Lanczos']:.2f} s with the 2x hires fix, "
          f"{m['direct']:.2f} s at 128 px")  # fmt: skip
    size = 4 if args.dtype == "float32" else 2
    counted = {
        "decode": hires.DECODE_BYTES_PER_MPX * size / 2**20,
        "unet": hires.UNET_BYTES_PER_MPX * size / 2**20,
    }
    figures["memory_mib_per_mpx"] = {"dtype": args.dtype, "counted": counted}
    for part, sides in (("decode", args.decode), ("unet", args.unet)):
        for side in (int(x) for x in sides.split(",") if x):
            measured = memory(part, side, args.dtype)
            figures["memory_mib_per_mpx"][f"{part} {side}"] = round(measured)
            print(f"SD 1.5 {part} at {side} px, {args.dtype}: {measured:.0f} MiB a megapixel "
                  f"(counted: {counted[part]:.0f})")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
