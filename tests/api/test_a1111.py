"""AUTOMATIC1111's /sdapi/v1 over raw HTTP on a real app: what A1111's clients send (Open WebUI,
SillyTavern, scripts) and read back; the caller's own settings, progress and interrupt; Basic
sign-in; an error's A1111 ``detail``."""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from sfumato.api.a1111.fields import sampler_for
from sfumato.api.app import create_app
from sfumato.engine.samplers import SAMPLERS
from sfumato.metadata.read import png_texts
from sfumato.store.site import update_site
from sfumato.store.tables import AuditEvent
from sfumato.studio import Studio, StudioConfig
from tests.api.conftest import Server, png

TINY = {"steps": 1, "width": 64, "height": 64}


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_models):
    """One app for the module (the demo model, and a tiny SD 1.5 single file)."""
    root = tmp_path_factory.mktemp("a1111")
    (root / "models").mkdir()
    shutil.copytree(tiny_models["sd15"]["folder"], root / "models" / "tiny")
    studio = Studio(StudioConfig(data_dir=root / "data", models_dirs=[root / "models"]))
    with TestClient(create_app(studio)) as client:
        server = Server(client, studio)
        with studio.db.session() as session:  # the demo model by default: the smallest size
            update_site(session, {"default_model": "sfumato-demo"})
        yield server


def _basic(name: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()}


def _info(answer) -> dict:
    assert answer.status_code == 200, answer.text
    info = answer.json()["info"]
    assert isinstance(info, str)  # a JSON string, as A1111 sends it
    return json.loads(info)


def test_txt2img_answers_as_a1111_does(served):
    ann = served.user("ann")
    body = {
        "prompt": "a red circle",
        "seed": 5,
        "batch_size": 2,
        "n_iter": 2,
        "sampler_name": "DPM++ 2M",
        "scheduler": "Karras",
        "cfg_scale": 6,
        **TINY,
    }
    answer = served.post("/sdapi/v1/txt2img", ann, json=body)
    info = _info(answer)
    assert info["all_seeds"] == [5, 6, 7, 8] and info["seed"] == 5  # n_iter x batch_size
    assert (info["width"], info["height"], info["steps"], info["cfg_scale"]) == (64, 64, 1, 6)
    assert info["sampler_name"] == "DPM++ 2M" and info["warnings"] == []
    images = answer.json()["images"]
    assert len(images) == 4 == len(info["infotexts"])
    for encoded, text in zip(images, info["infotexts"], strict=True):
        content = base64.b64decode(encoded)
        assert Image.open(io.BytesIO(content)).format == "PNG"
        assert png_texts(io.BytesIO(content))["parameters"] == text  # the same infotext
    assert "Sampler: DPM++ 2M, Schedule type: Karras" in info["infotexts"][0]
    parameters = answer.json()["parameters"]
    assert parameters["seed"] == 5 and parameters["scheduler"] == "Karras"
    # one job in the history, sent by A1111's door
    jobs = served.get("/v1/generations", ann).json()["generations"]
    assert jobs[0]["source"] == "a1111" and jobs[0]["settings"]["sampler"] == "dpmpp_2m_karras"
    assert jobs[0]["settings"]["batch_size"] == 4


def test_more_pictures_than_one_batch_holds_run_as_several_jobs(served):
    bob = served.user("bob")
    answer = served.post(
        "/sdapi/v1/txt2img", bob, json={"prompt": "x", "batch_size": 17, "seed": 1, **TINY}
    )
    info = _info(answer)
    assert info["all_seeds"] == list(range(1, 18))
    jobs = served.get("/v1/generations", bob).json()["generations"]
    assert sorted(j["settings"]["batch_size"] for j in jobs) == [1, 16]


def test_a_left_out_field_is_the_models_own_and_seed_minus_one_is_random(served):
    answer = served.post("/sdapi/v1/txt2img", json={"prompt": "x", "seed": -1, "steps": 1})
    info = _info(answer)
    assert (info["width"], info["height"]) == (64, 64)  # the demo model's native size
    assert info["seed"] >= 0 and answer.json()["parameters"]["seed"] == -1
    assert answer.json()["parameters"]["sampler_name"] == "DPM++ 2M"  # the demo's own


def test_what_a1111_refuses_is_422_with_a_detail(served):
    cases = [
        ({"sampler_name": "Euler q"}, "Unknown sampler 'Euler q'"),
        ({"sampler_name": "Euler a", "scheduler": "Karras"}, "no Karras schedule"),
        ({"scheduler": "polyexponential", "sampler_name": "Euler"}, "Unknown scheduler"),
        ({"enable_hr": True, "hr_upscaler": "R-ESRGAN 4x+"}, "Unknown hires upscaler"),
        ({"script_name": "x/y/z plot"}, "runs no scripts"),
        ({"steps": "many"}, "steps"),
    ]
    for fields, words in cases:
        answer = served.post("/sdapi/v1/txt2img", json={"prompt": "x", **fields})
        assert answer.status_code == 422, (fields, answer.text)
        assert words in answer.json()["detail"] == answer.json()["error"]["message"]
    # sfumato's own sentences keep their status, with the detail too
    wide = served.post("/sdapi/v1/txt2img", json={"prompt": "x", "width": 1001})
    assert wide.status_code == 400 and "multiple of 8" in wide.json()["detail"]
    not_json = served.client.post(
        "/sdapi/v1/txt2img",
        content=b'{"prompt": ',
        headers=served.user().headers | {"Content-Type": "application/json"},
    )
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["detail"]


def test_the_samplers_listed_are_exactly_those_that_run(served):
    listed = served.get("/sdapi/v1/samplers").json()
    assert [s["name"] for s in listed] == [s.name for s in SAMPLERS]
    for item in listed:
        assert sampler_for(item["name"], None).name == item["name"]
        for alias in item["aliases"]:
            assert sampler_for(alias, None).name == item["name"]
    schedulers = [s["name"] for s in served.get("/sdapi/v1/schedulers").json()]
    assert "automatic" in schedulers and "karras" in schedulers
    assert sampler_for("DPM++ 2M Karras", "uniform").name == "DPM++ 2M"
    assert sampler_for("DPM++ SDE", "Karras").name == "DPM++ SDE Karras"


def test_fields_sfumato_ignores_are_named_only_when_they_change_the_picture(served):
    # webuiapi's defaults: none of them changes a picture
    quiet = {"restore_faces": False, "tiling": False, "eta": 1.0, "s_noise": 1, "s_churn": 0}
    quiet |= {"subseed": -1, "subseed_strength": 0.0, "styles": [], "alwayson_scripts": {}}
    quiet |= {"override_settings": {"CLIP_stop_at_last_layers": 1}, "denoising_strength": 0.7}
    quiet |= {"save_images": True, "url": "http://x", "auth": "user:secret"}  # SillyTavern's
    answer = served.post("/sdapi/v1/txt2img", json={"prompt": "x", **TINY, **quiet})
    assert _info(answer)["warnings"] == []
    assert "auth" not in answer.json()["parameters"]  # a field A1111 does not have: not echoed
    loud = {"restore_faces": True, "tiling": True, "styles": ["anime"], "subseed_strength": 0.3}
    loud["alwayson_scripts"] = {"ADetailer": {"args": [True, {"ad_model": "face"}]}}
    loud["override_settings"] = {"sd_vae": "vae-ft-mse.safetensors"}
    warnings = _info(served.post("/sdapi/v1/txt2img", json={"prompt": "x", **TINY, **loud}))
    text = " ".join(warnings["warnings"])
    for name in ("restore_faces", "tiling", "styles", "subseed_strength", "ADetailer", "sd_vae"):
        assert name in text, name


def _mask(left_white: bool, rgba: bool = False) -> bytes:
    if rgba:  # A1111 reads a mask with transparency by its alpha: opaque = repaint
        mask = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        mask.paste((0, 0, 0, 255), (0, 0, 32, 64))
    else:
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, (0, 0, 32, 64) if left_white else (32, 0, 64, 64))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def test_img2img_repaints_what_the_mask_says(served):
    picture = "data:image/png;base64," + base64.b64encode(png((64, 64), "green")).decode()
    for mask, invert, kept in (
        (_mask(True), 0, (60, 30)),
        (_mask(True), 1, (4, 30)),  # inpainting_mask_invert: black = repaint
        (_mask(True, rgba=True), 0, (60, 30)),
    ):
        body = {"prompt": "a red circle", "init_images": [picture], "mask": b64(mask)}
        body |= {"inpainting_mask_invert": invert, "mask_blur": 0, **TINY}
        answer = served.post("/sdapi/v1/img2img", json=body)
        info = _info(answer)
        result = Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0])))
        assert result.convert("RGB").getpixel(kept) == (0, 128, 0), (invert, info)
        assert answer.json()["parameters"]["init_images"] is None  # as A1111 leaves them out
    plain = served.post(
        "/sdapi/v1/img2img",
        json={"prompt": "x", "init_images": [picture], "denoising_strength": 0.5, "steps": 2},
    )
    assert _info(plain)["denoising_strength"] == 0.5
    two = served.post("/sdapi/v1/img2img", json={"prompt": "x", "init_images": [picture] * 2})
    assert two.status_code == 422


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def test_the_model_setting_is_the_callers_own(served):
    cat, dan = served.user("cat"), served.user("dan")
    models = served.get("/sdapi/v1/sd-models", cat).json()
    titles = {m["model_name"]: m["title"] for m in models}
    assert set(titles) == {"sfumato-demo@1", "tiny"}
    assert all("/" not in m["filename"] for m in models)  # no server folders
    before = served.get("/sdapi/v1/options", dan).json()["sd_model_checkpoint"]
    options = served.get("/sdapi/v1/options", cat).json()
    options["sd_model_checkpoint"] = titles["tiny"]  # Open WebUI posts them all back
    assert served.post("/sdapi/v1/options", cat, json=options).status_code == 200
    assert served.get("/sdapi/v1/options", cat).json()["sd_model_checkpoint"] == titles["tiny"]
    assert served.get("/sdapi/v1/options", dan).json()["sd_model_checkpoint"] == before
    assert (
        _info(served.post("/sdapi/v1/txt2img", cat, json={"prompt": "x", **TINY}))["sd_model_name"]
        == "tiny"
    )
    hashed = {"title": titles["tiny"]}  # a folder has no A1111 hash: its title is its name
    # override_settings: this request only, unless told to keep it
    demo = {"override_settings": {"sd_model_checkpoint": titles["sfumato-demo@1"]}}
    once = served.post("/sdapi/v1/txt2img", cat, json={"prompt": "x", **TINY, **demo})
    assert _info(once)["sd_model_name"] == "sfumato-demo"
    assert served.get("/sdapi/v1/options", cat).json()["sd_model_checkpoint"] == hashed["title"]
    kept = demo | {"override_settings_restore_afterwards": False}
    served.post("/sdapi/v1/txt2img", cat, json={"prompt": "x", **TINY, **kept})
    assert (
        served.get("/sdapi/v1/options", cat).json()["sd_model_checkpoint"]
        == titles["sfumato-demo@1"]
    )
    unknown = served.post("/sdapi/v1/options", cat, json={"sd_model_checkpoint": "nonesuch"})
    assert unknown.status_code == 404 and "sd-models" in unknown.json()["detail"]


def _running(served, user, timeout=180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = served.get("/sdapi/v1/progress", user).json()
        if progress["state"]["sampling_step"] > 0:
            return progress
        time.sleep(0.02)
    raise AssertionError(f"the job did not start: {progress}")


def test_progress_and_interrupt_are_the_callers_own(served):
    eve, fay = served.user("eve"), served.user("fay")
    answers = {}

    def long_request():
        body = {"prompt": "a long one", "steps": 150, "batch_size": 2, "width": 64, "height": 64}
        answers["eve"] = served.post("/sdapi/v1/txt2img", eve, json=body)

    thread = threading.Thread(target=long_request, daemon=True)
    thread.start()
    try:
        progress = _running(served, eve)
        assert progress["state"]["job_count"] == 1 and 0 < progress["progress"] <= 1
        assert progress["state"]["sampling_steps"] == 150
        # another user sees nothing of it and cannot stop it (A1111's #761)
        assert served.get("/sdapi/v1/progress", fay).json()["state"]["job_count"] == 0
        assert served.post("/sdapi/v1/interrupt", fay).status_code == 200
        assert served.post("/sdapi/v1/skip", fay).status_code == 200
        job = served.get("/v1/generations", eve).json()["generations"][0]
        assert job["status"] == "running" and served.studio.dispatch.live(job["id"]) is not None
        assert served.get("/sdapi/v1/progress", eve).json()["state"]["job_count"] == 1
    finally:  # its owner can stop it (and a failure above must not leave it running)
        assert served.post("/sdapi/v1/interrupt", eve).json() == {}
        thread.join(120)
    info = _info(answers["eve"])
    assert answers["eve"].json()["images"] == [] and "Interrupted" in info["warnings"][-1]
    job = served.get("/v1/generations", eve).json()["generations"][0]
    assert job["status"] == "cancelled"
    idle = served.get("/sdapi/v1/progress", eve).json()
    assert idle["progress"] == 0 and idle["state"]["job_count"] == 0  # what clients wait for


def test_basic_sign_in_takes_a_key_or_the_password(served):
    gus = served.user("gus")
    for secret in (gus.key, "a long password"):
        answer = served.client.get("/sdapi/v1/options", headers=_basic("gus", secret))
        assert answer.status_code == 200, answer.text
    refused = [
        _basic("gus", "not the password"),
        _basic("ann", gus.key),  # a key with another user's name
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Basic "},  # what SillyTavern sends with no login set
        {},
    ]
    for headers in refused:
        answer = served.client.get("/sdapi/v1/options", headers=headers)
        assert answer.status_code == 401, headers
        assert answer.json()["detail"] == answer.json()["error"]["message"]
    with served.studio.db.session() as session:  # as a failed login, in the audit log
        failed = session.scalars(
            select(AuditEvent.target).where(AuditEvent.action == "login.failed")
        )
        assert "gus" in list(failed)
    # a revoked key lets nobody in, through Basic either
    key_id = served.get("/v1/keys", gus).json()["keys"][0]["id"]
    assert served.client.delete(f"/v1/keys/{key_id}", headers=gus.headers).status_code < 300
    gone = served.client.get("/sdapi/v1/options", headers=_basic("gus", gus.key))
    assert gone.status_code == 401 and "revoked" in gone.json()["detail"]
    # a browser would send cached Basic credentials to another site's request
    foreign = served.client.post(
        "/sdapi/v1/interrupt",
        headers=_basic("gus", "a long password") | {"Origin": "https://elsewhere.example"},
    )
    assert foreign.status_code == 403


def test_png_info_reads_the_infotext(served):
    answer = served.post("/sdapi/v1/txt2img", json={"prompt": "a blue square", "seed": 9, **TINY})
    picture = answer.json()["images"][0]
    read = served.post("/sdapi/v1/png-info", json={"image": "data:image/png;base64," + picture})
    assert read.status_code == 200, read.text
    assert read.json()["info"] == _info(answer)["infotexts"][0]
    assert read.json()["parameters"]["Seed"] == 9 and read.json()["parameters"]["Sampler"]
    assert "sfumato" in read.json()["items"]
    bare = served.post("/sdapi/v1/png-info", json={"image": b64(png())})
    assert bare.json() == {"info": "", "items": {}, "parameters": {}}
    junk = served.post("/sdapi/v1/png-info", json={"image": "bm90IGEgcGljdHVyZQ=="})
    assert junk.status_code == 400 and junk.json()["detail"]


def test_every_sdapi_route_wants_a_sign_in(served):
    paths = served.client.get("/openapi.json").json()["paths"]
    tried = 0
    for path, methods in paths.items():
        if not path.startswith("/sdapi/"):
            continue
        for method in methods:
            answer = served.client.request(method.upper(), path, json={})
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json()["detail"]
            tried += 1
    assert tried >= 17
    lists = ["upscalers", "latent-upscale-modes", "sd-vae", "loras", "embeddings", "scripts"]
    for name in lists:
        assert served.get(f"/sdapi/v1/{name}").status_code == 200, name
    assert served.get("/sdapi/v1/upscalers").json()[0]["name"] == "None"  # SillyTavern's index 0
