"""Every broken graph a user can send is refused before it is queued, in ComfyUI's error shape,
naming the node and the input; a good graph comes back with its values converted."""

import copy
import json

import pytest

from sfumato.workflows import samplers
from sfumato.workflows.nodes import NODES
from sfumato.workflows.spec import Choices
from sfumato.workflows.validate import MAX_NODES, GraphInvalid, validate
from tests.workflows.conftest import DATA

CHOICES = Choices(
    checkpoints=["sfumato-demo", "dreamshaper_8.safetensors"],
    loras=["demo-white-background.safetensors"],
    images=["circle.png"],
    samplers=list(samplers.SAMPLERS),
    schedulers=list(samplers.SCHEDULERS),
)


def _graph() -> dict:
    graph = json.loads((DATA / "comfyui_basic_api_example.json").read_text())
    graph["4"]["inputs"]["ckpt_name"] = "sfumato-demo"
    return graph


def _refused(graph) -> dict:
    with pytest.raises(GraphInvalid) as caught:
        validate(graph, CHOICES)
    body = caught.value.body
    assert set(body) == {"error", "node_errors"}
    assert {"type", "message", "details", "extra_info"} <= set(body["error"])
    return body


def _only_error(body: dict, node: str) -> dict:
    assert list(body["node_errors"]) == [node], body
    entry = body["node_errors"][node]
    assert entry["class_type"] == _graph().get(node, {}).get("class_type", entry["class_type"])
    (error,) = entry["errors"]
    return error


def test_comfyuis_example_is_valid_and_its_values_are_converted():
    graph = _graph()
    graph["3"]["inputs"]["steps"] = "20"  # ComfyUI converts widget values, so does sfumato
    graph["3"]["_meta"] = {"title": "KSampler"}
    plan = validate(graph, CHOICES)
    assert plan.graph["3"]["inputs"]["steps"] == 20
    assert plan.graph["3"]["_meta"] == {"title": "KSampler"}
    assert plan.outputs == ["9"] and plan.order[-1] == "9"
    assert plan.order.index("4") < plan.order.index("6") < plan.order.index("3")
    assert plan.steps == 20 and plan.checkpoints == ["sfumato-demo"]
    summary = plan.summary({})
    assert summary["megapixel_steps"] == pytest.approx(512 * 512 * 20 / 1e6, rel=1e-3)


def test_an_unknown_node_type_lists_the_supported_ones():
    graph = _graph()
    graph["10"] = {"class_type": "IPAdapterApply", "inputs": {}}
    body = _refused(graph)
    assert body["error"]["type"] == "invalid_prompt"
    assert "IPAdapterApply does not exist" in body["error"]["message"]
    error = body["node_errors"]["10"]["errors"][0]
    assert "KSamplerAdvanced" in error["details"] and "LoraLoader" in error["details"]


def test_a_link_to_a_missing_node_names_the_input():
    graph = _graph()
    graph["3"]["inputs"]["positive"] = ["66", 0]
    error = _only_error(_refused(graph), "3")
    assert error["type"] == "bad_linked_input"
    assert error["extra_info"]["input_name"] == "positive" and "66" in error["details"]


def test_a_link_to_an_output_the_node_lacks():
    graph = _graph()
    graph["3"]["inputs"]["model"] = ["4", 7]
    error = _only_error(_refused(graph), "3")
    assert error["type"] == "bad_linked_input" and "has 3 output(s)" in error["details"]


def test_a_link_of_the_wrong_type():
    graph = _graph()
    graph["3"]["inputs"]["positive"] = ["4", 1]  # CLIP where CONDITIONING goes
    error = _only_error(_refused(graph), "3")
    assert error["type"] == "return_type_mismatch"
    assert "received_type(CLIP) mismatch input_type(CONDITIONING)" in error["details"]


def test_a_cycle_is_found_not_followed_forever():
    graph = _graph()
    graph["10"] = {"class_type": "LatentUpscaleBy", "inputs": {
        "samples": ["3", 0], "upscale_method": "bilinear", "scale_by": 1.0}}  # fmt: skip
    graph["3"]["inputs"]["latent_image"] = ["10", 0]
    body = _refused(graph)
    errors = [e for entry in body["node_errors"].values() for e in entry["errors"]]
    assert any(e["type"] == "dependency_cycle" for e in errors)


def test_a_model_that_is_not_installed_lists_the_installed_ones():
    graph = _graph()
    graph["4"]["inputs"]["ckpt_name"] = "v1-5-pruned-emaonly.safetensors"
    error = _only_error(_refused(graph), "4")
    assert error["type"] == "value_not_in_list"
    assert "sfumato-demo" in error["details"] and "dreamshaper_8" in error["details"]


def test_a_sampler_or_pair_that_cannot_run_says_what_can():
    graph = _graph()
    graph["3"]["inputs"]["sampler_name"] = "dpm_adaptive"
    error = _only_error(_refused(graph), "3")
    assert error["type"] == "value_not_in_list" and "dpmpp_2m" in error["details"]
    graph = _graph()
    graph["3"]["inputs"].update(sampler_name="ddim", scheduler="karras")
    error = _only_error(_refused(graph), "3")
    assert error["type"] == "custom_validation_failed" and "sgm_uniform" in error["details"]


def test_values_out_of_range_missing_or_of_the_wrong_type():
    cases = [
        ("steps", 100000, "value_bigger_than_max"),
        ("cfg", -1, "value_smaller_than_min"),
        ("seed", "lots", "invalid_input_type"),
        ("cfg", "nan", "invalid_input_type"),
        ("steps", {"a": 1}, "invalid_input_type"),
        ("denoise", None, "invalid_input_type"),
    ]
    for name, value, kind in cases:
        graph = _graph()
        graph["3"]["inputs"][name] = value
        error = _only_error(_refused(graph), "3")
        assert error["type"] == kind, (name, value, error)
        assert error["extra_info"]["input_name"] == name
    graph = _graph()
    del graph["3"]["inputs"]["seed"]
    error = _only_error(_refused(graph), "3")
    assert error["type"] == "required_input_missing" and error["details"] == "seed"


@pytest.mark.parametrize(
    "graph, kind",
    [
        ([], "no_prompt"),
        ({}, "no_prompt"),
        ("a castle", "no_prompt"),
        ({"1": "KSampler"}, "invalid_prompt"),
        ({"1": {"inputs": {}}}, "invalid_prompt"),
        ({"1": {"class_type": "KSampler", "inputs": []}}, "invalid_prompt"),
        ({"1": {"class_type": "EmptyLatentImage", "inputs": {}}}, "prompt_no_outputs"),
        ({"9" * 1000: {"class_type": "SaveImage", "inputs": {}}}, "invalid_prompt"),
    ],
)
def test_malformed_graphs(graph, kind):
    assert _refused(graph)["error"]["type"] == kind


def test_ten_thousand_nodes_are_refused_with_a_sentence():
    graph = {str(i): {"class_type": "EmptyLatentImage", "inputs": {}} for i in range(10_000)}
    body = _refused(graph)
    assert str(MAX_NODES) in body["error"]["details"]


def test_a_thousand_node_graph_is_valid():
    graph = _graph()
    previous = ["8", 0]
    for i in range(10, 1000):
        graph[str(i)] = {"class_type": "ImageScaleBy", "inputs": {
            "image": previous, "upscale_method": "bilinear", "scale_by": 1.0}}  # fmt: skip
        previous = [str(i), 0]
    graph["9"]["inputs"]["images"] = previous
    plan = validate(graph, CHOICES)
    assert len(plan.order) == len(graph)


def test_an_error_upstream_is_reported_once_and_on_its_own_node():
    graph = _graph()
    graph["6"]["inputs"]["clip"] = ["4", 0]  # MODEL where CLIP goes
    body = _refused(graph)
    assert list(body["node_errors"]) == ["6"]
    assert body["node_errors"]["6"]["dependent_outputs"] == ["9"]


def test_validation_leaves_the_graph_it_was_given_alone():
    graph = _graph()
    graph["3"]["inputs"]["steps"] = "20"
    before = copy.deepcopy(graph)
    validate(graph, CHOICES)
    assert graph == before


def test_every_node_is_described_as_comfyui_describes_it():
    for name, node in NODES.items():
        info = node.object_info(CHOICES)
        assert info["name"] == name
        assert list(info)[:3] == ["input", "input_order", "output"]
        assert info["input_order"]["required"] == list(info["input"]["required"])
    ksampler = NODES["KSampler"].object_info(CHOICES)
    assert ksampler["input"]["required"]["sampler_name"][0] == list(samplers.SAMPLERS)
    loader = NODES["CheckpointLoaderSimple"].object_info(CHOICES)
    assert loader["input"]["required"]["ckpt_name"][0] == CHOICES.checkpoints
    assert loader["output"] == ["MODEL", "CLIP", "VAE"]
