"""The time estimate on the Generate page, in a real browser against a real server of its own
(a fresh one: it has finished no job yet): "not known yet" at first, "about N s" once a
picture has taught it, asked again only when a setting that changes the time changes, and a
queued job's card saying when it starts."""

from __future__ import annotations

import os

import pytest

from tests.fixtures.served import Served, data_env


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """This module's own server: the page's first estimate is on a server that knows nothing."""
    env = data_env(tmp_path_factory.mktemp("estimate-data"))
    env.pop("SFUMATO_BACKEND", None)
    server = Served(env)
    yield server
    server.stop()


def _line(page) -> str:
    return page.text_content("#generate-estimate")


def test_the_estimate_is_said_before_the_job_and_a_queued_job_says_when_it_starts(page):
    asked = []
    page.on("request", lambda r: r.url.endswith("/v1/estimates") and asked.append(r.url))
    page.wait_for_function("document.querySelector('#generate-estimate').textContent !== ''")
    assert "not known yet" in _line(page)

    # typing the prompt asks nothing (the words do not change the time); a changed setting
    # asks once, half a second after the typing stops
    before = len(asked)
    page.type("#prompt", "a red circle on a blue background", delay=20)
    page.click("#advanced summary")
    page.type("#steps", "12", delay=50)
    page.wait_for_timeout(1500)
    assert len(asked) - before == 1, asked

    page.click("#generate-button")
    page.wait_for_selector("#results .result")
    page.wait_for_function(
        "document.querySelector('#generate-estimate').textContent.startsWith('About')"
    )
    assert _line(page).endswith(" s.") and "ahead" not in _line(page)

    # a long job, then one behind it: its card says when it starts, and how long it takes
    page.fill("#steps", "150")
    page.fill("#batch", "4")
    page.click("#generate-button")
    page.wait_for_function(
        "document.querySelector('#progress-text').textContent.startsWith('Step')"
    )
    page.fill("#steps", "12")
    page.fill("#batch", "1")
    page.wait_for_function(
        "/ahead \\(about/.test(document.querySelector('#generate-estimate').textContent)"
    )
    assert "after 1 job ahead" in _line(page)
    page.click("#generate-button")
    page.wait_for_function(
        "document.querySelector('#progress-text').textContent.includes('starts in about')"
    )
    text = page.text_content("#progress-text")
    assert (
        text.startswith("Waiting in the queue: next · starts in about ") and ", then about " in text
    )
    if os.environ.get("SFUMATO_TEST_SCREENSHOTS"):  # for a person to look at
        page.screenshot(path=os.environ["SFUMATO_TEST_SCREENSHOTS"] + "/estimate.png")
    page.wait_for_function("document.querySelectorAll('#results .result').length >= 2")
