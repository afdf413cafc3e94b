"""The first picture of a server against its second, with and without the warm-up
(``sfumato serve`` loads its default model and draws one short picture at start:
``sfumato/jobs/warm_up.py``), through the API, on the CPU's default backend (OpenVINO).

For each model, three servers one after another on one fresh data folder (personal mode, the
model the only one installed, so the default):
- cold, first start: the first picture pays the conversion for OpenVINO, the load, the
  compile and the first calls at its shapes;
- cold, restarted: the conversion is on disk; the first picture still pays the rest;
- warm (the default): the server answers at once, says "warming up" on /v1/health until
  ready; then the first picture is timed.
Each picture: from the POST to the job's success, the job's own load_s and engine_s beside it
(the rest: the queue, saving the file, the HTTP polls).

    python benchmarks/warm_start.py [--sd15] [--steps 8] [--out results/warm_start.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' server launcher

from tests.fixtures.served import Served, data_env

PROMPT = "a small red circle at the top on a blue background"


def picture(client: httpx.Client, steps: int | None) -> tuple[float, float, float]:
    """Seconds from the request to the picture, and the job's load_s and engine_s."""
    started = time.perf_counter()
    body = {"prompt": PROMPT} | ({"steps": steps} if steps else {})
    job = client.post("/v1/generations", json=body).json()
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.05)
        job = client.get(f"/v1/generations/{job['id']}").json()
    assert job["status"] == "succeeded", job
    timings = job["timings"]
    return time.perf_counter() - started, timings["load_s"], timings["engine_s"]


def one_server(data: Path, warm: bool, steps: int | None) -> dict:
    env = data_env(data)
    env.pop("SFUMATO_BACKEND", None)  # the CPU's default
    env.pop("SFUMATO_WARM_UP", None)
    args = ["--personal"] + ([] if warm else ["--no-warm-up"])
    started = time.perf_counter()
    served = Served(env, extra_args=args, timeout=300)
    answering = time.perf_counter() - started
    try:
        client = httpx.Client(base_url=served.url, timeout=3600)
        warm_up = client.get("/v1/health").json()["warm_up"]
        while warm_up["status"] == "warming up":
            time.sleep(0.2)
            warm_up = client.get("/v1/health").json()["warm_up"]
        first = picture(client, steps)
        second = picture(client, steps)
    finally:
        served.stop()
    return {
        "answering_s": answering,
        "warm_up": warm_up,
        "first": first,
        "second": second,
    }


def measure(name: str, model: Path, steps: int | None) -> dict:
    """Each server's figures for ``model``, by label; printed as a table row as they come."""
    figures = {}
    data = Path(tempfile.mkdtemp(prefix="warm-start-"))
    try:
        (data / "models").mkdir()
        if model.is_file():
            os.link(model, data / "models" / model.name)
        else:
            shutil.copytree(model, data / "models" / model.name)
        print(f"\n{name}" + (f", {steps} steps" if steps else ", its own steps"))
        print(
            "| server | answers after | warm-up | first picture (its load, engine) "
            "| second picture (its load, engine) |"
        )
        print("|---|---|---|---|---|")
        for label, warm in (
            ("cold, first start", False),
            ("cold, restarted", False),
            ("warm (default)", True),
        ):
            r = figures[label] = one_server(data, warm, steps)
            w = r["warm_up"]
            warm_up = f"{w['seconds']:.1f} s" if w["status"] == "ready" else w["status"]
            first, second = (
                f"{total:.2f} s ({load:.2f} s, {engine:.2f} s)"
                for total, load, engine in (r["first"], r["second"])
            )
            print(
                f"| {label} | {r['answering_s']:.1f} s | {warm_up} | {first} | {second} |",
                flush=True,
            )
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sd15", action="store_true", help="also a full-size SD 1.5 (zero weights, 512 px)"
    )
    parser.add_argument("--steps", type=int, default=8, help="steps of the SD 1.5 pictures")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results/warm_start.json"
    )
    args = parser.parse_args()
    from sfumato import demo

    figures = {"demo": measure("demo model (64 px)", Path(demo.WEIGHTS), None)}
    if args.sd15:
        from tests.fixtures.full_size import write_full_size_checkpoint

        with tempfile.TemporaryDirectory() as folder:
            checkpoint = write_full_size_checkpoint("sd15", Path(folder) / "sd15-zeros.safetensors")
            name = "full-size SD 1.5 (zero weights, 512 px)"
            figures["sd15"] = measure(name, checkpoint, args.steps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
