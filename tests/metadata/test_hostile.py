"""Hostile pictures: the reader answers each in bounded time and memory, with a well-formed
GenerationInfo or a sentence (NoGenerationData, InvalidRequest), never anything else.

``HOSTILE`` is the corpus; tests/api/test_uploads.py sends it to every route that reads
metadata."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib

import pytest
from PIL import Image, PngImagePlugin

from sfumato.errors import InvalidRequest, NoGenerationData
from sfumato.metadata.read import read_info_bytes


def png(*chunks: tuple[bytes, bytes], size=(8, 8)) -> bytes:
    """A PNG with these raw (kind, data) chunks after its pixels, as some tools write them."""
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, "PNG")
    whole = buffer.getvalue()
    body = b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks
    )
    return whole[:-12] + body + whole[-12:]  # before IEND


def text(key: str, value: str) -> tuple[bytes, bytes]:
    return b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")


def ztext(key: str, value: str) -> tuple[bytes, bytes]:
    return b"zTXt", key.encode() + b"\0\0" + zlib.compress(value.encode("latin-1"), 9)


def itext(key: str, value: str) -> tuple[bytes, bytes]:
    data = key.encode() + b"\0\1\0\0\0" + zlib.compress(value.encode(), 9)
    return b"iTXt", data


SETTINGS = "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512"
COMFY_LIST_INPUTS = {
    "3": {"class_type": "KSampler", "inputs": [1, 2]},
    "4": {
        "class_type": "KSampler",
        "inputs": {"steps": 1, "cfg": 2, "sampler_name": "euler", "latent_image": ["5", 0],
                   "model": [[1], 0], "positive": ["6", 0]},
    },
    "5": {"class_type": "EmptyLatentImage", "inputs": [512, 512]},
    "6": {"class_type": "CLIPTextEncode", "inputs": "a cat"},
}  # fmt: skip

HOSTILE = {
    # item 1: quadratic patterns and inflation
    "30,000 of one letter": png(text("parameters", "a" * 30_000)),
    "a 1 KB zTXt inflating to 900,000": png(ztext("parameters", "a" * 900_000)),
    "an iTXt inflating past 1 MB": png(itext("parameters", "a" * 3_000_000)),
    "300,000 colons": png(ztext("parameters", "a: " * 300_000)),
    "unclosed quotes": png(ztext("parameters", 'a: "x, ' * 100_000)),
    "sd-parsers' Hashes pattern": png(ztext("parameters", "Hashes: {" * 100_000)),
    "unclosed lora tags": png(ztext("parameters", "<lora:a:" * 100_000 + "\n" + SETTINGS)),
    # item 2: numbers and shapes
    "A1111 nan and inf": png(
        text("parameters", "a\nSteps: 20, CFG scale: nan, Seed: inf, Denoising strength: -inf")
    ),
    "A1111 huge numbers": png(
        text("parameters", f"a\nSteps: {'9' * 5000}, CFG scale: 1e999, Seed: 1e999, Size: 9x9")
    ),
    "sfumato NaN and 1e999": png(
        text(
            "sfumato",
            '{"settings": {"guidance": NaN, "seed": 1e999, "steps": Infinity, "prompt": [1],'
            ' "strength": -Infinity, "loras": [["a", NaN, 1], [{}, 1e999, []]],'
            ' "family": {"x": NaN}}, "generator": 1e999, "model": {"name": [1], "hash": 2}}',
        )
    ),
    "sfumato seed too large": png(
        text("sfumato", '{"settings": {"seed": ' + "9" * 30 + ', "prompt": "x"}}')
    ),
    "deeply nested sfumato JSON": png(ztext("sfumato", "[" * 200_000)),
    "deeply nested ComfyUI JSON": png(
        ztext("prompt", '{"a":' * 100_000), ztext("workflow", "[" * 100_000)
    ),
    "ComfyUI inputs as lists": png(text("prompt", json.dumps(COMFY_LIST_INPUTS))),
    "ComfyUI NaN": png(
        text(
            "prompt",
            '{"3": {"inputs": {"steps": NaN, "cfg": Infinity, "sampler_name": 1,'
            ' "seed": 1e999, "denoise": NaN}}}',
        )  # fmt: skip
    ),
    "InvokeAI NaN": png(text("invokeai_metadata", '{"cfg_scale": NaN, "seed": 1e999}')),
}


def read(content: bytes) -> dict | None:
    """The answer as the API sends it (strict JSON), or None for a sentence."""
    try:
        info = read_info_bytes(content)
    except (NoGenerationData, InvalidRequest):
        return None
    return json.loads(json.dumps(info.to_dict(), allow_nan=False))


@pytest.mark.parametrize("name", HOSTILE)
def test_every_hostile_picture_is_read_quickly_into_strict_json_or_a_sentence(name):
    content = HOSTILE[name]
    assert len(content) < 40_000  # each is a small file
    started = time.perf_counter()
    read(content)
    assert time.perf_counter() - started < 1.0, name  # was 6 s, minutes, a RecursionError...


def test_numbers_that_are_not_finite_or_in_range_read_as_none():
    a1111 = read(HOSTILE["A1111 nan and inf"])
    assert (a1111["guidance"], a1111["seed"], a1111["strength"], a1111["steps"]) == (
        None,
        None,
        None,
        20,
    )
    own = read(HOSTILE["sfumato NaN and 1e999"])
    assert own["tool"] == "sfumato"
    assert (own["guidance"], own["seed"], own["steps"], own["strength"]) == (None,) * 4
    assert own["prompt"] == "" and own["model"] is None and own["model_hash"] is None
    assert own["loras"] == [{"name": "a", "weight": None, "hash": None}]
    assert own["extra"]["family"] == '{"x": null}' and own["extra"]["generator"] is None
    assert read(HOSTILE["sfumato seed too large"])["seed"] is None


def test_comfyui_nodes_of_the_wrong_shape_are_skipped():
    info = read(HOSTILE["ComfyUI inputs as lists"])
    assert info["tool"] == "ComfyUI" and (info["steps"], info["guidance"]) == (1, 2.0)
    assert info["width"] is None and info["prompt"] == ""
    nan = read(HOSTILE["ComfyUI NaN"])
    assert (nan["steps"], nan["guidance"], nan["seed"], nan["sampler"]) == (None,) * 4


def test_text_chunks_are_bounded_and_read_wherever_they_are():
    # inflating past Pillow's MAX_TEXT_CHUNK (1 MB) is stopped there: the chunk is skipped
    assert read(png(itext("parameters", "a\n" + SETTINGS + "x" * 1_100_000))) is None
    long = read(png(ztext("parameters", "a" * 900_000 + "\n" + SETTINGS)))
    assert long["seed"] == 42 and len(long["prompt"]) == 900_000
    # a settings line longer than any real one is not one
    assert read(png(text("parameters", "a\n" + SETTINGS + ", X: y" * 20_000))) is None
    both = read(png(itext("parameters", "東京\n" + SETTINGS)))
    assert both["prompt"] == "東京" and both["steps"] == 20


def test_the_settings_line_keeps_quoted_values_and_skips_junk():
    line = 'junk, Steps: 5, Model: "a, b: c", Lora hashes: "x: 1, y: 2", CFG scale: 3, Seed: 4'
    info = read(png(text("parameters", "p <lora:x:0.5> <LORA:y>\n" + line)))
    assert (info["steps"], info["model"], info["guidance"], info["seed"]) == (5, "a, b: c", 3, 4)
    assert info["loras"] == [
        {"name": "x", "weight": 0.5, "hash": "1"},
        {"name": "y", "weight": 1.0, "hash": "2"},
    ]
    unclosed = read(png(text("parameters", 'p\nSteps: 5, Model: "a, CFG scale: 3, Seed: 4')))
    assert (unclosed["model"], unclosed["seed"]) == ('"a', 4)


def test_image_info_never_decodes_the_pixels(monkeypatch):
    from PIL import ImageFile

    def refuse(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    content = png(text("parameters", "a cat\n" + SETTINGS), size=(64, 64))
    assert read(content)["seed"] == 42
    jpeg = io.BytesIO()
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + ("a\n" + SETTINGS).encode("utf-16-be")
    monkeypatch.undo()
    Image.new("RGB", (8, 8)).save(jpeg, "JPEG", exif=exif)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    assert read(jpeg.getvalue())["seed"] == 42


def test_pillow_written_text_still_reads():
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a\n" + SETTINGS, zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG", pnginfo=info)
    assert read(buffer.getvalue())["seed"] == 42


def test_the_reader_benchmark_is_linear():
    from benchmarks.metadata_reader import measure

    (small, large) = measure(repeat=3)["A1111 text"]
    assert large / small < 30 and large < 1000  # ~10 when linear, 100 when quadratic (ms)
