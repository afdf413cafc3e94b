"""The server warms its default model at start (jobs/warm_up.py): /v1/health says so, the
first job finds the model loaded, and a model that cannot load is said, not fatal."""

from __future__ import annotations

import shutil
import time

import httpx
import pytest

from sfumato.catalog.cards import Card, write_card
from sfumato.studio import Studio, StudioConfig
from tests.fixtures.served import Served, data_env


def warm_up_of(get, until=("ready", "failed", "off"), timeout: float = 120) -> list[dict]:
    """Every /v1/health warm_up read (``get``: a path to the answer), until its status is one
    of ``until``."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(get("/v1/health").json()["warm_up"])
        if seen[-1]["status"] in until:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"still warming up: {seen[-1]}")


@pytest.fixture
def tiny_installed(tmp_path, tiny_models):
    """The tiny SD 1.5 model, its native size 64 px (a card's defaults, as a model's own)."""
    folder = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_models["sd15"]["folder"], folder)
    write_card(folder, Card(defaults={"width": 64, "height": 64, "steps": 4}))
    return folder


def test_the_first_job_finds_the_model_warm(make_server, tiny_installed):
    server = make_server(warm_up=True)
    seen = warm_up_of(server.client.get)
    assert seen[-1]["status"] == "ready", seen[-1]
    assert seen[-1]["model"] == "tiny" and seen[-1]["seconds"] > 0
    assert server.studio.model_cache.loaded_names() == ["tiny"]
    job = server.generate()
    assert job["status"] == "succeeded", job
    # the job's model is the one the warm-up loaded: the same file and load options
    assert server.studio.model_cache.loads == 1
    assert job["timings"]["load_s"] < 0.05


def test_a_job_queued_while_warming_waits_rather_than_loading_again(make_server, tiny_installed):
    server = make_server(warm_up=True)
    answer = server.post("/v1/generations", json={"prompt": "a red circle"})
    assert answer.status_code == 202, answer.text
    job = server.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    assert server.studio.model_cache.loads == 1
    assert warm_up_of(server.client.get)[-1]["status"] == "ready"


def test_off_says_off(make_server, tiny_installed, monkeypatch):
    monkeypatch.delenv("SFUMATO_WARM_UP")  # the setting alone turns it off
    server = make_server(warm_up=False)
    warm_up = server.client.get("/v1/health").json()["warm_up"]
    assert warm_up["status"] == "off" and "--no-warm-up" in warm_up["message"]
    time.sleep(0.5)
    assert server.studio.model_cache.loads == 0


def test_a_broken_default_model_fails_the_warm_up_not_the_server(make_server, tiny_installed):
    (tiny_installed / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"not weights")
    server = make_server(warm_up=True)
    warm_up = warm_up_of(server.client.get)[-1]
    assert warm_up["status"] == "failed", warm_up
    assert "is not a readable safetensors file" in warm_up["message"], warm_up
    assert "Traceback" not in warm_up["message"]
    # still serving: a picture asked of it gets its own clear error
    answer = server.post("/v1/generations", json={"prompt": "a red circle"})
    job = server.wait(answer.json()["id"])
    assert job["status"] == "failed", job
    assert "is not a readable safetensors file" in job["error"]["message"], job


def test_nothing_to_warm_when_no_model_is_the_default(make_server, tiny_installed, tiny_models):
    shutil.copytree(tiny_models["sdxl"]["folder"], tiny_installed.parent / "tinyxl")
    server = make_server(warm_up=True)
    warm_up = warm_up_of(server.client.get)[-1]
    assert warm_up["status"] == "off" and "Several models are installed" in warm_up["message"]


def test_serve_warms_its_default_model_on_openvino(tmp_path):
    """The whole program as users run it: `sfumato serve` on the CPU's default backend, the
    demo model converted and compiled while the server already answers."""
    env = data_env(tmp_path / "data")
    (tmp_path / "data" / "models").mkdir(parents=True)
    env.pop("SFUMATO_BACKEND")
    env.pop("SFUMATO_WARM_UP")
    served = Served(env, extra_args=["--personal"])
    try:
        client = httpx.Client(base_url=served.url, timeout=60)
        seen = warm_up_of(client.get)
        assert seen[0]["status"] == "warming up"  # answering before the model is ready
        assert seen[-1]["status"] == "ready" and seen[-1]["model"] == "sfumato-demo", seen[-1]
        job = client.post("/v1/generations", json={"prompt": "a red circle"}).json()
        while job["status"] not in ("succeeded", "failed"):
            time.sleep(0.05)
            job = client.get(f"/v1/generations/{job['id']}").json()
        assert job["status"] == "succeeded", job
        # cold, this job's load was seconds (the conversion, the compile): here, none
        assert job["timings"]["load_s"] < 0.1, job["timings"]
    finally:
        served.stop()


def test_no_warm_up_option(tmp_path):
    env = data_env(tmp_path / "data")
    env.pop("SFUMATO_WARM_UP")
    served = Served(env, extra_args=["--personal", "--no-warm-up"])
    try:
        warm_up = httpx.get(served.url + "/v1/health").json()["warm_up"]
        assert warm_up["status"] == "off", warm_up
    finally:
        served.stop()


def test_a_scaled_out_server_warms_nothing_in_its_api_process(tmp_path, monkeypatch):
    monkeypatch.delenv("SFUMATO_WARM_UP")
    # made, not started: nothing here reaches the broker
    studio = Studio(StudioConfig(data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/15"))
    assert studio.warm_up.view()["status"] == "off"
    assert "sfumato worker" in studio.warm_up.view()["message"]
