"""The web page in a real browser against a real server: what a user does, checked as a user
would (and on the server's disk where that is the point)."""

import io
import os
import re

import httpx
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sfumato.demo.analyze import analyze
from sfumato.metadata.read import read_info_bytes


def _png(colour="yellow", size=(128, 128), text: dict | None = None) -> bytes:
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _generate(page, prompt: str, results: int = 1) -> None:
    page.fill("#prompt", prompt)
    page.click("#generate-button")
    page.wait_for_function(f"document.querySelectorAll('#results .result').length >= {results}")


def _api(page, path: str) -> httpx.Response:
    """A GET with the page's own login cookie."""
    return page.request.get(path)


def test_sign_up_generate_and_see_the_picture_with_its_seed(page, served):
    page.click("#advanced summary")
    page.fill("#steps", "60")  # long enough to watch the progress
    page.fill("#prompt", "a red circle on a blue background")
    page.press("#prompt", "Control+Enter")
    page.wait_for_function("document.querySelector('#progress-bar').value > 0")
    assert re.match(r"Step \d+ of 60", page.text_content("#progress-text"))
    page.wait_for_selector("#live-preview:not([hidden])")
    page.wait_for_selector("#results .result")
    assert page.is_hidden("#progress")
    seed = page.text_content("#results .result dd:nth-of-type(4)")
    picture = page.locator("#stage img.final")
    url = picture.get_attribute("src")
    content = _api(page, url).body()
    assert str(read_info_bytes(content).seed) == seed
    assert analyze(Image.open(io.BytesIO(content))).colour == "red"
    assert page.get_attribute("#seed", "placeholder") == f"random (last: {seed})"


def test_the_speed_shortcuts_go_with_the_request_and_come_back_with_reuse(page, served):
    page.click("#advanced summary")
    page.select_option("#guidance-cutoff", "0.5")
    page.select_option("#deep-cache", "2")
    _generate(page, "a red circle on a blue background")
    details = page.text_content("#results .result")
    assert "Guidance cutoff" in details and "DeepCache interval" in details
    page.select_option("#guidance-cutoff", "")
    page.select_option("#deep-cache", "")
    page.click("#results .result button:text('Reuse settings')")
    assert page.input_value("#guidance-cutoff") == "0.5" and page.input_value("#deep-cache") == "2"


def test_the_hires_fix_makes_a_larger_picture_and_comes_back_with_reuse(page, served):
    page.click("#advanced summary")
    page.fill("#hr-scale", "2")
    page.select_option("#hr-upscaler", "Lanczos")
    page.fill("#hr-denoise", "0.5")
    page.fill("#hr-steps", "6")
    _generate(page, "a red circle on a blue background")
    assert "Hires fix2×, Lanczos, 6 steps at 0.5" in page.text_content("#results .result")
    content = _api(page, page.locator("#stage img.final").get_attribute("src")).body()
    picture = Image.open(io.BytesIO(content))
    assert picture.size == (128, 128) and analyze(picture).colour == "red"
    page.fill("#hr-scale", "")
    page.click("#results .result button:text('Reuse settings')")
    assert page.input_value("#hr-scale") == "2" and page.input_value("#hr-upscaler") == "Lanczos"
    assert (page.input_value("#hr-denoise"), page.input_value("#hr-steps")) == ("0.5", "6")


def test_the_hires_fix_offers_the_installed_upscaler_models(page, served):
    from tests.fixtures.upscaler_files import compact_pth

    folder = served.data / "models" / "ESRGAN"
    folder.mkdir(parents=True, exist_ok=True)
    compact_pth(folder / "2x-Compact.pth")
    page.reload()  # the page reads the upscalers when it starts
    page.wait_for_selector("#page-generate:not([hidden])")
    page.click("#advanced summary")
    assert "2x-Compact (2x)" in page.text_content("#hr-upscaler")
    page.fill("#hr-scale", "2")
    page.select_option("#hr-upscaler", "2x-Compact")
    page.fill("#hr-steps", "6")
    page.fill("#hr-denoise", "0.5")
    _generate(page, "a red circle on a blue background")
    assert "Hires fix2×, 2x-Compact, 6 steps at 0.5" in page.text_content("#results .result")
    content = _api(page, page.locator("#stage img.final").get_attribute("src")).body()
    assert Image.open(io.BytesIO(content)).size == (128, 128)


def test_a_mistake_is_shown_next_to_its_field(page):
    page.click("#generate-button")
    assert "Write a prompt" in page.text_content('[data-error-for="prompt"]')
    page.click("#advanced summary")
    page.select_option("#size", "custom")
    page.fill("#width", "100")
    page.fill("#prompt", "a cat")
    page.click("#generate-button")
    page.wait_for_function("document.querySelector('[data-error-for=size]').textContent")
    assert "multiple of 8" in page.text_content('[data-error-for="size"]')


def test_a_picture_dropped_on_the_page_starts_image_to_image(page):
    data = list(_png("yellow", (96, 64)))
    handle = page.evaluate_handle(
        """(bytes) => {
            const transfer = new DataTransfer();
            const file = new File([new Uint8Array(bytes)], "photo.png", { type: "image/png" });
            transfer.items.add(file);
            return transfer;
        }""",
        data,
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": handle})
    page.wait_for_selector("#picture-tools:not([hidden])")
    assert "96×64" in page.text_content("#picture-note")
    page.fill("#strength", "0.5")
    _generate(page, "a red circle")
    job = _api(page, "/v1/generations").json()["generations"][0]
    assert job["settings"]["mode"] == "img2img" and job["settings"]["strength"] == 0.5
    # painting a mask turns it into inpainting
    page.select_option("#paint-mode", "paint")
    canvas = page.locator("#mask-canvas")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    _generate(page, "a red circle", results=2)
    job = _api(page, "/v1/generations").json()["generations"][0]
    assert job["settings"]["mode"] == "inpaint"


def test_read_settings_from_an_uploaded_picture(page):
    a1111 = _png(
        text={
            "parameters": "a green triangle\nNegative prompt: blurry\nSteps: 17, "
            "Sampler: Euler a, CFG scale: 5.5, Seed: 4242, Size: 64x64"
        }
    )
    page.set_input_files(
        "#picture-file", {"name": "a.png", "mimeType": "image/png", "buffer": a1111}
    )
    page.wait_for_selector("#picture-tools:not([hidden])")
    page.click("#read-settings")
    page.wait_for_function("document.querySelector('#picture-note').textContent.includes('read')")
    assert "A1111" in page.text_content("#picture-note")
    assert page.input_value("#prompt") == "a green triangle"
    assert page.input_value("#negative") == "blurry"
    assert page.input_value("#seed") == "4242" and page.is_checked("#seed-lock")
    assert page.input_value("#steps") == "17" and page.input_value("#guidance") == "5.5"
    assert page.input_value("#sampler") == "euler_a"
    page.set_input_files(
        "#picture-file", {"name": "p.png", "mimeType": "image/png", "buffer": _png()}
    )
    page.wait_for_function(
        "document.querySelector('#picture-note').textContent.startsWith('p.png')"
    )
    page.click("#read-settings")
    page.wait_for_function(
        "document.querySelector('#picture-note').textContent.includes('no generation data')"
    )


def test_deleting_from_history_removes_the_pictures_at_once(page, served):
    page.click("#advanced summary")
    page.fill("#batch", "3")
    _generate(page, "a white square on a black background", results=3)
    page.click("nav a[data-page=history]")
    page.wait_for_selector("#history-grid li")
    assert "30 days" in page.text_content("#retention")
    ids = page.eval_on_selector_all("#history-grid li", "items => items.map(i => i.dataset.image)")
    assert len(ids) == 3
    files = {i: next(served.data.glob(f"library/images/*/{i}.png")) for i in ids}
    # one through the picture's own view
    page.click(f'#history-grid li[data-image="{ids[0]}"] button.thumb')
    page.wait_for_selector("#image-dialog[open]")
    assert "a white square" in page.text_content("#dialog-details")
    page.click("#dialog-actions button.danger")
    page.wait_for_selector(f'#history-grid li[data-image="{ids[0]}"]', state="detached")
    assert not files[ids[0]].exists()
    # the other two selected and deleted together
    page.click("#history-select")
    for image_id in ids[1:]:
        page.check(f'#history-grid li[data-image="{image_id}"] .pick')
    page.click("#history-delete")
    page.wait_for_function("!document.querySelector('#history-grid li')")
    assert not any(f.exists() for f in files.values())
    assert _api(page, "/v1/images").json()["total"] == 0


def test_preferences_survive_a_reload(page):
    page.click("nav a[data-page=account]")
    page.click('details[data-family="sd15"] summary')
    page.fill("#pref-sd15-steps", "9")
    page.fill("#pref-sd15-negative_prompt", "blurry, text")
    page.click("#preferences button[type=submit]")
    page.wait_for_function("document.querySelector('#pref-saved').textContent === 'Saved.'")
    page.reload()
    page.wait_for_selector("#page-account:not([hidden])")
    assert page.input_value("#pref-sd15-steps") == "9"
    assert page.input_value("#pref-sd15-negative_prompt") == "blurry, text"
    page.click("nav a[data-page=generate]")
    assert page.get_attribute("#steps", "placeholder") == "9 (recommended)"
    assert "blurry, text" in page.get_attribute("#negative", "placeholder")


def test_an_api_key_is_shown_once_works_and_can_be_revoked(page, served):
    page.click("nav a[data-page=account]")
    page.fill("#key-name", "my bot")
    page.click("#key-form button")
    page.wait_for_selector("#new-key:not([hidden])")
    key = page.text_content("#new-key-value")
    assert key.startswith("sfm_") and key in page.text_content("#curl-example")
    headers = {"Authorization": f"Bearer {key}"}
    assert httpx.get(served.url + "/v1/me", headers=headers).status_code == 200
    page.click('#keys button[aria-label="Revoke my bot"]')
    page.wait_for_function("document.querySelector('#keys').textContent.includes('revoked')")
    assert httpx.get(served.url + "/v1/me", headers=headers).status_code == 401


def test_use_a_model_from_the_models_page(page):
    page.click("nav a[data-page=models]")
    page.wait_for_selector("#model-cards li")
    assert "Stable Diffusion 1.5" in page.text_content("#model-cards li")
    page.click("#model-cards li button")
    page.wait_for_selector("#page-generate:not([hidden])")
    assert page.input_value("#model-version") == "sfumato-demo"


def test_phone_width_has_no_horizontal_scroll(page):
    page.set_viewport_size({"width": 375, "height": 740})
    for name in ("generate", "history", "models", "account"):
        page.click(f"nav a[data-page={name}]")
        page.wait_for_selector(f"#page-{name}:not([hidden])")
        page.wait_for_timeout(200)
        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll <= client, f"{name}: {scroll} > {client}"


def test_every_control_has_a_label(page):
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(n => n.type !== 'hidden' && !n.labels?.length && !n.getAttribute('aria-label'))
            .map(n => n.id || n.outerHTML.slice(0, 60))"""
    )
    assert unlabelled == []


def test_log_out_and_back_in(page):
    name = page.evaluate("fetch('/v1/me').then(r => r.json()).then(me => me.username)")
    page.click("nav a[data-page=account]")
    page.click("#logout")
    page.wait_for_selector("#page-login:not([hidden])")
    assert page.is_hidden("#nav")
    page.reload()
    page.wait_for_selector("#page-login:not([hidden])")
    page.fill("#login-form [name=username]", name)
    page.fill("#login-form [name=password]", "wrong password")
    page.click("#login-submit")
    page.wait_for_function("document.querySelector('#login-form [data-error]').textContent")
    assert "wrong" in page.text_content("#login-form [data-error]")
    page.fill("#login-form [name=password]", "a long password")
    page.click("#login-submit")
    page.wait_for_selector("#page-generate:not([hidden])")


def test_a_picture_upscaled_from_its_view_opens_as_a_new_picture_of_the_history(page, served):
    _generate(page, "a red circle on a blue background")
    page.click("nav a[data-page=history]")
    page.wait_for_selector("#history-grid li")
    [source] = page.eval_on_selector_all(
        "#history-grid li", "items => items.map(i => i.dataset.image)"
    )
    page.click(f'#history-grid li[data-image="{source}"] button.thumb')
    page.wait_for_selector("#image-dialog[open]")
    page.select_option("#dialog-actions .upscale select[aria-label='Upscale by']", "4")
    page.select_option("#dialog-actions .upscale select[aria-label=Upscaler]", "Lanczos")
    page.click("#dialog-actions .upscale button")
    # the new picture opens on its own when it is ready, 4x the demo's 64 px
    page.wait_for_function(
        "document.querySelector('#dialog-details').textContent.includes('256x256')"
    )
    assert "from an earlier picture" in page.text_content("#dialog-details")
    assert page.eval_on_selector("#dialog-image", "img => img.naturalWidth") == 256
    ids = page.eval_on_selector_all("#history-grid li", "items => items.map(i => i.dataset.image)")
    assert len(ids) == 2 and ids[1] == source
    made = _api(page, f"/v1/images/{ids[0]}").json()
    assert made["source_image_id"] == source and made["width"] == 256
    if os.environ.get("SFUMATO_TEST_SCREENSHOTS"):  # for a person to look at
        page.screenshot(path=os.environ["SFUMATO_TEST_SCREENSHOTS"] + "/upscaled.png")
