"""``sfumato workflow``: a ComfyUI API graph run on this machine with the demo model, values
set from the command line, pictures written with the graph inside; broken graphs explained."""

import json

from PIL import Image
from typer.testing import CliRunner

from sfumato.cli import app
from sfumato.datadir import DataDir
from sfumato.demo.analyze import analyze
from sfumato.workflows.outputs import comfy_png
from tests.api.test_workflows import graph


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def test_a_graph_runs_here_with_values_set_and_its_picture_carries_the_graph(tmp_path):
    path = tmp_path / "portrait.json"
    path.write_text(json.dumps(graph(**{"3.seed": 1})))
    out = tmp_path / "out.png"
    prompt = "a green square on a white background"
    result = run("workflow", "run", path, "--set", f"6.text={prompt}", "--set", "3.seed=5",
                 "-o", out, "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"Saved {out}" in result.output
    picture = Image.open(out)
    assert picture.size == (64, 64)
    embedded = json.loads(picture.text["prompt"])  # as ComfyUI embeds it
    assert embedded["6"]["inputs"]["text"] == prompt and embedded["3"]["inputs"]["seed"] == 5
    assert json.loads(path.read_text())["6"]["inputs"]["text"] != prompt  # the file unchanged
    drawn = analyze(picture.convert("RGB"))
    assert drawn.shape == "square" and drawn.colour == "green"

    again = run("workflow", "run", path, "-o", out)
    assert again.exit_code == 1 and "already exists" in again.output

    # the picture carries its graph: run it again from the picture, into the outputs folder
    result = run("workflow", "run", out, "--set", "3.seed=8", "--device", "cpu")
    assert result.exit_code == 0, result.output
    (written,) = (DataDir.resolve().outputs).glob("ComfyUI_*_.png")
    assert written.name == "ComfyUI_00001_.png"
    assert json.loads(Image.open(written).text["prompt"])["3"]["inputs"]["seed"] == 8


def test_load_image_reads_a_file_beside_the_graph(tmp_path):
    Image.new("RGB", (64, 64), "white").save(tmp_path / "start.png")
    nodes = graph(**{"3.denoise": 0.6})
    nodes["10"] = {"class_type": "LoadImage", "inputs": {"image": "start.png"}}
    nodes["11"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["4", 2]}}
    nodes["3"]["inputs"]["latent_image"] = ["11", 0]
    del nodes["5"]
    path = tmp_path / "img2img.json"
    path.write_text(json.dumps(nodes))
    result = run("workflow", "run", path, "-o", tmp_path / "i.png", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "i.png").size == (64, 64)
    missing = run("workflow", "validate", path, "--set", "10.image=nowhere.png")
    assert missing.exit_code == 1
    assert "node 10 (LoadImage), input image: Value not in list" in missing.output


def test_validate_names_each_node_and_input_at_fault(tmp_path):
    nodes = graph(**{"4.ckpt_name": "nope.safetensors", "3.steps": 0})
    nodes["3"]["inputs"]["positive"] = ["66", 0]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(nodes))
    result = run("workflow", "validate", path)
    assert result.exit_code == 1
    text = result.output
    assert "broken.json cannot run" in text
    assert "node 4 (CheckpointLoaderSimple), input ckpt_name: Value not in list" in text
    assert "node 3 (KSampler), input steps: Value 0 smaller than min of 1" in text
    assert "input positive" in text and "node 66 is not in the graph" in text

    good = tmp_path / "good.json"
    good.write_text(json.dumps(graph()))
    result = run("workflow", "validate", good)
    assert result.exit_code == 0 and "valid" in result.output and "sfumato-demo" in result.output
    for setting, words in (
        ("6.txt=x", "has no value input 'txt'"),
        ("60.text=x", "no node '60'"),
        ("6.clip=x", "no value input 'clip'"),
        ("text=x", "NODE.INPUT=VALUE"),
    ):
        result = run("workflow", "validate", good, "--set", setting)
        assert result.exit_code == 1 and words in result.output, result.output


def test_files_that_hold_no_graph_are_refused_with_a_sentence(tmp_path):
    editor = tmp_path / "editor.json"
    editor.write_text(json.dumps({"nodes": [], "links": [], "version": 0.4}))
    assert "Export (API)" in run("workflow", "validate", editor).output
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert "carries no ComfyUI API graph" in run("workflow", "run", plain).output
    (tmp_path / "carrier.png").write_bytes(comfy_png(Image.new("RGB", (8, 8)), graph(), None))
    assert run("workflow", "validate", tmp_path / "carrier.png").exit_code == 0
    assert "Cannot read" in run("workflow", "run", tmp_path / "none.json").output
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "valid JSON" in run("workflow", "validate", bad).output
