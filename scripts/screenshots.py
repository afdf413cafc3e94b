"""Screenshots of every page of the web UI, at desktop and phone width, for the README.

Starts its own ``sfumato serve`` on a fresh data folder with the demo model, makes an
account and a few pictures, and drives Debian's Chromium with Playwright:

    python scripts/screenshots.py [--out docs/screenshots]
"""

import argparse
import io
import sys
import tempfile
from pathlib import Path

import httpx
from PIL import Image
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).parents[1]))  # the tests' server launcher
from tests.fixtures.browser import ARGS, CHROMIUM  # noqa: E402
from tests.fixtures.served import Served, data_env  # noqa: E402

SIZES = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        server = Served(data_env(Path(data)))
        try:
            shoot(server.url, out)
        finally:
            server.stop()


def generate(page, prompt: str, results: int) -> None:
    """Generate and wait until ``results`` result cards show."""
    page.fill("#prompt", prompt)
    page.click("#generate-button")
    page.wait_for_function(f"document.querySelectorAll('#results .result').length >= {results}")


def shoot(base: str, out: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # its waits use eval, which the page's Content-Security-Policy forbids
        page = browser.new_page(viewport=SIZES["desktop"], bypass_csp=True)
        page.goto(base)
        page.wait_for_selector("#page-login:not([hidden])")
        page.screenshot(path=out / "login.png")
        page.click("#login-switch")
        page.fill("#login-form [name=username]", "ann")
        page.fill("#login-form [name=password]", "a long password")
        page.click("#login-submit")
        page.wait_for_selector("#page-generate:not([hidden])")
        prompts = [
            "a yellow circle on a purple background",
            "a white cross on a green background",
            "a large blue triangle on a black background",
        ]
        for count, prompt in enumerate(prompts, 1):
            generate(page, prompt, count)
        page.click("#advanced summary")
        page.fill("#batch", "2")
        generate(page, "a red circle on a blue background", len(prompts) + 2)
        page.wait_for_timeout(300)
        page.screenshot(path=out / "generate.png", full_page=True)
        picture = io.BytesIO()
        Image.new("RGB", (256, 256), (250, 200, 40)).save(picture, format="PNG")
        page.set_input_files(
            "#picture-file",
            {"name": "yellow.png", "mimeType": "image/png", "buffer": picture.getvalue()},
        )
        page.wait_for_selector("#picture-tools:not([hidden])")
        page.select_option("#paint-mode", "paint")
        page.locator("#mask-canvas").scroll_into_view_if_needed()
        box = page.locator("#mask-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.5, steps=8)
        page.mouse.up()
        page.locator("#picture-box").screenshot(path=out / "inpainting.png")
        admin_pages(page, base, out)  # before the account: it sets the limits shown there
        for name in ("history", "models", "account"):
            page.goto(f"{base}/#{name}")
            page.wait_for_selector(f"#page-{name}:not([hidden])")
            page.wait_for_timeout(500)
            page.screenshot(path=out / f"{name}.png", full_page=True)
        page.set_viewport_size(SIZES["phone"])
        for name in ("generate", "history"):
            page.goto(f"{base}/#{name}")
            page.wait_for_selector(f"#page-{name}:not([hidden])")
            page.wait_for_timeout(500)
            page.screenshot(path=out / f"{name}-phone.png")
        browser.close()
    print(f"screenshots in {out}")


def admin_pages(page, base: str, out: Path) -> None:
    """The Admin view's sections (ann, the first account, is the admin), with two more users,
    one of whom has a generation running and one waiting, and a few default quotas."""
    jobs = []
    for name in ("bob", "carla"):
        client = httpx.Client(base_url=base, timeout=30)
        answer = client.post(
            "/v1/auth/signup", json={"username": name, "password": "a long password"}
        )
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        if name == "bob":
            for body in (
                {"prompt": "a green square", "steps": 150, "batch_size": 16},
                {"prompt": "a white cross on a green background"},
            ):
                jobs.append((client, client.post("/v1/generations", json=body).json()["id"]))
    page.goto(f"{base}/#admin")
    page.wait_for_selector("#page-admin:not([hidden])")
    page.click("#tab-settings")
    for quota, value in (("images", "1000"), ("keys", "5"), ("daily_megapixel_steps", "5000")):
        page.fill(f"#site-quota-{quota}", value)
    page.click("#settings-form button[type=submit]")
    page.wait_for_selector("#settings-saved:text('Saved.')")
    for tab in ("users", "settings", "audit", "queue"):
        page.click(f"#tab-{tab}")
        page.wait_for_timeout(600)
        page.screenshot(path=out / f"admin-{tab}.png", full_page=tab == "settings")
    page.click("#tab-users")
    page.set_viewport_size(SIZES["phone"])
    page.wait_for_timeout(300)
    page.screenshot(path=out / "admin-phone.png")
    page.set_viewport_size(SIZES["desktop"])
    for client, job_id in jobs:  # the worker free again for the server's stop
        client.post(f"/v1/generations/{job_id}/cancel")


if __name__ == "__main__":
    main()
