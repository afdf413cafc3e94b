"""A scaled-out sfumato as an operator runs it: ``sfumato serve --broker`` and two
``sfumato worker`` processes (each its own data folder and model cache, one shared picture
folder), PostgreSQL and Redis. Jobs spread over the workers, stay fair, survive a killed
worker or API process, can be cancelled and followed live."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time

import httpx
import pytest
from PIL import Image

from tests.fixtures.cluster import EXPIRY_S
from tests.fixtures.served import job_reached, read_events, wait_for_job

LONG = {"steps": 150}  # long enough on the demo model to act on while it runs


@pytest.fixture(scope="module")
def cluster(make_cluster, redis_url):
    cluster = make_cluster(redis_url)
    cluster.sfumato("users", "add", "ann", "--password", "a long password")
    cluster.sfumato("users", "add", "bob", "--password", "another long password")
    scopes = ("--scope", "generate", "--scope", "read")
    cluster.keys = {
        "ann": cluster.sfumato("keys", "create", "ann", *scopes, "--scope", "admin"),
        "bob": cluster.sfumato("keys", "create", "bob", *scopes),
    }
    cluster.start_api()
    cluster.start_worker("w1")
    cluster.start_worker("w2")
    return cluster


def client(cluster, user="ann") -> httpx.Client:
    return httpx.Client(
        base_url=cluster.api.url,
        headers={"Authorization": f"Bearer {cluster.keys[user]}"},
        timeout=30,
    )


def submit(c: httpx.Client, **body) -> dict:
    response = c.post("/v1/generations", json={"prompt": "a red circle"} | body)
    assert response.status_code == 202, response.text
    return response.json()


def pixels(c: httpx.Client, job: dict) -> list[bytes]:
    return [Image.open(io.BytesIO(c.get(i["url"]).content)).tobytes() for i in job["images"]]


def running_on(cluster, job_id: str) -> str:
    return cluster.job_row(job_id)["worker"]


def ensure_workers(cluster, *names: str) -> None:
    for name in names:
        if name not in cluster.workers:
            cluster.start_worker(name)


def test_jobs_of_two_users_spread_over_both_workers_and_all_succeed(cluster):
    with client(cluster, "ann") as ann, client(cluster, "bob") as bob:
        jobs = [submit(c, seed=i, steps=30) for i in range(3) for c in (ann, bob)]
        done = [wait_for_job(ann if i % 2 == 0 else bob, job["id"]) for i, job in enumerate(jobs)]
    assert [job["status"] for job in done] == ["succeeded"] * 6
    assert all(len(job["images"]) == 1 for job in done)
    workers = {running_on(cluster, job["id"]) for job in jobs}
    assert workers == {cluster.name("w1"), cluster.name("w2")}
    # the admin sees both, with what they did and hold
    with client(cluster, "ann") as ann:
        listed = {w["name"]: w for w in ann.get("/v1/admin/workers").json()["workers"]}
    assert set(listed) == workers
    assert sum(w["jobs_done"] for w in listed.values()) >= 6
    assert all(w["alive"] and w["models"] for w in listed.values())
    with client(cluster, "bob") as bob:
        assert bob.get("/v1/admin/workers").status_code == 403
    shown = json.loads(cluster.sfumato("workers", "list", "--json"))
    assert {w["name"] for w in shown} == workers


def test_one_users_burst_does_not_hold_back_anothers_job(cluster):
    """ann queues eight jobs, then bob one: only as many of ann's as there are workers
    have left the queue, so bob's starts next, not after ann's eight."""
    with client(cluster, "ann") as ann, client(cluster, "bob") as bob:
        burst = [submit(ann, seed=i, steps=60) for i in range(8)]
        wait_for_job(ann, burst[0]["id"], until=("running",))
        single = submit(bob, seed=99, steps=60)
        for job in burst:
            wait_for_job(ann, job["id"])
        wait_for_job(bob, single["id"])
    starts = sorted(
        (cluster.job_row(job["id"])["started_at"], who)
        for job, who in [(j, "ann") for j in burst] + [(single, "bob")]
    )
    # two workers: two of ann's run, maybe a third was handed out before bob's arrived
    assert [who for _, who in starts].index("bob") <= 3


def test_a_worker_killed_mid_job_its_job_finishes_on_the_other_with_the_same_pixels(cluster):
    ensure_workers(cluster, "w1", "w2")
    with client(cluster) as ann:
        calm = wait_for_job(ann, submit(ann, seed=7, batch_size=2, **LONG)["id"])
        job = submit(ann, seed=7, batch_size=2, **LONG)
        wait_for_job(ann, job["id"], until=("running",))
        victim = next(n for n in ("w1", "w2") if running_on(cluster, job["id"]) == cluster.name(n))
        cluster.kill_worker(victim)
        killed_at = time.monotonic()
        done = wait_for_job(ann, job["id"])
        assert done["status"] == "succeeded"
        survivor = cluster.name("w2" if victim == "w1" else "w1")
        assert running_on(cluster, job["id"]) == survivor
        # noticed once the heartbeat expired, not at once, and not never
        assert time.monotonic() - killed_at >= EXPIRY_S * 0.5
        assert done["settings"]["seed"] == calm["settings"]["seed"] == 7
        assert len(done["images"]) == 2  # one set of pictures, not one and a half
        assert pixels(ann, done) == pixels(ann, calm)
        history = ann.get("/v1/images", params={"limit": 100}).json()
        assert sum(1 for i in history["images"] if i["job_id"] == job["id"]) == 2
        assert cluster.job_row(job["id"])["attempts"] == 2
    cluster.start_worker(victim)  # a worker started again under its name takes up its queue
    assert cluster.worker_row(victim)["job_id"] is None


def test_a_restarted_api_process_does_not_run_again_what_workers_are_running(cluster):
    ensure_workers(cluster, "w1", "w2")
    with client(cluster) as ann:
        job = submit(ann, seed=3, **LONG)
        wait_for_job(ann, job["id"], until=("running",))
        worker = running_on(cluster, job["id"])
    cluster.api.kill()
    cluster.start_api()
    with client(cluster) as ann:
        done = wait_for_job(ann, job["id"])
    assert done["status"] == "succeeded" and len(done["images"]) == 1
    row = cluster.job_row(job["id"])
    assert row["attempts"] == 1 and row["worker"] == worker  # never handed out again


def test_cancelling_a_job_running_on_a_worker_stops_it_there(cluster):
    ensure_workers(cluster, "w1", "w2")
    with client(cluster) as ann:
        job = submit(ann, seed=5, steps=150, batch_size=4)
        wait_for_job(ann, job["id"], until=("running",))
        asked = time.monotonic()
        assert ann.post(f"/v1/generations/{job['id']}/cancel").status_code == 200
        done = wait_for_job(ann, job["id"], timeout=30)
        stopped_in = time.monotonic() - asked
        assert done["status"] == "cancelled" and done["images"] == []
        assert stopped_in < 10, stopped_in  # a step, not the 600 of them
        # its worker is free again: the next job runs
        assert wait_for_job(ann, submit(ann, seed=6, steps=10)["id"])["status"] == "succeeded"


def test_the_event_stream_shows_progress_of_a_job_on_a_worker(cluster):
    ensure_workers(cluster, "w1", "w2")
    events: list[tuple[str, dict]] = []
    listening = threading.Event()

    def listen():
        with client(cluster) as ann, ann.stream("GET", "/v1/events", timeout=60) as stream:
            listening.set()
            events.extend(read_events(stream, job_reached("succeeded")))

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    assert listening.wait(30)
    time.sleep(0.5)
    with client(cluster) as ann:
        job = submit(ann, seed=11, steps=80)
        reader.join(120)
    mine = [
        (kind, data) for kind, data in events if data.get("job_id", data.get("id")) == job["id"]
    ]
    progress = [data for kind, data in mine if kind == "progress"]
    assert progress, mine
    assert progress[-1]["total"] == 80 and progress[-1]["preview"].startswith("data:image/jpeg")
    assert [data["status"] for kind, data in mine if kind == "job"][-1] == "succeeded"
    # and a poll of the job while it runs shows the live progress with its preview, which
    # only the worker's events carry (the database has the step alone)
    with client(cluster) as ann:
        job = submit(ann, seed=12, steps=150)
        wait_for_job(ann, job["id"], until=("running",))
        cluster.wait_until(
            lambda: (ann.get(f"/v1/generations/{job['id']}").json()["progress"] or {}).get(
                "preview"
            ),
            "a preview in the polled job",
            timeout=30,
        )
        wait_for_job(ann, job["id"])


@pytest.mark.parametrize("broken", ["broker", "database"])
def test_a_worker_that_cannot_reach_a_service_says_so_and_retries(cluster, broken):
    env = cluster.env("lost")
    if broken == "broker":
        env["SFUMATO_BROKER_URL"] = "redis://127.0.0.1:9/0"
    else:
        env["SFUMATO_DATABASE_URL"] = "postgresql+psycopg://postgres@127.0.0.1:9/nothing"
    process = subprocess.Popen(
        [sys.executable, "-m", "sfumato", "worker", "--name", cluster.name("lost")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    said: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum("Retrying" in line for line in said) < 2:
            said.append(process.stdout.readline())
    finally:
        process.kill()
        process.wait()
    tried = [line for line in said if "Retrying" in line]
    assert len(tried) >= 2, said  # it said so, and tried again
    what = "the broker (redis://127.0.0.1:9/0)" if broken == "broker" else "the database"
    assert f"Cannot reach {what}" in tried[0], tried[0]
    assert "Traceback" not in "".join(said)


def test_a_job_message_delivered_twice_writes_no_second_set(cluster):
    """The broker may deliver a message again (a redelivery after a lost connection): the
    worker runs a job only for the run that owns it, so the copy is dropped."""
    from celery import Celery

    ensure_workers(cluster, "w1", "w2")
    with client(cluster) as ann:
        done = wait_for_job(ann, submit(ann, seed=21, steps=10)["id"])
        row = cluster.job_row(done["id"])
        broker = Celery(broker=cluster.broker_url)
        queue = f"sfumato.worker.{row['worker']}"
        broker.send_task("sfumato.run_job", args=[done["id"], row["attempts"]], queue=queue)
        short = row["worker"].rsplit("-", 1)[0]
        cluster.wait_until(lambda: "no longer this worker's; dropped" in cluster.log(short),
                           "the copy dropped", timeout=60)  # fmt: skip
        again = ann.get(f"/v1/generations/{done['id']}").json()
        assert again["status"] == "succeeded" and len(again["images"]) == 1
        assert again["images"][0]["id"] == done["images"][0]["id"]
        # and the worker is free for the next job
        assert wait_for_job(ann, submit(ann, seed=22, steps=10)["id"])["status"] == "succeeded"


def test_the_workers_answer_celerys_own_inspect_commands(cluster):
    """Plain Celery workers: `celery inspect` (and so Flower) sees them and their queues."""
    from celery import Celery

    ensure_workers(cluster, "w1", "w2")
    inspect = Celery(broker=cluster.broker_url).control.inspect(timeout=5)
    hosts = {f"{cluster.name(n)}@{cluster.worker_row(n)['host']}" for n in ("w1", "w2")}
    assert hosts <= set(inspect.ping() or {})
    queues = inspect.active_queues() or {}
    assert {q["name"] for host in hosts for q in queues[host]} == {
        f"sfumato.worker.{cluster.name(n)}" for n in ("w1", "w2")
    }
