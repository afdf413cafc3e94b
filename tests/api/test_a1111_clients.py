"""A1111's clients against a real ``sfumato serve`` over HTTP: the ``webuiapi`` library as its
users call it, and the requests Open WebUI and SillyTavern send (read from their sources:
Open WebUI's ``routers/images.py``, SillyTavern's ``src/endpoints/stable-diffusion.js``)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest
import webuiapi
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.fixtures.served import served_with_users

ROOT = Path(__file__).parents[2]
SMALL = {"width": 64, "height": 64, "steps": 1}  # webuiapi sends 512x512 unless told


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_models):
    data = tmp_path_factory.mktemp("a1111-served")
    shutil.copytree(tiny_models["sd15"]["folder"], data / "models" / "tiny")
    with served_with_users(data, ("settings", "set", "default_model", "sfumato-demo")) as server:
        yield server


def _api(server, name="ann") -> webuiapi.WebUIApi:
    served, keys = server
    return webuiapi.WebUIApi(baseurl=f"{served.url}/sdapi/v1", username=name, password=keys[name])


def test_webuiapi_extra_single_image_upscales_and_keeps_the_metadata(server):
    api = _api(server)
    made = api.txt2img(prompt="a red circle", seed=11, **SMALL)
    # webuiapi's defaults: upscaler_1 "None" (a Lanczos resize in A1111), upscaling_resize 2
    upscaled = api.extra_single_image(image=made.image)
    assert upscaled.image.size == (128, 128)
    assert upscaled.info == "<p>Postprocess upscale by: 2, Postprocess upscaler: None</p>"
    # the picture says how it was made, then how it was enlarged; and is in the history
    # webuiapi sends pictures re-encoded by Pillow, without their text: sent with its text
    # (as the server made it), the text is kept and the upscale added
    text = PngInfo()
    text.add_text("parameters", made.image.info["parameters"])
    buffer = io.BytesIO()
    made.image.save(buffer, format="PNG", pnginfo=text)
    served, keys = server
    sent = {"image": base64.b64encode(buffer.getvalue()).decode()}
    kept = httpx.post(
        f"{served.url}/sdapi/v1/extra-single-image", json=sent, auth=("ann", keys["ann"])
    )
    read = api.png_info(Image.open(io.BytesIO(base64.b64decode(kept.json()["image"]))))
    assert read.json["parameters"]["Seed"] == 11
    assert read.info.endswith("Postprocess upscale by: 2, Postprocess upscaler: None")
    lanczos = api.extra_single_image(image=made.image, upscaler_1="Lanczos", upscaling_resize=3)
    assert lanczos.image.size == (192, 192)
    with pytest.raises(RuntimeError, match="Face restoration"):
        api.extra_single_image(image=made.image, gfpgan_visibility=0.5)
    with pytest.raises(RuntimeError, match="No upscaler named .+Choose one of: Lanczos, Nearest"):
        api.extra_single_image(image=made.image, upscaler_1="R-ESRGAN 4x+")


def test_webuiapi_txt2img_img2img_with_a_mask_and_png_info(server):
    api = _api(server)
    made = api.txt2img(prompt="a red circle", seed=7, **SMALL)
    assert made.info["seed"] == 7 and made.info["all_seeds"] == [7]
    assert made.image.size == (64, 64)
    assert made.image.info["parameters"] == made.info["infotexts"][0]  # the PNG's own text
    assert "Sampler: Euler a" in made.info["infotexts"][0]  # webuiapi's default sampler

    green = Image.new("RGB", (64, 64), (0, 128, 0))
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))  # repaint the left half
    inpainted = api.img2img(  # its denoising_strength 0.75 needs 2 steps to redraw at all
        images=[green], mask_image=mask, prompt="a red circle", mask_blur=0, **SMALL | {"steps": 2}
    )
    assert inpainted.image.convert("RGB").getpixel((60, 30)) == (0, 128, 0)
    # webuiapi's defaults A1111 would act on, and sfumato does not: said, not hidden
    assert any("inpaint_full_res" in w for w in inpainted.info["warnings"])

    read = api.png_info(made.image)
    assert read.info == made.info["infotexts"][0]
    assert read.json["parameters"]["Seed"] == 7


def test_webuiapi_hires_fix_doubles_the_picture_and_writes_a1111s_keys(server):
    api = _api(server)
    made = api.txt2img(
        prompt="a red circle on a blue background", seed=5, width=64, height=64, steps=3,
        enable_hr=True, hr_scale=2, hr_upscaler=webuiapi.HiResUpscaler.LatentBicubic,
        hr_second_pass_steps=2, denoising_strength=0.5,
    )  # fmt: skip
    assert made.image.size == (128, 128)
    assert (made.info["width"], made.info["denoising_strength"]) == (64, 0.5)  # first pass
    text = made.info["infotexts"][0]
    assert "Size: 64x64" in text and "Denoising strength: 0.5" in text
    assert "Hires upscale: 2, Hires steps: 2, Hires upscaler: Latent (bicubic)" in text
    read = api.png_info(made.image).json["parameters"]
    assert (read["Hires upscale"], read["Hires steps"]) == (2, 2)
    assert read["Hires upscaler"] == "Latent (bicubic)"
    # the upscalers it can choose from, as A1111 lists them
    assert [u["name"] for u in api.get_upscalers()][:3] == ["None", "Lanczos", "Nearest"]
    assert "Latent (nearest-exact)" in [m["name"] for m in api.get_latent_upscale_modes()]
    bad = httpx.post(
        f"{server[0].url}/sdapi/v1/txt2img",
        json={"prompt": "x", "enable_hr": True, "hr_upscaler": "4x-UltraSharp"},
        headers=_basic(f"ann:{server[1]['ann']}"),
    )
    assert bad.status_code == 422 and "Choose one of: Latent" in bad.json()["detail"]


def test_webuiapi_models_options_and_samplers(server):
    api = _api(server, "bob")
    titles = api.util_get_model_names()
    assert "tiny" in titles and "sfumato-demo@1" in titles
    assert api.util_get_current_model() == "sfumato-demo@1"  # the server's default
    api.util_set_model("tiny")
    assert api.util_get_current_model() == "tiny"
    assert api.txt2img(prompt="x", **SMALL).info["sd_model_name"] == "tiny"
    assert _api(server).util_get_current_model() == "sfumato-demo@1"  # Ann's is her own
    api.util_set_model("sfumato-demo@1")
    assert "DPM++ 2M" in api.util_get_sampler_names()
    assert "karras" in api.util_get_scheduler_names()
    made = api.txt2img(prompt="x", sampler_name="DPM++ 2M", scheduler="Karras", **SMALL)
    assert "Schedule type: Karras" in made.info["infotexts"][0]


def test_webuiapi_interrupt_stops_only_your_own_picture(server):
    ann, bob = _api(server), _api(server, "bob")
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(made=ann.txt2img(prompt="slow", steps=150, width=64)),
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + 180
        while ann.get_progress()["state"]["sampling_step"] == 0:
            assert time.monotonic() < deadline, "the picture never started"
            time.sleep(0.05)
        assert bob.get_progress()["state"]["job_count"] == 0
        bob.interrupt()
        bob.skip()
        assert ann.get_progress()["state"]["job_count"] == 1  # still running
    finally:
        ann.interrupt()
        thread.join(120)
    assert result["made"].images == [] and "Interrupted" in result["made"].info["warnings"][-1]
    ann.util_wait_for_ready(check_interval=0.1)  # progress 0 and no job: idle at once


def _basic(auth: str) -> dict:
    """Both clients send their "user:password" setting as Basic credentials."""
    return {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}


def test_open_webui_switches_the_model_then_generates(server):
    served, keys = server
    headers = _basic(f"ann:{keys['ann']}")  # AUTOMATIC1111_API_AUTH
    with httpx.Client(base_url=served.url, headers=headers, timeout=120) as client:
        models = client.get("/sdapi/v1/sd-models").json()
        choice = next(m["title"] for m in models if m["model_name"] == "tiny")
        options = client.get("/sdapi/v1/options").json()
        assert options["sd_model_checkpoint"] != choice
        options["sd_model_checkpoint"] = choice  # the whole options, posted back
        client.post("/sdapi/v1/options", json=options).raise_for_status()
        body = {"prompt": "a red circle", "batch_size": 2, "width": 64, "height": 64, "steps": 1}
        answer = client.post("/sdapi/v1/txt2img", json=body).json()
        assert len(answer["images"]) == 2
        picture = Image.open(io.BytesIO(base64.b64decode(answer["images"][0])))
        assert picture.size == (64, 64)
        client.post("/sdapi/v1/options", json={"sd_model_checkpoint": "sfumato-demo@1"})


def test_sillytavern_lists_sets_the_model_waits_and_generates(server):
    served, _ = server
    auth = "bob:another long password"  # SillyTavern's "auth" setting
    with httpx.Client(base_url=served.url, headers=_basic(auth), timeout=120) as client:
        assert client.get("/sdapi/v1/options").status_code == 200  # its "ping"
        for path in ("samplers", "schedulers", "upscalers", "latent-upscale-modes", "sd-vae"):
            names = [
                x.get("name", x.get("model_name")) for x in client.get(f"/sdapi/v1/{path}").json()
            ]
            assert all(isinstance(n, str) for n in names), path
        titles = [m["title"] for m in client.get("/sdapi/v1/sd-models").json()]
        client.post("/sdapi/v1/options", json={"sd_model_checkpoint": titles[0]}).raise_for_status()
        for _ in range(10):  # it polls until the model "loaded": progress 0, no job
            progress = client.get("/sdapi/v1/progress").json()
            if progress["progress"] == 0 and progress["state"]["job_count"] == 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(progress)
        body = {
            "url": served.url,  # SillyTavern sends its own settings along; A1111 ignores them
            "auth": auth,
            "prompt": "best quality, a red circle",
            "negative_prompt": "lowres, bad anatomy",
            "sampler_name": "DDIM",  # its defaults
            "scheduler": "normal",
            "steps": 1,
            "cfg_scale": 7,
            "width": 64,
            "height": 64,
            "restore_faces": False,
            "enable_hr": False,
            "hr_upscaler": "Latent",
            "hr_scale": 2.0,
            "denoising_strength": 0.7,
            "hr_second_pass_steps": 0,
            "seed": -1,
            "override_settings": {"CLIP_stop_at_last_layers": 1},
            "override_settings_restore_afterwards": True,
            "save_images": True,
            "send_images": True,
        }
        answer = client.post("/sdapi/v1/txt2img", json=body)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["images"]) == 1
        assert "auth" not in answer.json()["parameters"]  # the password is not echoed


def test_the_example_on_the_clients_page_runs(server, tmp_path, monkeypatch):
    served, keys = server
    page = (ROOT / "docs" / "clients.md").read_text()
    section = page.split("## AUTOMATIC1111", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.+?)\n```", section, re.DOTALL)
    example = example.replace("http://localhost:8000", served.url)
    example = example.replace("YOUR_SFUMATO_KEY", keys["ann"])
    example = example.replace("width=512, height=512", "width=64, height=64, steps=1")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "docs/clients.md", "exec"), {})
    with Image.open(tmp_path / "picture.png") as picture:
        assert picture.size == (64, 64)
