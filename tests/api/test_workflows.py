"""Saved workflows through the real app: saved (a broken graph refused with ComfyUI's node
errors), listed, run from their exposed inputs as jobs like /v1/generations', published by an
admin, and invisible to other users while private."""

from __future__ import annotations

import base64
import io
import json

from fastapi.testclient import TestClient
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sfumato.demo.analyze import analyze
from sfumato.workflows.outputs import comfy_png
from tests.api.conftest import User

DEMO = "sfumato-demo"  # the bundled demo model, as ComfyUI's lists name it


def graph(**changes) -> dict:
    """ComfyUI's default text-to-image API graph on the demo model, at its 64 px."""
    nodes = {
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 5, "steps": 6, "cfg": 8, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 1, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": DEMO}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "a red circle on a blue background", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }  # fmt: skip
    for path, value in changes.items():
        node, name = path.split(".")
        nodes[node]["inputs"][name] = value
    return nodes


INPUTS = {"prompt": ["6", "text"], "seed": ["3", "seed"]}


def save(server, user=None, name="portrait", **body):
    return server.post(
        "/v1/workflows", user, json={"name": name, "graph": graph(), "inputs": INPUTS} | body
    )


def key(server, name: str, scopes: list[str]) -> dict:
    """Headers with a new key of ``name`` limited to ``scopes``."""
    login = TestClient(server.client.app)  # its own cookie jar
    answer = login.post("/v1/auth/login", json={"username": name, "password": "a long password"})
    csrf = {"X-CSRF-Token": answer.json()["csrf_token"]}
    made = login.post("/v1/keys", json={"name": "k", "scopes": scopes}, headers=csrf)
    return {"Authorization": f"Bearer {made.json()['key']}"}


def admin_and_ann(server):
    server.user("admin")  # the first account is the admin
    admin = User("admin", "", key(server, "admin", ["read", "generate", "admin"]))
    return admin, server.user("ann")


def test_a_saved_workflow_runs_from_its_inputs_as_a_job_like_a_generation(server):
    answer = save(server, description="A portrait")
    assert answer.status_code == 201, answer.text
    saved = answer.json()
    assert saved["name"] == "portrait" and saved["mine"] and not saved["published"]
    assert saved["inputs"] == INPUTS
    assert saved["defaults"] == {"prompt": "a red circle on a blue background", "seed": 5}
    listed = server.get("/v1/workflows").json()["workflows"]
    assert [w["name"] for w in listed] == ["portrait"]
    assert listed[0]["nodes"] == 7 and listed[0]["graph"] is None  # a list stays small
    assert server.get("/v1/workflows/portrait").json()["graph"]["4"]["inputs"]["ckpt_name"] == DEMO

    prompt = "a green square on a white background"
    answer = server.post("/v1/workflows/portrait/runs", json={"inputs": {"prompt": prompt}})
    assert answer.status_code == 202, answer.text
    queued = answer.json()
    assert queued["source"] == "workflow" and queued["status"] in ("queued", "running")
    assert answer.headers["location"] == f"/v1/generations/{queued['id']}"
    job = server.wait(queued["id"])  # followed as any generation is
    assert job["status"] == "succeeded", job
    (image,) = job["images"]
    content = server.get(image["url"]).content
    picture = Image.open(io.BytesIO(content))
    embedded = json.loads(picture.text["prompt"])
    assert embedded["6"]["inputs"]["text"] == prompt  # the value set, the rest as saved
    assert embedded["3"]["inputs"]["seed"] == 5
    drawn = analyze(picture.convert("RGB"))
    assert drawn.shape == "square" and drawn.colour == "green"
    history = server.get("/v1/images").json()
    assert image["id"] in [i["id"] for i in history["images"]]


def test_a_run_refuses_inputs_the_workflow_does_not_expose_and_checks_values(server):
    save(server)
    answer = server.post("/v1/workflows/portrait/runs", json={"inputs": {"steps": 3}})
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert "'steps'" in message and "prompt, seed" in message
    answer = server.post("/v1/workflows/portrait/runs", json={"inputs": {"seed": -4}})
    assert answer.status_code == 400
    assert answer.json()["node_errors"]["3"]["errors"][0]["type"] == "value_smaller_than_min"
    answer = server.post("/v1/workflows/portrait/runs", json={"inputs": {"seed": ["4", 0]}})
    assert answer.status_code == 400  # a list would be a link
    assert server.post("/v1/workflows/nothing/runs", json={}).status_code == 404


def test_a_broken_graph_is_refused_with_comfyuis_node_errors(server):
    broken = graph(**{"3.model": ["40", 0], "5.width": "wide"})
    answer = save(server, graph=broken)
    assert answer.status_code == 400
    body = answer.json()
    assert body["error"]["code"] == "invalid_graph" and body["error"]["message"]
    errors = body["node_errors"]
    assert {"3", "5"} <= set(errors)
    assert errors["3"]["errors"][0]["type"] == "bad_linked_input"
    assert errors["5"]["errors"][0]["extra_info"]["input_name"] == "width"
    unknown = save(server, graph=graph(**{"4.ckpt_name": "nope.safetensors"})).json()
    assert unknown["node_errors"]["4"]["errors"][0]["type"] == "value_not_in_list"
    assert server.get("/v1/workflows").json()["workflows"] == []


def test_hostile_graphs_names_and_inputs_are_refused_with_a_sentence(server):
    huge = {str(i): {"class_type": "EmptyLatentImage", "inputs": {}} for i in range(10_000)}
    answer = save(server, graph=huge)
    assert answer.status_code == 400 and "too large" in answer.json()["error"]["message"]
    assert save(server, graph="not a graph").status_code == 422
    assert save(server, graph={}).status_code == 400
    for name in ("", "../etc", "a b", "x" * 65, "ü", "-lead"):
        answer = save(server, name=name)
        assert answer.status_code in (400, 422), name
    for inputs, words in (
        ({"prompt": ["60", "text"]}, "not in the graph"),
        ({"prompt": ["6", "clip"]}, "link"),
        ({"prompt": ["6", "colour"]}, "no input"),
        ({"bad name!": ["6", "text"]}, "not allowed"),
        ({"prompt": "6.text"}, "must name a node"),
        ({f"i{n}": ["6", "text"] for n in range(100)}, "at most"),
    ):
        answer = save(server, inputs=inputs)
        assert answer.status_code == 400, inputs
        assert words in answer.json()["error"]["message"], answer.json()
    assert save(server).status_code == 201
    assert save(server).status_code == 409  # the name is taken


def test_another_users_private_workflow_is_invisible_and_a_published_one_runnable(server):
    admin, ann = admin_and_ann(server)
    bob = server.user("bob")
    assert save(server, ann).status_code == 201
    for path in ("/v1/workflows/portrait", "/v1/workflows/portrait/runs"):
        call = server.get if path.endswith("portrait") else server.post
        assert call(path, bob, **({} if call == server.get else {"json": {}})).status_code == 404
    assert server.client.delete("/v1/workflows/portrait", headers=bob.headers).status_code == 404
    assert server.get("/v1/workflows", bob).json()["workflows"] == []
    assert server.post("/v1/workflows/portrait/publish", ann).status_code == 403  # not an admin

    answer = server.post("/v1/workflows/portrait/publish?owner=ann", admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["published"] and answer.json()["owner"] == "ann"
    (seen,) = server.get("/v1/workflows", bob).json()["workflows"]
    assert seen["owner"] == "ann" and not seen["mine"] and seen["published"]
    run = server.post("/v1/workflows/portrait/runs", bob, json={"inputs": {"seed": 9}})
    assert run.status_code == 202, run.text
    job = server.wait(run.json()["id"], bob)
    assert job["status"] == "succeeded", job
    assert server.get(f"/v1/generations/{job['id']}", ann).status_code == 404  # bob's job
    deleted = server.client.delete("/v1/workflows/portrait", headers=bob.headers)
    assert deleted.status_code == 403  # runnable, not deletable

    # bob's own of the same name comes first for bob; another published one may not share it
    assert save(server, bob).status_code == 201
    assert server.get("/v1/workflows/portrait", bob).json()["owner"] == "bob"
    clash = server.post("/v1/workflows/portrait/publish?owner=bob", admin)
    assert clash.status_code == 409

    withdrawn = server.post("/v1/workflows/portrait/unpublish?owner=ann", admin)
    assert withdrawn.status_code == 200 and not withdrawn.json()["published"]
    assert server.get("/v1/workflows/portrait?owner=ann", bob).status_code == 404
    server.post("/v1/workflows/portrait/publish?owner=ann", admin)
    gone = server.client.delete("/v1/workflows/portrait?owner=ann", headers=admin.headers)
    assert gone.status_code == 200
    assert server.get("/v1/workflows/portrait?owner=ann", ann).status_code == 404
    assert server.client.delete("/v1/workflows/portrait", headers=bob.headers).status_code == 200


def test_a_workflow_is_read_from_a_picture_that_carries_one(server):
    carried = graph(**{"6.text": "a blue triangle"})
    content = comfy_png(Image.new("RGB", (8, 8)), carried, {"workflow": {"nodes": []}})
    read = server.post("/v1/workflows/graph", files={"file": ("c.png", content, "image/png")})
    assert read.status_code == 200, read.text
    assert read.json()["graph"] == carried
    assert (
        "text" in read.json()["value_inputs"]["6"]
        and "clip" not in read.json()["value_inputs"]["6"]
    )
    as_json = json.dumps(carried).encode()
    read = server.post(
        "/v1/workflows/graph", files={"file": ("g.json", as_json, "application/json")}
    )
    assert read.json()["graph"] == carried
    picture = base64.b64encode(content).decode()
    answer = save(server, graph=None, picture=picture)
    assert answer.status_code == 201, answer.text
    assert answer.json()["defaults"]["prompt"] == "a blue triangle"

    plain = io.BytesIO()
    info = PngInfo()
    info.add_text("workflow", json.dumps({"nodes": [], "links": []}))
    Image.new("RGB", (8, 8)).save(plain, format="PNG", pnginfo=info)
    read = server.post(
        "/v1/workflows/graph", files={"file": ("ui.png", plain.getvalue(), "image/png")}
    )
    assert read.status_code == 400 and "API" in read.json()["error"]["message"]
    editor = json.dumps({"nodes": [], "links": [], "version": 0.4}).encode()
    read = server.post(
        "/v1/workflows/graph", files={"file": ("w.json", editor, "application/json")}
    )
    assert read.status_code == 400 and "Export (API)" in read.json()["error"]["message"]


def test_a_read_only_key_lists_but_cannot_save_or_run(server):
    save(server)
    headers = key(server, "ann", ["read"])
    assert server.client.get("/v1/workflows", headers=headers).status_code == 200
    run = server.client.post("/v1/workflows/portrait/runs", headers=headers, json={})
    assert run.status_code == 403
    refused = server.client.post(
        "/v1/workflows", headers=headers, json={"name": "x", "graph": graph()}
    )
    assert refused.status_code == 403


def test_running_a_workflow_twice_with_the_same_values_keeps_a_picture_each_time(server):
    save(server)
    first = server.wait(server.post("/v1/workflows/portrait/runs", json={}).json()["id"])
    again = server.wait(server.post("/v1/workflows/portrait/runs", json={}).json()["id"])
    assert len(first["images"]) == 1
    assert len(again["images"]) == 1  # a job like /v1/generations': its picture in the history
