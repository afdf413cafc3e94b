"""The page says "Warming up the model…" while the server loads its default model after start
(docs/server.md#warm-start), and stops saying it once the model is ready."""

from __future__ import annotations

import httpx

from tests.fixtures.served import Served, data_env


def test_the_page_says_the_model_is_warming_up_until_it_is_ready(browser, tmp_path):
    env = data_env(tmp_path / "data")
    (tmp_path / "data" / "models").mkdir(parents=True)
    # as users run it: the CPU's default backend, the warm-up on (the demo model converted,
    # then compiled: seconds, while the page is already served)
    env.pop("SFUMATO_BACKEND")
    env.pop("SFUMATO_WARM_UP")
    served = Served(env, extra_args=["--personal"])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(served.url)
        note = page.locator("#warm-up-note")
        note.wait_for(state="visible", timeout=30_000)
        assert note.text_content().startswith("Warming up sfumato-demo…")
        assert page.locator("#generate-button").is_visible()  # asking is not refused meanwhile
        page.screenshot(path=tmp_path / "warming-up.png")
        note.wait_for(state="hidden", timeout=120_000)  # read again every few seconds
        warm_up = httpx.get(served.url + "/v1/health").json()["warm_up"]
        assert warm_up["status"] == "ready", warm_up
        page.screenshot(path=tmp_path / "ready.png")
        assert not errors, errors
    finally:
        context.close()
        served.stop()
