"""The page does everything it does under its own Content-Security-Policy: no refusal in the
console while a user signs up, generates (with live previews), drops a picture and opens the
history. (The other browser tests bypass the policy: Playwright's waits use eval.)"""

import io
import os

from PIL import Image


def test_the_page_runs_under_its_content_security_policy(browser, served):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=served.url)
    page = context.new_page()
    page.set_default_timeout(120_000)
    refused, errors = [], []
    page.on(
        "console",
        lambda message: (
            refused.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    answer = page.goto(served.url)
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    page.click("#login-switch")
    page.fill("#login-form [name=username]", f"csp-{os.getpid()}")
    page.fill("#login-form [name=password]", "a long password")
    page.click("#login-submit")
    page.wait_for_selector("#page-generate:not([hidden])")
    # a generation long enough to show live previews (data: URLs)
    page.click("#advanced summary")
    page.fill("#steps", "30")
    page.fill("#prompt", "a red circle on a blue background")
    page.click("#generate-button")
    page.wait_for_selector("#live-preview:not([hidden])")
    page.wait_for_selector("#results .result")
    # a dropped picture is shown from a blob: URL
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), "yellow").save(buffer, format="PNG")
    transfer = page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], "p.png", { type: "image/png" }));
            return transfer;
        }""",
        list(buffer.getvalue()),
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})
    page.wait_for_selector("#picture-tools:not([hidden])")
    page.click("nav a[href='#history']")
    page.wait_for_selector("#history-grid li img")
    context.close()
    assert not refused, f"the Content-Security-Policy refused: {refused}"
    assert not errors, f"the page's script failed: {errors}"
