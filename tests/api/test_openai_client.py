"""The real `openai` SDK, over HTTP, against a real `sfumato serve` with the demo model: it
works unchanged but for its base URL and key (generations with b64_json and url, an edit with
a transparent-mask PNG, OpenAI's model names, the models list), raises its own exceptions for
sfumato's refusals, and the example on docs/clients.md runs as written."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from tests.fixtures.served import Served, data_env

ROOT = Path(__file__).parents[2]
FAST = {"steps": 2}  # sfumato's own field, through the SDK's extra_body


def _account(url: str, name: str, scopes=("generate", "read")) -> str:
    """A new account's API key, made as a person would: sign up, then make a key."""
    with httpx.Client(base_url=url) as http:
        answer = http.post("/v1/auth/signup", json={"username": name, "password": "long enough"})
        assert answer.status_code == 201, answer.text
        made = http.post(
            "/v1/keys",
            json={"name": "openai", "scopes": list(scopes)},
            headers={"X-CSRF-Token": answer.json()["csrf_token"]},
        )
        assert made.status_code == 201, made.text
        return made.json()["key"]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    server = Served(data_env(tmp_path_factory.mktemp("served")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def key(served) -> str:
    return _account(served.url, "ann")


def _client(served, key: str) -> openai.OpenAI:
    # no retries: a refusal is the answer under test, not something to wait out
    return openai.OpenAI(
        base_url=f"{served.url}/openai/v1", api_key=key, max_retries=0, timeout=120
    )


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_generations_with_b64_json_and_url(served, key):
    client = _client(served, key)
    answer = client.images.generate(
        model="dall-e-3",  # not sfumato's: the default model
        prompt="a red circle at the top on a blue background",
        n=2,
        size="1024x1024",
        extra_body=FAST,
    )
    assert answer.size == "64x64" and answer.output_format == "png"  # the demo's scale
    assert len(answer.data) == 2
    picture = Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json)))
    assert picture.size == (64, 64)

    linked = client.images.generate(
        model="gpt-image-1", prompt="a blue square", response_format="url", extra_body=FAST
    )
    url = linked.data[0].url
    fetched = httpx.get(url, headers={"Authorization": f"Bearer {key}"})  # as Open WebUI does
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    stranger = _account(served.url, "bob")
    assert httpx.get(url, headers={"Authorization": f"Bearer {stranger}"}).status_code == 404
    assert httpx.get(url).status_code == 401

    assert [m.id for m in client.models.list()] == ["sfumato-demo"]


def test_an_edit_with_a_transparent_mask(served, key):
    green = Image.new("RGB", (64, 64), (0, 128, 0))
    mask = green.convert("RGBA")  # OpenAI's guide: the picture's copy, the part to
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))  # repaint made fully transparent
    answer = _client(served, key).images.edit(
        image=("picture.png", _png(green), "image/png"),
        mask=("mask.png", _png(mask), "image/png"),
        prompt="a red circle",
        extra_body=FAST,
    )
    result = Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json))).convert("RGB")
    assert result.getpixel((60, 30)) == (0, 128, 0)  # opaque in the mask: kept
    assert any(result.getpixel((x, 30)) != (0, 128, 0) for x in range(0, 30, 2))


def test_refusals_raise_the_sdks_own_exceptions(served, key):
    client = _client(served, key)
    with pytest.raises(openai.BadRequestError) as bad:
        client.images.generate(prompt="x", size="huge")
    assert bad.value.param == "size" and "WIDTHxHEIGHT" in bad.value.message
    with pytest.raises(openai.AuthenticationError) as unknown:
        _client(served, "not a key").images.generate(prompt="x")
    assert unknown.value.code == "invalid_api_key"
    reader = _account(served.url, "carol", scopes=("read",))
    with pytest.raises(openai.PermissionDeniedError, match="generate"):
        _client(served, reader).images.generate(prompt="x")
    # past 60 requests a minute (refused ones count): RateLimitError, with when to retry
    dave = _client(served, _account(served.url, "dave"))
    for _ in range(60):
        with pytest.raises(openai.BadRequestError):
            dave.images.generate(prompt="x", size="huge")
    with pytest.raises(openai.RateLimitError) as throttled:
        dave.images.generate(prompt="x")
    assert throttled.value.code == "rate_limit_exceeded"
    assert int(throttled.value.response.headers["retry-after"]) > 0


def test_the_example_on_the_clients_page_runs(served, key, tmp_path, monkeypatch):
    page = (ROOT / "docs" / "clients.md").read_text()
    section = page.split("## OpenAI's Images API", 1)[1]
    (example,) = re.findall(r"```python\n(.+?)\n```", section, re.DOTALL)[:1]
    example = example.replace("http://localhost:8000", served.url)
    example = example.replace("YOUR_SFUMATO_KEY", key)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "docs/clients.md", "exec"), {})
    with Image.open(tmp_path / "picture.png") as picture:
        assert picture.size == (64, 64)
