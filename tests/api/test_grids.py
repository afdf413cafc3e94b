"""Comparison grids through the API on the demo model: one job, every cell drawn as its axes
say with one seed, then the labelled grid picture; cancelled half-way, the finished cells
stay; a grid past the admin's limit is refused with a sentence."""

import io
import time

from PIL import Image

from sfumato.demo.analyze import analyze
from sfumato.grid import Layout, parse_axis
from sfumato.metadata.read import read_info_bytes
from tests.api.test_workflows import key

PROMPT = "a red circle on a white background"
X, Y = "prompt=red,green,blue", "prompt=white,black"


def test_a_grid_is_one_job_whose_cells_read_as_their_axes(server):
    answer = server.post(
        "/v1/grids", json={"prompt": PROMPT, "x": X, "y": Y, "seed": 4, "steps": 10}
    )
    assert answer.status_code == 202, answer.text
    job = server.wait(answer.json()["id"])
    assert job["status"] == "succeeded", job
    assert job["source"] == "grid" and len(job["images"]) == 7  # 6 cells, then the grid
    contents = [server.get(image["url"]).content for image in job["images"]]
    seeds = set()
    for index, (colour, background) in enumerate(
        (c, b) for c in ("red", "green", "blue") for b in ("white", "black")
    ):  # x slowest in the list: positions (0,0), (0,1), (1,0), ...
        info = read_info_bytes(contents[index])
        seeds.add(info.seed)
        assert info.prompt == f"a {colour} circle on a {background} background"
        drawn = analyze(Image.open(io.BytesIO(contents[index])))
        assert (drawn.colour, drawn.background) == (colour, background), (index, drawn)
    assert seeds == {4}
    sheet = Image.open(io.BytesIO(contents[-1])).convert("RGB")
    at = Layout.of([parse_axis(X), parse_axis(Y)], (64, 64))
    x0, y0 = at.origin(2, 1, 0)  # blue on black
    cell = sheet.crop((x0, y0, x0 + 64, y0 + 64))
    assert analyze(cell).colour == "blue" and analyze(cell).background == "black"


def test_a_grid_past_the_admins_limit_or_with_a_bad_axis_is_a_sentence(server):
    admin = server.user("ann")
    admin_headers = key(server, "ann", ["generate", "read", "admin"])
    answer = server.client.patch(
        "/v1/admin/settings", headers=admin_headers, json={"max_grid_cells": 4}
    )
    assert answer.status_code == 200, answer.text
    refused = server.post("/v1/grids", admin, json={"prompt": PROMPT, "x": X, "y": Y})
    assert refused.status_code == 400
    assert "at most 4" in refused.json()["error"]["message"]
    for body, says in (
        ({"prompt": PROMPT}, "at least one axis"),
        ({"prompt": PROMPT, "x": "colour=red"}, "Unknown axis"),
        ({"prompt": PROMPT, "x": "prompt=blue,green"}, "does not hold"),
        ({"prompt": PROMPT, "x": "steps=1,500"}, "Steps must be"),
        ({"prompt": PROMPT, "x": "model=nope,sfumato-demo"}, "nope"),
    ):
        answer = server.post("/v1/grids", admin, json=body)
        assert answer.status_code in (400, 404), (body, answer.text)
        assert says in answer.json()["error"]["message"], (body, answer.text)


def test_a_grid_cancelled_half_way_keeps_its_finished_cells(server):
    body = {"prompt": PROMPT, "x": "seed=1-6", "steps": 40}
    job_id = server.post("/v1/grids", json=body).json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for the second cell to start
        job = server.get(f"/v1/generations/{job_id}").json()
        if job["images"]:
            break
        time.sleep(0.05)
    assert server.post(f"/v1/generations/{job_id}/cancel").status_code == 200
    done = server.wait(job_id)
    assert done["status"] == "cancelled"
    assert 1 <= len(done["images"]) < 6  # the cells made before the cancel, no grid picture
    for image in done["images"]:
        assert server.get(image["url"]).status_code == 200


def test_a_prompt_matrix_through_the_api(server):
    body = {"prompt": "a circle|red|on a black background", "matrix": True, "steps": 4}
    job = server.wait(server.post("/v1/grids", json=body).json()["id"])
    assert job["status"] == "succeeded", job
    prompts = [read_info_bytes(server.get(i["url"]).content).prompt for i in job["images"][:4]]
    assert prompts == [
        "a circle",
        "a circle, on a black background",
        "a circle, red",
        "a circle, red, on a black background",
    ]
    assert len(job["images"]) == 5


def test_a_grid_is_planned_before_it_starts(server):
    body = {"prompt": PROMPT, "x": X, "y": Y, "steps": 5, "seed": 9}
    planned = server.post("/v1/grids/plan", json=body).json()
    assert (planned["cells"], planned["pictures"], planned["seed"]) == (6, 7, 9)
    assert planned["megapixel_steps"] == round(6 * 64 * 64 * 5 / 1e6, 3)
    assert planned["estimate_s"] is None  # nothing made yet on this server
    server.generate(steps=5, width=64, height=64)  # one picture: now it knows its speed
    again = server.post("/v1/grids/plan", json=body).json()
    assert again["estimate_s"] is not None and again["estimate_s"] >= 0
    assert server.get("/v1/generations").json()["generations"][0]["source"] != "grid"
