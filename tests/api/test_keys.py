"""API keys through the real API: expiry, scopes, who may make them, and what a password
change does to them."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from sfumato.api.deps import Needs, current_user, key_manager, key_revoker
from sfumato.store.tables import ApiKey, utcnow

PASSWORD = "a long password"


def browser(server, name: str) -> tuple[TestClient, dict]:
    """A signed-up user's own cookie jar and the CSRF header its changes need."""
    client = TestClient(server.client.app)
    answer = client.post("/v1/auth/signup", json={"username": name, "password": PASSWORD})
    if answer.status_code == 409:  # signed up already: log in again
        answer = client.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert answer.status_code in (200, 201), answer.text
    return client, {"X-CSRF-Token": answer.json()["csrf_token"]}


def make_key(client, csrf, **fields) -> dict:
    answer = client.post("/v1/keys", json={"name": "bot"} | fields, headers=csrf)
    assert answer.status_code == 201, answer.text
    return answer.json()


def bearer(key: dict | str) -> dict:
    return {"Authorization": f"Bearer {key['key'] if isinstance(key, dict) else key}"}


def test_a_key_shows_its_scopes_expiry_and_use(server):
    client, csrf = browser(server, "ann")
    made = make_key(client, csrf, expires_in_days=30)
    assert made["scopes"] == ["generate", "read"]  # the default: not admin, even for an admin
    expires = made["expires_at"]
    assert expires.startswith((utcnow() + timedelta(days=30)).date().isoformat())
    assert made["expired"] is False and made["last_used_at"] is None
    assert server.client.get("/v1/me", headers=bearer(made)).status_code == 200
    (listed,) = client.get("/v1/keys").json()["keys"]
    assert listed["last_used_at"] is not None and listed["expires_at"] == expires
    assert "key" not in listed and listed["revoked"] is False


def test_an_expired_key_is_refused_with_when_it_expired(server):
    client, csrf = browser(server, "ann")
    made = make_key(client, csrf, expires_in_days=1)
    with server.studio.db.session() as session:  # a day and a minute later
        session.get(ApiKey, made["id"]).expires_at = utcnow() - timedelta(minutes=1)
    answer = server.client.get("/v1/images", headers=bearer(made))
    assert answer.status_code == 401
    message = answer.json()["error"]["message"]
    assert "expired on " in message and "make a new one" in message
    (listed,) = client.get("/v1/keys").json()["keys"]
    assert listed["expired"] is True


@pytest.mark.parametrize(
    "fields, sentence",
    [
        ({"expires_in_days": 0}, "expires_in_days is a whole number of days from 1 to 3650"),
        ({"expires_in_days": 3651}, "from 1 to 3650"),
        ({"scopes": []}, "scopes is a non-empty list"),
        ({"scopes": ["read", "root"]}, "'root' is not one"),
        ({"expires_in_days": 10**40}, "from 1 to 3650"),
    ],
)
def test_bad_expiry_or_scopes_are_refused_with_a_sentence(server, fields, sentence):
    client, csrf = browser(server, "ann")
    answer = client.post("/v1/keys", json={"name": "bot"} | fields, headers=csrf)
    assert answer.status_code == 400 and sentence in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    "fields",
    [
        {"expires_in_days": True},
        {"expires_in_days": 1.5},
        {"expires_in_days": "7"},
        {"scopes": "read"},
        {"scopes": [1]},
        {"scopes": ["read"] * 50},
        {"name": "x", "admin": 1},
    ],
)
def test_malformed_key_requests_are_refused_not_coerced(server, fields):
    client, csrf = browser(server, "ann")
    answer = client.post("/v1/keys", json={"name": "bot"} | fields, headers=csrf)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request"
    assert client.get("/v1/keys").json()["keys"] == []


def test_a_key_is_held_to_its_scopes(server):
    client, csrf = browser(server, "ann")
    reader = make_key(client, csrf, scopes=["read"])
    maker = make_key(client, csrf, scopes=["generate"])
    assert server.client.get("/v1/images", headers=bearer(reader)).status_code == 200
    refused = server.client.post(
        "/v1/generations", json={"prompt": "a cat"}, headers=bearer(reader)
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == (
        "This API key may not make or change pictures; make a key with the 'generate' scope."
    )
    # deleting pictures is a change: a read-only key cannot empty the history
    assert server.client.delete("/v1/images", headers=bearer(reader)).status_code == 403
    no_read = server.client.get("/v1/images", headers=bearer(maker))
    assert no_read.status_code == 403 and "'read' scope" in no_read.json()["error"]["message"]
    # Dezgo's routes generate: a generate-only key runs them, a read-only one does not
    dezgo = server.client.post("/text2image", json={"prompt": "x"}, headers=bearer(reader))
    assert dezgo.status_code == 403
    assert server.client.get("/info", headers=bearer(maker)).status_code == 200
    assert server.client.get("/v1/admin/settings", headers=bearer(maker)).status_code == 403


def test_only_an_admin_makes_an_admin_key(server):
    admin, admin_csrf = browser(server, "root")  # the first account is the admin
    bob, bob_csrf = browser(server, "bob")
    refused = bob.post("/v1/keys", json={"name": "x", "scopes": ["admin"]}, headers=bob_csrf)
    assert refused.status_code == 403
    assert "Only an admin may make a key with the 'admin' scope" in refused.text
    key = make_key(admin, admin_csrf, scopes=["admin"])
    assert server.client.get("/v1/admin/users", headers=bearer(key)).status_code == 200
    # admin alone reads no pictures
    assert server.client.get("/v1/images", headers=bearer(key)).status_code == 403


def test_a_leaked_everyday_key_cannot_mint_keys_but_can_revoke(server):
    client, csrf = browser(server, "ann")
    first, second = make_key(client, csrf), make_key(client, csrf)
    minted = server.client.post("/v1/keys", json={"name": "mine now"}, headers=bearer(first))
    assert minted.status_code == 403 and "logged-in session" in minted.json()["error"]["message"]
    listed = server.client.get("/v1/keys", headers=bearer(first))
    assert listed.status_code == 200 and len(listed.json()["keys"]) == 2
    # revoking only takes power away: any key may, a read-only one too, itself too
    reader = make_key(client, csrf, scopes=["read"])
    other = server.client.delete(f"/v1/keys/{second['id']}", headers=bearer(reader))
    assert other.status_code == 200 and other.json()["revoked"] is True
    itself = server.client.delete(f"/v1/keys/{first['id']}", headers=bearer(first))
    assert itself.status_code == 200 and itself.json()["revoked"] is True
    for key in (first, second):
        assert server.client.get("/v1/me", headers=bearer(key)).status_code == 401
    assert server.client.get("/v1/me", headers=bearer(reader)).status_code == 200


def test_an_admin_scoped_key_manages_keys(server):
    admin, csrf = browser(server, "root")
    key = make_key(admin, csrf, scopes=["admin"])
    made = server.client.post("/v1/keys", json={"name": "from a script"}, headers=bearer(key))
    assert made.status_code == 201


def test_the_keys_quota_refuses_a_key_past_it(server):
    client, csrf = browser(server, "root")
    assert client.patch("/v1/admin/settings", json={"quotas": {"keys": 1}}, headers=csrf).is_success
    make_key(client, csrf)
    refused = client.post("/v1/keys", json={"name": "two"}, headers=csrf)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "quota_exceeded"


def test_changing_the_password_revokes_keys_and_ends_the_other_sessions(server):
    client, csrf = browser(server, "ann")
    other_device, _ = browser(server, "ann")
    key = make_key(client, csrf)
    wrong = client.post(
        "/v1/me/password",
        json={"current_password": "not it at all", "new_password": "a new long one"},
        headers=csrf,
    )
    assert wrong.status_code == 403 and "current password is wrong" in wrong.text
    changed = client.post(
        "/v1/me/password",
        json={"current_password": PASSWORD, "new_password": "a new long one"},
        headers=csrf,
    )
    assert changed.status_code == 204, changed.text
    assert client.get("/v1/me").status_code == 200  # this session goes on
    assert other_device.get("/v1/me").status_code == 401
    assert server.client.get("/v1/me", headers=bearer(key)).status_code == 401
    kept = make_key(client, csrf)
    again = client.post(
        "/v1/me/password",
        json={
            "current_password": "a new long one",
            "new_password": "and another one",
            "revoke_keys": False,
        },
        headers=csrf,
    )
    assert again.status_code == 204
    assert server.client.get("/v1/me", headers=bearer(kept)).status_code == 200
    # an everyday key cannot change the password it would be revoked by
    by_key = server.client.post(
        "/v1/me/password",
        json={"current_password": "and another one", "new_password": "stolen one!"},
        headers=bearer(kept),
    )
    assert by_key.status_code == 403


def test_wrong_current_passwords_are_throttled_as_logins_are(server):
    client, csrf = browser(server, "ann")
    body = {"current_password": "guess guess", "new_password": "whatever long"}
    codes = [client.post("/v1/me/password", json=body, headers=csrf).status_code for _ in range(7)]
    assert codes[:5] == [403] * 5 and codes[-1] == 429


def _api_routes(routes):
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif router := getattr(route, "original_router", None):  # an included router
            yield from _api_routes(router.routes)


def _calls(dependant):
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def test_every_route_that_needs_a_user_declares_what_it_needs(server):
    """A route that asks who is calling must say what a key needs to call it (ReadUser,
    MakeUser, AdminUser, KeyManager): a route that forgot would let every key in."""
    declared = (key_manager, key_revoker)
    undeclared, checked = [], 0
    for route in _api_routes(server.client.app.routes):
        calls = list(_calls(route.dependant))
        checked += current_user in calls
        if current_user in calls and not any(isinstance(c, Needs) or c in declared for c in calls):
            undeclared.append(route.path)
    assert checked > 30 and not undeclared, undeclared
