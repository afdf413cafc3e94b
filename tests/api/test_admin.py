"""The admin's API through a real app: users (disable, admin, quotas, a new password), the
audit log of what everyone did, and settings checked against the installed models."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.test_keys import PASSWORD, bearer, browser, make_key


@pytest.fixture
def site(server):
    """The admin (the first account) and a user, each in their own browser."""
    admin, admin_csrf = browser(server, "root")
    bob, bob_csrf = browser(server, "bob")
    return server, (admin, admin_csrf), (bob, bob_csrf)


def users(admin) -> dict[str, dict]:
    answer = admin.get("/v1/admin/users")
    assert answer.status_code == 200, answer.text
    return {u["username"]: u for u in answer.json()["users"]}


def events(admin, **params) -> list[dict]:
    answer = admin.get("/v1/admin/audit", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["events"]


def test_the_users_list_says_what_the_admin_needs(site):
    server, (admin, _), (bob, bob_csrf) = site
    make_key(bob, bob_csrf)
    listed = users(admin)
    assert set(listed) == {"root", "bob"}
    assert listed["root"]["is_admin"] and not listed["bob"]["is_admin"]
    assert listed["bob"] | {"id": 0, "created_at": "", "last_login_at": ""} == {
        "id": 0,
        "username": "bob",
        "is_admin": False,
        "disabled": False,
        "created_at": "",
        "quotas": {},
        "images": 0,
        "keys": 1,
        "last_login_at": "",
    }
    assert listed["bob"]["last_login_at"]  # the sign-up's session


def test_a_non_admin_and_an_everyday_key_are_refused(site):
    server, (admin, admin_csrf), (bob, bob_csrf) = site
    bob_id = users(admin)["bob"]["id"]
    for method, path, body in (
        ("GET", "/v1/admin/users", None),
        ("PATCH", f"/v1/admin/users/{bob_id}", {"disabled": False}),
        ("POST", f"/v1/admin/users/{bob_id}/password", {"password": "x" * 10}),
        ("GET", "/v1/admin/audit", None),
    ):
        answer = bob.request(method, path, json=body, headers=bob_csrf)
        assert answer.status_code == 403, path
        assert answer.json()["error"]["message"] == "Only an admin may do this."
    everyday = make_key(admin, admin_csrf)  # the admin's own key, without the admin scope
    assert server.client.get("/v1/admin/users", headers=bearer(everyday)).status_code == 403


def test_disabling_a_user_ends_their_sessions_and_keys(site):
    server, (admin, admin_csrf), (bob, bob_csrf) = site
    key = make_key(bob, bob_csrf)
    bob_id = users(admin)["bob"]["id"]
    answer = admin.patch(f"/v1/admin/users/{bob_id}", json={"disabled": True}, headers=admin_csrf)
    assert answer.status_code == 200 and answer.json()["disabled"] is True
    assert bob.get("/v1/me").status_code == 401
    assert server.client.get("/v1/me", headers=bearer(key)).status_code == 401
    login = TestClient(server.client.app).post(
        "/v1/auth/login", json={"username": "bob", "password": PASSWORD}
    )
    assert login.status_code == 401 and "disabled" in login.text
    admin.patch(f"/v1/admin/users/{bob_id}", json={"disabled": False}, headers=admin_csrf)
    assert server.client.get("/v1/me", headers=bearer(key)).status_code == 200
    assert [e["action"] for e in events(admin, action="user.")] == [
        "user.enabled",
        "user.disabled",
    ]


def test_an_admin_cannot_lock_themself_out_nor_remove_the_last_admin(site):
    server, (admin, admin_csrf), (bob, bob_csrf) = site
    root_id, bob_id = users(admin)["root"]["id"], users(admin)["bob"]["id"]
    for change in ({"disabled": True}, {"is_admin": False}):
        refused = admin.patch(f"/v1/admin/users/{root_id}", json=change, headers=admin_csrf)
        assert refused.status_code == 409
        assert "you would lock yourself out" in refused.json()["error"]["message"]
    granted = admin.patch(f"/v1/admin/users/{bob_id}", json={"is_admin": True}, headers=admin_csrf)
    assert granted.json()["is_admin"] is True
    # bob, now an admin, may take root's rights away; then bob is the last admin
    assert bob.patch(
        f"/v1/admin/users/{root_id}", json={"is_admin": False}, headers=bob_csrf
    ).is_success
    assert admin.get("/v1/admin/users").status_code == 403
    actions = [e["action"] for e in events(bob, action="user.admin")]
    assert actions == ["user.admin_revoked", "user.admin_granted"]


def test_quotas_are_validated_and_replace_the_users_overrides(site):
    server, (admin, admin_csrf), (bob, bob_csrf) = site
    bob_id = users(admin)["bob"]["id"]
    path = f"/v1/admin/users/{bob_id}"
    for bad, sentence in (
        ({"pictures": 5}, "no limit 'pictures'"),
        ({"images": -1}, "a whole number from 0"),
        ({"images": "many"}, "a whole number from 0"),
        ({"images": 1.5}, "a whole number from 0"),
    ):
        answer = admin.patch(path, json={"quotas": bad}, headers=admin_csrf)
        assert answer.status_code == 400 and sentence in answer.json()["error"]["message"], bad
    saved = admin.patch(path, json={"quotas": {"images": 5, "keys": None}}, headers=admin_csrf)
    assert saved.json()["quotas"] == {"images": 5, "keys": None}
    limits = bob.get("/v1/me").json()["quotas"]["limits"]
    assert limits["images"] == 5 and limits["keys"] is None
    cleared = admin.patch(path, json={"quotas": {}}, headers=admin_csrf)
    assert cleared.json()["quotas"] == {}
    (event, _) = events(admin, action="user.quotas_changed")
    assert event["target"] == "bob" and event["detail"] == {
        "old": {"images": 5, "keys": None},
        "new": {},
    }
    unknown = admin.patch(path, json={"admin": True}, headers=admin_csrf)
    assert unknown.status_code == 422


def test_an_unknown_user_is_a_404_with_a_sentence(site):
    server, (admin, admin_csrf), _ = site
    for method, path, body in (
        ("PATCH", "/v1/admin/users/999", {"disabled": True}),
        ("POST", "/v1/admin/users/999/password", {"password": "long enough"}),
    ):
        answer = admin.request(method, path, json=body, headers=admin_csrf)
        assert answer.status_code == 404
        assert answer.json()["error"]["message"] == "There is no user with id 999."
    assert admin.patch("/v1/admin/users/abc", json={}, headers=admin_csrf).status_code == 422


def test_an_admin_reset_ends_sessions_and_revokes_keys_unless_told(site):
    server, (admin, admin_csrf), (bob, bob_csrf) = site
    bob_id = users(admin)["bob"]["id"]
    key = make_key(bob, bob_csrf)
    path = f"/v1/admin/users/{bob_id}/password"
    short = admin.post(path, json={"password": "short"}, headers=admin_csrf)
    assert short.status_code == 400 and "between 8 and" in short.text
    kept = admin.post(
        path, json={"password": "reset once", "revoke_keys": False}, headers=admin_csrf
    )
    assert kept.status_code == 204
    assert bob.get("/v1/me").status_code == 401  # the session ended
    assert server.client.get("/v1/me", headers=bearer(key)).status_code == 200
    assert admin.post(path, json={"password": "reset twice"}, headers=admin_csrf).status_code == 204
    assert server.client.get("/v1/me", headers=bearer(key)).status_code == 401
    relogin = TestClient(server.client.app).post(
        "/v1/auth/login", json={"username": "bob", "password": "reset twice"}
    )
    assert relogin.status_code == 200
    resets = events(admin, action="password.reset")
    assert [e["detail"]["keys_revoked"] for e in resets] == [1, 0]
    assert all(e["actor"] == "root" and e["target"] == "bob" for e in resets)
    assert "reset once" not in admin.get("/v1/admin/audit").text


def test_logins_are_audited_without_their_passwords(site):
    server, (admin, _), _ = site
    anonymous = TestClient(server.client.app)
    wrong = {"username": "bob", "password": "hunter2 guessed"}
    for _ in range(5):
        assert anonymous.post("/v1/auth/login", json=wrong).status_code == 401
    locked = anonymous.post("/v1/auth/login", json=wrong)
    assert locked.status_code == 429
    failed = events(admin, action="login.failed")
    assert len(failed) == 5 and failed[0]["target"] == "bob"
    assert failed[0]["address"] == "testclient" and failed[0]["actor"] is None
    (lock,) = events(admin, action="login.locked")
    assert "locked" in lock["detail"]["reason"] and lock["target"] == "bob"
    assert "hunter2" not in admin.get("/v1/admin/audit").text
    assert anonymous.post(
        "/v1/auth/login", json={"username": "root", "password": PASSWORD}
    ).is_success
    (succeeded,) = events(admin, action="login.succeeded")
    assert succeeded["actor"] == "root" and succeeded["target"] == "root"
    signups = events(admin, action="signup")
    assert [e["target"] for e in signups] == ["bob", "root"]


def test_the_audit_log_filters_and_pages_with_a_strict_cursor(site):
    server, (admin, admin_csrf), (bob, bob_csrf) = site
    for n in range(5):
        make_key(bob, bob_csrf, name=f"key {n}")
    first = admin.get("/v1/admin/audit", params={"action": "key", "limit": 2}).json()
    assert [e["detail"]["name"] for e in first["events"]] == ["key 4", "key 3"]
    second = admin.get(
        "/v1/admin/audit", params={"action": "key", "limit": 2, "cursor": first["next"]}
    ).json()
    assert [e["detail"]["name"] for e in second["events"]] == ["key 2", "key 1"]
    bobs = events(admin, user="BOB")
    assert bobs and all("bob" in (e["actor"], e["target"]) for e in bobs)
    assert events(admin, user="root", action="key") == []
    assert events(admin, since="2999-01-01") == []
    assert len(events(admin, since="1h", action="signup")) == 2
    for params, sentence in (
        ({"cursor": "abc"}, "The cursor is not one this server gave"),
        ({"cursor": "-1"}, "The cursor is not one this server gave"),
        ({"since": "last tuesday"}, "since is a date"),
        ({"before": "soon"}, "before is a date"),
    ):
        answer = admin.get("/v1/admin/audit", params=params)
        assert answer.status_code == 400 and sentence in answer.json()["error"]["message"]
    assert admin.get("/v1/admin/audit", params={"limit": 501}).status_code == 422


def test_settings_changes_are_audited_with_old_and_new_values(site):
    server, (admin, admin_csrf), _ = site
    answer = admin.patch(
        "/v1/admin/settings", json={"retention_days": 7, "signup_open": True}, headers=admin_csrf
    )
    assert answer.status_code == 200
    (event,) = events(admin, action="settings.changed")
    assert event["actor"] == "root"
    assert event["detail"] == {"setting": "retention_days", "old": 30, "new": 7}
    bad = admin.patch("/v1/admin/settings", json={"audit_retention_days": -1}, headers=admin_csrf)
    assert bad.status_code == 400 and "audit_retention_days" in bad.text


def test_a_default_model_must_be_installed(site):
    server, (admin, admin_csrf), (bob, bob_csrf) = site
    bad = admin.patch("/v1/admin/settings", json={"default_model": "nope"}, headers=admin_csrf)
    assert bad.status_code == 400
    assert bad.json()["error"] == {
        "code": "invalid_request",
        "message": "default_model: No model named 'nope'. Installed: sfumato-demo@1. "
        "An admin of this server adds models.",
    }
    good = admin.patch(
        "/v1/admin/settings", json={"default_model": "sfumato-demo"}, headers=admin_csrf
    )
    assert good.status_code == 200 and good.json()["default_model"] == "sfumato-demo"
    cleared = admin.patch("/v1/admin/settings", json={"default_model": None}, headers=admin_csrf)
    assert cleared.status_code == 200
    preference = bob.put("/v1/me/preferences", json={"default_model": "nope"}, headers=bob_csrf)
    assert preference.status_code == 400 and "Installed: sfumato-demo@1" in preference.text
    assert bob.get("/v1/me/preferences").json() == {"default_model": None, "families": {}}
    saved = bob.put("/v1/me/preferences", json={"default_model": "sfumato-demo"}, headers=bob_csrf)
    assert saved.status_code == 200


def test_the_sessions_quota_ends_the_oldest_sessions_at_login(site):
    server, (admin, admin_csrf), _ = site
    assert admin.patch(
        "/v1/admin/settings", json={"quotas": {"sessions": 2}}, headers=admin_csrf
    ).is_success
    devices = [browser(server, "carol")[0] for _ in range(3)]
    assert [d.get("/v1/me").status_code for d in devices] == [401, 200, 200]
    assert devices[2].get("/v1/me").json()["quotas"]["usage"]["sessions"] == 2
    # a quota of 0 still lets the newest login in
    assert admin.patch(
        "/v1/admin/settings", json={"quotas": {"sessions": 0}}, headers=admin_csrf
    ).is_success
    newest = browser(server, "carol")[0]
    assert newest.get("/v1/me").status_code == 200
    assert [d.get("/v1/me").status_code for d in devices] == [401, 401, 401]


def test_deleting_the_whole_history_is_audited(site):
    server, (admin, admin_csrf), (bob, bob_csrf) = site
    assert bob.delete("/v1/images", headers=bob_csrf).status_code == 200
    (event,) = events(admin, action="history.deleted")
    assert event["actor"] == "bob" and event["detail"] == {"deleted": 0}


def test_old_events_are_purged_after_the_audit_retention(site):
    from datetime import timedelta

    from sfumato.api.app import _purge_audit
    from sfumato.store.tables import AuditEvent, utcnow

    server, (admin, admin_csrf), _ = site
    with server.studio.db.session() as session:
        for event in session.query(AuditEvent):
            event.at = utcnow() - timedelta(days=400)
    assert _purge_audit(server.studio) == 2  # the two sign-ups, past the default 365 days
    admin.patch("/v1/admin/settings", json={"audit_retention_days": 0}, headers=admin_csrf)
    with server.studio.db.session() as session:
        for event in session.query(AuditEvent):
            event.at = utcnow() - timedelta(days=40000)
    assert _purge_audit(server.studio) == 0  # 0: kept forever


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("PATCH", f"/v1/admin/users/{10**30}", {"disabled": True}, 404),  # overflowed SQLite
        ("PATCH", f"/v1/admin/users/{2**63}", {"disabled": True}, 404),
        ("POST", f"/v1/admin/users/{2**31}/password", {"password": "long enough"}, 404),
        ("PATCH", "/v1/admin/users/-1", {"disabled": True}, 404),
        ("PATCH", "/v1/admin/users/2", {"disabled": "yes"}, 422),  # not read as true
        ("PATCH", "/v1/admin/users/2", {"quotas": [1]}, 422),
        ("PATCH", "/v1/admin/users/2", [], 422),
        ("POST", "/v1/admin/users/2/password", {"password": "long enough", "revoke_keys": 0}, 422),
        ("PATCH", "/v1/admin/settings", {"default_model": "x" * 100_000}, 400),
        ("GET", "/v1/admin/audit?since=999999d", None, 400),  # before the year 1
        ("GET", "/v1/admin/audit?since=0001-01-01T00:00%2B14:00", None, 400),
        ("GET", "/v1/admin/audit?before=9999-12-31T23:59-14:00", None, 400),
        ("GET", "/v1/admin/audit?cursor=999999999999999999", None, 200),
        ("GET", "/v1/admin/audit?action=%25%25&user=%00", None, 200),
    ],
)
def test_hostile_admin_requests_get_a_sentence_never_a_500(site, method, path, body, status):
    server, (admin, admin_csrf), _ = site
    answer = admin.request(method, path, json=body, headers=admin_csrf)
    assert answer.status_code == status, answer.text
    if status >= 400:
        assert answer.json()["error"]["message"].endswith(".")
        assert len(answer.text) < 1000  # a long name is not echoed back whole


def test_a_default_model_removed_since_it_was_set_is_passed_over(site):
    from sfumato.store.tables import SiteSetting, User

    server, _, (bob, bob_csrf) = site
    # both defaults name a model that was installed when they were set, and is gone now
    with server.studio.db.session() as session:
        session.merge(SiteSetting(key="default_model", value="removed-since"))
        user = session.query(User).filter(User.username == "bob").one()
        user.preferences = {"default_model": "gone-too"}
    answer = bob.post(
        "/v1/generations", json={"prompt": "a red circle", "steps": 1}, headers=bob_csrf
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["model"].startswith("sfumato-demo")  # the catalog's own choice
    assert bob.get("/v1/me/preferences").json()["default_model"] == "gone-too"  # still read
