"""The training script cannot rot: a few steps of every phase, end to end, into a model the
engine loads like any SD 1.5 folder."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sfumato.catalog.cards import apply_card, read_card
from sfumato.demo.train import smoke_config, train
from sfumato.engine.checkpoint import inspect_model
from sfumato.engine.generate import generate
from sfumato.engine.loader import load_model
from sfumato.engine.request import GenerationRequest, resolve


@pytest.fixture(scope="module")
def smoke_model(tmp_path_factory):
    return train(tmp_path_factory.mktemp("demo") / "model", smoke_config())


@pytest.fixture(scope="module")
def trained_by_the_command(tmp_path_factory):
    """``sfumato demo train --smoke`` (seed 0, as smoke_config): its output and its folder.
    It is also the second training of the determinism test (one training fewer in the run)."""
    from typer.testing import CliRunner

    from sfumato.cli import app

    out = tmp_path_factory.mktemp("demo-command") / "m"
    return CliRunner().invoke(app, ["demo", "train", "--smoke", "--out", str(out)]), out


def test_training_writes_an_sd15_folder_with_card_and_log(smoke_model):
    source = apply_card(inspect_model(smoke_model), read_card(smoke_model))
    assert (source.layout, source.family.id) == ("diffusers", "sd15")
    d = source.effective_defaults
    assert (d.width, d.height) == (64, 64)  # the card's size, not SD 1.5's 512
    card = read_card(smoke_model)
    assert card.name == "sfumato-demo" and "toy world" in card.description
    assert card.keywords and all(isinstance(n, int) for n in card.keywords.values())
    phases = [json.loads(line)["phase"] for line in (smoke_model / "training-log.jsonl").open()]
    assert {"vae", "vae-check", "latents", "diffusion", "done"} <= set(phases)


def test_weights_are_saved_in_fp16(smoke_model):
    for weights in smoke_model.rglob("*.safetensors"):
        assert {t.dtype for t in load_file(weights).values()} == {torch.float16}, weights


def test_the_trained_model_runs_through_the_engine(smoke_model):
    source = apply_card(inspect_model(smoke_model), read_card(smoke_model))
    model = load_model(source, device="cpu")
    settings, _ = resolve(
        GenerationRequest("a red circle", seed=1), source.family, source.effective_defaults
    )
    image = generate(model, settings)[0]
    assert image.size == (64, 64)


def test_training_is_deterministic_from_its_seed(smoke_model, trained_by_the_command):
    # trained again from the same seed: by the command, which runs the same smoke_config()
    result, again = trained_by_the_command
    assert result.exit_code == 0, result.output
    weights_files = sorted(p.relative_to(smoke_model) for p in smoke_model.rglob("*.safetensors"))
    assert weights_files == sorted(p.relative_to(again) for p in again.rglob("*.safetensors"))
    for weights in smoke_model.rglob("*.safetensors"):
        first, second = load_file(weights), load_file(again / weights.relative_to(smoke_model))
        for key in first:
            assert torch.equal(first[key], second[key]), (weights.name, key)


def test_another_seed_gives_another_model(smoke_model, tmp_path):
    from dataclasses import replace

    other = train(tmp_path / "other", replace(smoke_config(), seed=1))
    a = load_file(smoke_model / "unet" / "diffusion_pytorch_model.safetensors")
    b = load_file(other / "unet" / "diffusion_pytorch_model.safetensors")
    assert any(not np.array_equal(a[k].float().numpy(), b[k].float().numpy()) for k in a)


def test_demo_train_command_smoke(trained_by_the_command):
    result, out = trained_by_the_command
    assert result.exit_code == 0, result.output
    assert (out / "model_index.json").is_file()
    assert "Wrote the demo model" in result.output


def test_weights_are_readable_by_everyone(smoke_model):
    for weights in smoke_model.rglob("*.safetensors"):
        assert weights.stat().st_mode & 0o044 == 0o044, weights
