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
    """A user of the API with a login cookie (and its CSRF token), as a script would be."""

    def __init__(self, site: Served, name: str | None = None):
        self.name = name or _name("user")
        self.client = httpx.Client(base_url=site.url, timeout=30)
        answer = self.client.post(
            "/v1/auth/signup", json={"username": self.name, "password": PASSWORD}
        )
        assert answer.status_code == 201, answer.text
        self.id = answer.json()["user"]["id"]
        self.client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]

    def get(self, path: str, **kw) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw) -> httpx.Response:
        return self.client.post(path, **kw)


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
    yield page
    assert not page.errors, f"the page's script failed: {page.errors}"
    page.context.close()


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
