"""The ``comfy-api-simplified`` client (PyPI, as its users call it) against a real
``sfumato serve``: HTTP Basic with a user name and an API key, ComfyUI's own default
text-to-image workflow as "Export (API)" writes it, changed only in ``ckpt_name``, run with
``queue_and_wait_images`` (POST /prompt, the /ws socket, /history, /view); an upload used by
a LoadImage graph; and the other calls it makes."""

from __future__ import annotations

import io
import json

import pytest
from comfy_api_simplified import ComfyApiError, ComfyApiWrapper, ComfyWorkflowWrapper
from PIL import Image

from tests.api.conftest import png
from tests.api.test_comfyui import DEMO, default_graph
from tests.fixtures.served import served_with_users

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with served_with_users(tmp_path_factory.mktemp("comfyui-client")) as server:
        yield server


def _api(server, name: str = "ann") -> ComfyApiWrapper:
    served, keys = server
    return ComfyApiWrapper(served.url, user=name, password=keys[name])


def test_comfyuis_default_workflow_end_to_end(server):
    api = _api(server)
    # ComfyUI's default graph, unchanged but for the model (the bundled demo model): 512x512,
    # 20 steps of euler (20-60 s on two cores)
    workflow = ComfyWorkflowWrapper(default_graph(size=512, steps=20, seed=156680208700286))
    workflow.set_node_param("Load Checkpoint", "ckpt_name", DEMO)
    made = api.queue_and_wait_images(workflow, "Save Image")
    ((filename, content),) = made.items()
    assert filename.startswith("ComfyUI_00001_") and filename.endswith("_.png")
    assert content.startswith(PNG_SIGNATURE)
    picture = Image.open(io.BytesIO(content))
    assert picture.size == (512, 512)
    embedded = json.loads(picture.info["prompt"])  # as ComfyUI embeds the graph
    assert embedded["3"]["inputs"]["seed"] == 156680208700286

    # Bob sees none of it
    bob = _api(server, "bob")
    with pytest.raises(ComfyApiError):
        bob.get_image(filename, "", "output")
    assert bob.get_queue() == {"queue_running": [], "queue_pending": []}


def test_an_upload_feeds_a_loadimage_graph(server, tmp_path):
    api = _api(server)
    path = tmp_path / "start.png"
    path.write_bytes(png((64, 64), "green"))
    uploaded = api.upload_image(path)  # into its "default_upload_folder"
    assert uploaded == {"name": "start.png", "subfolder": "default_upload_folder", "type": "input"}
    graph = default_graph()
    graph["10"] = {
        "inputs": {"image": "default_upload_folder/start.png"},
        "class_type": "LoadImage",
        "_meta": {"title": "Load Image"},
    }
    graph["11"] = {
        "inputs": {"pixels": ["10", 0], "vae": ["4", 2]},
        "class_type": "VAEEncode",
        "_meta": {"title": "VAE Encode"},
    }
    graph["3"]["inputs"] |= {"latent_image": ["11", 0], "denoise": 0.5}
    del graph["5"]
    made = api.queue_and_wait_images(graph, "Save Image")
    ((_, content),) = made.items()
    assert Image.open(io.BytesIO(content)).size == (64, 64)


def test_the_other_calls(server):
    api = _api(server)
    info = api.get_object_info()
    assert DEMO in info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    assert set(api.get_object_info("KSampler")) == {"KSampler"}
    assert api.get_system_stats()["devices"]
    assert api.get_embeddings() == []
    assert api.get_queue() == {"queue_running": [], "queue_pending": []}
    with pytest.raises(ValueError):
        api.get_queue_size_before("not-queued")
    assert api.get_history("not-a-prompt") == {}
    api.interrupt()  # nothing running: nothing happens

    broken = default_graph()
    broken["3"]["inputs"]["sampler_name"] = "nope"
    with pytest.raises(ComfyApiError):
        api.queue_prompt(broken)
    wrong = ComfyApiWrapper(server[0].url, user="ann", password="sfm_not_a_key")
    with pytest.raises(ComfyApiError):
        wrong.get_queue()
