"""Dezgo-compatible routes: a Dezgo client works by changing its base URL and key. The three
encodings its clients use, the picture in the answer with its seed, the model families."""

import base64
import io
import shutil
import threading
import time

import pytest
from PIL import Image

from tests.api.conftest import png


def _pixels(content: bytes) -> bytes:
    return Image.open(io.BytesIO(content)).convert("RGB").tobytes()


def _dezgo(server, path, **kwargs):
    return server.client.post(path, headers={"X-Dezgo-Key": server.user().key}, **kwargs)


def test_text2image_answers_with_the_picture_in_all_three_encodings(server):
    fields = {"prompt": "a red circle", "seed": "99", "steps": "6", "sampler": "dpmpp_2m_karras"}
    as_json = _dezgo(server, "/text2image", json=fields | {"seed": 99, "steps": 6})
    as_form = _dezgo(server, "/text2image", data=fields | {"lora1": "", "upscale": "2"})
    as_multipart = _dezgo(server, "/text2image", data=fields, files={"unused": ("x", b"")})
    for answer in (as_json, as_form, as_multipart):
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["x-input-seed"] == "99"
    assert _pixels(as_json.content) == _pixels(as_form.content) == _pixels(as_multipart.content)
    history = server.get("/v1/images").json()
    assert history["total"] == 3  # in the history like any other
    job = server.get(f"/v1/generations/{history['images'][0]['job_id']}").json()
    assert job["source"] == "dezgo" and job["settings"]["sampler"] == "dpmpp_2m_karras"


def test_a_random_seed_is_reported_and_the_format_chosen(server):
    answer = _dezgo(server, "/text2image", data={"prompt": "a blue square", "format": "jpg"})
    assert answer.headers["content-type"] == "image/jpeg"
    assert int(answer.headers["x-input-seed"]) >= 0
    webp = _dezgo(server, "/text2image", json={"prompt": "x", "format": "webp", "seed": -1})
    assert webp.headers["content-type"] == "image/webp"


def test_image2image_takes_a_file_or_base64(server):
    picture = png((64, 64), "yellow")
    as_file = _dezgo(
        server,
        "/image2image",
        data={"prompt": "a red circle", "strength": "0.5", "seed": "5"},
        files={"init_image": ("in.png", picture, "image/png")},
    )
    as_base64 = _dezgo(
        server,
        "/image2image",
        json={
            "prompt": "a red circle",
            "strength": 0.5,
            "seed": 5,
            "init_image": base64.b64encode(picture).decode(),
        },
    )
    assert as_file.status_code == as_base64.status_code == 200, as_file.text
    assert _pixels(as_file.content) == _pixels(as_base64.content)
    missing = _dezgo(server, "/image2image", data={"prompt": "x"})
    assert missing.status_code == 400
    assert "needs init_image" in missing.json()["error"]["message"]


def test_inpainting_takes_the_picture_and_its_mask(server):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    answer = _dezgo(
        server,
        "/inpainting",
        data={"prompt": "a red circle"},
        files={
            "init_image": ("in.png", png((64, 64), "green"), "image/png"),
            "mask_image": ("mask.png", buffer.getvalue(), "image/png"),
        },
    )
    assert answer.status_code == 200, answer.text
    result = Image.open(io.BytesIO(answer.content)).convert("RGB")
    assert result.getpixel((60, 30)) == (0, 128, 0)  # right half: outside the mask, kept
    no_mask = _dezgo(
        server, "/inpainting", data={"prompt": "x"}, files={"init_image": ("a.png", png())}
    )
    assert no_mask.status_code == 400 and "mask_image" in no_mask.json()["error"]["message"]


def test_bad_requests_are_4xx_sentences(server):
    cases = [
        ({"content": b"prompt=x", "headers": {"Content-Type": "text/plain"}}, 400, "JSON"),
        ({"json": {"steps": 5}}, 400, "prompt"),
        ({"json": ["prompt"]}, 400, "one JSON object"),
        ({"data": {"prompt": "x", "steps": "lots"}}, 400, "steps"),
        ({"data": {"prompt": "x", "width": "1001"}}, 400, "multiple of 8"),
        ({"data": {"prompt": "x", "model": "nonesuch"}}, 404, "Installed"),
    ]
    for kwargs, status, words in cases:
        headers = {"X-Dezgo-Key": server.user().key} | kwargs.pop("headers", {})
        answer = server.client.post("/text2image", headers=headers, **kwargs)
        assert answer.status_code == status, (kwargs, answer.text)
        assert words in answer.json()["error"]["message"], answer.text


@pytest.fixture
def xl_server(make_server, tiny_models, tmp_path):
    models = tmp_path / "xl-models"
    models.mkdir()
    # diffusers folders: they carry their own (tiny) configs
    shutil.copytree(tiny_models["sdxl"]["folder"], models / "tinyxl")
    shutil.copytree(tiny_models["sdxl"]["folder"], models / "tinyxl-lightning-4step")
    return make_server(models_dirs=[models])


def test_each_text_route_runs_its_own_family(xl_server, make_server):
    small = {"prompt": "x", "width": 64, "height": 64, "seed": 1}
    xl = _dezgo(xl_server, "/text2image_sdxl", json=small)
    assert xl.status_code == 200, xl.text
    lightning = _dezgo(xl_server, "/text2image_sdxl_lightning", json=small)
    assert lightning.status_code == 200, lightning.text
    jobs = xl_server.get("/v1/generations").json()["generations"]
    assert {j["model"] for j in jobs} == {"tinyxl", "tinyxl-lightning-4step"}
    lightning_job = next(j for j in jobs if j["model"] == "tinyxl-lightning-4step")
    assert lightning_job["settings"]["steps"] == 4  # from its name
    assert lightning_job["settings"]["guidance"] == 1.0  # Lightning's: no guidance
    wrong = _dezgo(xl_server, "/text2image", json=small | {"model": "tinyxl"})
    assert wrong.status_code == 400
    assert "not a Stable Diffusion 1.5 model" in wrong.json()["error"]["message"]
    info = xl_server.get("/info").json()["models"]
    functions = {m["id"]: m["functions"] for m in info}
    assert functions["tinyxl"] == ["text2image_sdxl", "image2image", "inpainting"]
    assert functions["sfumato-demo"][0] == "text2image"
    # a server with no SDXL model says so
    plain = make_server()
    none = _dezgo(plain, "/text2image_sdxl", json={"prompt": "x"})
    assert (
        none.status_code == 404
        and "No Stable Diffusion XL model" in none.json()["error"]["message"]
    )


def test_a_client_waiting_when_the_server_stops_is_told_and_its_job_kept(make_server):
    """A route that waits for its picture must not hold its client (and the server's exit)
    past the worker's stop: the job stays queued for the next start, and the answer says so."""
    server = make_server(run_worker=False)  # nothing runs the job: the wait is held
    user = server.user()
    answers = []
    waiting = threading.Thread(
        target=lambda: answers.append(server.post("/text2image", user, json={"prompt": "a fox"}))
    )
    waiting.start()
    deadline = time.monotonic() + 30
    while not server.get("/v1/generations", user).json()["generations"]:
        assert time.monotonic() < deadline, "the job was never queued"
        time.sleep(0.05)
    server.studio.dispatch.stop()
    waiting.join(10)
    assert not waiting.is_alive(), "the client is still held after the worker stopped"
    (answer,) = answers
    assert answer.status_code == 503
    assert "runs again when it starts" in answer.json()["error"]["message"]
    (job,) = server.get("/v1/generations", user).json()["generations"]
    assert job["status"] == "queued"
