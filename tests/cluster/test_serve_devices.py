"""``sfumato serve --broker URL --devices ...``: the API starts a worker per device beside
it, and stops them when it stops."""

from __future__ import annotations

import os
import signal
import time

import httpx
import psutil
import pytest

from tests.fixtures.served import Served, wait_for_job


@pytest.fixture
def cluster(make_cluster, redis_url):
    return make_cluster(redis_url)


def test_serve_starts_a_worker_per_device_and_stops_them_with_itself(cluster):
    cluster.sfumato("users", "add", "ann", "--password", "a long password")
    scopes = ("--scope", "generate", "--scope", "read", "--scope", "admin")
    key = cluster.sfumato("keys", "create", "ann", *scopes)
    env = cluster.env("api")
    api = Served(env, extra_args=("--devices", "cpu,cpu"))
    try:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=api.url, headers=headers, timeout=30) as c:
            deadline = time.monotonic() + 120
            while len(c.get("/v1/admin/workers").json()["workers"]) < 2:
                assert time.monotonic() < deadline, "the two workers did not start"
                time.sleep(0.5)
            workers = c.get("/v1/admin/workers").json()["workers"]
            assert [w["device"] for w in workers] == ["cpu", "cpu"]
            assert len({w["name"] for w in workers}) == 2  # two names for one device kind
            job = c.post("/v1/generations", json={"prompt": "a red circle", "steps": 8}).json()
            assert wait_for_job(c, job["id"])["status"] == "succeeded"
        children = psutil.Process(api.process.pid).children(recursive=True)
        assert sum("worker" in p.cmdline() for p in children) == 2  # and their heartbeats
    finally:
        os.kill(api.process.pid, signal.SIGTERM)
        api.process.wait(60)
    gone, alive = psutil.wait_procs(children, timeout=60)
    assert not alive, [p.cmdline() for p in alive]
