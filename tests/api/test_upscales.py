"""Upscales through the API (``POST /v1/upscales``, ``GET /v1/upscalers``) and the Dezgo and
A1111 doors, on a real app with a real database and worker: a picture of the history (or one
sent with the request) enlarged, kept as a new history entry linked to its source, with its
source's metadata and the upscale added."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from sfumato.metadata.read import read_info_bytes, read_texts
from sfumato.store.tables import Upload
from tests.api.conftest import png
from tests.fixtures.upscaler_files import compact_pth, realesrgan_pth


@pytest.fixture
def upscaler_models(tmp_path):
    """A ComfyUI-style upscale_models folder and an A1111-style ESRGAN one, in the models
    folder the test servers read."""
    comfy = tmp_path / "models" / "upscale_models"
    a1111 = tmp_path / "models" / "ESRGAN"
    comfy.mkdir(parents=True)
    a1111.mkdir(parents=True)
    compact_pth(comfy / "2x-Compact.pth")
    realesrgan_pth(a1111 / "RealESRGAN_x4plus_anime_6B.pth")
    (a1111 / "broken.pth").write_bytes(b"not a pickle at all")
    return tmp_path / "models"


def _picture(server, image: dict) -> Image.Image:
    content = server.get(image["url"]).content
    return Image.open(io.BytesIO(content))


def _like(small: Image.Image, large: Image.Image) -> float:
    """Mean absolute difference (0-255) of ``large`` shrunk back to ``small``'s size."""
    back = large.convert("RGB").resize(small.size, Image.Resampling.BOX)
    a = np.asarray(small.convert("RGB"), dtype=float)
    return float(np.abs(a - np.asarray(back, dtype=float)).mean())


def test_a_history_picture_upscaled_is_a_new_entry_linked_to_it(server):
    made = server.generate(prompt="a red circle", seed=3)
    source = made["images"][0]
    answer = server.post("/v1/upscales", json={"image_id": source["id"], "scale": 2})
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"] == f"/v1/generations/{answer.json()['id']}"
    job = server.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["settings"]["upscaler"] == "Lanczos" and job["settings"]["scale"] == 2
    [upscaled] = job["images"]
    assert (upscaled["width"], upscaled["height"]) == (source["width"] * 2, source["height"] * 2)
    assert upscaled["source_image_id"] == source["id"]
    # the same picture, larger
    assert _like(_picture(server, source), _picture(server, upscaled)) < 3
    # the history lists both; the new one keeps how its source was made, the upscale added
    history = server.get("/v1/images").json()["images"]
    assert [i["id"] for i in history] == [upscaled["id"], source["id"]]
    assert upscaled["prompt"] == "a red circle" and upscaled["seed"] == 3
    content = server.get(upscaled["url"]).content
    parameters = read_texts(content)["parameters"]
    assert parameters.startswith("a red circle\n")
    assert parameters.endswith("Postprocess upscale by: 2, Postprocess upscaler: Lanczos")
    assert read_info_bytes(content).seed == 3


def test_an_upscaler_model_is_listed_with_its_scale_and_runs_until_the_factor(
    make_server, upscaler_models
):
    server = make_server(models_dirs=[upscaler_models])
    listed = {x["name"]: x for x in server.get("/v1/upscalers").json()["upscalers"]}
    assert listed["Lanczos"]["kind"] == "resize"
    assert listed["2x-Compact"] | {} == {"name": "2x-Compact", "kind": "model",
        "architecture": "RealESRGAN Compact", "scale": 2, "broken": None}  # fmt: skip
    assert listed["RealESRGAN_x4plus_anime_6B"]["architecture"] == "ESRGAN"
    assert listed["RealESRGAN_x4plus_anime_6B"]["scale"] == 4
    assert "cannot be read as an upscaler" in listed["broken"]["broken"]
    # A1111's list has them too, for its clients' upscaler menus
    a1111 = server.get("/sdapi/v1/upscalers").json()
    assert {"name": "2x-Compact", "model_name": "RealESRGAN Compact", "model_path": None,
            "model_url": None, "scale": 2.0} in a1111  # fmt: skip

    source = server.generate(prompt="a blue square")["images"][0]
    # a 2x model asked for 4x runs twice (as A1111 does), its name in any case
    answer = server.post(
        "/v1/upscales", json={"image_id": source["id"], "scale": 4, "upscaler": "2x-compact"}
    )
    job = server.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["model"] == "2x-Compact"
    [upscaled] = job["images"]
    assert (upscaled["width"], upscaled["height"]) == (source["width"] * 4, source["height"] * 4)
    assert _like(_picture(server, source), _picture(server, upscaled)) < 8
    text = read_texts(server.get(upscaled["url"]).content)["parameters"]
    assert text.endswith("Postprocess upscale by: 4, Postprocess upscaler: 2x-Compact")


def test_a_picture_sent_with_the_request_is_upscaled_and_kept(server):
    sent = png((40, 30), "green")
    answer = server.post(
        "/v1/upscales",
        json={"image": base64.b64encode(sent).decode(), "scale": 3, "format": "webp"},
    )
    assert answer.status_code == 202, answer.text
    job = server.wait(answer.json()["id"])
    [upscaled] = job["images"]
    assert (upscaled["width"], upscaled["height"], upscaled["format"]) == (120, 90, "webp")
    assert upscaled["source_image_id"] is None
    colour = _picture(server, upscaled).convert("RGB").getpixel((60, 45))
    assert max(abs(a - b) for a, b in zip(colour, (0, 128, 0), strict=True)) <= 3  # lossy WebP
    assert (
        "Postprocess upscale by: 3" in read_texts(server.get(upscaled["url"]).content)["parameters"]
    )


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"scale": 2}, 400, "Name the picture to upscale"),
        ({"image_id": "0" * 32, "scale": 2}, 404, "You have no picture"),
        ({"image": "not base64!", "scale": 2}, 400, "neither an upload id nor"),
        ({"image": base64.b64encode(b"\x89PNG broken").decode()}, 400, "not a picture"),
        ({"image": base64.b64encode(png()).decode(), "scale": 0.5}, 400, "more than 1"),
        ({"image": base64.b64encode(png()).decode(), "scale": 9}, 400, "at most 8"),
        (
            {"image": base64.b64encode(png((2000, 1500))).decode(), "scale": 8},
            400,
            "at most 8192 pixels",
        ),  # fmt: skip
        (
            {"image": base64.b64encode(png()).decode(), "upscaler": "UltraMega"},
            404,
            "Choose one of: Lanczos, Nearest",
        ),  # fmt: skip
        ({"image": base64.b64encode(png()).decode(), "format": "gif"}, 400, "format is one of"),
        ({"image": base64.b64encode(png()).decode(), "steps": 3}, 422, "steps"),
    ],
)
def test_a_bad_upscale_is_refused_with_a_sentence_and_keeps_no_upload(server, body, status, words):
    answer = server.post("/v1/upscales", json=body)
    assert answer.status_code == status, answer.text
    assert words in answer.text
    with server.studio.db.session() as session:
        assert session.scalars(select(Upload)).all() == []
    assert server.get("/v1/generations").json()["generations"] == []


def test_another_users_picture_cannot_be_upscaled_nor_its_upscale_read(server):
    ann, bob = server.user("ann"), server.user("bob")
    source = server.generate(ann)["images"][0]
    refused = server.post("/v1/upscales", bob, json={"image_id": source["id"]})
    assert refused.status_code == 404 and "You have no picture" in refused.text
    job = server.post("/v1/upscales", ann, json={"image_id": source["id"]}).json()
    server.wait(job["id"], ann)
    assert server.get(f"/v1/generations/{job['id']}", bob).status_code == 404
    assert server.post(f"/v1/generations/{job['id']}/cancel", bob).status_code == 404
    assert server.get("/v1/images", bob).json()["images"] == []
    # nor ann's upload, named by its id
    sent = server.post("/v1/uploads", ann, files={"file": ("a.png", png(), "image/png")})
    upload = sent.json()["id"]
    refused = server.post("/v1/upscales", bob, json={"image": upload})
    assert refused.status_code == 404 and "You have no upload" in refused.text
    # and nothing without a key
    assert server.client.get("/v1/upscalers").status_code == 401
    assert server.client.post("/v1/upscales", json={"image_id": source["id"]}).status_code == 401
    assert server.client.post("/upscale", json={"image": upload}).status_code == 401


def test_an_oversized_or_hostile_upscale_is_refused_before_anything_is_kept(make_server):
    server = make_server(max_upload_bytes=50_000)
    big = base64.b64encode(png((400, 400)) + b"\0" * 60_000).decode()
    answer = server.post("/v1/upscales", json={"image": big})
    assert answer.status_code == 413 and "at most" in answer.text
    # a decompression bomb: a small file that claims a huge picture
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, format="PNG", optimize=True)
    answer = server.post("/v1/upscales", json={"image": base64.b64encode(bomb.getvalue()).decode()})
    assert answer.status_code in (400, 413) and "too large" in answer.text
    answer = server.post("/upscale", files={"image": ("x.png", b"\x89PNG\r\n\x1a\n" + b"x" * 100)})
    assert answer.status_code == 400 and "not a picture" in answer.text
    for junk in ({"image": 5}, {"scale": "lots"}, {"image_id": ["a"]}, [1, 2], "text"):
        answer = server.post("/v1/upscales", json=junk)
        assert answer.status_code == 422, answer.text
    with server.studio.db.session() as session:
        assert session.scalars(select(Upload)).all() == []


def test_a_broken_upscaler_file_is_refused_with_its_reason(make_server, upscaler_models):
    server = make_server(models_dirs=[upscaler_models])
    answer = server.post(
        "/v1/upscales", json={"image": base64.b64encode(png()).decode(), "upscaler": "broken"}
    )
    assert answer.status_code == 400
    assert "broken.pth cannot be read as an upscaler" in answer.json()["error"]["message"]


def test_dezgo_upscale_answers_with_the_picture(server):
    answer = server.post("/upscale", files={"image": ("in.png", png((32, 16), "blue"))})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(answer.content))
    assert picture.size == (128, 64)  # Dezgo's upscale is 4x
    job = server.get(f"/v1/generations/{answer.headers['X-Job-Id']}").json()
    assert job["source"] == "dezgo" and job["images"][0]["width"] == 128
    two = server.post("/upscale", json={"image": base64.b64encode(png()).decode(),
                                        "upscale_factor": "2"})  # fmt: skip
    assert Image.open(io.BytesIO(two.content)).size == (128, 96)
    missing = server.post("/upscale", json={"upscale_factor": 2})
    assert missing.status_code == 400 and "needs image" in missing.text


def test_a1111s_hires_fix_takes_an_upscaler_model_by_name(make_server, upscaler_models):
    server = make_server(models_dirs=[upscaler_models])
    asked = {"prompt": "a red circle", "width": 64, "height": 64, "steps": 4, "enable_hr": True,
             "hr_scale": 2, "hr_second_pass_steps": 6, "denoising_strength": 0.5}  # fmt: skip
    answer = server.post("/sdapi/v1/txt2img", json=asked | {"hr_upscaler": "2x-Compact"})
    assert answer.status_code == 200, answer.text
    picture = Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0])))
    assert picture.size == (128, 128)
    assert "Hires upscaler: 2x-Compact" in picture.info["parameters"]
    unknown = server.post("/sdapi/v1/txt2img", json=asked | {"hr_upscaler": "4x-UltraSharp"})
    assert unknown.status_code == 422
    assert "Choose one of: Latent" in unknown.json()["detail"]
    assert "2x-Compact" in unknown.json()["detail"]
