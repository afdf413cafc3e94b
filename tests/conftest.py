"""Shared fixtures: tiny models of each family, in diffusers and original single-file layouts."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import save_file

from tests.fixtures.original_layout import pipeline_to_original
from tests.fixtures.tiny_models import save_config_only, tiny_sd15, tiny_sdxl

BUILDERS = {"sd15": tiny_sd15, "sdxl": tiny_sdxl}


@pytest.fixture(autouse=True)
def _own_data_dir(tmp_path_factory, monkeypatch):
    """Each test gets an empty data directory, never the user's."""
    monkeypatch.setenv("SFUMATO_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, dict[str, Path]]:
    """For each family: a diffusers folder, a single file, and a config-only folder."""
    root = tmp_path_factory.mktemp("tiny-models")
    models = {}
    for arch, build in BUILDERS.items():
        pipe = build()
        folder = root / f"tiny-{arch}"
        pipe.save_pretrained(folder)
        single = root / f"tiny-{arch}.safetensors"
        save_file(pipeline_to_original(pipe), single)
        config = save_config_only(build(), root / f"tiny-{arch}-config")
        models[arch] = {"folder": folder, "single": single, "config": config}
    return models
