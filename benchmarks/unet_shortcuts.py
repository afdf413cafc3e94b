"""What one UNet call costs with each shortcut, on the full-size SD 1.5 UNet (random weights)
at 512 px: a whole call with guidance (batch 2), a DeepCache call between whole ones (batch
2), and a whole call after the guidance cutoff (batch 1). The three take turns in one process,
so a machine whose speed drifts affects them alike; medians and ratios.

    python benchmarks/unet_shortcuts.py [--rounds 3] [--size 512]
"""

from __future__ import annotations

import argparse
import statistics
import time
from types import SimpleNamespace

import torch
from diffusers import UNet2DConditionModel

from sfumato.engine.families import CONFIG_ROOT
from sfumato.engine.shortcuts import deep_cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = UNet2DConditionModel.load_config(CONFIG_ROOT / "sd15" / "unet")
    unet = UNet2DConditionModel.from_config(config).eval()
    latent = args.size // 8
    sample, timestep = torch.randn(2, 4, latent, latent), torch.tensor(999)
    text = torch.randn(2, 77, 768)
    # four steps with an interval beyond them: whole, cached, cached, whole (the last)
    pipe = SimpleNamespace(unet=unet, num_timesteps=4)
    times: dict[str, list[float]] = {"whole": [], "DeepCache": [], "after cutoff": []}

    def call(name: str, batch: int) -> None:
        started = time.perf_counter()
        unet(sample[:batch], timestep, encoder_hidden_states=text[:batch])
        times[name].append(time.perf_counter() - started)

    with torch.inference_mode():
        unet(sample[:1], timestep, encoder_hidden_states=text[:1])  # warm-up
        for _ in range(args.rounds):
            with deep_cache(pipe, 100):
                call("whole", 2)
                call("DeepCache", 2)
            call("after cutoff", 1)
    whole = statistics.median(times["whole"])
    print(
        f"full-size SD 1.5 UNet (random weights), {args.size} px, "
        f"{torch.get_num_threads()} threads, {args.rounds} rounds, medians"
    )
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:13} {median:6.2f} s  {median / whole:4.2f}x a whole call")


if __name__ == "__main__":
    main()
