"""OpenAI's Images API at /openai/v1, over raw HTTP as Open WebUI and LibreChat send it (read
from their sources): the answer's shape, sizes at the model's scale, url pictures only their
owner fetches, edits whose mask's transparent pixels are repainted, variations, the models
list, and errors in OpenAI's shape on this door only. The SDK's own test is
tests/test_openai_client.py."""

from __future__ import annotations

import base64
import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from sfumato.api.app import create_app
from sfumato.studio import Studio, StudioConfig
from tests.api.conftest import Server, png

GENERATIONS = "/openai/v1/images/generations"
FAST = {"steps": 2}  # sfumato's own field, as LocalAI takes them: the tests' pictures are quick


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One app for the module (the demo model loads once)."""
    folder = tmp_path_factory.mktemp("openai")
    studio = Studio(StudioConfig(data_dir=folder / "data", models_dirs=[folder / "models"]))
    with TestClient(create_app(studio)) as client:
        yield Server(client, studio)


def _picture(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def _job(server, answer, user=None) -> dict:
    return server.get(f"/v1/generations/{answer.headers['x-job-id']}", user).json()


def test_a_generation_answers_in_openai_shape_at_the_models_scale(server):
    answer = server.post(
        GENERATIONS,
        json={"model": "dall-e-3", "prompt": "a red circle", "n": 2, "size": "1536x1024"}
        | FAST
        | {"seed": 7, "negative_prompt": "blue"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # the demo model draws at 64x64: OpenAI's 1536x1024 is that scale at 3:2
    assert body["size"] == "96x64" and body["output_format"] == "png"
    assert body["quality"] == "auto" and isinstance(body["created"], int)
    assert len(body["data"]) == 2
    for item in body["data"]:
        assert set(item) == {"b64_json", "revised_prompt"}  # no url: b64_json is the default
        assert item["revised_prompt"] == "a red circle"
        picture = _picture(item["b64_json"])
        assert (picture.format, picture.size) == ("PNG", (96, 64))
        assert "a red circle" in picture.info["parameters"]  # sfumato's metadata, as always
    job = _job(server, answer)  # one job of two, in the history like any other
    assert job["source"] == "openai" and job["model"] == "sfumato-demo"  # dall-e-3: the default
    settings = job["settings"]
    assert (settings["batch_size"], settings["steps"], settings["seed"]) == (2, 2, 7)
    assert settings["negative_prompt"] == "blue"


def test_sizes_auto_and_formats(server):
    auto = server.post(
        GENERATIONS,
        json={"prompt": "a blue square", "size": "auto", "output_format": "jpeg"} | FAST,
    ).json()
    assert auto["size"] == "64x64" and auto["output_format"] == "jpeg"
    assert _picture(auto["data"][0]["b64_json"]).format == "JPEG"
    # sfumato's own width and height win over size
    exact = server.post(
        GENERATIONS, json={"prompt": "x", "size": "1024x1024", "width": 72, "height": 64} | FAST
    ).json()
    assert exact["size"] == "72x64"


def test_a_url_answer_is_fetched_with_the_same_key_and_by_nobody_else(server):
    ann, bob = server.user("ann"), server.user("bob")
    answer = server.post(
        GENERATIONS,
        ann,
        json={"prompt": "a red circle", "response_format": "url", "output_format": "webp"} | FAST,
    )
    (item,) = answer.json()["data"]
    assert set(item) == {"url", "revised_prompt"}
    assert item["url"].startswith("http://testserver/v1/images/")  # absolute, as clients fetch
    picture = server.get(item["url"], ann)
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/webp"
    assert server.get(item["url"], bob).status_code == 404  # another user's: not found
    assert server.client.get(item["url"]).status_code == 401  # never public


def test_what_open_webui_and_librechat_send(server):
    # Open WebUI's OpenAI engine: JSON with its model (dall-e-2 when none is set), n, size,
    # and b64_json asked for
    webui = server.post(
        GENERATIONS,
        json={
            "model": "dall-e-2",
            "prompt": "a green triangle",
            "n": 1,
            "size": "512x512",
            "response_format": "b64_json",
        }
        | FAST,
    )
    assert webui.status_code == 200, webui.text
    assert _picture(webui.json()["data"][0]["b64_json"]).size == (64, 64)
    # LibreChat's image tool: gpt-image-1 with background, quality and size auto; it reads
    # data[0].b64_json only
    librechat = server.post(
        GENERATIONS,
        json={
            "model": "gpt-image-1",
            "prompt": "a green triangle",
            "n": 1,
            "background": "auto",
            "output_format": "png",
            "quality": "auto",
            "size": "auto",
            "moderation": "low",
            "user": "someone",
        }
        | FAST,
    )
    assert librechat.status_code == 200, librechat.text
    assert librechat.json()["data"][0]["b64_json"]
    # both edit with multipart, every field as text; LibreChat sends image[], Open WebUI
    # image (one picture) or image[] (several)
    for name in ("image", "image[]"):
        edit = server.post(
            "/openai/v1/images/edits",
            data={"model": "gpt-image-1", "prompt": "a red circle", "size": "auto", "n": "1"}
            | {"steps": "2"},
            files=[(name, ("a.png", png((64, 64), "green"), "image/png"))],
        )
        assert edit.status_code == 200, edit.text


def _mask_png(size=(64, 64)) -> bytes:
    """As OpenAI's guide makes one: the picture's copy whose part to repaint is fully
    transparent (here the left half), the rest opaque."""
    mask = Image.new("RGBA", size, (0, 128, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_edit_repaints_the_masks_transparent_pixels_only(server):
    green = png((64, 64), "green")
    answer = server.post(
        "/openai/v1/images/edits",
        data={"prompt": "a red circle", "seed": "3"} | {"steps": "2"},
        files=[
            ("image[]", ("first.png", green, "image/png")),
            ("image[]", ("second.png", png((64, 64), "blue"), "image/png")),  # not used
            ("mask", ("mask.png", _mask_png(), "image/png")),
        ],
    )
    assert answer.status_code == 200, answer.text
    result = _picture(answer.json()["data"][0]["b64_json"]).convert("RGB")
    assert result.getpixel((60, 30)) == (0, 128, 0)  # opaque in the mask: kept as it was
    left = [result.getpixel((x, y)) for x in range(0, 30, 3) for y in range(0, 64, 8)]
    assert any(pixel != (0, 128, 0) for pixel in left)  # transparent: repainted
    job = _job(server, answer)
    assert job["settings"]["strength"] == 1  # inpainting's
    # a mask with nothing transparent would repaint nothing: refused, naming the mask
    opaque = server.post(
        "/openai/v1/images/edits",
        data={"prompt": "x"},
        files={"image": ("a.png", green), "mask": ("m.png", png((64, 64), "white"))},
    )
    assert opaque.status_code == 400 and opaque.json()["error"]["param"] == "mask"
    # without a mask, an opaque picture is redrawn whole (image-to-image)
    whole = server.post(
        "/openai/v1/images/edits",
        data={"prompt": "a red circle"} | {"steps": "2"},
        files={"image": ("a.png", green)},
    )
    assert whole.status_code == 200, whole.text
    assert _job(server, whole)["settings"]["strength"] == 0.75
    missing = server.post("/openai/v1/images/edits", data={"prompt": "x"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "image"


def test_a_variation_keeps_the_pictures_own_prompt(server):
    made = server.post(GENERATIONS, json={"prompt": "a yellow cross"} | FAST).json()
    sfumato_picture = base64.b64decode(made["data"][0]["b64_json"])
    answer = server.post(
        "/openai/v1/images/variations",
        data={"n": "2", "size": "1024x1024"} | {"steps": "2"},
        files={"image": ("v.png", sfumato_picture, "image/png")},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["size"] == "64x64" and len(answer.json()["data"]) == 2
    settings = _job(server, answer)["settings"]
    assert settings["prompt"] == "a yellow cross" and settings["strength"] == 0.6
    plain = server.post(
        "/openai/v1/images/variations",
        data={"steps": "2"},
        files={"image": ("v.png", png((64, 64), "red"), "image/png")},
    )
    assert plain.status_code == 200, plain.text
    assert plain.json()["data"][0]["revised_prompt"] == "a detailed, high quality picture"


def test_the_models_list_and_model_names(server):
    listed = server.get("/openai/v1/models").json()
    assert listed["object"] == "list"
    (model,) = listed["data"]
    assert model["id"] == "sfumato-demo" and model["object"] == "model"
    assert isinstance(model["created"], int) and model["owned_by"]
    named = server.post(GENERATIONS, json={"prompt": "x", "model": "sfumato-demo"} | FAST)
    assert named.status_code == 200
    # a name that is partly sfumato's is not quietly replaced by the default
    wrong = server.post(GENERATIONS, json={"prompt": "x", "model": "sfumato-demo@9"})
    assert wrong.status_code == 404
    assert wrong.json()["error"]["code"] == "model_not_found"


def _error(answer, status: int, kind: str, param=None) -> dict:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert (error["type"], error["param"]) == (kind, param), error
    assert error["message"].endswith("."), error
    return error


def test_errors_are_openais_shape_here_and_sfumatos_elsewhere(server):
    ann = server.user("ann")
    for body, param in (
        ({"prompt": "x", "size": "big"}, "size"),
        ({"prompt": "x", "size": "0x512"}, "size"),
        ({"prompt": "x", "n": 11}, "n"),
        ({"prompt": "x", "response_format": "html"}, "response_format"),
        ({"prompt": "x", "output_format": "gif"}, "output_format"),
        ({"prompt": "x", "stream": True}, "stream"),
        ({"prompt": "x", "steps": "many"}, "steps"),
        ({"n": 1}, "prompt"),
    ):
        _error(server.post(GENERATIONS, ann, json=body), 400, "invalid_request_error", param)
    # the JSON reader, before any route
    broken = server.client.post(
        GENERATIONS, content=b"{", headers=ann.headers | {"Content-Type": "application/json"}
    )
    _error(broken, 400, "invalid_request_error")
    # no key, a wrong one
    for headers in ({}, {"Authorization": "Bearer nonsense"}):
        refused = server.client.post(GENERATIONS, json={"prompt": "x"}, headers=headers)
        assert _error(refused, 401, "authentication_error")["code"] == "invalid_api_key"
    # routes this door does not have, and methods
    chat = server.client.post("/openai/v1/chat/completions", headers=ann.headers, json={})
    assert "images/generations" in _error(chat, 404, "not_found_error")["message"]
    _error(server.get(GENERATIONS, ann), 405, "invalid_request_error")
    # sfumato's own routes keep sfumato's shape
    own = server.client.post("/v1/generations", json={"prompt": "x"})
    assert set(own.json()["error"]) == {"code", "message"}


def test_a_key_without_the_scope_and_the_throttle_are_refused_as_openai_says(server):
    server.user("carol")
    login = TestClient(server.client.app)
    answer = login.post("/v1/auth/login", json={"username": "carol", "password": "a long password"})
    made = login.post(
        "/v1/keys",
        json={"name": "read only", "scopes": ["read"]},
        headers={"X-CSRF-Token": answer.json()["csrf_token"]},
    ).json()
    reader = {"Authorization": f"Bearer {made['key']}"}
    refused = server.client.post(GENERATIONS, json={"prompt": "x"}, headers=reader)
    assert "generate" in _error(refused, 403, "permission_error")["message"]
    assert server.client.get("/openai/v1/models", headers=reader).status_code == 200
    # every request counts, refused or not: past 60 a minute, 429 with when to come back
    carol = server.user("carol")
    statuses = [
        server.post(GENERATIONS, carol, json={"prompt": "x", "size": "big"}).status_code
        for _ in range(60)
    ]
    assert set(statuses) == {400}
    throttled = server.post(GENERATIONS, carol, json={"prompt": "x"})
    assert _error(throttled, 429, "rate_limit_error")["code"] == "rate_limit_exceeded"
    assert int(throttled.headers["retry-after"]) > 0


def test_hostile_pictures_fields_and_keys_are_4xx_sentences(server):
    ann = server.user("ann")
    edits = "/openai/v1/images/edits"
    green = png((64, 64), "green")
    cases = [
        # a mask whose proportions are not the picture's cannot be laid on it
        ({"data": {"prompt": "x"}, "files": {"image": green, "mask": _mask_png((64, 32))}}, None),
        ({"data": {"prompt": "x"}, "files": {"image": green, "mask": b"not a picture"}}, "mask"),
        ({"data": {"prompt": "x"}, "files": {"image": b"GIF89a broken"}}, "image"),
        # JSON edits: base64 pictures only
        ({"json": {"prompt": "x", "image": [5]}}, "image"),
        ({"json": {"prompt": "x", "image": "%%% not base64"}}, None),
        ({"json": {"prompt": ["x"], "image": "aGk="}}, "prompt"),
        ({"json": {"prompt": "x" * 10_001}}, "prompt"),
        ({"json": {"prompt": "x", "n": "1e3"}}, "n"),
        ({"json": {"prompt": "x", "loras": "all of them"}}, "loras"),
    ]
    for kwargs, param in cases:
        path = GENERATIONS if "image" not in str(kwargs) else edits
        answer = server.post(path, ann, **kwargs)
        error = _error(answer, 400, "invalid_request_error", param)
        assert len(error["message"]) > 20, error
    # a size far past the bounds is brought within them, at the model's scale
    huge = server.post(GENERATIONS, ann, json={"prompt": "x", "size": "99999x99999"} | FAST)
    assert huge.status_code == 200 and huge.json()["size"] == "64x64"
    # a revoked key is refused as OpenAI refuses one
    login = TestClient(server.client.app)
    signed = login.post("/v1/auth/login", json={"username": "ann", "password": "a long password"})
    csrf = {"X-CSRF-Token": signed.json()["csrf_token"]}
    made = login.post("/v1/keys", json={"name": "short-lived"}, headers=csrf).json()
    assert login.delete(f"/v1/keys/{made['id']}", headers=csrf).status_code == 200
    revoked = server.client.get(
        "/openai/v1/models", headers={"Authorization": f"Bearer {made['key']}"}
    )
    _error(revoked, 401, "authentication_error")


def test_a_quota_is_a_permission_error_with_its_sentence(server):
    from tests.api.test_quotas import user_quotas

    erin = server.user("erin")
    user_quotas(server, "erin", job_megapixel_steps=0)  # no picture at all
    refused = server.post(GENERATIONS, erin, json={"prompt": "x"} | FAST)
    error = _error(refused, 403, "permission_error")
    assert error["code"] == "quota_exceeded" and "megapixel-steps" in error["message"]
    assert server.get("/v1/generations", erin).json()["generations"] == []  # nothing queued
