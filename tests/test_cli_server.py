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


def test_keys_with_scopes_and_expiry_from_the_command_line(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    run("users", "add", "ann", "--password", "long enough", *data)
    run("users", "add", "bob", "--password", "long enough", *data)
    made = run(
        "keys", "create", "bob", "--scope", "read", "--expires-in-days", "7", *data
    ).output.strip()
    assert made.startswith("sfm_")
    (listed,) = json.loads(run("keys", "list", "bob", "--json", *data).output)
    assert listed["scopes"] == ["read"] and listed["status"] == "active"
    assert listed["expires_at"] and listed["last_used_at"] is None
    table = run("keys", "list", "bob", *data).output
    assert listed["id"] in table and "Scopes" in table  # ids are never folded
    refused = run("keys", "create", "bob", "--scope", "admin", *data)
    assert refused.exit_code == 1 and "Only an admin" in refused.output
    unknown = run("keys", "create", "ann", "--scope", "root", *data)
    assert unknown.exit_code == 1 and "'root' is not one" in unknown.output
    too_long = run("keys", "create", "ann", "--expires-in-days", "4000", *data)
    assert too_long.exit_code == 1 and "from 1 to 3650" in too_long.output
    server = TestClient(create_app(Studio(StudioConfig(data_dir=tmp_path))))
    with server:
        headers = {"X-API-Key": made}
        assert server.get("/v1/images", headers=headers).status_code == 200
        refused = server.post("/v1/generations", json={"prompt": "x"}, headers=headers)
        assert refused.status_code == 403 and "'generate' scope" in refused.text


def test_a_reset_revokes_keys_unless_told_to_keep_them(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    run("users", "add", "ann", "--password", "long enough", *data)
    first = run("keys", "create", "ann", *data).output.strip()
    kept = run("users", "reset-password", "ann", "--password", "new enough", "--keep-keys", *data)
    assert kept.output.strip() == "New password set for ann."
    (listed,) = json.loads(run("keys", "list", "ann", "--json", *data).output)
    assert listed["status"] == "active"
    reset = run("users", "reset-password", "ann", "--password", "newer still", *data)
    assert reset.output.strip() == "New password set for ann; 1 API key(s) revoked."
    (listed,) = json.loads(run("keys", "list", "ann", "--json", *data).output)
    assert listed["status"] == "revoked" and first.startswith(listed["starts_with"])


def test_the_audit_log_from_the_command_line(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    run("users", "add", "ann", "--password", "long enough", *data)
    run("users", "add", "bob", "--password", "long enough", *data)
    run("users", "disable", "bob", *data)
    run("users", "enable", "bob", *data)
    run("users", "reset-password", "bob", "--password", "new enough", *data)
    run("keys", "create", "bob", *data)
    run("settings", "set", "retention_days", "9", *data)
    events = json.loads(run("audit", "--json", *data).output)
    assert [e["action"] for e in events] == [
        "settings.changed",
        "key.created",
        "password.reset",
        "user.enabled",
        "user.disabled",
        "user.added",
        "user.added",
    ]
    assert {e["actor"] for e in events} == {"(command line)"}
    assert events[0]["detail"] == {"setting": "retention_days", "old": 30, "new": 9}
    assert "new enough" not in run("audit", "--json", *data).output
    bobs = json.loads(run("audit", "--json", "--user", "bob", "--action", "user.", *data).output)
    assert [e["action"] for e in bobs] == ["user.enabled", "user.disabled", "user.added"]
    assert len(json.loads(run("audit", "--json", "--limit", "2", *data).output)) == 2
    assert json.loads(run("audit", "--json", "--since", "2999-01-01", *data).output) == []
    lines = run("audit", "--since", "1d", *data).output.splitlines()
    assert "settings.changed  (command line): retention_days: 30 → 9" in lines[0]
    assert lines[-1].endswith("user.added  (command line) → ann: admin: yes")
    bad = run("audit", "--since", "yesterday", *data)
    assert bad.exit_code == 1 and "since is a date" in bad.output
    assert run("audit", "--limit", "0", *data).exit_code == 1


def test_a_default_model_set_from_the_command_line_must_be_installed(tmp_path):
    data = ["--data-dir", str(tmp_path)]
    refused = run("settings", "set", "default_model", "nope", *data)
    assert refused.exit_code == 1
    assert "No model named 'nope'. Installed: sfumato-demo@1" in refused.output
    assert run("settings", "set", "default_model", "sfumato-demo", *data).exit_code == 0
    assert run("settings", "set", "default_model", "null", *data).exit_code == 0
    shown = json.loads(run("settings", "show", *data).output)
    assert shown["default_model"] is None and shown["audit_retention_days"] == 365
