"""The queue survives the process: a real ``sfumato serve`` is killed (SIGKILL, no goodbye)
with one job running and one queued; started again, it finishes both, and no picture made
before the crash is lost. The operator prepares the server from the command line."""

import time

import httpx
import pytest

from tests.fixtures.served import Served, data_env, free_port, sfumato, wait_for_job


@pytest.fixture
def env(tmp_path):
    return data_env(tmp_path)


def test_a_killed_server_finishes_its_jobs_after_a_restart(env):
    assert "admin" in sfumato(env, "users", "add", "ann", "--password", "a long password")
    key = sfumato(env, "keys", "create", "ann")
    port = free_port()
    headers = {"Authorization": f"Bearer {key}"}

    server = Served(env, port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        before = client.post("/v1/generations", json={"prompt": "a red circle", "seed": 1})
        finished = wait_for_job(client, before.json()["id"])
        picture = client.get(finished["images"][0]["url"]).content
        # long enough to be killed part way (each step of 8 pictures takes a tenth of a
        # second and more here; the kill comes within one poll of the first step), and run
        # whole again after the restart: 150 steps cost minutes of the suite for no more
        running = client.post(
            "/v1/generations", json={"prompt": "a blue square", "steps": 40, "batch_size": 8}
        ).json()
        queued = client.post("/v1/generations", json={"prompt": "a green cross"}).json()
        assert wait_for_job(client, running["id"], until=("running",))["progress"]["step"] > 0
        server.kill()

    server = Served(env, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            done = [wait_for_job(client, job["id"]) for job in (running, queued)]
            assert [job["status"] for job in done] == ["succeeded", "succeeded"]
            assert len(done[0]["images"]) == 8
            # the same seed as first drawn: the job ran again exactly as asked
            assert done[0]["settings"]["seed"] == running["settings"]["seed"]
            assert client.get(finished["images"][0]["url"]).content == picture
            assert client.get("/v1/images").json()["total"] == 1 + 8 + 1
    finally:
        server.kill()


def test_a_grid_killed_half_way_keeps_its_cells_and_makes_only_the_rest(env):
    """SIGKILL mid-grid: the cells made before are kept, the grid runs again at the start,
    makes only the missing cells (no cell twice), then its grid picture."""
    sfumato(env, "users", "add", "ann", "--password", "a long password")
    key = sfumato(env, "keys", "create", "ann")
    port = free_port()
    headers = {"Authorization": f"Bearer {key}"}
    # the kill comes within one poll of the first cell, when five are left to make
    body = {"prompt": "a red circle", "x": "seed=1-6", "steps": 30, "seed": 1}

    server = Served(env, port)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
        grid = client.post("/v1/grids", json=body).json()
        deadline = time.monotonic() + 180
        while not client.get(f"/v1/generations/{grid['id']}").json()["images"]:
            assert time.monotonic() < deadline, "no cell was made"
            time.sleep(0.1)
        made = client.get(f"/v1/generations/{grid['id']}").json()["images"]
        server.kill()
    assert len(made) < 6  # killed half-way

    server = Served(env, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
            done = wait_for_job(client, grid["id"])
            assert done["status"] == "succeeded"
            assert len(done["images"]) == 6 + 1  # each cell once, then the grid
            ids = [image["id"] for image in done["images"]]
            assert all(image["id"] in ids for image in made)  # the first cells, kept
            assert client.get("/v1/images").json()["total"] == 7
    finally:
        server.kill()
