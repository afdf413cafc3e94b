"""The hires fix on the demo model (64 px native): a 128-px picture that keeps the first
pass's scene, a second pass of exactly the asked steps, A1111's metadata written and read
back, the memory check, and the refusals."""

import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from sfumato import demo
from sfumato.catalog.cards import describe_model
from sfumato.cli import app
from sfumato.demo.analyze import analyze
from sfumato.engine import hires
from sfumato.engine.families import SD15
from sfumato.engine.generate import generate
from sfumato.engine.loader import load_model
from sfumato.engine.request import GenerationRequest, resolve
from sfumato.errors import InvalidRequest, OutOfMemory
from sfumato.metadata.a1111 import format_parameters
from sfumato.metadata.read import parse_a1111, read_info

PROMPT = "a red circle on a blue background"


@pytest.fixture(scope="module")
def model():
    return load_model(describe_model(demo.WEIGHTS), device="cpu", backend="torch")


def _settings(model, **fields):
    request = GenerationRequest(PROMPT, seed=1, **fields)
    return resolve(request, model.source.family, model.source.effective_defaults)[0]


def _scene(picture: Image.Image) -> tuple:
    drawn = analyze(picture)
    return drawn.colour, drawn.background, drawn.shape, drawn.position


@pytest.mark.parametrize("upscaler", ["Latent", "Lanczos"])
def test_a_hires_picture_is_twice_the_size_keeps_the_scene_and_runs_the_asked_steps(
    model, upscaler
):
    (plain,) = generate(model, _settings(model))
    settings = _settings(
        model, hr_scale=2, hr_upscaler=upscaler, hr_second_pass_steps=5, denoising_strength=0.5
    )
    steps = []
    (picture,) = generate(model, settings, on_step=lambda s: steps.append((s.done, s.total)))
    assert plain.size == (64, 64) and picture.size == (128, 128)
    assert _scene(plain)[0] == "red"  # the first pass draws the prompt (else: nothing to keep)
    assert _scene(picture) == _scene(plain)
    first = model.source.effective_defaults.steps
    # progress covers both passes: the first's steps, then exactly the five asked for
    assert steps == [(n, first + 5) for n in range(1, first + 6)]


def test_hires_steps_left_at_zero_are_the_first_pass_steps(model):
    settings = _settings(model, hr_scale=1.5, steps=3)
    assert (settings.hires_steps, settings.hires_size, settings.hr_upscaler) == (
        3,
        (96, 96),
        "Latent",
    )
    assert settings.denoising_strength == hires.DEFAULT_DENOISE


def test_a_hires_width_and_height_of_other_proportions_are_cropped_to_fit(model):
    settings = _settings(model, hr_resize_x=128, hr_resize_y=96, hr_second_pass_steps=1)
    assert settings.hires_size == (128, 96) and settings.hr_scale is None
    (picture,) = generate(model, settings)
    assert picture.size == (128, 96)


def test_the_a1111_text_says_the_hires_fix_and_reads_back():
    settings, _ = resolve(
        GenerationRequest("a cat", seed=7, hr_scale=2, hr_second_pass_steps=10,
                          hr_upscaler="latent (bicubic)", denoising_strength=0.45), SD15,
    )  # fmt: skip
    text = format_parameters(settings, "model")
    # A1111's keys and its first pass's size
    assert "Size: 512x512" in text and "Denoising strength: 0.45" in text
    assert "Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent (bicubic)" in text
    info = parse_a1111(text)
    assert (info.hr_scale, info.hr_upscaler, info.hr_second_pass_steps) == (
        2, "Latent (bicubic)", 10,
    )  # fmt: skip
    assert (info.denoising_strength, info.strength) == (0.45, None)
    sized = replace(settings, hr_scale=None, hr_resize_x=1024, hr_resize_y=768)
    info = parse_a1111(format_parameters(sized, "model"))
    assert (info.hr_resize_x, info.hr_resize_y, info.hr_scale) == (1024, 768, None)
    # A1111's own text, as it writes it (no upscaler named: its default, Latent)
    a1111 = parse_a1111(
        "a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, "
        "Denoising strength: 0.7, Hires upscale: 2"
    )
    assert (a1111.hr_scale, a1111.denoising_strength, a1111.strength) == (2, 0.7, None)


def test_sfumato_info_reproduces_a_hires_picture(tmp_path):
    first = tmp_path / "hires.png"
    made = CliRunner().invoke(app, [
        "generate", PROMPT, "--seed", "3", "--steps", "4", "--hires", "2", "--hires-steps", "2",
        "--hires-denoise", "0.5", "--hires-upscaler", "Lanczos", "-o", str(first),
        "--backend", "torch", "--data-dir", str(tmp_path),
    ])  # fmt: skip
    assert made.exit_code == 0, made.output
    info = read_info(first)
    assert (info.width, info.hr_scale, info.hr_upscaler, info.hr_second_pass_steps) == (
        64, 2, "Lanczos", 2,
    )  # fmt: skip
    shown = CliRunner().invoke(app, ["info", str(first)], terminal_width=400)
    assert "Hires fix:" in shown.output
    command = shown.output.strip().splitlines()[-1]
    for flag in ("--hires 2", "--hires-steps 2", "--hires-denoise 0.5", "--hires-upscaler Lanczos"):
        assert flag in command, command
    import shlex

    again = tmp_path / "again.png"
    args = shlex.split(command)[1:] + ["-o", str(again), "--backend", "torch"]
    rerun = CliRunner().invoke(app, args + ["--data-dir", str(tmp_path)])
    assert rerun.exit_code == 0, rerun.output
    with Image.open(first) as a, Image.open(again) as b:
        assert a.size == b.size == (128, 128)
        assert a.tobytes() == b.tobytes()


def test_a_3x_hires_fix_of_sd15_to_1536_px_is_refused_only_without_the_memory():
    settings, _ = resolve(GenerationRequest("a cat", hr_scale=3), SD15)
    assert settings.hires_size == (1536, 1536)  # not refused for its size
    need = hires.memory_needed(settings, torch.bfloat16)
    # SD 1.5's VAE decode measured at 512 and 768 px in bf16 (benchmarks/hires.py), grown to
    # 1536 px: about 0.19 GB and 0.99 GB a megapixel
    assert 4.5 * 2**30 < need < 5 * 2**30
    assert hires.memory_needed(settings, torch.float32) == pytest.approx(2 * need, rel=0.01)
    hires.check_memory(settings, torch.device("cpu"), torch.bfloat16, need)  # just enough
    free = hires.memory_available(torch.device("cpu"))
    if free >= need:  # this machine holds it: not refused
        hires.check_memory(settings, torch.device("cpu"), torch.bfloat16, free)
    with pytest.raises(OutOfMemory, match=r"1536x1536 .* needs about 4\.8 GiB .* 4\.0 GiB is free"):
        hires.check_memory(settings, torch.device("cpu"), torch.bfloat16, 4 * 2**30)
    # a batch needs more for the UNet, not for the decode (one picture at a time)
    batch = replace(settings, batch_size=16)
    assert hires.memory_needed(batch, torch.bfloat16) > need


@pytest.mark.parametrize(
    "fields, words",
    [
        (
            {"hr_scale": 2, "hr_upscaler": "ESRGAN_4x"},
            "Unknown hires upscaler 'ESRGAN_4x'. Choose one of: Latent, Latent (antialiased)",
        ),
        ({"hr_scale": 4, "width": 640}, "would make 2560x2048"),
        ({"hr_scale": 4.5}, "Hires upscale must be between 1 and 4"),
        ({"hr_resize_x": 100}, "Hires width must be a multiple of 8"),
        ({"enable_hr": True, "denoising_strength": 0}, "Denoising strength must be more than 0"),
        ({"hr_scale": 2, "init_image": Image.new("RGB", (64, 64))}, "for text-to-image"),
    ],
)
def test_what_the_hires_fix_cannot_do_is_refused_with_a_sentence(fields, words):
    with pytest.raises(InvalidRequest, match=None) as refused:
        resolve(GenerationRequest("a cat", **fields), SD15)
    assert words in refused.value.message


def test_enable_hr_turns_it_on_with_a1111s_defaults_and_off_says_what_was_ignored():
    on, _ = resolve(GenerationRequest("a cat", enable_hr=True), SD15)
    assert (on.hr_scale, on.hr_upscaler, on.hires_size, on.hires_steps) == (
        2, "Latent", (1024, 1024), on.steps,
    )  # fmt: skip
    off, warnings = resolve(GenerationRequest("a cat", enable_hr=False, hr_scale=2), SD15)
    assert not off.hires and off.hires_size == (512, 512)
    assert any("hr_scale ignored" in w for w in warnings)


def test_the_pages_upscalers_are_the_engines():
    page = (Path(__file__).parents[2] / "sfumato" / "web" / "static" / "index.html").read_text()
    select = page.split('<select id="hr-upscaler"', 1)[1].split("</select>", 1)[0]
    assert re.findall(r"<option>([^<]+)</option>", select) == list(hires.UPSCALERS)


def test_the_compute_quota_counts_both_passes():
    from sfumato.quotas import megapixel_steps

    settings, _ = resolve(
        GenerationRequest("a cat", steps=20, hr_scale=2, hr_second_pass_steps=10), SD15
    )
    assert megapixel_steps(settings.to_dict()) == pytest.approx(
        (512 * 512 * 20 + 1024 * 1024 * 10) / 1e6
    )


def test_an_upscaler_model_enlarges_the_first_pass_and_the_picture_says_so(tmp_path):
    from tests.fixtures.upscaler_files import compact_pth

    (tmp_path / "models" / "ESRGAN").mkdir(parents=True)
    compact_pth(tmp_path / "models" / "ESRGAN" / "2x-Compact.pth")
    first = tmp_path / "hires.png"
    args = [
        "generate",
        PROMPT,
        "--seed",
        "3",
        "--hires",
        "2",
        "--hires-steps",
        "6",
        "--hires-denoise",
        "0.5",
        "--backend",
        "torch",
        "--data-dir",
        str(tmp_path),
    ]
    made = CliRunner().invoke(app, [*args, "--hires-upscaler", "2x-compact", "-o", str(first)])
    assert made.exit_code == 0, made.output
    info = read_info(first)
    assert (info.hr_scale, info.hr_upscaler) == (2, "2x-Compact")
    with Image.open(first) as picture:
        assert picture.size == (128, 128)
        assert _scene(picture)[:2] == ("red", "blue")
    # made again from what `sfumato info` says: the same pixels
    shown = CliRunner().invoke(app, ["info", str(first)], terminal_width=400)
    command = shown.output.strip().splitlines()[-1]
    assert "--hires-upscaler 2x-Compact" in command
    import shlex

    again = tmp_path / "again.png"
    rerun = CliRunner().invoke(app, shlex.split(command)[1:] + [
        "-o", str(again), "--backend", "torch", "--data-dir", str(tmp_path)])  # fmt: skip
    assert rerun.exit_code == 0, rerun.output
    with Image.open(first) as a, Image.open(again) as b:
        assert a.tobytes() == b.tobytes()
    # a name that is neither A1111's nor installed: the choices, the model among them
    wrong = CliRunner().invoke(app, [*args, "--hires-upscaler", "4x-UltraSharp"])
    assert wrong.exit_code == 1
    assert "Choose one of: Latent," in wrong.output and "Nearest, 2x-Compact." in wrong.output
