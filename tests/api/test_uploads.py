"""Uploads for image-to-image and inpainting, reading settings out of a picture, and the
image modes through the API."""

import io
import struct
import zlib

from PIL import Image

from sfumato.demo.analyze import analyze
from tests.api.conftest import png


def _upload(server, content: bytes, name="picture.png"):
    return server.post("/v1/uploads", files={"file": (name, content, "application/octet-stream")})


def test_an_upload_is_kept_upright_as_png(server):
    photo = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held sideways: rotate 90 degrees to view
    Image.new("RGB", (80, 40), "blue").save(photo, format="JPEG", exif=exif)
    answer = _upload(server, photo.getvalue(), "photo.jpg")
    assert answer.status_code == 201, answer.text
    upload = answer.json()
    assert (upload["width"], upload["height"]) == (40, 80)
    kept = server.get(upload["url"])
    assert kept.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(kept.content)).size == (40, 80)


def _bomb() -> bytes:
    """A tiny PNG whose header claims 100000 x 100000 pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_what_is_not_a_whole_reasonable_picture_is_refused_with_a_sentence(make_server):
    server = make_server(max_upload_bytes=200_000)
    cases = [
        (b"this is a text file", 400, "not a picture"),
        (png()[:-30], 400, "not a picture"),  # truncated
        (_bomb(), 400, "megapixels"),
        (b"", 400, "empty"),
        (b"\0" * 300_000, 413, "MB"),
    ]
    for content, status, words in cases:
        answer = _upload(server, content)
        assert answer.status_code == status, (words, answer.text)
        assert words in answer.json()["error"]["message"], answer.text
    assert server.post("/v1/uploads").status_code == 422  # no file at all


def test_image_info_reads_the_settings_and_seed_of_a_picture(server):
    job = server.generate(prompt="a green triangle", seed=1234, steps=5)
    made = server.get(job["images"][0]["url"]).content
    info = server.post("/v1/image-info", files={"file": ("x.png", made, "image/png")})
    assert info.status_code == 200
    assert info.json()["seed"] == 1234 and info.json()["prompt"] == "a green triangle"
    assert info.json()["steps"] == 5
    a1111 = png(pnginfo=_a1111_text())
    read = server.post("/v1/image-info", files={"file": ("a.png", a1111, "image/png")}).json()
    assert read["tool"] == "A1111" and read["seed"] == 42
    plain = server.post("/v1/image-info", files={"file": ("p.png", png(), "image/png")})
    assert plain.status_code == 422
    assert plain.json()["error"]["message"] == "There is no generation data in this image."
    junk = server.post("/v1/image-info", files={"file": ("j.png", b"junk", "image/png")})
    assert junk.status_code == 400


def _a1111_text():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(
        "parameters",
        "a cat\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, "
        "Size: 512x512, Model: dreamshaper",
    )
    return info


def test_image_to_image_from_an_upload_keeps_the_pictures_proportions(server):
    upload = _upload(server, png((128, 64), "yellow")).json()
    job = server.generate(prompt="a red circle", init_image=upload["id"], strength=0.6, width=128)
    assert job["status"] == "succeeded", job
    assert job["settings"]["mode"] == "img2img" and job["settings"]["strength"] == 0.6
    image = job["images"][0]
    assert (image["width"], image["height"]) == (128, 64)  # the height follows the picture


def test_inpainting_with_base64_pictures_keeps_what_is_outside_the_mask(server):
    import base64

    picture = base64.b64encode(png((64, 64), "blue")).decode()
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    job = server.generate(
        prompt="a red circle on a blue background",
        init_image="data:image/png;base64," + picture,
        mask_image=base64.b64encode(buffer.getvalue()).decode(),
        seed=3,
    )
    assert job["status"] == "succeeded", job
    assert job["settings"]["mode"] == "inpaint"
    result = Image.open(io.BytesIO(server.get(job["images"][0]["url"]).content)).convert("RGB")
    assert result.getpixel((2, 2)) == (0, 0, 255)  # outside the mask: the upload's own pixels
    assert analyze(result).background == "blue"
    uploads_made = len(list((server.studio.files.root / "uploads").rglob("*.png")))
    assert uploads_made == 2  # the base64 pictures were kept as uploads for the queue


def test_a_mask_without_a_picture_is_refused(server):
    mask = _upload(server, png()).json()["id"]
    answer = server.post("/v1/generations", json={"prompt": "x", "mask_image": mask})
    assert answer.status_code == 400 and "needs its picture" in answer.json()["error"]["message"]


def test_an_upload_can_be_deleted_at_once(server):
    upload = _upload(server, png()).json()
    (kept,) = (server.studio.files.root / "uploads").rglob("*.png")
    answer = server.client.delete(f"/v1/uploads/{upload['id']}", headers=server.user().headers)
    assert answer.json() == {"deleted": 1} and not kept.exists()
    assert server.get(upload["url"]).status_code == 404


def test_hostile_pictures_get_an_answer_never_a_server_error(server):
    """The hostile corpus (tests/metadata/test_hostile.py) on every route that reads it."""
    import time

    from tests.metadata.test_hostile import HOSTILE

    for name, content in HOSTILE.items():
        started = time.perf_counter()
        info = server.post("/v1/image-info", files={"file": ("h.png", content, "image/png")})
        assert info.status_code in (200, 422), (name, info.text)
        assert "NaN" not in info.text and "Infinity" not in info.text, name
        assert time.perf_counter() - started < 2, name
        assert _upload(server, content).status_code in (201, 400), name  # 400: a sentence
