"""A hostile corpus (issue 23): each class of bad input an attacker or a clumsy client sends,
to every route that reads it, on a real app. Every answer must be a 4xx JSON error with a
sentence, never a 500; another user's ids must be 404."""

from __future__ import annotations

import base64
import time

import pytest
from fastapi.testclient import TestClient

from sfumato.api import bodies

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
HUGE = "x" * 2_000_000
NEST = 100_000

# (name, content, headers): sent to every operation that takes a body
HOSTILE_BODIES = [
    ("deep list", b"[" * NEST, JSON),
    ("deep list, no content type", b"[" * NEST, {}),
    ("deep object", b'{"a":' * 500 + b"1" + b"}" * 500, JSON),
    ("deep but parseable", b'{"prompt":' + b"[" * 40 + b"]" * 40 + b"}", JSON),
    ("deep +json", b"[" * NEST, {"Content-Type": "application/vnd.api+json"}),
    (
        "huge strings",
        ('{"prompt":"%s","username":"%s","password":"%s","name":"%s"}' % ((HUGE,) * 4)).encode(),
        JSON,
    ),  # noqa: E501
    (
        "wrong types",
        b'{"prompt":["x"],"username":{},"password":5,"name":5,"ids":5,"width":"big",'
        b'"favourite":"maybe","steps":{"a":1},"default_model":[1]}',
        JSON,
    ),
    ("NaN", b'{"prompt":"x","guidance":NaN,"username":"ann","password":NaN}', JSON),
    ("Infinity", b'{"prompt":"x","seed":Infinity,"steps":-Infinity,"name":"k"}', JSON),
    ("a huge number", b'{"prompt":"x","seed":1e999,"width":1' + b"0" * 5000 + b"}", JSON),
    ("not UTF-8", b'{"prompt":"\xff\xfe\x80","username":"\xc3\x28"}', JSON),
    ("not UTF-8, a form", b"prompt=%FF%FE&username=%C3%28&password=%80", FORM),
    ("empty", b"", JSON),
    ("empty, no content type", b"", {}),
    ("blank", b"   \n", JSON),
    ("null", b"null", JSON),
    ("a list", b"[1, 2]", JSON),
    ("a string", b'"prompt"', JSON),
    ("truncated", b'{"prompt": "a red', JSON),
    ("a trailing-newline name", b'{"username":"ann\\n","password":"a long password"}', JSON),
]
# A1111's options: any key is accepted, and all but the model ignored, as A1111's clients
# post back the whole of what they read
TAKES_ANY_OBJECT = {"/sdapi/v1/options"}
SAME_FOR_EVERYONE = {"/object_info/{node_class}", "/models/{folder}"}
B64 = base64.urlsafe_b64encode
FORGED_CURSORS = [
    B64(b"2026-01-01|abc").decode(),
    B64(b"0000-01-01T00:00:00+00:00|" + b"a" * 32).decode(),
    B64(b"999999999-12-31T23:59:59+00:00|" + b"a" * 32).decode(),
    B64(b"\xff\xfe\xfd|\x80").decode(),
    "!!!not base64!!!",
    "A" * 10_000,
]


def _is_sentence(answer) -> bool:
    error = answer.json().get("error", {})
    message = error.get("message", "")
    return bool(error.get("code")) and len(message) > 8 and message.rstrip().endswith(".")


@pytest.fixture
def attacked(server):
    """The app, its admin ann with one picture, one upload and one key, and mallory."""
    ann = server.user("ann")
    job = server.generate(ann, steps=1, width=64, height=64)
    upload = server.post("/v1/uploads", ann, files={"file": ("a.png", _png())}).json()
    keys = server.get("/v1/keys", ann).json()
    ids = {
        "image_id": job["images"][0]["id"],
        "job_id": job["id"],
        "upload_id": upload["id"],
        "user_id": 1,  # ann, on the admin's user routes
        "key_id": (keys["keys"] if isinstance(keys, dict) else keys)[0]["id"],
        "prompt_id": job["id"],  # ComfyUI's /history/{prompt_id}
        "name": "portrait",  # a saved workflow's
        "node_class": "KSampler",  # ComfyUI's /object_info/{node_class}
        "folder": "checkpoints",  # and /models/{folder}
    }
    mallory = server.user("mallory")
    client = TestClient(server.client.app, raise_server_exceptions=False)  # a 500 answers
    return server, client, ids, mallory


def _png() -> bytes:
    from tests.api.conftest import png

    return png()


def test_hostile_inputs_never_get_a_500(attacked):
    server, client, ids, mallory = attacked
    started = time.monotonic()
    paths = client.get("/openapi.json").json()["paths"]
    sent, failures = 0, []

    def check(method, path, answer, expect=None):
        nonlocal sent
        sent += 1
        ok = (
            400 <= answer.status_code < 500
            and answer.headers.get("content-type", "").startswith("application/json")
            and _is_sentence(answer)
        )
        if expect is not None:
            ok = ok and answer.status_code in expect
        if not ok:
            failures.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")

    # every body to every operation that reads one, as mallory (with ann's ids in the path)
    for template, methods in paths.items():
        path = template.format(**ids)
        for method, operation in methods.items():
            if "requestBody" not in operation:
                continue
            for _name, content, headers in HOSTILE_BODIES:
                answer = client.request(
                    method, path, content=content, headers=mallory.headers | headers
                )
                if path in TAKES_ANY_OBJECT and answer.status_code == 200:
                    continue  # an object of any keys is a valid body there
                check(method, path, answer)
            # and with no credentials at all
            answer = client.request(method, path, content=b"[" * NEST, headers=JSON)
            check(method, path, answer)

    # another user's ids, on every route that takes one: 404, as if they did not exist
    for template, methods in paths.items():
        if "{" not in template:
            continue
        path = template.format(**ids)
        for method in methods:
            body = b'{"favourite": true}'  # what PATCH needs, so only the id is wrong
            answer = client.request(method, path, headers=mallory.headers | JSON, content=body)
            if template in SAME_FOR_EVERYONE:  # ComfyUI's lists of nodes and models
                assert answer.status_code == 200, path
                continue
            if template == "/history/{prompt_id}":  # ComfyUI's answer for a prompt it has not
                assert (answer.status_code, answer.json()) == (200, {}), path
                continue
            # an admin's route refuses a plain user whatever the id; others answer 404 (a
            # run may first be refused for the submits mallory made above)
            admins = "/v1/admin/" in path or path.endswith(("/publish", "/unpublish"))
            expect = {403} if admins else {404, 429} if path.endswith("/runs") else {404}
            check(method, path, answer, expect=expect)

    # forged cursors and query values of the wrong shape
    for cursor in FORGED_CURSORS:
        answer = client.get("/v1/images", params={"cursor": cursor}, headers=mallory.headers)
        check("GET", "/v1/images?cursor", answer, expect={400, 422})
    for query in ({"limit": "NaN"}, {"limit": "1e999"}, {"since": "0000-00-00"}):
        answer = client.get("/v1/images", params=query, headers=mallory.headers)
        check("GET", f"/v1/images?{query}", answer)

    # Origin: null on login and sign-up (login CSRF from a sandboxed frame)
    for path in ("/v1/auth/login", "/v1/auth/signup"):
        answer = client.post(
            path,
            json={"username": "eve", "password": "a long password"},
            headers={"Origin": "null"},
        )
        check("POST", f"{path} Origin: null", answer, expect={403})

    # trailing-newline and look-alike names at sign-up: refused, never a second "ann"
    for name in ("ann\n", "ann\r\n", "аnn", "ann\u200b"):
        answer = client.post("/v1/auth/signup", json={"username": name, "password": "long enough"})
        check("POST", f"/v1/auth/signup {name!r}", answer)
        assert answer.status_code != 201

    elapsed = time.monotonic() - started
    print(f"hostile corpus: {sent} requests, {len(failures)} wrong answers, {elapsed:.1f} s")
    assert not failures, "\n".join(failures)
    assert sent > 300


def test_a_body_over_the_size_limit_is_413_before_it_is_parsed(make_server):
    server = make_server(max_upload_bytes=10_000)  # the JSON limit is 3x this + 1 MB
    user = server.user("ann")
    too_big = b'{"prompt":"' + b"x" * bodies.max_bytes(10_000) + b'"}'
    for path in (
        "/v1/generations",
        "/text2image",
        "/openai/v1/images/generations",
        "/v1/auth/login",
    ):
        answer = server.client.post(path, content=too_big, headers=user.headers | JSON)
        assert answer.status_code == 413 and _is_sentence(answer), answer.text


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"[" * NEST, "deep"),
        (b"[" * (bodies.MAX_DEPTH + 1) + b"]" * (bodies.MAX_DEPTH + 1), "deep"),
        (b'{"a": NaN}', "NaN"),
        (b'{"a": -Infinity}', "Infinity"),
        (b"\xff", "UTF-8"),
        (b"", "empty"),
        (b"{", "not valid JSON"),
    ],
)
def test_the_one_json_parser_refuses_with_a_sentence(raw, says):
    from sfumato.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match=says):
        bodies.parse(raw)


def test_the_one_json_parser_takes_what_clients_send():
    depth = bodies.MAX_DEPTH
    assert bodies.parse(b"[" * depth + b"]" * depth) is not None
    assert bodies.parse(b'{"prompt": "\\u00e9t\xc3\xa9", "seed": 1e300}')["seed"] == 1e300
