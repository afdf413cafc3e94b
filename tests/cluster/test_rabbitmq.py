"""The same scaled-out server on RabbitMQ instead of Redis: jobs reach the worker, its
events reach the API's streams, and a cancel reaches the worker (kombu's fanout on AMQP)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.fixtures.served import job_reached, read_events, wait_for_job


@pytest.fixture(scope="module")
def cluster(make_cluster, rabbitmq_url):
    cluster = make_cluster(rabbitmq_url)
    cluster.sfumato("users", "add", "ann", "--password", "a long password")
    cluster.key = cluster.sfumato("keys", "create", "ann")
    cluster.start_api()
    cluster.start_worker("r1")
    return cluster


def test_a_job_runs_on_a_worker_through_rabbitmq_with_live_events_and_cancel(cluster):
    headers = {"Authorization": f"Bearer {cluster.key}"}
    seen: list[str] = []
    listening = threading.Event()

    def listen():
        with (
            httpx.Client(base_url=cluster.api.url, headers=headers) as c,
            c.stream("GET", "/v1/events", timeout=60) as stream,
        ):
            listening.set()
            done = read_events(stream, job_reached("succeeded"))
            seen.extend(name for name, _ in done)

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert listening.wait(30)
    time.sleep(0.5)
    with httpx.Client(base_url=cluster.api.url, headers=headers, timeout=30) as c:
        job = c.post("/v1/generations", json={"prompt": "a red circle", "steps": 40}).json()
        done = wait_for_job(c, job["id"])
        assert done["status"] == "succeeded" and len(done["images"]) == 1
        assert c.get(done["images"][0]["url"]).headers["content-type"] == "image/png"
        reader.join(60)
        assert "progress" in seen and "job" in seen
        long = c.post("/v1/generations", json={"prompt": "a red circle", "steps": 150,
                                               "batch_size": 4}).json()  # fmt: skip
        wait_for_job(c, long["id"], until=("running",))
        c.post(f"/v1/generations/{long['id']}/cancel")
        assert wait_for_job(c, long["id"], timeout=30)["status"] == "cancelled"
    assert cluster.job_row(long["id"])["worker"] == cluster.name("r1")
