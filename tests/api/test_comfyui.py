"""ComfyUI's HTTP protocol on a real app (ASGI): a graph queued with POST /prompt, followed
through /history and /view as SillyTavern and Open WebUI follow it (their requests read from
their sources), the queue, uploads with ComfyUI's names, each user's files and prompts kept
from every other user, and hostile requests answered 4xx with a sentence, never a 500.

The WebSocket is tested in test_comfyui_ws.py, the comfy-api-simplified client in
test_comfyui_client.py (both against a real ``sfumato serve``)."""

from __future__ import annotations

import copy
import io
import itertools
import json
import time
import uuid

import pytest
from PIL import Image
from sqlalchemy import select

from sfumato.jobs.queue import claim_next
from sfumato.store.tables import Job, Upload
from tests.api.conftest import png

DEMO = "sfumato-demo"  # the bundled demo model, as /object_info lists it
# a new seed for each graph: the same graph again is not run again (its nodes are cached, as
# in ComfyUI), and the cache outlives one test's server
SEEDS = itertools.count(time.time_ns() % 10**12)


def default_graph(
    ckpt_name: str = DEMO, size: int = 64, steps: int = 2, seed: int | None = None
) -> dict:
    """ComfyUI's default text-to-image graph as its "Export (API)" writes it (the frontend's
    defaultGraph.ts), smaller and shorter unless told."""
    return {
        "3": {
            "inputs": {
                "seed": next(SEEDS) if seed is None else seed,
                "steps": steps,
                "cfg": 8,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
            "class_type": "KSampler",
            "_meta": {"title": "KSampler"},
        },
        "4": {
            "inputs": {"ckpt_name": ckpt_name},
            "class_type": "CheckpointLoaderSimple",
            "_meta": {"title": "Load Checkpoint"},
        },
        "5": {
            "inputs": {"width": size, "height": size, "batch_size": 1},
            "class_type": "EmptyLatentImage",
            "_meta": {"title": "Empty Latent Image"},
        },
        "6": {
            "inputs": {
                "text": "beautiful scenery nature glass bottle landscape, , purple galaxy bottle,",
                "clip": ["4", 1],
            },
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "CLIP Text Encode (Prompt)"},
        },
        "7": {
            "inputs": {"text": "text, watermark", "clip": ["4", 1]},
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "CLIP Text Encode (Prompt)"},
        },
        "8": {
            "inputs": {"samples": ["3", 0], "vae": ["4", 2]},
            "class_type": "VAEDecode",
            "_meta": {"title": "VAE Decode"},
        },
        "9": {
            "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]},
            "class_type": "SaveImage",
            "_meta": {"title": "Save Image"},
        },
    }


def _queue(server, user, graph=None, **fields) -> str:
    # as SillyTavern posts it: a JSON string with no JSON Content-Type
    body = json.dumps({"prompt": graph or default_graph()} | fields)
    answer = server.client.post(
        "/prompt", content=body, headers=user.headers | {"Content-Type": "text/plain"}
    )
    assert answer.status_code == 200, answer.text
    assert set(answer.json()) == {"prompt_id", "number", "node_errors"}
    return answer.json()["prompt_id"]


def _history(server, user, prompt_id: str, timeout: float = 120) -> dict:
    """Polled as SillyTavern polls: until the prompt's entry appears."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = server.get("/history", user).json()
        if prompt_id in found:
            return found[prompt_id]
        time.sleep(0.05)
    raise AssertionError(f"prompt {prompt_id} did not finish")


def _upload(server, user, content: bytes, name="photo.png", path="/upload/image", **fields):
    return server.client.post(
        path, headers=user.headers, files={"image": (name, content, "image/png")}, data=fields
    )


def _error(answer, status: int) -> str:
    """ComfyUI's error body, with a sentence."""
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert {"type", "message", "details", "extra_info"} <= set(error)
    assert answer.json()["node_errors"] == {} or isinstance(answer.json()["node_errors"], dict)
    assert error["message"].endswith((".", ")")) or error["type"] == "no_prompt"
    return error["message"]


# --- a graph, end to end --------------------------------------------------------------------


def test_a_graph_runs_into_the_history_and_its_picture_is_viewed(server):
    ann = server.user("ann")
    prompt_id = _queue(server, ann)
    entry = _history(server, ann, prompt_id)
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"]
    assert entry["prompt"][1] == prompt_id and entry["prompt"][4] == ["9"]
    assert [m[0] for m in entry["status"]["messages"]][0] == "execution_start"
    (saved,) = entry["outputs"]["9"]["images"]
    assert saved["type"] == "output" and saved["filename"].startswith("ComfyUI_00001_")

    # Open WebUI's way: /view with the three fields, under /api as well
    for prefix in ("", "/api"):
        picture = server.get(f"{prefix}/view", ann, params=saved)
        assert picture.status_code == 200
        assert picture.headers["content-type"] == "image/png"
        read = Image.open(io.BytesIO(picture.content))
        assert read.size == (64, 64)
        assert json.loads(read.info["prompt"])["9"]["class_type"] == "SaveImage"
    # SillyTavern's: not URL-encoded, the type defaulting to output
    plain = server.get(f"/view?filename={saved['filename']}&subfolder=&type=output", ann)
    assert plain.status_code == 200
    assert server.get(f"/view?filename={saved['filename']}", ann).status_code == 200

    # the picture is in the user's sfumato history too, from the comfyui door
    assert server.get(f"/v1/generations/{prompt_id}", ann).json()["source"] == "comfyui"
    assert server.get(f"/api/history/{prompt_id}", ann).json() == {prompt_id: entry}
    assert server.get("/prompt", ann).json() == {"exec_info": {"queue_remaining": 0}}
    assert server.get("/queue", ann).json() == {"queue_running": [], "queue_pending": []}


def test_a_preview_is_viewed_as_temp_by_its_owner_only(server):
    ann, bob = server.user("ann"), server.user("bob")
    graph = default_graph()
    graph["10"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}
    entry = _history(server, ann, _queue(server, ann, graph))
    (preview,) = entry["outputs"]["10"]["images"]
    assert preview["type"] == "temp"
    shown = server.get("/view", ann, params=preview)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    assert server.get("/view", bob, params=preview).status_code == 404
    # a temp picture is not an output, nor an upload
    for kind in ("output", "input"):
        assert server.get("/view", ann, params=preview | {"type": kind}).status_code == 404


def test_a_clients_own_prompt_id_is_kept(server):
    # as ComfyUI's websockets_api_example.py sends it: a UUID of its own
    ann, chosen = server.user("ann"), str(uuid.uuid4())
    assert _queue(server, ann, prompt_id=chosen) == chosen
    entry = _history(server, ann, chosen)
    assert entry["prompt"][1] == chosen
    assert server.get(f"/history/{chosen}", ann).json() == {chosen: entry}
    again = server.post("/prompt", ann, json={"prompt": default_graph(), "prompt_id": chosen})
    assert again.status_code == 409 and "prompt_id" in again.json()["error"]["message"]
    assert server.post("/history", ann, json={"delete": [chosen]}).status_code == 200
    assert server.get("/history", ann).json() == {}


def test_history_is_newest_first_and_bounded(make_server, database_url):
    server = make_server(database_url=database_url)  # (removal reads the jobs' JSON)
    ann = server.user("ann")
    ids = [_queue(server, ann) for _ in range(3)]
    for prompt_id in ids:
        _history(server, ann, prompt_id)
    assert list(server.get("/history", ann).json()) == ids[::-1]
    assert list(server.get("/history?max_items=2", ann).json()) == ids[:0:-1]
    assert list(server.get("/history?max_items=1&offset=2", ann).json()) == ids[:1]
    assert server.get("/history/not-a-prompt", ann).json() == {}
    assert server.get("/history?max_items=0", ann).status_code == 422
    assert server.get("/history?max_items=lots", ann).status_code == 422

    # removed from ComfyUI's history; the pictures stay in sfumato's
    pictures = server.get("/v1/images", ann).json()["total"]
    assert server.post("/history", ann, json={"delete": [ids[0]]}).status_code == 200
    assert list(server.get("/history", ann).json()) == ids[:0:-1]
    assert server.get(f"/history/{ids[0]}", ann).json() == {}
    assert server.post("/history", ann, json={"clear": True}).status_code == 200
    assert server.get("/history", ann).json() == {}
    assert server.get("/v1/images", ann).json()["total"] == pictures == 3


def test_a_graph_that_cannot_run_is_a_400_naming_the_node(server):
    ann = server.user("ann")
    graph = default_graph()
    graph["3"]["inputs"]["sampler_name"] = "no_such_sampler"
    answer = server.post("/prompt", ann, json={"prompt": graph})
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    (reason,) = body["node_errors"]["3"]["errors"]
    assert reason["type"] == "value_not_in_list" and "euler" in reason["details"]

    missing = copy.deepcopy(default_graph())
    missing["4"]["inputs"]["ckpt_name"] = "nowhere.safetensors"
    answer = server.post("/prompt", ann, json={"prompt": missing})
    assert answer.status_code == 400 and "4" in answer.json()["node_errors"]

    nothing = server.post("/prompt", ann, json={"client_id": "x"})
    assert nothing.status_code == 400 and nothing.json()["error"]["type"] == "no_prompt"
    assert server.get("/history", ann).json() == {}


# --- the queue ------------------------------------------------------------------------------


@pytest.fixture
def idle(make_server):
    """A server whose worker is off: prompts stay queued."""
    return make_server(run_worker=False)


def test_the_queue_is_the_callers_and_can_be_cleared(idle):
    ann, bob = idle.user("ann"), idle.user("bob")
    first, second, third = (_queue(idle, ann) for _ in range(3))
    bobs = _queue(idle, bob)
    queue = idle.get("/queue", ann).json()
    assert queue["queue_running"] == []
    assert [item[1] for item in queue["queue_pending"]] == [first, second, third]
    number, prompt_id, graph, extra, outputs = queue["queue_pending"][0]
    assert prompt_id == first and graph["9"]["class_type"] == "SaveImage" and outputs == ["9"]
    assert idle.get("/prompt", ann).json()["exec_info"]["queue_remaining"] == 3

    # Ann cannot touch Bob's prompt, nor see it
    assert idle.post("/queue", ann, json={"delete": [bobs]}).status_code == 200
    assert [i[1] for i in idle.get("/queue", bob).json()["queue_pending"]] == [bobs]

    assert idle.post("/queue", ann, json={"delete": [second]}).status_code == 200
    assert [i[1] for i in idle.get("/queue", ann).json()["queue_pending"]] == [first, third]
    assert idle.get(f"/v1/generations/{second}", ann).json()["status"] == "cancelled"
    assert idle.post("/api/queue", ann, json={"clear": True}).status_code == 200
    assert idle.get("/queue", ann).json()["queue_pending"] == []
    assert idle.get("/history", ann).json() == {}  # never run: not in ComfyUI's history
    assert idle.get("/prompt", bob).json()["exec_info"]["queue_remaining"] == 1


def test_interrupt_stops_only_the_callers_running_prompt(idle):
    ann, bob = idle.user("ann"), idle.user("bob")
    running = _queue(idle, ann)
    assert claim_next(idle.studio.db).id == running  # as the worker takes it
    queue = idle.get("/queue", ann).json()
    assert [i[1] for i in queue["queue_running"]] == [running]
    assert idle.get("/queue", bob).json() == {"queue_running": [], "queue_pending": []}

    stopped = []
    idle.studio.dispatch.cancel = lambda job_id: stopped.append(job_id) or True
    assert idle.post("/interrupt", bob).status_code == 200  # Bob has nothing running
    assert idle.post("/interrupt", ann, json={"prompt_id": "someone-else"}).status_code == 200
    assert stopped == []
    assert idle.post("/interrupt", ann).status_code == 200  # no body, as SillyTavern sends
    assert stopped == [running]
    assert idle.post("/free", ann, json={"unload_models": True}).status_code == 200


# --- uploads and files ----------------------------------------------------------------------


def test_uploads_keep_comfyuis_names(server):
    ann = server.user("ann")
    red, blue = png(colour="red"), png(colour="blue")
    answer = _upload(server, ann, red, subfolder="faces")
    assert answer.json() == {"name": "photo.png", "subfolder": "faces", "type": "input"}
    # the same picture again keeps its name; another becomes "photo (1).png"
    assert _upload(server, ann, red, subfolder="faces").json()["name"] == "photo.png"
    assert _upload(server, ann, blue, subfolder="faces").json()["name"] == "photo (1).png"
    assert _upload(server, ann, blue, path="/api/upload/image").json()["name"] == "photo.png"
    overwritten = _upload(server, ann, blue, subfolder="faces", overwrite="true")
    assert overwritten.json()["name"] == "photo.png"
    shown = server.get("/view", ann, params={"filename": "photo.png", "subfolder": "faces",
                                             "type": "input"})  # fmt: skip
    assert Image.open(io.BytesIO(shown.content)).convert("RGB").getpixel((0, 0)) == (0, 0, 255)

    # what a graph's LoadImage may name: the user's uploads
    listed = server.get("/object_info/LoadImage", ann).json()
    names = listed["LoadImage"]["input"]["required"]["image"][0]
    assert {"faces/photo.png", "faces/photo (1).png", "photo.png"} <= set(names)


def test_a_transparent_upload_keeps_its_alpha_and_a_mask_becomes_one(server):
    ann = server.user("ann")
    buffer = io.BytesIO()
    Image.new("RGBA", (32, 32), (255, 0, 0, 100)).save(buffer, format="PNG")
    assert _upload(server, ann, buffer.getvalue(), name="see-through.png").status_code == 200
    kept = server.get("/view?filename=see-through.png&type=input", ann).content
    assert Image.open(io.BytesIO(kept)).getpixel((3, 3)) == (255, 0, 0, 100)

    assert _upload(server, ann, png((32, 32), "green"), name="base.png").status_code == 200
    mask = Image.new("L", (16, 16), 0)
    mask.paste(255, (0, 0, 8, 16))  # white = redraw: the left half
    buffer = io.BytesIO()
    mask.save(buffer, format="PNG")
    ref = json.dumps({"filename": "base.png", "subfolder": "", "type": "input"})
    answer = _upload(
        server, ann, buffer.getvalue(), name="masked.png", path="/upload/mask", original_ref=ref
    )
    assert answer.json() == {"name": "masked.png", "subfolder": "", "type": "input"}
    made = Image.open(io.BytesIO(server.get("/view?filename=masked.png&type=input", ann).content))
    assert made.size == (32, 32) and made.mode == "RGBA"
    assert made.getpixel((2, 10)) == (0, 128, 0, 0)  # to redraw: transparent
    assert made.getpixel((30, 10)) == (0, 128, 0, 255)

    # a mask for a picture that is not there (or not yours) is "not found"
    ref = json.dumps({"filename": "nowhere.png", "type": "input"})
    assert _upload(server, ann, buffer.getvalue(), path="/upload/mask",
                   original_ref=ref).status_code == 404  # fmt: skip
    assert _upload(server, ann, buffer.getvalue(), path="/upload/mask").status_code == 400


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("../escape.png", {}),
        ("..", {}),
        ("a\\b.png", {}),
        ("ok.png", {"subfolder": "../.."}),
        ("ok.png", {"subfolder": "/etc"}),
        ("ok.png", {"subfolder": "a/../b"}),
        ("ok.png", {"subfolder": "a\\b"}),
        ("ok.png", {"type": "somewhere"}),
        ("x" * 300 + ".png", {}),
    ],
)
def test_names_that_leave_their_folder_are_refused(server, name, fields):
    message = _error(_upload(server, server.user("ann"), png(), name=name, **fields), 400)
    assert len(message) > 20


def test_hostile_uploads_and_views_are_4xx_with_a_sentence(server):
    ann = server.user("ann")
    assert "multipart" in _error(server.post("/upload/image", ann, json={"image": "x"}), 400)
    no_file = server.client.post("/upload/image", headers=ann.headers, data={"subfolder": "a"})
    assert "image" in _error(no_file, 400)
    _error(_upload(server, ann, b"not a picture at all"), 400)
    _error(_upload(server, ann, b""), 400)
    for params in (
        {"filename": "../../etc/passwd", "type": "input"},
        {"filename": "a.png", "subfolder": "../..", "type": "input"},
        {"filename": "a.png", "type": "elsewhere"},
        {},
    ):
        _error(server.get("/view", ann, params=params), 400)
    for kind in ("input", "output", "temp"):
        _error(server.get("/view", ann, params={"filename": "ComfyUI_00001_.png", "type": kind}),
               404)  # fmt: skip


# --- isolation ------------------------------------------------------------------------------


def test_another_users_prompts_history_files_and_uploads_are_invisible(server):
    ann, bob = server.user("ann"), server.user("bob")
    prompt_id = _queue(server, ann)
    entry = _history(server, ann, prompt_id)
    (saved,) = entry["outputs"]["9"]["images"]
    assert _upload(server, ann, png(colour="red"), name="secret.png").status_code == 200

    assert server.get(f"/history/{prompt_id}", bob).json() == {}
    assert server.get("/history", bob).json() == {}
    assert server.get("/view", bob, params=saved).status_code == 404
    assert server.get("/view?filename=secret.png&type=input", bob).status_code == 404
    names = server.get("/object_info/LoadImage", bob).json()["LoadImage"]["input"]["required"]
    assert "secret.png" not in names["image"][0]
    graph = default_graph()
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": "secret.png"}}
    graph["11"] = {"class_type": "SaveImage", "inputs": {"images": ["10", 0]}}
    assert server.post("/prompt", bob, json={"prompt": graph}).status_code == 400

    # Bob's own "secret.png" is his, and Ann's stays hers
    assert _upload(server, bob, png(colour="blue"), name="secret.png").json()["name"] == (
        "secret.png"
    )
    ann_sees = server.get("/view?filename=secret.png&type=input", ann).content
    assert Image.open(io.BytesIO(ann_sees)).convert("RGB").getpixel((0, 0)) == (255, 0, 0)
    with server.studio.db.session() as session:
        rows = session.scalars(select(Upload).where(Upload.name == "secret.png")).all()
        assert len(rows) == 2 and len({row.user_id for row in rows}) == 2

    # Bob's clearing and interrupting leave Ann's alone
    server.post("/history", bob, json={"clear": True})
    server.post("/history", bob, json={"delete": [prompt_id]})
    assert server.get(f"/history/{prompt_id}", ann).json() == {prompt_id: entry}


# --- signing in, and what else there is -----------------------------------------------------


def test_every_route_needs_a_sign_in_and_its_scope(server):
    from fastapi.testclient import TestClient

    server.user("ann")
    stranger = TestClient(server.client.app)
    for method, path in [
        ("GET", "/object_info"),
        ("GET", "/api/history"),
        ("POST", "/prompt"),
        ("GET", "/view?filename=a.png"),
        ("POST", "/upload/image"),
        ("GET", "/system_stats"),
    ]:
        answer = stranger.request(method, path)
        assert answer.status_code == 401
        assert "API key" in answer.json()["error"]["message"]
    ann = server.user("ann")
    login = TestClient(server.client.app)
    token = login.post("/v1/auth/login", json={"username": "ann", "password": "a long password"})
    csrf = {"X-CSRF-Token": token.json()["csrf_token"]}
    reader = login.post("/v1/keys", json={"name": "r", "scopes": ["read"]}, headers=csrf)
    headers = {"Authorization": f"Bearer {reader.json()['key']}"}
    assert stranger.get("/object_info", headers=headers).status_code == 200
    refused = stranger.post("/prompt", headers=headers, json={"prompt": default_graph()})
    assert refused.status_code == 403 and "generate" in refused.json()["error"]["message"]
    assert server.get("/history", ann).json() == {}


def test_models_stats_and_the_lists_clients_read(server):
    ann = server.user("ann")
    info = server.get("/object_info", ann).json()
    # SillyTavern's and Open WebUI's reads
    checkpoints = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert DEMO in checkpoints
    assert "euler" in info["KSampler"]["input"]["required"]["sampler_name"][0]
    assert "normal" in info["KSampler"]["input"]["required"]["scheduler"][0]
    assert isinstance(info["VAELoader"]["input"]["required"]["vae_name"][0], list)
    assert server.get("/object_info/KSampler", ann).json().keys() == {"KSampler"}
    assert server.get("/object_info/NoSuchNode", ann).json() == {}

    folders = ["checkpoints", "loras", "vae", "upscale_models", "embeddings"]
    assert server.get("/models", ann).json() == folders
    assert server.get("/models/checkpoints", ann).json() == checkpoints
    assert server.get("/models/upscale_models", ann).json() == []
    assert server.get("/models/embeddings", ann).json() == []
    assert server.get("/models/elsewhere", ann).status_code == 404
    assert server.get("/embeddings", ann).json() == []
    stats = server.get("/api/system_stats", ann).json()
    assert stats["system"]["comfyui_version"] and stats["devices"][0]["type"] in ("cpu", "cuda")
    assert server.get("/features", ann).json()["supports_preview_metadata"] is True


HOSTILE_BODIES = [
    b"{not json",
    b"[1, 2, 3]",
    b'"just a string"',
    b'{"prompt": "a red circle"}',
    b'{"prompt": [1, 2]}',
    b'{"prompt": {"1": "x"}}',
    b'{"prompt": {"1": {"class_type": 5, "inputs": []}}}',
    b'{"prompt": {"1": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}}',
    b'{"prompt": {}, "client_id": 5}',
    b'{"prompt": {}, "extra_data": [1]}',
    b'{"prompt": {}, "prompt_id": "mine"}',
    b'{"prompt": {}, "number": NaN}',
    b'{"prompt": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"\xff\xfe not utf-8",
]


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
def test_hostile_prompts_are_a_4xx_with_a_sentence(server, body):
    for content_type in ("application/json", "text/plain"):
        answer = server.client.post(
            "/prompt", content=body, headers=server.user("ann").headers | {"Content-Type":
                                                                           content_type}
        )  # fmt: skip
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.json()["error"]["message"]


def test_a_huge_body_and_a_huge_graph_are_refused(make_server):
    server = make_server(max_upload_bytes=100_000)
    ann = server.user("ann")
    huge = b'{"prompt": {"1": {"class_type": "SaveImage", "inputs": {"x": "' + b"a" * 2_000_000
    answer = server.client.post("/prompt", content=huge + b'"}}}}', headers=ann.headers)
    assert answer.status_code == 413 and answer.json()["error"]["message"]
    many = {str(i): {"class_type": "EmptyLatentImage", "inputs": {}} for i in range(10_000)}
    answer = server.post("/prompt", ann, json={"prompt": many})
    assert 400 <= answer.status_code < 500 and answer.json()["error"]["message"]
    with server.studio.db.session() as session:
        assert session.scalars(select(Job)).all() == []


def test_personal_mode_needs_no_sign_in_but_answers_only_localhost(make_server):
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    server = make_server(personal=True)
    local = TestClient(server.client.app, base_url="http://localhost")
    assert local.get("/prompt").json() == {"exec_info": {"queue_remaining": 0}}
    with local.websocket_connect("ws://localhost/ws?clientId=me") as socket:
        assert socket.receive_json()["data"]["sid"] == "me"
    # addressed to "testserver", as a DNS-rebinding page's socket would be to its own name
    with (
        server.client.websocket_connect("/ws") as socket,
        pytest.raises(WebSocketDisconnect) as refused,
    ):
        socket.receive_json()
    assert refused.value.code == 1008
