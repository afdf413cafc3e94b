"""Signing up, logging in and out with a secure cookie, CSRF, API keys, personal mode."""

import pytest
from fastapi.testclient import TestClient

from sfumato.store.site import update_site

PASSWORD = {"password": "a long password"}


def test_the_first_account_is_admin_and_sign_up_can_be_closed(server):
    first = server.client.post("/v1/auth/signup", json={"username": "ann"} | PASSWORD)
    assert first.status_code == 201 and first.json()["user"]["is_admin"]
    second = TestClient(server.client.app).post(
        "/v1/auth/signup", json={"username": "bob"} | PASSWORD
    )
    assert second.status_code == 201 and not second.json()["user"]["is_admin"]
    with server.studio.db.session() as session:
        update_site(session, {"signup_open": False})
    closed = TestClient(server.client.app).post(
        "/v1/auth/signup", json={"username": "cy"} | PASSWORD
    )
    assert closed.status_code == 403 and "closed" in closed.json()["error"]["message"]
    assert server.client.get("/v1/health").json()["signup_open"] is False


def test_the_session_cookie_is_httponly_and_samesite(server):
    answer = server.client.post("/v1/auth/signup", json={"username": "ann"} | PASSWORD)
    cookies = answer.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("sfumato_session="))
    assert "HttpOnly" in session and "SameSite=lax" in session and "Max-Age=" in session
    csrf = next(c for c in cookies if c.startswith("sfumato_csrf="))
    assert "HttpOnly" not in csrf  # the page's script reads it


def test_changes_with_the_cookie_need_the_csrf_token(server):
    browser = server.client
    token = browser.post("/v1/auth/signup", json={"username": "ann"} | PASSWORD).json()[
        "csrf_token"
    ]
    assert browser.get("/v1/me").json()["username"] == "ann"  # reading needs no token
    forged = browser.post("/v1/keys", json={"name": "evil"})
    assert forged.status_code == 403 and "X-CSRF-Token" in forged.json()["error"]["message"]
    wrong = browser.post("/v1/keys", json={"name": "evil"}, headers={"X-CSRF-Token": "guess"})
    assert wrong.status_code == 403
    right = browser.post("/v1/keys", json={"name": "mine"}, headers={"X-CSRF-Token": token})
    assert right.status_code == 201


def test_login_from_another_sites_page_is_refused(server):
    server.user("ann")
    other = TestClient(server.client.app)
    answer = other.post(
        "/v1/auth/login",
        data={"username": "ann"} | PASSWORD,
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    own_page = other.post("/v1/auth/login", data={"username": "ann"} | PASSWORD)  # a form
    assert own_page.status_code == 200 and other.get("/v1/me").json()["username"] == "ann"


def test_wrong_passwords_and_logout(server):
    server.user("ann")
    browser = TestClient(server.client.app)
    wrong = browser.post("/v1/auth/login", json={"username": "ann", "password": "nope nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["message"] == "The user name or the password is wrong."
    token = browser.post("/v1/auth/login", json={"username": "ann"} | PASSWORD).json()["csrf_token"]
    assert browser.post("/v1/auth/logout", headers={"X-CSRF-Token": token}).status_code == 204
    assert browser.get("/v1/me").status_code == 401


def test_api_keys_work_in_all_three_headers_until_revoked(server):
    ann = server.user("ann")
    for header in (
        {"Authorization": f"Bearer {ann.key}"},
        {"X-API-Key": ann.key},
        {"X-Dezgo-Key": ann.key},
    ):
        assert server.client.get("/v1/me", headers=header).json()["username"] == "ann"
    keys = server.get("/v1/keys").json()["keys"]
    assert ann.key not in str(keys) and keys[0]["prefix"] == ann.key[:10]
    revoked = server.client.delete(f"/v1/keys/{keys[0]['id']}", headers=ann.headers)
    assert revoked.json()["revoked"] is True
    after = server.client.get("/v1/me", headers=ann.headers)
    assert after.status_code == 401 and "revoked" in after.json()["error"]["message"]


def test_without_credentials_only_health_and_docs_answer(server):
    anonymous = TestClient(server.client.app)
    assert anonymous.get("/v1/health").status_code == 200
    assert anonymous.get("/docs").status_code == 200
    assert anonymous.get("/openapi.json").status_code == 200
    for path in ("/v1/me", "/v1/images", "/v1/models", "/v1/generations", "/info"):
        answer = anonymous.get(path)
        assert answer.status_code == 401, path
        assert answer.json()["error"]["code"] == "not_authenticated"
    assert anonymous.post("/text2image", json={"prompt": "x"}).status_code == 401


def test_personal_mode_needs_no_login_but_only_answers_this_machine(make_server):
    server = make_server(personal=True)
    anonymous = TestClient(server.client.app, base_url="http://127.0.0.1:8000")
    me = anonymous.get("/v1/me").json()
    assert me["personal_mode"] is True and me["is_admin"]
    answer = anonymous.post("/v1/generations", json={"prompt": "a blue square", "steps": 4})
    assert answer.status_code == 202
    # a site that points its own name at 127.0.0.1 (DNS rebinding) gets nothing
    rebound = TestClient(server.client.app, base_url="http://evil.example:8000")
    assert rebound.get("/v1/images").status_code == 403
    # and another site's page cannot make changes through the user's browser
    forged = anonymous.post(
        "/text2image", data={"prompt": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403


@pytest.mark.parametrize("path", ["/v1/auth/login", "/v1/auth/signup"])
@pytest.mark.parametrize("origin", ["null", "NULL", "https://evil.example"])
def test_a_login_or_signup_from_a_page_that_hides_its_origin_is_refused(server, path, origin):
    # issue 23: Origin: null (a sandboxed iframe, a no-referrer page) passed
    server.user("ann")
    browser = TestClient(server.client.app)
    name = "ann" if path.endswith("login") else "bob"
    answer = browser.post(path, data={"username": name} | PASSWORD, headers={"Origin": origin})
    assert answer.status_code == 403 and "own page" in answer.json()["error"]["message"]
    assert "sfumato_session" not in browser.cookies
    own = browser.post(
        path, data={"username": name} | PASSWORD, headers={"Origin": "http://testserver"}
    )
    assert own.status_code in (200, 201)


def test_origin_null_gets_nothing_from_a_cookie_session_or_personal_mode(server, make_server):
    server.user("ann")
    browser = TestClient(server.client.app)
    browser.post("/v1/auth/login", json={"username": "ann"} | PASSWORD)
    # the cookie alone is not enough: the CSRF token is checked whatever the Origin says
    forged = browser.post("/v1/keys", json={"name": "x"}, headers={"Origin": "null"})
    assert forged.status_code == 403
    personal = make_server(personal=True)
    local = TestClient(personal.client.app, base_url="http://127.0.0.1:8000")
    answer = local.post("/text2image", data={"prompt": "x"}, headers={"Origin": "null"})
    assert answer.status_code == 403
