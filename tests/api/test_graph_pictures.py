"""A graph's picture through the doors that read pictures back: the page's "read settings
from this picture" (``/v1/image-info``) recognises it as ComfyUI's and fills the form's
fields from it; its job is followed like any other."""

import json
from pathlib import Path

from sfumato.store.tables import User
from sfumato.workflows.submit import submit_graph

EXAMPLE = Path(__file__).parents[1] / "data" / "comfyui_basic_api_example.json"


def _graph() -> dict:
    graph = json.loads(EXAMPLE.read_text())
    graph["4"]["inputs"]["ckpt_name"] = "sfumato-demo"
    graph["5"]["inputs"].update(width=64, height=64)
    graph["3"]["inputs"].update(steps=4, seed=77)
    graph["6"]["inputs"]["text"] = "a green square on a white background"
    return graph


def test_a_graphs_picture_reads_back_on_the_page_and_its_job_is_followed(server):
    ann = server.user("ann")
    with server.studio.db.session() as session:
        user = session.query(User).filter_by(username="ann").one()
        session.expunge(user)
    job = submit_graph(server.studio, user, _graph())
    done = server.wait(job.id, ann)  # followed at /v1/generations/{id} like any job
    assert done["status"] == "succeeded" and done["source"] == "comfyui", done
    assert done["settings"]["seed"] == 77 and done["settings"]["steps"] == 4
    (image,) = done["images"]
    picture = server.get(image["url"], ann)
    assert picture.headers["content-type"] == "image/png"
    info = server.post(
        "/v1/image-info", ann, files={"file": ("ComfyUI_00001_.png", picture.content)}
    ).json()
    assert info["tool"] == "ComfyUI"
    assert info["prompt"] == "a green square on a white background"
    assert (info["seed"], info["steps"], info["sampler"]) == (77, 4, "euler")
    assert info["negative_prompt"] == "bad hands" and info["model"] == "sfumato-demo"
    # another user sees neither the job nor its picture
    bob = server.user("bob")
    assert server.get(f"/v1/generations/{job.id}", bob).status_code == 404
    assert server.get(image["url"], bob).status_code == 404
