"""The Admin view in a real browser against a real server of its own (its first account is the
admin): the users, the site's settings, the audit log and everyone's queue, each checked
through the API afterwards as the admin would; and nobody else sees it."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.fixtures.served import Served, data_env

PASSWORD = "a long password"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A server of this module's own, so that the admin is its first account."""
    env = data_env(tmp_path_factory.mktemp("admin-data"))
    env.pop("SFUMATO_BACKEND", None)
    server = Served(env)
    yield server
    server.stop()


_names = iter(range(1, 10_000))


def _name(role: str) -> str:
    return f"{role}{next(_names)}-{os.getpid()}"


class Person:
    """A user of the API with a login cookie (and its CSRF token), as a script would be:
    signed up as a new user, or logged in as ``name``."""

    def __init__(self, site: Served, name: str | None = None):
        self.name = name or _name("user")
        self.client = httpx.Client(base_url=site.url, timeout=30)
        route = "/v1/auth/login" if name else "/v1/auth/signup"
        answer = self.client.post(route, json={"username": self.name, "password": PASSWORD})
        assert answer.is_success, answer.text
        self.id = answer.json()["user"]["id"]
        self.client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]

    def get(self, path: str, **kw) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.client.post(path, **kw)

    def patch(self, path: str, **kw) -> httpx.Response:
        return self.client.patch(path, **kw)


def _login(site: Served, name: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(
        site.url + "/v1/auth/login", json={"username": name, "password": password}, timeout=30
    )


def _open_page(browser, site: Served, name: str):
    """A new browser on the page, signed up as ``name``; its page."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=site.url, bypass_csp=True
    )
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    page.goto(site.url)
    page.click("#login-switch")
    page.fill("#login-form [name=username]", name)
    page.fill("#login-form [name=password]", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#page-generate:not([hidden])")
    return page


@pytest.fixture(scope="module")
def admin(browser, site):
    """The server's first account, in its own browser: the admin."""
    page = _open_page(browser, site, _name("admin"))
    page.username = page.evaluate("fetch('/v1/me').then(r => r.json()).then(me => me.username)")
    yield page
    assert not page.errors, f"the page's script failed: {page.errors}"
    page.context.close()


@pytest.fixture(scope="module")
def admin_api(admin, site):
    """The admin again, through the API (a session of its own)."""
    return Person(site, admin.username)


def _needs(page, path: str) -> None:
    if page.request.get(path).status == 404:
        pytest.skip(f"{path} is not yet in the API")


def _confirm(page) -> None:
    """OK in the admin's dialog, and wait until it closes (the server said yes)."""
    page.wait_for_selector("#admin-dialog[open]")
    page.click("#admin-dialog-ok")
    page.wait_for_selector("#admin-dialog:not([open])", state="attached")


def _tab(page, name: str) -> None:
    page.click("nav a[data-page=admin]")
    page.wait_for_selector("#page-admin:not([hidden])")
    page.click(f"#tab-{name}")
    page.wait_for_selector(f"#admin-{name}:not([hidden])")


def test_only_an_admin_sees_the_admin_view(admin, browser, site):
    assert page_is_admin(admin)
    assert admin.is_visible("nav a[data-page=admin]")
    someone = _open_page(browser, site, _name("user"))
    try:
        assert someone.is_hidden("nav a[data-page=admin]")
        someone.goto(site.url + "/#admin")  # typed by hand: the page shows Generate instead
        someone.wait_for_selector("#page-generate:not([hidden])")
        assert someone.is_hidden("#page-admin")
        # and the server refuses them whatever the page does
        assert someone.request.get("/v1/admin/settings").status == 403
        assert not someone.errors
    finally:
        someone.context.close()


def page_is_admin(page) -> bool:
    return page.evaluate("fetch('/v1/me').then(r => r.json()).then(me => me.is_admin)")


def test_site_settings_are_saved_and_a_bad_value_is_refused_by_its_field(admin):
    _tab(admin, "settings")
    admin.wait_for_selector("#setting-retention_days")
    # every setting the server has is in the form
    settings = admin.request.get("/v1/admin/settings").json()
    shown = admin.eval_on_selector_all(
        "#settings-fields [data-setting]", "nodes => nodes.map(n => n.dataset.setting)"
    )
    assert sorted(shown) == sorted(settings)
    admin.fill("#setting-retention_days", "7")
    admin.click("#settings-form button[type=submit]")
    admin.wait_for_function("document.querySelector('#settings-saved').textContent === 'Saved.'")
    assert admin.request.get("/v1/admin/settings").json()["retention_days"] == 7
    # a bad value: the server's sentence, next to its field, and nothing saved
    admin.fill("#setting-max_queued_per_user", "0")
    admin.click("#settings-form button[type=submit]")
    error = '[data-error-for="max_queued_per_user"]'
    admin.wait_for_function(f"document.querySelector('{error}').textContent")
    assert "max_queued_per_user is a whole number from 1" in admin.text_content(error)
    assert admin.request.get("/v1/admin/settings").json()["max_queued_per_user"] == 20
    admin.fill("#setting-max_queued_per_user", "20")
    admin.fill("#setting-retention_days", "30")
    admin.click("#settings-form button[type=submit]")
    admin.wait_for_function("document.querySelector('#settings-saved').textContent === 'Saved.'")
    assert admin.text_content(error) == ""
    assert admin.request.get("/v1/admin/settings").json()["retention_days"] == 30
    # the default model is picked from those installed, and the server takes the name
    admin.select_option("#setting-default_model", "sfumato-demo")
    admin.click("#settings-form button[type=submit]")
    admin.wait_for_function("document.querySelector('#settings-saved').textContent === 'Saved.'")
    assert admin.request.get("/v1/admin/settings").json()["default_model"] == "sfumato-demo"
    admin.select_option("#setting-default_model", "")
    admin.click("#settings-form button[type=submit]")
    admin.wait_for_function("document.querySelector('#settings-saved').textContent === 'Saved.'")
    assert admin.request.get("/v1/admin/settings").json()["default_model"] is None


def test_the_default_quotas_are_site_settings(admin):
    settings = admin.request.get("/v1/admin/settings").json()
    if "quotas" not in settings:
        pytest.skip("the quotas setting is not yet in the API")
    _tab(admin, "settings")
    admin.wait_for_selector("#site-quota-images")
    admin.fill("#site-quota-images", "500")
    admin.click("#settings-form button[type=submit]")
    admin.wait_for_function("document.querySelector('#settings-saved').textContent === 'Saved.'")
    assert admin.request.get("/v1/admin/settings").json()["quotas"]["images"] == 500
    admin.fill("#site-quota-keys", "-3")
    admin.click("#settings-form button[type=submit]")
    error = '[data-error-for="quotas.keys"]'
    admin.wait_for_function(f"document.querySelector('{error}').textContent")
    assert "quotas.keys" in admin.text_content(error)
    # empty is unlimited again
    admin.fill("#site-quota-keys", "")
    admin.fill("#site-quota-images", "")
    admin.click("#settings-form button[type=submit]")
    admin.wait_for_function("document.querySelector('#settings-saved').textContent === 'Saved.'")
    quotas = admin.request.get("/v1/admin/settings").json()["quotas"]
    assert quotas["images"] is None and quotas["keys"] is None


def _row(page, who: Person) -> str:
    return f'#users-table tr[data-user="{who.id}"]'


def _button(page, who: Person, action: str) -> str:
    return f'{_row(page, who)} button[data-action="{action}"]'


def _wait_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([s, t]) => document.querySelector(s)?.textContent.includes(t)", arg=[selector, text]
    )


def _user(admin_api: Person, who: Person) -> dict:
    users = admin_api.get("/v1/admin/users").json()["users"]
    return next(u for u in users if u["id"] == who.id)


def test_users_are_listed_disabled_enabled_and_made_admin(admin, admin_api, site):
    _needs(admin, "/v1/admin/users")
    person = Person(site)
    person.post("/v1/keys", json={"name": "bot"})
    _tab(admin, "users")
    admin.wait_for_selector(_row(admin, person))
    # both users, with what the admin looks at
    assert "(you)" in admin.text_content(_row(admin, admin_api))
    assert admin.text_content(f"{_row(admin, admin_api)} td[data-label=Role]") == "admin"
    row = admin.text_content(_row(admin, person))
    assert person.name in row and "active" in row
    assert admin.text_content(f"{_row(admin, person)} td[data-label=Keys]") == "1"
    # disabled (after a confirmation): they cannot log in, and their session ends
    admin.click(_button(admin, person, "disable"))
    assert "Disable" in admin.text_content("#admin-dialog-title")
    _confirm(admin)
    _wait_text(admin, f"{_row(admin, person)} td[data-label=Status]", "disabled")
    refused = _login(site, person.name)
    assert refused.status_code == 401 and "disabled" in refused.json()["error"]["message"]
    assert person.get("/v1/me").status_code == 401
    assert _user(admin_api, person)["disabled"] is True
    # enabled again: no question asked
    admin.click(_button(admin, person, "disable"))
    _wait_text(admin, f"{_row(admin, person)} td[data-label=Status]", "active")
    assert _login(site, person.name).status_code == 200
    # made an admin, and back
    admin.click(_button(admin, person, "admin"))
    _confirm(admin)
    _wait_text(admin, f"{_row(admin, person)} td[data-label=Role]", "admin")
    assert _user(admin_api, person)["is_admin"] is True
    admin.click(_button(admin, person, "admin"))
    _confirm(admin)
    _wait_text(admin, f"{_row(admin, person)} td[data-label=Role]", "user")
    assert _user(admin_api, person)["is_admin"] is False


def test_the_server_refusing_an_action_says_why_in_the_dialog(admin, admin_api):
    _needs(admin, "/v1/admin/users")
    _tab(admin, "users")
    admin.wait_for_selector(_row(admin, admin_api))
    # an admin cannot disable themselves: the dialog stays open with the server's sentence
    admin.click(_button(admin, admin_api, "disable"))
    admin.click("#admin-dialog-ok")
    _wait_text(admin, "#admin-dialog [data-error]", "lock yourself out")
    assert admin.is_visible("#admin-dialog")
    admin.click("#admin-dialog-cancel")
    admin.wait_for_selector("#admin-dialog:not([open])", state="attached")
    assert _user(admin_api, admin_api)["disabled"] is False


def test_a_password_reset_revokes_the_keys_by_default(admin, admin_api, site):
    _needs(admin, "/v1/admin/users")
    person = Person(site)
    key = person.post("/v1/keys", json={"name": "bot"}).json()["key"]
    bearer = {"Authorization": f"Bearer {key}"}
    assert httpx.get(site.url + "/v1/me", headers=bearer).status_code == 200
    _tab(admin, "users")
    admin.click(_button(admin, person, "password"))
    admin.wait_for_selector("#admin-dialog[open]")
    assert admin.is_checked("#reset-revoke")
    # too short: the server's sentence, in the dialog, and nothing changed
    admin.fill("#reset-password", "short")
    admin.click("#admin-dialog-ok")
    _wait_text(admin, "#admin-dialog [data-error]", "between 8 and")
    assert _login(site, person.name).status_code == 200
    admin.fill("#reset-password", "a new long password")
    _confirm(admin)
    assert person.get("/v1/me").status_code == 401  # their session ended
    assert _login(site, person.name).status_code == 401
    assert _login(site, person.name, "a new long password").status_code == 200
    assert httpx.get(site.url + "/v1/me", headers=bearer).status_code == 401
    _wait_text(admin, f"{_row(admin, person)} td[data-label=Keys]", "0")


def test_a_users_own_quotas_are_saved_and_shown_to_them(admin, admin_api, site, browser):
    _needs(admin, "/v1/admin/users")
    name = _name("user")
    someone = _open_page(browser, site, name)
    try:
        person = Person(site, name)
        _tab(admin, "users")
        admin.click(_button(admin, person, "quotas"))
        admin.wait_for_selector("#admin-dialog[open]")
        admin.fill("#user-quota-images", "5")
        admin.check("#user-quota-keys-unlimited")
        assert admin.is_disabled("#user-quota-keys")
        _confirm(admin)
        # re-read from the API: a limit of 5 pictures, unlimited keys, the rest the site's
        assert _user(admin_api, person)["quotas"] == {"images": 5, "keys": None}
        _wait_text(admin, f"{_row(admin, person)} td[data-label=Status]", "2 own quotas")
        # the dialog opens again on what is saved
        admin.click(_button(admin, person, "quotas"))
        admin.wait_for_selector("#admin-dialog[open]")
        assert admin.input_value("#user-quota-images") == "5"
        assert admin.is_checked("#user-quota-keys-unlimited")
        admin.fill("#user-quota-storage_mb", "-1")
        admin.click("#admin-dialog-ok")
        _wait_text(admin, "#admin-dialog [data-error]", "storage_mb")
        admin.click("#admin-dialog-cancel")
        # the user sees their limit beside their usage, and no word of the unlimited ones
        someone.click("nav a[data-page=account]")
        someone.wait_for_selector('#quota-list li[data-quota="images"]')
        assert "0 of 5 pictures" in someone.text_content('#quota-list li[data-quota="images"]')
        assert someone.locator("#quota-list li").count() == 1
        assert not someone.errors
    finally:
        someone.context.close()


def test_the_audit_log_lists_what_was_done_newest_first(admin, admin_api, site):
    """Disabling, enabling and limiting a user, and more than a page of settings changes."""
    _needs(admin, "/v1/admin/audit")
    person = Person(site)
    assert admin_api.patch(f"/v1/admin/users/{person.id}", json={"disabled": True}).is_success
    assert admin_api.patch(f"/v1/admin/users/{person.id}", json={"disabled": False}).is_success
    quotas = {"quotas": {"images": 5, "keys": None}}
    assert admin_api.patch(f"/v1/admin/users/{person.id}", json=quotas).is_success
    # more than a page of events: settings changed back and forth
    for days in [29, 30] * 30:
        assert admin_api.patch("/v1/admin/settings", json={"retention_days": days}).is_success
    _tab(admin, "audit")
    admin.fill("#audit-action", "")  # (another test may have left a filter)
    admin.fill("#audit-user", "")
    admin.click("#audit-filters button[type=submit]")
    admin.wait_for_selector("#audit-table tbody tr")
    # the page shows the API's newest page, in its order
    newest = admin_api.get("/v1/admin/audit", params={"limit": 50}).json()
    shown = admin.eval_on_selector_all(
        "#audit-table tbody tr", "rows => rows.map(r => Number(r.dataset.event))"
    )
    assert shown == [event["id"] for event in newest["events"]]
    assert "retention_days: 29 → 30" in admin.text_content("#audit-table tbody tr")
    # load more: the older ones follow
    admin.click("#audit-more")
    admin.wait_for_function("document.querySelectorAll('#audit-table tbody tr').length > 50")
    # filtered by user: the disabling and enabling of that user, newest first
    admin.fill("#audit-action", "user.")
    admin.fill("#audit-user", person.name)
    admin.click("#audit-filters button[type=submit]")
    admin.wait_for_function("document.querySelectorAll('#audit-table tbody tr').length === 3")
    actions = admin.eval_on_selector_all(
        "#audit-table tbody td[data-label=Action]", "cells => cells.map(c => c.textContent)"
    )
    assert actions == ["user.quotas_changed", "user.enabled", "user.disabled"]
    # a change of limits reads as what changed, in words
    newest = admin.text_content("#audit-table tbody tr")
    assert person.name in newest
    assert "images: default → 5, keys: default → unlimited" in newest
    assert admin.is_hidden("#audit-more")


def test_the_queue_shows_everyones_jobs_and_cancels_them(admin, site):
    _needs(admin, "/v1/admin/jobs")
    person = Person(site)
    _tab(admin, "queue")
    # queued after the queue opened: it shows as it refreshes
    long = person.post(
        "/v1/generations", json={"prompt": "a long one", "steps": 150, "batch_size": 16}
    ).json()
    waiting = person.post("/v1/generations", json={"prompt": "a red circle"}).json()
    queued = f'#queue-table tr[data-job="{waiting["id"]}"]'
    admin.wait_for_selector(queued)
    assert person.name in admin.text_content(queued)
    assert "queued" in admin.text_content(f"{queued} td[data-label=Status]")
    # by keyboard: the Cancel button keeps its focus through a refresh (3 s)
    admin.focus(f"{queued} button")
    admin.wait_for_timeout(3500)
    focused = admin.evaluate("document.activeElement.closest('tr')?.dataset.job")
    assert focused == waiting["id"]
    # the waiting one cancelled: it leaves the queue, and its owner sees it cancelled
    admin.keyboard.press("Enter")
    _confirm(admin)
    admin.wait_for_selector(queued, state="detached")
    assert person.get(f"/v1/generations/{waiting['id']}").json()["status"] == "cancelled"
    # the running one too
    running = f'#queue-table tr[data-job="{long["id"]}"]'
    _wait_text(admin, f"{running} td[data-label=Status]", "running")
    admin.click(f"{running} button")
    _confirm(admin)
    admin.wait_for_selector(running, state="detached", timeout=120_000)
    assert person.get(f"/v1/generations/{long['id']}").json()["status"] == "cancelled"
    assert admin.is_visible("#queue-empty")


def test_the_admin_view_runs_under_the_content_security_policy(admin, browser, site):
    """As test_content_security_policy.py does for the rest of the page: no refusal while the
    admin goes through every section and its dialogs (no wait_for_function here: eval)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=site.url)
    page = context.new_page()
    page.set_default_timeout(60_000)
    refused, errors = [], []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(site.url)
    page.fill("#login-form [name=username]", admin.username)
    page.fill("#login-form [name=password]", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#page-generate:not([hidden])")
    _tab(page, "users")
    page.click(f'#users-table tr[data-username="{admin.username}"] button[data-action=quotas]')
    page.wait_for_selector("#admin-dialog[open] #user-quota-images")
    page.click("#admin-dialog-cancel")
    _tab(page, "settings")
    page.wait_for_selector("#setting-retention_days")
    page.fill("#setting-retention_days", "-1")
    page.click("#settings-form button[type=submit]")
    page.wait_for_selector('[data-error-for="retention_days"]:not(:empty)')
    _tab(page, "audit")
    page.wait_for_selector("#audit-table tbody tr")
    _tab(page, "queue")
    page.wait_for_selector("#queue-empty:not([hidden]), #queue-table tbody tr")
    page.click("nav a[data-page=account]")
    page.wait_for_selector("#quota-list li")
    context.close()
    assert not refused, f"the Content-Security-Policy refused: {refused}"
    assert not errors, f"the page's script failed: {errors}"


def test_every_admin_section_fits_a_phone(admin, site):
    Person(site)  # someone beside the admin in the users' table
    admin.set_viewport_size({"width": 375, "height": 740})
    try:
        for name in ("users", "settings", "audit", "queue"):
            _tab(admin, name)
            admin.wait_for_timeout(300)
            scroll, client = admin.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert scroll <= client, f"{name}: {scroll} > {client}"
            # the tables' rows become cards: no table wider than the screen either
            widest = admin.evaluate(
                "Math.max(0, ...[...document.querySelectorAll('.admin-panel:not([hidden]) table')]"
                ".map(t => t.scrollWidth - t.parentElement.clientWidth))"
            )
            assert widest <= 0, f"{name}: a table {widest} px too wide"
    finally:
        admin.set_viewport_size({"width": 1280, "height": 900})


def test_a_generation_over_a_quota_is_refused_with_its_sentence(admin_api, browser, site):
    name = _name("user")
    someone = _open_page(browser, site, name)
    try:
        person = Person(site, name)
        limit = {"quotas": {"job_megapixel_steps": 1}}
        assert admin_api.patch(f"/v1/admin/users/{person.id}", json=limit).is_success
        # 64 x 64 pixels x 150 steps x 16 pictures: 9.8 megapixel-steps
        someone.click("#advanced summary")
        someone.fill("#steps", "150")
        someone.fill("#batch", "16")
        someone.fill("#prompt", "a red circle")
        someone.click("#generate-button")
        someone.wait_for_function("document.querySelector('#generate-error').textContent")
        error = someone.text_content("#generate-error")
        assert "over your quota of 1 per job" in error
        assert someone.is_hidden("#progress")
        assert person.get("/v1/generations").json()["generations"] == []
        # and the account page says so before the next try
        someone.click("nav a[data-page=account]")
        someone.wait_for_selector('#quota-list li[data-quota="job_megapixel_steps"]')
        row = someone.text_content('#quota-list li[data-quota="job_megapixel_steps"]')
        assert "at most 1 megapixel-steps" in row
        assert not someone.errors
    finally:
        someone.context.close()


def test_what_a_stranger_typed_is_shown_as_text(admin, site):
    """A failed login's name is in the audit log as typed: shown as text, never as markup."""
    _needs(admin, "/v1/admin/audit")
    name = '<img src="x" id="injected">'
    assert _login(site, name, "wrong password").status_code == 401
    _tab(admin, "audit")
    admin.fill("#audit-action", "login.failed")
    admin.fill("#audit-user", "")
    admin.click("#audit-filters button[type=submit]")
    admin.wait_for_selector("#audit-table tbody tr td[data-label=About]")
    assert admin.text_content("#audit-table tbody tr td[data-label=About]") == name
    assert admin.locator("#injected").count() == 0
