"""A real ``sfumato serve`` (with the demo model) and Debian's Chromium driven by Playwright.

Chromium is Debian's package (``apt-get install chromium``); Playwright's own browser download
is never used. Without it these tests fail with that sentence; ``-m "not browser"`` leaves
them out.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.browser import ARGS, CHROMIUM
from tests.fixtures.served import Served, data_env


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(__file__).parent in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    env = data_env(tmp_path_factory.mktemp("web-data"))
    env.pop("SFUMATO_BACKEND", None)  # the page meets the server as users run it: its default
    server = Served(env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"No Chromium at {CHROMIUM}: install Debian's (apt-get install chromium), set "
            "SFUMATO_TEST_CHROMIUM, or leave the browser tests out with -m 'not browser'."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


_users = iter(range(1, 10_000))


@pytest.fixture
def page(browser, served):
    """A new browser (its own cookies) on the page, signed up as a new user."""
    # Playwright's wait_for_function runs its predicate with eval, which the page's
    # Content-Security-Policy forbids; test_content_security_policy.py runs the page under it
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=served.url, bypass_csp=True
    )
    page = context.new_page()
    page.set_default_timeout(120_000)  # generations share two CPU cores with the test run
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(served.url)
    page.click("#login-switch")
    page.fill("#login-form [name=username]", f"user{next(_users)}-{os.getpid()}")
    page.fill("#login-form [name=password]", "a long password")
    page.click("#login-submit")
    page.wait_for_selector("#page-generate:not([hidden])")
    yield page
    context.close()
    assert not errors, f"the page's script failed: {errors}"
