"""What the server adds to a generation: the demo model through `sfumato serve` and its queue,
with several API clients at once, against the engine alone on the same machine.

Measures, in one run: the engine's seconds per picture (the model loaded, no server), then
the server with N clients each sending jobs one after another through the Dezgo-compatible
route (which waits for the picture and answers with it): jobs per second, p50/p99 latency,
and the share of each job's time in the worker spent outside the engine (queue claim,
saving the file, thumbnail, database rows, events).

    python benchmarks/server_overhead.py [--clients 4] [--jobs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' server launcher

from sfumato import demo
from sfumato.catalog.cards import describe_model
from sfumato.engine.generate import generate
from sfumato.engine.loader import load_model
from sfumato.engine.request import GenerationRequest, resolve
from tests.fixtures.served import Served, data_env, sfumato

PROMPT = "a small red circle at the top on a blue background"


def engine_seconds(runs: int, cache: Path) -> float:
    # the backend the server runs by default (OpenVINO on the CPU)
    model = load_model(describe_model(demo.WEIGHTS), device="cpu", cache_dir=cache)
    settings, _ = resolve(
        GenerationRequest(PROMPT, seed=0), model.source.family, model.source.effective_defaults
    )
    generate(model, settings)  # warm
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        generate(model, settings)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=10, help="jobs per client")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as cache:
        engine = engine_seconds(20, Path(cache))
    print(f"engine alone: {engine * 1000:.0f} ms per picture (median of 20)")

    with tempfile.TemporaryDirectory() as data:
        env = data_env(Path(data))
        sfumato(env, "users", "add", "bench", "--password", "benchmark only")
        key = sfumato(env, "keys", "create", "bench")
        server = Served(env)
        base = server.url
        try:
            headers = {"X-Dezgo-Key": key}
            httpx.post(
                base + "/text2image", json={"prompt": PROMPT}, headers=headers, timeout=120
            )  # loads the model
            latencies: list[float] = []
            lock = threading.Lock()

            def client() -> None:
                with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
                    for _ in range(args.jobs):
                        start = time.perf_counter()
                        answer = http.post("/text2image", json={"prompt": PROMPT})
                        answer.raise_for_status()
                        with lock:
                            latencies.append(time.perf_counter() - start)

            started = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            with httpx.Client(base_url=base, headers={"X-API-Key": key}) as http:
                jobs = http.get("/v1/generations", params={"limit": 100}).json()["generations"]
        finally:
            server.stop()

    total = args.clients * args.jobs
    done = jobs[:total]
    worker = [_seconds(job["finished_at"]) - _seconds(job["started_at"]) for job in done]
    outside = [1 - job["timings"]["engine_s"] / w for job, w in zip(done, worker, strict=True)]
    in_engine = statistics.median(job["timings"]["engine_s"] for job in done)
    latencies.sort()
    print(
        f"server, {args.clients} clients x {args.jobs} jobs: {total / elapsed:.2f} jobs/s "
        f"(the engine alone: {1 / engine:.2f} pictures/s, ratio {engine * total / elapsed:.2f})"
    )
    print(
        f"latency: p50 {_pct(latencies, 50):.2f} s, p99 {_pct(latencies, 99):.2f} s "
        "(a client also waits for the other clients' jobs: they share one queue)"
    )
    print(
        f"per job in the worker: {statistics.median(worker) * 1000:.0f} ms, of which the engine "
        f"{in_engine * 1000:.0f} ms; outside the engine: median {statistics.median(outside):.1%}, "
        f"worst {max(outside):.1%}"
    )


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


def _pct(values: list[float], percent: int) -> float:
    return values[min(len(values) - 1, round(percent / 100 * (len(values) - 1)))]


if __name__ == "__main__":
    main()
