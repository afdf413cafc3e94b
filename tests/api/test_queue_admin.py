"""The admin's queue: every user's waiting and running jobs, in one list, and the power to
cancel any of them; nobody else sees or touches it."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from sfumato import accounts
from sfumato.store.tables import User
from tests.api.conftest import Server
from tests.api.conftest import User as Caller


def admin_of(server: Server, scopes=("generate", "read", "admin")) -> Caller:
    """The first account (the admin), signed up through the API, with a key of ``scopes``
    (made in the database: what the key routes accept is not under test here)."""
    if "root" not in server.users:
        answer = TestClient(server.client.app).post(
            "/v1/auth/signup", json={"username": "root", "password": "a long password"}
        )
        assert answer.status_code == 201, answer.text
    with server.studio.db.session() as session:
        root = session.query(User).filter_by(username="root").one()
        key, _ = accounts.create_key(session, root, "admin", list(scopes))
    server.users["root"] = caller = Caller("root", key, {"Authorization": f"Bearer {key}"})
    return caller


def queue(server: Server, user: Caller, prompt: str, **fields) -> dict:
    answer = server.post("/v1/generations", user, json={"prompt": prompt} | fields)
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_the_admin_sees_every_users_jobs_oldest_first_in_the_workers_order(make_server):
    server = make_server(run_worker=False)  # nothing runs: the queue stands still
    admin = admin_of(server)
    ann, bob = server.user("ann"), server.user("bob")
    first, second = queue(server, ann, "ann one"), queue(server, ann, "ann two")
    third = queue(server, bob, "bob one")
    answer = server.get("/v1/admin/jobs", admin)
    assert answer.status_code == 200, answer.text
    jobs = answer.json()["jobs"]
    assert [(j["id"], j["username"]) for j in jobs] == [
        (first["id"], "ann"),
        (second["id"], "ann"),
        (third["id"], "bob"),
    ]
    # the worker takes users in turn: bob's one job runs before ann's second
    assert [j["position"] for j in jobs] == [1, 3, 2]
    assert all(j["status"] == "queued" and j["settings"]["prompt"] for j in jobs)


def test_the_admin_cancels_another_users_queued_and_running_jobs(make_server):
    server = make_server(run_worker=False)
    admin = admin_of(server)
    bob = server.user("bob")
    running = queue(server, bob, "long", steps=150, batch_size=4)
    waiting = queue(server, bob, "next")
    cancelled = server.post(f"/v1/admin/jobs/{waiting['id']}/cancel", admin)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert server.get(f"/v1/generations/{waiting['id']}", bob).json()["status"] == "cancelled"

    server.studio.dispatch.start()
    deadline = time.monotonic() + 60
    while server.get(f"/v1/generations/{running['id']}", bob).json()["status"] != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    listed = server.get("/v1/admin/jobs", admin).json()["jobs"]
    assert [(j["id"], j["position"]) for j in listed] == [(running["id"], 0)]
    assert server.post(f"/v1/admin/jobs/{running['id']}/cancel", admin).status_code == 200
    assert server.wait(running["id"], bob)["status"] == "cancelled"  # stopped after a step
    assert server.get("/v1/admin/jobs", admin).json()["jobs"] == []
    # a finished job cannot be cancelled; one that does not exist is not found
    again = server.post(f"/v1/admin/jobs/{running['id']}/cancel", admin)
    assert again.status_code == 409 and "already finished" in again.json()["error"]["message"]
    for wrong in ("0" * 32, "x" * 5000, "%00", "..%2F..%2Fetc"):
        missing = server.post(f"/v1/admin/jobs/{wrong}/cancel", admin)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_nobody_but_an_admin_sees_or_cancels_the_queue(make_server):
    server = make_server(run_worker=False)
    admin_of(server)  # the first account: ann and bob are plain users
    ann, bob = server.user("ann"), server.user("bob")
    job = queue(server, bob, "mine")
    for who in (ann, bob):
        listed = server.get("/v1/admin/jobs", who)
        assert listed.status_code == 403 and listed.json()["error"]["code"] == "forbidden"
        cancel = server.post(f"/v1/admin/jobs/{job['id']}/cancel", who)
        assert cancel.status_code == 403
    # the admin's own key without the admin scope may not either
    limited = admin_of(server, scopes=("generate", "read"))
    assert server.get("/v1/admin/jobs", limited).status_code == 403
    assert server.post(f"/v1/admin/jobs/{job['id']}/cancel", limited).status_code == 403
    # nor may anyone without a key
    assert server.client.get("/v1/admin/jobs").status_code == 401
    assert server.client.post(f"/v1/admin/jobs/{job['id']}/cancel").status_code == 401
    assert server.get(f"/v1/generations/{job['id']}", bob).json()["status"] == "queued"
