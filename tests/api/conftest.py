"""A real app on a fresh data folder (SQLite file, image folder, worker thread, the bundled
demo model), driven through its ASGI interface; and helpers to act as a user."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from sfumato.api.app import create_app
from sfumato.studio import Studio, StudioConfig


@dataclass
class User:
    name: str
    key: str
    headers: dict = field(default_factory=dict)


class Server:
    def __init__(self, client: TestClient, studio: Studio):
        self.client = client
        self.studio = studio
        self.users: dict[str, User] = {}

    def user(self, name: str = "ann") -> User:
        """An account with an API key (signed up through the API)."""
        if name not in self.users:
            login = TestClient(self.client.app)  # its own cookie jar
            answer = login.post(
                "/v1/auth/signup", json={"username": name, "password": "a long password"}
            )
            assert answer.status_code == 201, answer.text
            headers = {"X-CSRF-Token": answer.json()["csrf_token"]}
            key = login.post("/v1/keys", json={"name": "tests"}, headers=headers).json()["key"]
            self.users[name] = User(name, key, {"Authorization": f"Bearer {key}"})
        return self.users[name]

    def get(self, path: str, user: User | None = None, **kwargs):
        return self.client.get(path, headers=(user or self.user()).headers, **kwargs)

    def post(self, path: str, user: User | None = None, **kwargs):
        return self.client.post(path, headers=(user or self.user()).headers, **kwargs)

    def generate(self, user: User | None = None, **fields) -> dict:
        """Queue a generation and wait for it to finish; the finished job."""
        answer = self.post("/v1/generations", user, json={"prompt": "a red circle"} | fields)
        assert answer.status_code == 202, answer.text
        return self.wait(answer.json()["id"], user)

    def wait(self, job_id: str, user: User | None = None, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/v1/generations/{job_id}", user).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} did not finish: {job}")


@pytest.fixture
def make_server(tmp_path):
    """Start servers with given settings; all are stopped at the end."""
    clients = []

    def make(**config) -> Server:
        config.setdefault("data_dir", tmp_path / f"data{len(clients)}")
        config.setdefault("models_dirs", [tmp_path / "models"])
        studio = Studio(StudioConfig(**config))
        client = TestClient(create_app(studio))
        client.__enter__()
        clients.append(client)
        return Server(client, studio)

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def server(make_server) -> Server:
    return make_server()


def png(size=(64, 48), colour="red", **info) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG", **info)
    return buffer.getvalue()
