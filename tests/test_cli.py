"""The command line as a user meets it: real models on disk, real files out."""

import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from sfumato.cli import app
from sfumato.datadir import DataDir
from sfumato.metadata.files import read_sfumato_data

FAST = ["-W", "64", "-H", "64", "-s", "2"]


def run(*args):
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def data_dir():
    return DataDir.resolve()  # the test's own empty data directory (see conftest)


@pytest.fixture
def installed(tiny_models, data_dir):
    data_dir.models.mkdir(parents=True)
    shutil.copytree(tiny_models["sd15"]["folder"], data_dir.models / "tiny-sd15")
    return data_dir


def test_without_any_model_it_says_how_to_add_one(data_dir, monkeypatch, tmp_path):
    # as in an install whose bundled demo model was left out
    monkeypatch.setattr("sfumato.demo.WEIGHTS", tmp_path / "no-demo-here")
    result = run("generate", "a red circle")
    assert result.exit_code == 1
    assert "No model is installed" in result.output
    assert "--model PATH" in result.output


def test_the_only_installed_model_is_used_and_pictures_are_numbered(installed):
    first = run("generate", "a red circle", *FAST, "--seed", "42")
    assert first.exit_code == 0, first.output
    second = run("generate", "a red circle", *FAST, "--seed", "7", "--format", "webp")
    assert second.exit_code == 0, second.output
    files = sorted(p.name for p in installed.outputs.rglob("*") if p.is_file())
    assert files == ["00000-42.png", "00001-7.webp"]
    assert "(seed 42)" in first.output and "00000-42.png" in first.output


def test_the_cpus_default_backend_is_openvino_converted_once_into_the_data_folder(
    installed, tmp_path, monkeypatch
):
    monkeypatch.delenv("SFUMATO_BACKEND")  # as a user has it: the default, auto
    first = run("generate", "a red circle", *FAST, "--seed", "3")
    assert first.exit_code == 0, first.output
    (unet,) = (installed.cache / "openvino").glob("*/unet.xml")
    converted = unet.stat().st_mtime_ns
    again = run("generate", "a red circle", *FAST, "--seed", "3", "--backend", "openvino")
    assert again.exit_code == 0, again.output
    assert unet.stat().st_mtime_ns == converted  # read from the cache, not converted again
    pictures = sorted(installed.outputs.rglob("*.png"))
    assert len(pictures) == 2 and Image.open(pictures[0]).size == (64, 64)
    # the same settings on the same backend give the same pixels, and the picture says which
    assert Image.open(pictures[0]).tobytes() == Image.open(pictures[1]).tobytes()
    assert read_sfumato_data(pictures[0])["model"]["backend"] == "openvino"
    for how in (["--backend", "torch"], []):
        monkeypatch.setenv("SFUMATO_BACKEND", "torch")  # the second time from the environment
        out = tmp_path / f"torch{len(how)}.png"
        plain = run("generate", "a red circle", *FAST, "--seed", "3", "-o", str(out), *how)
        assert plain.exit_code == 0 and read_sfumato_data(out)["model"]["backend"] == "torch"


def test_int8_is_asked_for_by_dtype_and_said_in_the_picture(installed, tmp_path, monkeypatch):
    monkeypatch.delenv("SFUMATO_BACKEND")
    out = tmp_path / "int8.png"
    made = run("generate", "a red circle", *FAST, "--seed", "3", "--dtype", "int8", "-o", str(out))
    assert made.exit_code == 0, made.output
    assert read_sfumato_data(out)["model"]["backend"] == "openvino int8"
    (unet,) = (installed.cache / "openvino").glob("*/unet.xml")  # the int8 one only
    assert "FakeQuantize" in unet.read_text()
    # info's command carries it, and makes the same picture again
    told = run("info", str(out)).output.strip().splitlines()[-1]
    assert "--dtype int8" in told
    again = tmp_path / "again.png"
    assert run(*shlex.split(told)[1:], "-o", str(again)).exit_code == 0
    assert Image.open(again).tobytes() == Image.open(out).tobytes()
    refused = run("generate", "a red circle", *FAST, "--dtype", "int8", "--backend", "torch")
    assert refused.exit_code != 0
    assert "--dtype int8 runs on the OpenVINO backend" in " ".join(refused.output.split())


def test_same_command_same_seed_same_pixels(installed, tmp_path):
    for name in ("a.png", "b.png"):
        assert (
            run("generate", "a cat", *FAST, "--seed", "9", "-o", str(tmp_path / name)).exit_code
            == 0
        )
    a, b = (Image.open(tmp_path / n) for n in ("a.png", "b.png"))
    assert a.tobytes() == b.tobytes()


def test_random_seed_is_printed_and_recorded(installed, tmp_path):
    result = run("generate", "a cat", *FAST, "-o", str(tmp_path / "out.png"))
    seed = int(result.output.split("(seed ")[1].split(")")[0])
    assert read_sfumato_data(tmp_path / "out.png")["settings"]["seed"] == seed


def test_batch_writes_one_file_per_seed(installed, tmp_path):
    result = run(
        "generate", "a cat", *FAST, "--seed", "42", "-b", "2", "-o", str(tmp_path / "out.jpg")
    )
    assert result.exit_code == 0, result.output
    seeds = [read_sfumato_data(tmp_path / f"out-{i}.jpg")["settings"]["seed"] for i in (1, 2)]
    assert seeds == [42, 43]


def test_existing_output_is_refused_before_generating(installed, tmp_path):
    target = tmp_path / "keep.png"
    target.write_bytes(b"precious")
    result = run("generate", "a cat", *FAST, "-o", str(target))
    assert result.exit_code == 1 and "already exists" in result.output
    assert target.read_bytes() == b"precious"
    assert run("generate", "a cat", *FAST, "-o", str(target), "--overwrite").exit_code == 0
    assert Image.open(target).size == (64, 64)


def test_single_file_with_config_folder(tiny_models, tmp_path):
    out = tmp_path / "x.png"
    result = run(
        "generate",
        "a cat",
        *FAST,
        "-m",
        str(tiny_models["sdxl"]["single"]),
        "--config",
        str(tiny_models["sdxl"]["config"]),
        "-o",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert read_sfumato_data(out)["model"]["family"] == "sdxl"
    # the A1111 model hash is the first 10 hex digits of the checkpoint's sha256
    import hashlib

    digest = hashlib.sha256(tiny_models["sdxl"]["single"].read_bytes()).hexdigest()
    assert f"Model hash: {digest[:10]}" in Image.open(out).text["parameters"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["-m", "nonexistent"], "No model named 'nonexistent'. Installed: tiny-sd15"),
        (["--sampler", "euler b"], "Unknown sampler 'euler b'. Choose one of: Euler, Euler a"),
        (["-W", "100"], "Width must be a multiple of 8"),
        (["-s", "0"], "Steps must be between 1 and 150"),
        (["--format", "gif"], "use a .png, .jpg or .webp"),
        (["--device", "cuda:7"], "CUDA"),
        (["--dtype", "fp8"], "Unknown dtype 'fp8'"),
        (["--family", "flux"], "Unknown model family 'flux'"),
    ],
)
def test_user_errors_are_sentences_with_exit_code_1(installed, args, words):
    result = run("generate", "a cat", *FAST, *args)
    assert result.exit_code == 1
    assert words in " ".join(result.output.split())


def test_broken_checkpoint_is_named_and_explained(installed):
    (installed.models / "broken.safetensors").write_bytes(b"\x00" * 100)
    result = run("generate", "a cat", "-m", "broken")
    assert result.exit_code == 1
    assert "broken.safetensors is not a readable safetensors file" in " ".join(
        result.output.split()
    )


def test_help_speaks_to_a_beginner():
    text = run("generate", "--help").output
    for words in ("Make a picture from a prompt", "--model", "--seed", "--negative", "Example"):
        assert words in text


def test_samplers_command_lists_names_and_ids():
    text = run("samplers").output
    assert "DPM++ 2M Karras" in text and "dpmpp_2m_karras" in text and "k_lms" in text
    rows = json.loads(run("samplers", "--json").output)
    assert {"id": "euler_a", "name": "Euler a"}.items() <= rows[1].items()


def _limit_memory():
    # 6 GB of address space: imports fit, a 16 x 2048 x 2048 batch does not
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


def test_real_process_out_of_memory_says_what_to_lower(tiny_models, tmp_path):
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sfumato",
            "generate",
            "x",
            "-m",
            str(tiny_models["sd15"]["folder"]),
            "-W",
            "2048",
            "-H",
            "2048",
            "-b",
            "16",
            "-s",
            "1",
            "-o",
            str(tmp_path / "big.png"),
        ],
        capture_output=True,
        text=True,
        env=env,
        preexec_fn=_limit_memory,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Ran out of memory" in proc.stderr and "Lower the width and height" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(Path(tmp_path).iterdir())


def test_installed_entry_point_generates_a_picture(tiny_models, tmp_path):
    exe = Path(sys.executable).with_name("sfumato")
    out = tmp_path / "cli.png"
    proc = subprocess.run(
        [
            str(exe),
            "generate",
            "a lighthouse",
            "-m",
            str(tiny_models["sd15"]["folder"]),
            *FAST,
            "--seed",
            "5",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"Saved {out} (seed 5)" in proc.stdout
    assert Image.open(out).text["parameters"].startswith("a lighthouse")


def test_preview_frames_and_image_to_image_from_the_command_line(installed, tmp_path):
    start = tmp_path / "start.png"
    Image.new("RGB", (128, 64), "orange").save(start)
    out = tmp_path / "p.png"
    options = ["-s", "4", "--seed", "1", "-i", str(start), "--strength", "1", "-W", "128"]
    result = run("generate", "a red circle", *options, "--preview-every", "2", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "image-to-image, strength 1" in result.output
    assert Image.open(out).size == (128, 64)
    frames = sorted(p.name for p in tmp_path.glob("p.step*.png"))
    assert frames == ["p.step002.png", "p.step004.png"]
    assert Image.open(tmp_path / "p.step004.png").size == (128, 64)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    broken = run("generate", "x", "--init-image", str(tmp_path / "broken.png"))
    assert broken.exit_code == 1
    assert "--init-image is not a picture sfumato can read" in broken.output


def test_info_gives_the_command_that_makes_the_same_picture_loras_and_shortcuts_included(tmp_path):
    from sfumato import demo

    lora = Path(__file__).parent / "data" / "demo-white-background.safetensors"
    model = ["--model", str(demo.WEIGHTS)]
    prompt = "a red circle on a blue background"
    settings = ["--seed", "3", "--lora", f"{lora}:0.9", "--clip-skip", "2"]
    settings += ["--guidance-cutoff", "0.5", "--deep-cache", "2"]  # the speed shortcuts
    made = run("generate", prompt, *model, *settings, "-o", str(tmp_path / "a.png"))
    assert made.exit_code == 0, made.output
    info = run("info", str(tmp_path / "a.png"))
    command = shlex.split(info.output.strip().splitlines()[-1])
    assert command[:2] == ["sfumato", "generate"]
    assert f"{lora}:0.9" in command and "--clip-skip" in command
    assert "Guidance cutoff:    0.5" in info.output and "DeepCache:          2" in info.output
    again = run(*command[1:], *model, "-o", str(tmp_path / "b.png"))
    assert again.exit_code == 0, again.output
    a, b = (Image.open(tmp_path / n) for n in ("a.png", "b.png"))
    assert a.tobytes() == b.tobytes()


def test_upscale_enlarges_a_picture_and_keeps_its_metadata(installed, tmp_path):
    from sfumato.metadata.read import read_info, read_texts
    from tests.fixtures.upscaler_files import compact_pth

    made = tmp_path / "fox.png"
    assert run("generate", "a red fox", "--seed", "5", *FAST, "-o", str(made)).exit_code == 0
    result = run("upscale", str(made), "--scale", "3")
    assert result.exit_code == 0, result.output
    assert "fox-x3.png (192x192, Lanczos)" in result.output
    larger = tmp_path / "fox-x3.png"
    assert Image.open(larger).size == (192, 192)
    assert read_info(larger).seed == 5
    assert read_texts(larger)["parameters"].endswith(
        "Postprocess upscale by: 3, Postprocess upscaler: Lanczos"
    )
    shown = run("info", str(larger))
    assert "Upscaled:           3x with Lanczos" in shown.output and "Seed:               5" in (
        shown.output
    )
    # a model in A1111's folder, by name; listed with its scale
    (installed.models / "ESRGAN").mkdir()
    compact_pth(installed.models / "ESRGAN" / "2x-Compact.pth")
    listed = json.loads(run("models", "list", "--kind", "upscalers", "--json").output)
    assert {"name": "2x-Compact", "kind": "model", "architecture": "RealESRGAN Compact",
            "scale": 2, "broken": None} in listed  # fmt: skip
    out = tmp_path / "fox-2x.webp"
    result = run("upscale", str(made), "-s", "2", "-m", "2x-compact", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (128, 128)
    assert run("upscale", str(made), "-s", "2", "-m", "2x-compact", "-o", str(out)).exit_code == 1
    refused = run("upscale", str(made), "-m", "UltraMega")
    assert refused.exit_code == 1 and "Choose one of: Lanczos, Nearest, 2x-Compact (2x)" in (
        refused.output
    )
