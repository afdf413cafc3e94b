"""The Workflows view in a real browser against a real server: a ComfyUI API JSON (or a PNG
that carries one) dropped, named, its inputs chosen and saved; run from its small form, the
picture shown and in the history; a broken graph's node errors shown beside the form."""

from __future__ import annotations

import json
import os

from PIL import Image

from sfumato.workflows.outputs import comfy_png
from tests.api.test_workflows import graph


def _drop(page, content: bytes, name: str, kind: str) -> None:
    transfer = page.evaluate_handle(
        """([bytes, name, kind]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, { type: kind }));
            return transfer;
        }""",
        [list(content), name, kind],
    )
    page.dispatch_event("#workflow-drop", "drop", {"dataTransfer": transfer})


def _api(page, path: str):
    return page.request.get(path)


def test_drop_name_expose_save_and_run_a_workflow(page, tmp_path):
    page.click("nav a[data-page=workflows]")
    page.wait_for_selector("#page-workflows:not([hidden])")
    _drop(page, json.dumps(graph()).encode(), "my portrait.json", "application/json")
    page.wait_for_selector("#workflow-details:not([hidden])")
    assert page.input_value("#workflow-name") == "my-portrait"
    # the positive prompt and the seed are offered ticked; links are never offered
    assert page.is_checked("[data-input='6.text']") and page.is_checked("[data-input='3.seed']")
    assert page.input_value("[data-name-for='6.text']") == "prompt"
    assert page.locator("[data-input='6.clip']").count() == 0
    page.check("[data-input='3.steps']")
    name = f"portrait-{os.getpid()}"
    page.fill("#workflow-name", name)
    page.fill("#workflow-description", "The demo model's portrait")
    if os.environ.get("SFUMATO_TEST_SCREENSHOTS"):  # for a person to look at
        page.screenshot(
            path=os.environ["SFUMATO_TEST_SCREENSHOTS"] + "/workflow-new.png", full_page=True
        )
    page.click("#workflow-save")
    item = page.locator(f"#workflow-list li[data-workflow='{name}']")
    item.wait_for()
    assert page.is_hidden("#workflow-details")
    page.screenshot(path=str(tmp_path / "workflows.png"), full_page=True)
    if os.environ.get("SFUMATO_TEST_SCREENSHOTS"):  # for a person to look at
        page.screenshot(
            path=os.environ["SFUMATO_TEST_SCREENSHOTS"] + "/workflows.png", full_page=True
        )

    # a value the graph refuses comes back as its node's error, beside the form
    item.locator("input[name=steps]").fill("0")
    item.locator("button[type=submit]").click()
    page.wait_for_function(
        "(n) => document.querySelector(`li[data-workflow='${n}'] [data-error]`).textContent",
        arg=name,
    )
    assert "steps" in item.locator("[data-error]").text_content()

    item.locator("textarea[name=prompt]").fill("a green square on a white background")
    item.locator("input[name=steps]").fill("6")
    item.locator("button[type=submit]").click()
    item.locator(".thumbs img").wait_for()
    assert "your history" in item.locator("[data-status]").text_content()
    job = _api(page, "/v1/generations").json()["generations"][0]
    assert job["source"] == "workflow" and job["status"] == "succeeded"
    picture = page.request.get(job["images"][0]["url"]).body()
    assert b"a green square on a white background" in picture  # the graph rides in the PNG
    page.click("nav a[data-page=history]")
    page.wait_for_selector(f"#history-grid li[data-image='{job['images'][0]['id']}']")

    page.click("nav a[data-page=workflows]")
    item.wait_for()
    page.on("dialog", lambda dialog: dialog.accept())
    item.locator("button.danger").click()
    item.wait_for(state="detached")


def test_a_picture_carrying_a_graph_is_read_and_a_broken_graph_shows_node_errors(page):
    page.click("nav a[data-page=workflows]")
    broken = graph(**{"4.ckpt_name": "nope.safetensors"})
    carrier = comfy_png(Image.new("RGB", (16, 16)), broken, None)
    _drop(page, carrier, "ComfyUI_00001_.png", "image/png")
    page.wait_for_selector("#workflow-details:not([hidden])")
    page.click("#workflow-save")
    page.wait_for_selector("#workflow-node-errors li")
    errors = page.text_content("#workflow-node-errors")
    assert "Node 4 (CheckpointLoaderSimple), ckpt_name: Value not in list" in errors
    assert page.is_visible("#workflow-details")  # nothing lost: fix and save again
    page.set_viewport_size({"width": 375, "height": 740})  # a phone: no sideways scrolling
    page.wait_for_timeout(200)
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= client
    if os.environ.get("SFUMATO_TEST_SCREENSHOTS"):
        page.screenshot(
            path=os.environ["SFUMATO_TEST_SCREENSHOTS"] + "/workflow-phone.png", full_page=True
        )

    _drop(page, b"{not json", "bad.json", "application/json")
    page.wait_for_function("document.querySelector('#workflow-read-error').textContent")
    assert "valid JSON" in page.text_content("#workflow-read-error")


def test_the_view_runs_under_the_pages_content_security_policy(browser, served):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=served.url)
    page = context.new_page()
    refused, errors = [], []
    page.on(
        "console",
        lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(served.url)
    page.click("#login-switch")
    page.fill("#login-form [name=username]", f"wf-csp-{os.getpid()}")
    page.fill("#login-form [name=password]", "a long password")
    page.click("#login-submit")
    page.wait_for_selector("#page-generate:not([hidden])")
    page.click("nav a[data-page=workflows]")
    _drop(page, json.dumps(graph()).encode(), "csp.json", "application/json")
    page.wait_for_selector("#workflow-details:not([hidden])")
    page.fill("#workflow-name", "csp")
    page.click("#workflow-save")
    page.wait_for_selector("#workflow-list li[data-workflow='csp']")
    context.close()
    assert not refused and not errors, refused + errors
