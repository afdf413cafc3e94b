"""Preparing a server from a script: users, keys and settings, without a browser."""

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sfumato.api.app import create_app
from sfumato.cli import app
from sfumato.studio import Studio, StudioConfig


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def test_users_keys_and_settings_from_the_command_line(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    assert (
        "Added ann (admin)."
        in run("users", "add", "ann", "--password", "long enough", *data).output
    )
    asked = run("users", "add", "bob", *data, input="another one\nanother one\n")
    assert "Added bob (user)." in asked.output
    taken = run("users", "add", "ANN", "--password", "long enough", *data)
    assert taken.exit_code == 1 and "taken" in taken.output
    listed = run("users", "list", "--json", *data).output
    assert '"username": "bob"' in listed
    key = run("keys", "create", "bob", "--name", "bot", *data).output.strip()
    assert key.startswith("sfm_")
    assert "bot" in run("keys", "list", "bob", *data).output
    assert run("settings", "set", "retention_days", "7", *data).exit_code == 0
    bad = run("settings", "set", "retention_days", "soon", *data)
    assert bad.exit_code == 1 and "retention_days" in bad.output

    server = TestClient(create_app(Studio(StudioConfig(data_dir=tmp_path))))
    with server:
        me = server.get("/v1/me", headers={"X-API-Key": key})
        assert me.json()["username"] == "bob"  # the printed key works
        assert server.get("/v1/health").json()["retention_days"] == 7
        run("users", "disable", "bob", *data)
        assert server.get("/v1/me", headers={"X-API-Key": key}).status_code == 401
        run("users", "enable", "bob", *data)
        assert server.get("/v1/me", headers={"X-API-Key": key}).status_code == 200
        run("users", "reset-password", "bob", "--password", "brand new one", *data)
        login = server.post("/v1/auth/login", json={"username": "bob", "password": "brand new one"})
        assert login.status_code == 200
        (listed_key,) = json.loads(run("keys", "list", "bob", "--json", *data).output)
        key_id = listed_key["id"]
        assert run("keys", "revoke", "bob", key_id, *data).exit_code == 0
        assert server.get("/v1/me", headers={"X-API-Key": key}).status_code == 401
    missing = run("users", "disable", "nobody", *data)
    assert missing.exit_code == 1 and "no user named 'nobody'" in missing.output


def test_personal_mode_only_listens_on_this_machine(tmp_path):
    refused = run("serve", "--personal", "--host", "0.0.0.0", "--data-dir", str(tmp_path))
    assert refused.exit_code == 1 and "without a login" in refused.output


def test_a_backend_that_cannot_run_is_refused_before_serving(tmp_path):
    refused = run("serve", "--backend", "tensorrt", "--data-dir", str(tmp_path))
    assert refused.exit_code == 1 and "Use one of: auto, torch, openvino" in refused.output
