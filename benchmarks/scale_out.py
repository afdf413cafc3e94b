"""What scaling out buys and costs, on the demo model: a real `sfumato serve --broker` and
`sfumato worker` processes (each worker pinned to one core, one thread), PostgreSQL and Redis
on this machine, against a plain `sfumato serve` measured in the same run.

- dispatch overhead: one job at a time (nothing waits), the time from submit to the picture
  in hand through the broker and a worker, against the single-process server; and the time
  from submit to the worker starting it;
- throughput with one worker and with two: a burst of jobs from two users, pictures per
  minute, and the p50/p99 time from submit to start;
- model affinity: two workers that keep one model each, two models, jobs alternating between
  them: the model loads with affinity (a job goes to the worker holding its model) and
  without (any idle worker, as a plain shared queue would).

    python benchmarks/scale_out.py [--jobs 16] [--steps 20] [--out results.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' process launchers

from tests.fixtures.cluster import Cluster  # noqa: E402
from tests.fixtures.postgres import fresh_database  # noqa: E402
from tests.fixtures.served import Served, data_env, sfumato, wait_for_job  # noqa: E402

DEMO = Path(__file__).parents[1] / "sfumato" / "demo" / "weights"
POSTGRES = os.environ.get(
    "SFUMATO_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("SFUMATO_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _keys(run) -> dict[str, str]:
    """Two users with keys, made by ``run`` (a function running sfumato's commands)."""
    keys = {}
    for name in ("ann", "bob"):
        run("users", "add", name, "--password", "a long password")
        keys[name] = run("keys", "create", name)
    return keys


def _client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60)


def _one_at_a_time(url: str, key: str, steps: int, jobs: int) -> list[float]:
    """Seconds from submit to the finished job in hand, each job alone."""
    times = []
    with _client(url, key) as c:
        for i in range(jobs + 1):
            started = time.perf_counter()
            job = c.post(
                "/v1/generations", json={"prompt": "a red circle", "seed": i, "steps": steps}
            )
            wait_for_job(c, job.json()["id"])
            if i:  # the first loads the model
                times.append(time.perf_counter() - started)
    return times


def _burst(cluster: Cluster, keys: dict, steps: int, jobs: int, models=("sfumato-demo",)) -> dict:
    """``jobs`` queued at once by two users (models alternating); figures of the run."""
    ids = []
    clients = {name: _client(cluster.api.url, key) for name, key in keys.items()}
    started = time.perf_counter()
    for i in range(jobs):
        body = {
            "prompt": "a red circle",
            "seed": i,
            "steps": steps,
            "model": models[i % len(models)],
        }
        answer = clients["ann" if i % 2 == 0 else "bob"].post("/v1/generations", json=body)
        answer.raise_for_status()
        ids.append((answer.json()["id"], "ann" if i % 2 == 0 else "bob"))
    for job_id, who in ids:
        done = wait_for_job(clients[who], job_id, timeout=900)
        assert done["status"] == "succeeded", done
    wall = time.perf_counter() - started
    for c in clients.values():
        c.close()
    waits = []
    for job_id, _ in ids:
        row = cluster.job_row(job_id)
        waits.append((row["started_at"] - row["created_at"]).total_seconds())
    waits.sort()
    return {
        "jobs": jobs,
        "wall_s": round(wall, 2),
        "pictures_per_minute": round(jobs / wall * 60, 1),
        "submit_to_start_p50_s": round(statistics.median(waits), 3),
        "submit_to_start_p99_s": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))], 3),
    }


def _loads(cluster: Cluster, names: list[str]) -> int:
    return sum(cluster.worker_row(n)["model_loads"] for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16, help="jobs per burst")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--alone", type=int, default=8, help="jobs run one at a time")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale_out.json"))
    args = parser.parse_args()

    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    cleanup = contextlib.ExitStack()
    database_url = cleanup.enter_context(fresh_database(admin, "sfumato_bench"))
    root = Path(tempfile.mkdtemp(prefix="sfumato-scale-"))
    cluster = Cluster(root, database_url, REDIS)
    figures: dict = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "steps": args.steps}
    try:
        # the baseline: a plain single-process server, same settings, one core
        local_env = data_env(root / "local") | {"SFUMATO_BACKEND": "torch", "OMP_NUM_THREADS": "1"}
        keys = _keys(lambda *a: sfumato(local_env, *a))
        local = Served(local_env)
        subprocess.run(["taskset", "-p", "-c", "0", str(local.process.pid)], capture_output=True)
        alone_local = _one_at_a_time(local.url, keys["ann"], args.steps, args.alone)
        local.stop()

        keys = _keys(cluster.sfumato)
        cluster.start_api()
        cluster.start_worker("w1", cpu=0)
        alone_cluster = _one_at_a_time(cluster.api.url, keys["ann"], args.steps, args.alone)
        starts = []
        with _client(cluster.api.url, keys["ann"]) as c:
            for job in c.get("/v1/generations", params={"limit": args.alone}).json()["generations"]:
                row = cluster.job_row(job["id"])
                starts.append((row["started_at"] - row["created_at"]).total_seconds())
        local_s, cluster_s = statistics.median(alone_local), statistics.median(alone_cluster)
        figures["dispatch"] = {
            "single_process_s": round(local_s, 3),
            "scaled_out_s": round(cluster_s, 3),
            "overhead_ms": round((cluster_s - local_s) * 1000, 1),
            "submit_to_start_ms": round(statistics.median(starts) * 1000, 1),
        }
        figures["one_worker"] = _burst(cluster, keys, args.steps, args.jobs)
        cluster.start_worker("w2", cpu=1)
        _one_at_a_time(cluster.api.url, keys["bob"], args.steps, 1)  # w2 loads its model
        figures["two_workers"] = _burst(cluster, keys, args.steps, args.jobs)
        figures["speedup"] = round(
            figures["two_workers"]["pictures_per_minute"]
            / figures["one_worker"]["pictures_per_minute"],
            2,
        )

        # affinity: a second model (the demo under another name), workers keeping one model
        second = root / "models" / "demo-b"
        shutil.copytree(DEMO, second)
        card = (
            (second / "sfumato.toml")
            .read_text()
            .replace('name = "sfumato-demo"', 'name = "demo-b"')
        )
        (second / "sfumato.toml").write_text(
            card.replace('lineage = "sfumato-demo"', 'lineage = "demo-b"')
        )
        figures["affinity"] = {}
        for affinity in ("1", "0"):
            for short in ("w1", "w2"):
                cluster.stop_worker(short)
            cluster.api.stop()
            cluster.start_api(SFUMATO_MODEL_AFFINITY=affinity)
            for cpu, short in enumerate(("w1", "w2")):
                cluster.start_worker(short, "--max-loaded-models", "1", cpu=cpu)
            run = _burst(cluster, keys, args.steps, args.jobs, models=("sfumato-demo", "demo-b"))
            loads = _loads(cluster, ["w1", "w2"])
            figures["affinity"]["with" if affinity == "1" else "without"] = run | {
                "model_loads": loads
            }
    finally:
        cluster.stop()
        cleanup.close()  # the database dropped
        admin.dispose()
        shutil.rmtree(root, ignore_errors=True)

    d, one, two = figures["dispatch"], figures["one_worker"], figures["two_workers"]
    print(
        f"one job alone: {d['single_process_s']} s in one process, {d['scaled_out_s']} s through "
        f"the broker and a worker: {d['overhead_ms']} ms of dispatch per job "
        f"(submit to start {d['submit_to_start_ms']} ms)"
    )
    print(
        f"{args.jobs} jobs at once: one worker {one['pictures_per_minute']}/min, two workers "
        f"{two['pictures_per_minute']}/min ({figures['speedup']}x); submit to start p50/p99 "
        f"{two['submit_to_start_p50_s']}/{two['submit_to_start_p99_s']} s with two"
    )
    a = figures["affinity"]
    print(
        f"two models alternating on two workers keeping one each: {a['with']['model_loads']} "
        f"model loads with affinity, {a['without']['model_loads']} without"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
