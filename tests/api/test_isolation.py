"""A user never sees, downloads, cancels or deletes another's jobs, images, uploads or keys.

Every route with an id in its path is tried as the wrong user (the list comes from the app's
own OpenAPI description, so a new route is tried too), then the owner checks nothing changed.
"""

import json

from tests.api.conftest import png
from tests.api.test_workflows import graph
from tests.api.test_workflows import save as save_workflow


def test_every_route_refuses_another_users_things(server):
    ann, bob = server.user("ann"), server.user("bob")
    job = server.generate(ann)
    long = server.post(
        "/v1/generations", ann, json={"prompt": "x", "steps": 150, "batch_size": 4}
    ).json()
    image = job["images"][0]
    upload = server.post("/v1/uploads", ann, files={"file": ("a.png", png())}).json()
    key = server.get("/v1/keys", ann).json()["keys"][0]
    ids = {"job_id": long["id"], "image_id": image["id"], "upload_id": upload["id"]}
    ids["key_id"] = key["id"]
    ids["user_id"] = server.get("/v1/me", ann).json()["id"]
    # a ComfyUI prompt of Ann's and a workflow she saved
    assert save_workflow(server, ann).status_code == 201
    ids["name"] = "portrait"
    ids["prompt_id"] = server.post("/prompt", ann, json={"prompt": graph()}).json()["prompt_id"]
    ids |= {"node_class": "KSampler", "folder": "checkpoints"}  # the same for everyone
    bodies = {"PATCH": {"favourite": True}, "POST": {}}

    tried = []
    for path, methods in server.client.get("/openapi.json").json()["paths"].items():
        if "{" not in path:
            continue
        url = path.format(**ids)  # a KeyError here: a new kind of id this test must learn
        for method in methods:
            answer = server.client.request(
                method.upper(), url, headers=bob.headers, json=bodies.get(method.upper())
            )
            if path in ("/object_info/{node_class}", "/models/{folder}"):  # nobody's things
                assert answer.status_code == 200, url
                continue
            if path.endswith("/keywords"):  # the server's models, the same for everyone
                assert answer.json()["error"]["code"] == "model_not_found", url
                assert "Installed:" in answer.json()["error"]["message"], url
                continue
            if path == "/history/{prompt_id}":  # ComfyUI's answer for a prompt it has not
                assert (answer.status_code, answer.json()) == (200, {}), url
                tried.append(f"{method.upper()} {path}")
                continue
            # an admin's routes act on anyone's things: anyone else is refused outright
            admins = path.startswith("/v1/admin/") or path.endswith(("/publish", "/unpublish"))
            refused = (403, "forbidden") if admins else (404, "not_found")
            assert answer.status_code == refused[0], (method, url, answer.text)
            assert answer.json()["error"]["code"] == refused[1]
            tried.append(f"{method.upper()} {path}")
    assert len(tried) >= 10, tried

    # the collection routes show Bob only his own things
    assert server.get("/v1/images", bob).json()["total"] == 0
    assert server.get("/v1/generations", bob).json()["generations"] == []
    assert server.get("/v1/keys", bob).json()["keys"][0]["id"] != key["id"]
    refused = server.post("/v1/images/delete", bob, json={"ids": [image["id"]]})
    assert refused.status_code == 404
    assert server.client.delete("/v1/images", headers=bob.headers).json() == {"deleted": 0}
    borrowed = server.post("/v1/generations", bob, json={"prompt": "x", "init_image": upload["id"]})
    assert borrowed.status_code == 404 and "no upload" in borrowed.json()["error"]["message"]

    # Bob's event stream says nothing of Ann's running job
    with server.client.stream("GET", "/v1/events", headers=bob.headers) as stream:
        server.post("/v1/generations", ann, json={"prompt": "y", "steps": 2})
        mine = server.post("/v1/generations", bob, json={"prompt": "z", "steps": 2}).json()
        for line in stream.iter_lines():
            if line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                assert data.get("id", data.get("job_id")) == mine["id"], data
                if data.get("status") == "succeeded":
                    break

    # and Ann's things are all still there
    assert server.get(image["url"], ann).status_code == 200
    assert server.get(upload["url"], ann).status_code == 200
    assert server.get(f"/v1/generations/{long['id']}", ann).json()["status"] != "cancelled"
    assert server.get("/v1/me", ann).status_code == 200  # her key was not revoked
    assert server.get(f"/v1/images/{image['id']}", ann).json()["favourite"] is False
    server.post(f"/v1/generations/{long['id']}/cancel", ann)
